"""hmglib.probability: hand-computed values, the recursion against enumeration,
gradients, extreme energies, the sigmoid-energy bounds on CUB, bad input."""

from __future__ import annotations

import gc
import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hmglib import LabelTree, LabelTreeError, hierarchies
from hmglib import probability as prob

TOY = LabelTree.from_paths([("a", "a1"), ("a", "a2"), ("b", "b1")], ["coarse", "fine"])
# nodes: a=0, b=1, a1=2, a2=3, b1=4


@st.composite
def trees(draw, max_depth: int = 5) -> LabelTree:
    """A random forest of depth 1..max_depth, 1..3 roots, 1..3 children per inner node
    (at most 2 below level 2, so enumeration stays small)."""
    depth = draw(st.integers(1, max_depth))
    paths: list[tuple[str, ...]] = []

    def grow(prefix: tuple[str, ...]) -> None:
        if len(prefix) == depth:
            paths.append(prefix)
            return
        n = draw(st.integers(1, 3 if len(prefix) < 2 else 2))
        for c in range(n):
            grow((*prefix, f"{prefix[-1] if prefix else 'r'}.{c}"))

    for r in range(draw(st.integers(1, 3))):
        grow((f"r{r}",))
    return LabelTree.from_paths(paths, [f"l{i}" for i in range(depth)])


def energies_for(tree: LabelTree, seed: int, batch: int = 3, scale: float = 3.0,
                 dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(batch, tree.num_nodes, generator=g, dtype=dtype)


# ------------------------------------------------------------ hand values
def test_hand_computed_partition_and_marginals() -> None:
    f = torch.tensor([[0.3, -0.2, 1.0, -1.5, 0.7]], dtype=torch.float64)
    a, b, a1, a2, b1 = f[0].tolist()
    states = [0.0, a, b, a + a1, a + a2, b + b1]  # empty, then one path per node
    z = sum(math.exp(s) for s in states)
    assert prob.log_partition(f, TOY).item() == pytest.approx(math.log(z), abs=1e-12)
    p = prob.log_marginals(f, TOY).exp()[0]
    expect = [
        (math.exp(a) + math.exp(a + a1) + math.exp(a + a2)) / z,
        (math.exp(b) + math.exp(b + b1)) / z,
        math.exp(a + a1) / z,
        math.exp(a + a2) / z,
        math.exp(b + b1) / z,
    ]
    assert p.tolist() == pytest.approx(expect, abs=1e-12)
    assert prob.path_energies(f, TOY)[0].tolist() == pytest.approx(states[1:], abs=1e-12)
    log_s = prob.log_subtree_sums(f, TOY)[0].exp().tolist()
    assert log_s[0] == pytest.approx(math.exp(a) * (1 + math.exp(a1) + math.exp(a2)))
    assert log_s[4] == pytest.approx(math.exp(b1))


def test_one_level_is_a_softmax_with_an_empty_class() -> None:
    tree = LabelTree.from_paths([("x",), ("y",), ("z",)], ["only"])
    f = torch.tensor([[1.0, 2.0, -1.0]], dtype=torch.float64)
    expect = torch.log_softmax(torch.cat([torch.zeros(1, 1, dtype=f.dtype), f], 1), 1)[:, 1:]
    torch.testing.assert_close(prob.log_marginals(f, tree), expect)


def test_zero_energies_count_states() -> None:
    # with f = 0 every legal state has weight 1: Z = N + 1, P(i) = |subtree(i)| / (N + 1)
    cub = hierarchies.load("cub200")
    f = torch.zeros(1, cub.num_nodes, dtype=torch.float64)
    assert prob.log_partition(f, cub).item() == pytest.approx(math.log(cub.num_nodes + 1))
    sizes = torch.tensor([1 + len(cub.descendants(n)) for n in range(cub.num_nodes)])
    torch.testing.assert_close(prob.log_marginals(f, cub)[0].exp(),
                               sizes.double() / (cub.num_nodes + 1))


# ---------------------------------------------- recursion vs enumeration
@settings(max_examples=60, deadline=None)
@given(trees(), st.integers(0, 2**31 - 1), st.sampled_from([0.1, 3.0, 30.0]))
def test_recursion_equals_enumeration(tree: LabelTree, seed: int, scale: float) -> None:
    f = energies_for(tree, seed, scale=scale)
    fast = prob.log_marginals(f, tree)
    slow = prob.enumerate_log_marginals(f, tree)
    assert (fast - slow).abs().max().item() < 1e-6
    assert (prob.log_partition(f, tree) - prob.enumerate_log_partition(f, tree)).abs().max() < 1e-6
    g = torch.Generator().manual_seed(seed)
    nodes = torch.randint(tree.num_nodes, (f.shape[0],), generator=g)
    for method in ("recursion", "dense", "auto"):
        one = prob.log_marginal_of(f, nodes, tree, method=method)
        assert (one - slow.gather(1, nodes[:, None])[:, 0]).abs().max().item() < 1e-6


@settings(max_examples=40, deadline=None)
@given(trees(), st.integers(0, 2**31 - 1))
def test_a_node_is_its_children_plus_the_state_ending_at_it(tree: LabelTree, seed: int) -> None:
    f = energies_for(tree, seed)
    p = prob.log_marginals(f, tree).exp()  # (B, N)
    state = prob.log_state_probabilities(f, tree).exp()  # (B, N + 1)
    torch.testing.assert_close(state.sum(1), torch.ones(f.shape[0], dtype=f.dtype))
    children_sum = torch.zeros_like(p).index_add_(
        1, tree.parent[tree.parent >= 0], p[:, tree.parent >= 0]
    )  # (B, N): sum of the children's marginals
    torch.testing.assert_close(p, children_sum + state[:, 1:])
    # the roots and the empty state share all the mass
    torch.testing.assert_close(p[:, tree.roots].sum(1) + state[:, 0],
                               torch.ones(f.shape[0], dtype=f.dtype))
    # path energies are the ancestor matrix applied to f
    torch.testing.assert_close(prob.path_energies(f, tree),
                               f @ tree.ancestor_matrix().double().T)


@settings(max_examples=25, deadline=None)
@given(trees(max_depth=4), st.integers(0, 2**31 - 1))
def test_gradient_of_log_partition_is_the_marginals(tree: LabelTree, seed: int) -> None:
    f = energies_for(tree, seed).requires_grad_()
    (grad,) = torch.autograd.grad(prob.log_partition(f, tree).sum(), f)
    torch.testing.assert_close(grad, prob.log_marginals(f.detach(), tree).exp())


@pytest.mark.parametrize("linear", [True, False])
def test_both_summation_paths_match_enumeration(linear: bool, monkeypatch) -> None:
    tree = LabelTree.from_paths(
        [("a", "a1", "x"), ("a", "a1", "y"), ("a", "a2", "z"), ("b", "b1", "w")], ["l0", "l1", "l2"]
    )
    monkeypatch.setattr(prob, "_linear_is_safe", lambda energies, idx: linear)
    f = energies_for(tree, 7, batch=4)
    slow = prob.enumerate_log_marginals(f, tree)
    torch.testing.assert_close(prob.log_marginals(f, tree), slow)
    torch.testing.assert_close(prob.log_partition(f, tree), prob.enumerate_log_partition(f, tree))
    subtree_of_a = [0, 2, 3, 5, 6, 7]  # a, a1, a2, x, y, z: S(root) = sum of exp F over it
    torch.testing.assert_close(prob.log_subtree_sums(f, tree)[:, 0],
                               prob.path_energies(f, tree)[:, subtree_of_a].logsumexp(1))
    nodes = torch.tensor([0, 3, 6, 8])
    torch.testing.assert_close(prob.log_marginal_of(f, nodes, tree, method="recursion"),
                               slow[torch.arange(4), nodes])


def test_linear_path_is_chosen_only_when_safe() -> None:
    cub = hierarchies.load("cub200")
    idx = prob._index(cub, torch.zeros(1))
    sigmoid = torch.rand(64, cub.num_nodes)
    assert prob._linear_is_safe(sigmoid, idx)
    assert not prob._linear_is_safe(sigmoid * 1e4, idx)
    assert prob._linear_is_safe(sigmoid.double() * 100, prob._index(cub, sigmoid.double()))
    assert not prob._linear_is_safe(sigmoid.half(), prob._index(cub, sigmoid.half()))


def test_float32_agrees_with_float64() -> None:
    cub = hierarchies.load("cub200")
    f = energies_for(cub, 0, batch=8)
    torch.testing.assert_close(prob.log_marginals(f.float(), cub).double(),
                               prob.log_marginals(f, cub), atol=1e-4, rtol=1e-5)


# ------------------------------------------------------------- precision
ALL_FNS = ["log_partition", "log_marginals", "recursion", "dense", "path_energies",
           "log_subtree_sums", "log_state_probabilities", "enumerate_log_partition",
           "enumerate_log_marginals"]


def call_fn(fn: str, f: torch.Tensor, tree: LabelTree, nodes: torch.Tensor) -> torch.Tensor:
    if fn in ("recursion", "dense"):
        return prob.log_marginal_of(f, nodes, tree, method=fn)
    return getattr(prob, fn)(f, tree)


@pytest.mark.parametrize("fn", ALL_FNS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_computed_in_float32_under_autocast(fn: str, dtype) -> None:
    cub = hierarchies.load("cub200")
    g = torch.Generator().manual_seed(11)
    f = torch.rand(16, cub.num_nodes, generator=g).to(dtype)  # sigmoid-like energies
    nodes = torch.randint(cub.num_nodes, (16,), generator=g)
    reference = call_fn(fn, f.double(), cub, nodes)  # the same (rounded) energies, float64
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = call_fn(fn, f, cub, nodes)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), reference, atol=2e-5, rtol=1e-6)


@pytest.mark.parametrize("fn", ALL_FNS)
def test_autocast_does_not_lower_float32_or_float64(fn: str) -> None:
    tree = LabelTree.from_paths(
        [("a", "a1", "x"), ("a", "a1", "y"), ("a", "a2", "z"), ("b", "b1", "w")], ["l0", "l1", "l2"]
    )
    f = energies_for(tree, 4, batch=8)
    nodes = torch.tensor([0, 2, 5, 8, 1, 3, 4, 7])
    reference = call_fn(fn, f, tree, nodes)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got64 = call_fn(fn, f, tree, nodes)
        got32 = call_fn(fn, f.float(), tree, nodes)
    assert got64.dtype == torch.float64 and got32.dtype == torch.float32
    torch.testing.assert_close(got64, reference, atol=1e-12, rtol=0)
    torch.testing.assert_close(got32.double(), reference, atol=1e-5, rtol=1e-6)


def test_half_precision_gradients_reach_the_input() -> None:
    f = energies_for(TOY, 2, dtype=torch.bfloat16).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        (grad,) = torch.autograd.grad(prob.log_partition(f, TOY).sum(), f)
    assert grad.dtype == torch.bfloat16
    expected = prob.log_marginals(f.detach().double(), TOY).exp()  # d log Z / d f
    torch.testing.assert_close(grad.double(), expected, atol=1e-2, rtol=0)


def test_accepted_dtypes_are_exactly_the_ones_the_error_names() -> None:
    with pytest.raises(TypeError, match="must be a floating-point tensor of dtype") as info:
        prob.check_energies(torch.zeros(1, 5, dtype=torch.long), TOY)
    named = info.value.args[0].split("of dtype ")[1].split(" (")[0].split(", ")
    assert tuple(getattr(torch, name) for name in named) == prob.ENERGY_DTYPES
    for dtype in prob.ENERGY_DTYPES:
        prob.check_energies(torch.zeros(1, 5, dtype=dtype), TOY)  # accepted
    others = [torch.complex64, torch.int32, torch.bool]
    others += [getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, n)]
    for dtype in others:
        with pytest.raises(TypeError, match=rf"got dtype {dtype}; convert with \.float\(\)"):
            prob.check_energies(torch.zeros(1, 5, dtype=dtype), TOY)


def test_huge_finite_energies_are_not_reported_as_infinite() -> None:
    # 3e38 is finite in float32, but a sum of two overflows to inf
    big = torch.full((2, 5), 3e38)
    prob.check_energies(big, TOY)  # accepted
    prob.check_energies(-big, TOY)
    for bad, count in ((float("inf"), 1), (float("nan"), 1)):
        f = big.clone()
        f[1, 3] = bad
        with pytest.raises(ValueError, match=rf"energies holds {count} NaN or infinite values"):
            prob.check_energies(f, TOY)
    f = big.clone()
    f[0, 0], f[1, 4] = float("nan"), -float("inf")
    with pytest.raises(ValueError, match="holds 2 NaN or infinite values"):
        prob.check_energies(f, TOY)
    # in float64 they are ordinary energies: log Z is the deepest path's energy
    assert prob.log_partition(big.double(), TOY).tolist() == pytest.approx([6e38, 6e38])


# ------------------------------------------------------------- gradients
@pytest.mark.parametrize("linear", [True, False])
@pytest.mark.parametrize("fn", ["log_partition", "log_marginals", "recursion", "dense"])
def test_gradcheck(fn: str, linear: bool, monkeypatch) -> None:
    monkeypatch.setattr(prob, "_linear_is_safe", lambda energies, idx: linear)
    tree = LabelTree.from_paths(
        [("a", "a1", "x"), ("a", "a1", "y"), ("a", "a2", "z"), ("b", "b1", "w")], ["l0", "l1", "l2"]
    )
    f = energies_for(tree, 1, batch=2).requires_grad_()
    nodes = torch.tensor([2, 7])
    if fn in ("recursion", "dense"):
        call = lambda e: prob.log_marginal_of(e, nodes, tree, method=fn)  # noqa: E731
    else:
        call = lambda e: getattr(prob, fn)(e, tree)  # noqa: E731
    assert torch.autograd.gradcheck(call, (f,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fn", ["log_partition", "log_marginals", "recursion", "dense"])
def test_extreme_energies_give_finite_values_and_gradients(fn: str, dtype: torch.dtype) -> None:
    cub = hierarchies.load("cub200")
    g = torch.Generator().manual_seed(3)
    signs = torch.randint(0, 2, (6, cub.num_nodes), generator=g).to(dtype) * 2 - 1
    cases = [1e4 * signs, torch.full_like(signs, 1e4), torch.full_like(signs, -1e4)]
    nodes = cub.leaves[:6]
    for f in cases:
        f = f.clone().requires_grad_()
        if fn in ("recursion", "dense"):
            out = prob.log_marginal_of(f, nodes, cub, method=fn)
        else:
            out = getattr(prob, fn)(f, cub)
        (grad,) = torch.autograd.grad(out.sum(), f)
        assert torch.isfinite(out).all() and torch.isfinite(grad).all()
        if dtype == torch.float64 and fn == "log_marginals":
            slow = prob.enumerate_log_marginals(f.detach(), cub)
            torch.testing.assert_close(out.detach(), slow, atol=1e-6, rtol=0)


# ------------------------------------------------ sigmoid energies on CUB
def test_cub_all_half_energies_give_the_papers_5_43() -> None:
    cub = hierarchies.load("cub200")
    assert cub.level_sizes == (13, 37, 200)
    f = torch.full((1, cub.num_nodes), 0.5, dtype=torch.float64)
    nll = -prob.log_marginals(f, cub)[0, cub.leaves]  # (200,): equal by symmetry
    brute = -prob.enumerate_log_marginals(f, cub)[0, cub.leaves]
    z = 1 + 13 * math.exp(0.5) + 37 * math.exp(1.0) + 200 * math.exp(1.5)
    exact = math.log(z) - 1.5  # 5.42692 (5.42958 with the paper's 38 families)
    torch.testing.assert_close(nll, brute)
    assert nll.mean().item() == pytest.approx(exact, abs=1e-10)
    assert nll.mean().item() == pytest.approx(5.43, abs=0.005)


def test_cub_best_leaf_probability_with_sigmoid_energies() -> None:
    cub = hierarchies.load("cub200")
    leaves = cub.leaves
    # brute force: the true path at 1, every other node at 0, by enumeration
    f = cub.ancestor_matrix()[leaves].double()  # (200, N)
    brute = prob.enumerate_log_marginals(f, cub)[torch.arange(len(leaves)), leaves]  # (200,)
    best = prob.best_log_marginals(cub)  # (N,)
    torch.testing.assert_close(best[leaves], brute)
    assert brute.exp().mean().item() == pytest.approx(0.0430831, abs=1e-6)
    assert brute.exp().mean().item() == pytest.approx(0.043, abs=0.001)
    assert (-brute).mean().item() == pytest.approx(3.1950, abs=1e-4)  # the leaf NLL floor ≈ 3.2
    # no energies in [0, 1] do better
    g = torch.Generator().manual_seed(0)
    rand = torch.rand(64, cub.num_nodes, generator=g, dtype=torch.float64)
    targets = leaves[torch.randint(len(leaves), (64,), generator=g)]
    got = prob.log_marginal_of(rand, targets, cub)
    assert (got <= best[targets] + 1e-12).all()


@settings(max_examples=25, deadline=None)
@given(trees(max_depth=3), st.floats(-2, 2), st.floats(0.1, 3))
def test_best_log_marginals_is_the_best_corner(tree: LabelTree, low: float, width: float) -> None:
    if tree.num_nodes > 10:  # 2^N corners
        tree = LabelTree.from_paths([tree.path_names(int(v)) for v in tree.leaves[:3]],
                                    tree.level_names)
    n = tree.num_nodes
    corners = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)
    lm = prob.log_marginals(low + width * corners, tree)  # (2^N, N)
    torch.testing.assert_close(prob.best_log_marginals(tree, low, low + width), lm.max(0).values)


# ------------------------------------------------------------------ cache
def test_index_cache_is_reused_and_released() -> None:
    tree = LabelTree.from_paths([("a", "x"), ("b", "y")], ["l0", "l1"])
    f = torch.zeros(1, tree.num_nodes)
    assert prob._index(tree, f) is prob._index(tree, f)
    assert prob._index(tree, f) is not prob._index(tree, f.double())
    key = id(tree)
    assert key in prob._INDEX_CACHE
    del tree
    gc.collect()
    assert key not in prob._INDEX_CACHE


def test_two_trees_of_the_same_shape_do_not_share_a_cache() -> None:
    one = LabelTree.from_paths([("a", "x"), ("a", "y"), ("b", "z")], ["l0", "l1"])
    two = LabelTree.from_paths([("a", "x"), ("b", "y"), ("b", "z")], ["l0", "l1"])
    f = energies_for(one, 5)
    torch.testing.assert_close(prob.log_marginals(f, one), prob.enumerate_log_marginals(f, one))
    torch.testing.assert_close(prob.log_marginals(f, two), prob.enumerate_log_marginals(f, two))


# -------------------------------------------------------------- bad input
@pytest.mark.parametrize("fn", [prob.log_partition, prob.log_marginals, prob.path_energies,
                                prob.enumerate_log_marginals, prob.log_subtree_sums])
@pytest.mark.parametrize(("bad", "error", "match"), [
    (torch.zeros(5), ValueError, r"shape \(B, N\).*unsqueeze"),
    (torch.zeros(2, 4), ValueError, r"\(2, 4\).*5 nodes.*\(B, 5\)"),
    (torch.zeros(2, 5, dtype=torch.long), TypeError, "floating-point"),
    (torch.tensor([[0.0, float("nan"), 0, 0, 0]]), ValueError, "1 NaN or infinite"),
    (torch.tensor([[0.0, float("inf"), -float("inf"), 0, 0]]), ValueError, "2 NaN or infinite"),
    ([[0.0] * 5], TypeError, "torch.Tensor"),
])
def test_bad_energies(fn, bad, error, match: str) -> None:
    with pytest.raises(error, match=match):
        fn(bad, TOY)


def test_bad_nodes() -> None:
    f = torch.zeros(2, 5)
    with pytest.raises(LabelTreeError, match=r"nodes hold 1 node indices outside the tree"):
        prob.log_marginal_of(f, torch.tensor([0, 5]), TOY)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        prob.log_marginal_of(f, torch.tensor([0]), TOY)
    with pytest.raises(TypeError, match="integer node indices"):
        prob.log_marginal_of(f, torch.tensor([0.0, 1.0]), TOY)


def test_empty_batch() -> None:
    f = torch.zeros(0, 5)
    assert prob.log_marginals(f, TOY).shape == (0, 5)
    assert prob.log_partition(f, TOY).shape == (0,)
    assert prob.log_marginal_of(f, torch.zeros(0, dtype=torch.long), TOY).shape == (0,)


def test_bad_method_and_bounds() -> None:
    with pytest.raises(ValueError, match="method must be"):
        prob.log_marginal_of(torch.zeros(1, 5), torch.tensor([0]), TOY, method="fast")
    with pytest.raises(ValueError, match="low < high"):
        prob.best_log_marginals(TOY, low=1.0, high=0.0)
    with pytest.raises(ValueError, match="low < high"):
        prob.best_log_marginals(TOY, low=0.0, high=math.inf)


# ----------------------------------------------------------------- figures
def test_node_relations_and_chapter_figures() -> None:
    import matplotlib.pyplot as plt

    from hmglib import viz

    tree = LabelTree.from_paths(
        [("a", "a1", "x"), ("a", "a1", "y"), ("a", "a2", "z"), ("b", "b1", "w")], ["l0", "l1", "l2"]
    )  # a 0, b 1, a1 2, a2 3, b1 4, x 5, y 6, z 7, w 8
    assert tree.relations(2) == ["ancestor", "elsewhere", "label", "sibling", "elsewhere",
                                 "descendant", "descendant", "elsewhere", "elsewhere"]
    assert tree.relations(0)[:2] == ["label", "sibling"]  # roots are siblings
    f = energies_for(tree, 2, batch=1)
    p = prob.log_marginals(f, tree)[0].exp()
    figs = [
        viz.draw_marginals(p, tree, prob.log_state_probabilities(f, tree)[0].exp(), energies=f[0]),
        viz.draw_marginals(p, tree),
        viz.draw_label_gradient(p - 0.5, tree, 2, title="t"),
        viz.draw_scaling([10, 100, 1000],
                         {"a": [1e-3, 1e-2, float("nan")], "b": [1e-4, 2e-4, 1e-3]}, quadratic="a"),
        viz.draw_sigmoid_ceiling({"t": p[5:].tolist()}, [1, 2], {"t": [0.1, 0.5]}),
    ]
    assert len(figs[0].axes) == 3 and len(figs[1].axes) == 2  # tree + colour bar (+ states)
    for fig in figs:
        assert fig.axes
        plt.close(fig)


def test_log_marginal_of_without_validation_gives_the_same_values() -> None:
    f = energies_for(TOY, 3, batch=4)
    nodes = torch.tensor([0, 1, 2, 4])
    torch.testing.assert_close(prob.log_marginal_of(f, nodes, TOY, validate=False),
                               prob.log_marginal_of(f, nodes, TOY))
    with pytest.raises(ValueError, match="NaN"):  # validated by default
        prob.log_marginal_of(f.index_fill(1, torch.tensor([0]), float("nan")), nodes, TOY)
