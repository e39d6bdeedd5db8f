"""hmglib.losses: L_Hier (marginal_nll) and HRN's composite loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from hmglib import LabelTree, LabelTreeError, hierarchies
from hmglib import probability as prob
from hmglib.losses import HRNLoss, HRNLossOutput, hrn_loss, marginal_nll
from hmglib.models import HRNOutput

TREE = LabelTree.from_paths(
    [("bird", "albatross", "laysan"), ("bird", "albatross", "black-footed"),
     ("bird", "wren", "house"), ("ship", "carrier", "nimitz")],
    ["kind", "group", "type"],
)
# nodes: bird 0, ship 1, albatross 2, wren 3, carrier 4, laysan 5, black-footed 6, house 7,
# nimitz 8
CUB = hierarchies.load("cub200")


def logits(tree: LabelTree, batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 2 * torch.randn(batch, tree.num_nodes, generator=g, dtype=torch.float64)


# ------------------------------------------------------------ marginal_nll
@pytest.mark.parametrize("method", ["auto", "recursion", "dense"])
def test_marginal_nll_is_the_enumerated_negative_log_marginal(method: str) -> None:
    f = logits(TREE, 4)
    targets = torch.tensor([5, 2, 1, 8])  # a leaf, a family, a root, a leaf
    brute = -prob.enumerate_log_marginals(f, TREE)[torch.arange(4), targets]  # (4,)
    none = marginal_nll(f, targets, TREE, reduction="none", method=method)
    torch.testing.assert_close(none, brute)
    torch.testing.assert_close(marginal_nll(f, targets, TREE, method=method), brute.mean())
    torch.testing.assert_close(marginal_nll(f, targets, TREE, reduction="sum", method=method),
                               brute.sum())


def test_marginal_nll_by_hand() -> None:
    tree = LabelTree.from_paths([("a", "a1"), ("a", "a2"), ("b", "b1")], ["c", "f"])
    f = torch.tensor([[1.0, 0.0, 2.0, 0.0, 0.0]], dtype=torch.float64)  # a, b, a1, a2, b1
    z = 1 + math.e + 1 + math.exp(3) + math.e + 1  # empty, a, b, a>a1, a>a2, b>b1
    assert marginal_nll(f, torch.tensor([0]), tree).item() == pytest.approx(
        -math.log((math.e + math.exp(3) + math.e) / z))
    assert marginal_nll(f, torch.tensor([2]), tree).item() == pytest.approx(
        -math.log(math.exp(3) / z))


def test_marginal_nll_gradcheck() -> None:
    f = logits(TREE, 3).requires_grad_()
    targets = torch.tensor([6, 3, 0])
    for method in ("recursion", "dense"):
        def call(e: torch.Tensor, m: str = method) -> torch.Tensor:
            return marginal_nll(e, targets, TREE, method=m)

        assert torch.autograd.gradcheck(call, (f,))


def test_coarse_label_gradient_signs() -> None:
    """A label at 'albatross' pulls up its ancestors and descendants and pushes
    every other node down, whatever the energies."""
    f = logits(TREE, 1, seed=4).requires_grad_()
    albatross = TREE.index("albatross")
    (grad,) = torch.autograd.grad(marginal_nll(f, torch.tensor([albatross]), TREE), f)
    up = set(TREE.path(albatross).tolist()) | set(TREE.descendants(albatross).tolist())
    for node in range(TREE.num_nodes):
        assert (grad[0, node] < 0) if node in up else (grad[0, node] > 0), TREE.names[node]


def test_marginal_nll_bad_targets() -> None:
    f = torch.zeros(2, TREE.num_nodes)
    with pytest.raises(TypeError, match="integer node indices"):
        marginal_nll(f, torch.tensor([0.0, 1.0]), TREE)
    with pytest.raises(TypeError, match="integer node indices"):
        marginal_nll(f, torch.tensor([True, False]), TREE)
    with pytest.raises(ValueError, match=r"shape \(2,\).*got shape \(3,\)"):
        marginal_nll(f, torch.tensor([0, 1, 2]), TREE)
    with pytest.raises(ValueError, match=r"shape \(2,\).*got shape \(2, 1\)"):
        marginal_nll(f, torch.tensor([[0], [1]]), TREE)
    with pytest.raises(LabelTreeError, match=r"outside the tree \(e.g. \[9\]\).*0..8"):
        marginal_nll(f, torch.tensor([0, 9]), TREE)
    with pytest.raises(ValueError, match=r"outside the tree \(e.g. \[-1\]\)"):
        marginal_nll(f, torch.tensor([-1, 0]), TREE)
    torch.testing.assert_close(marginal_nll(f, [0, 1], TREE),  # a list of ints is taken
                               marginal_nll(f, torch.tensor([0, 1]), TREE))
    with pytest.raises(ValueError, match="reduction"):
        marginal_nll(f, torch.tensor([0, 1]), TREE, reduction="avg")
    with pytest.raises(ValueError, match=r"marginal_nll: energies has shape \(2, 8\)"):
        marginal_nll(torch.zeros(2, 8), torch.tensor([0, 1]), TREE)


# ------------------------------------------------------------------ HRNLoss
def hrn_output(node: torch.Tensor, leaf: torch.Tensor, tree: LabelTree = TREE) -> HRNOutput:
    """An HRN output holding the node logits ``(B, N)`` and leaf logits ``(B, C_leaf)``."""
    return HRNOutput(list(node.split(list(tree.level_sizes), dim=1)), leaf, [])


def test_hrn_loss_parts() -> None:
    loss = HRNLoss(TREE)
    node = logits(TREE, 5, seed=1)
    leaf = logits(TREE, 5, seed=2)[:, :4]  # (5, 4 leaves)
    targets = torch.tensor([5, 2, 8, 0, 7])  # leaves at 0, 2, 4
    out = loss(hrn_output(node, leaf), targets)
    assert isinstance(out, HRNLossOutput)
    hier = -prob.enumerate_log_marginals(torch.sigmoid(node), TREE)[torch.arange(5), targets]
    torch.testing.assert_close(out.hier, hier.mean())
    torch.testing.assert_close(out.ce, F.cross_entropy(leaf[[0, 2, 4]], torch.tensor([0, 3, 2])))
    torch.testing.assert_close(out.total, out.hier + out.ce)


def test_hrn_loss_batch_ce_reduction_divides_by_the_batch() -> None:
    node = logits(TREE, 5, seed=1)
    leaf = logits(TREE, 5, seed=2)[:, :4]
    targets = torch.tensor([5, 2, 8, 0, 7])  # 3 of 5 leaf-labelled
    paper = hrn_loss(node, leaf, targets, TREE)
    batch = hrn_loss(node, leaf, targets, TREE, ce_reduction="batch")
    by_hand = F.cross_entropy(leaf[[0, 2, 4]], torch.tensor([0, 3, 2]), reduction="sum") / 5
    torch.testing.assert_close(batch.ce, by_hand)
    torch.testing.assert_close(batch.ce, paper.ce * 3 / 5)
    torch.testing.assert_close(batch.hier, paper.hier)
    full = torch.tensor([5, 6, 7, 8, 5])  # all leaf-labelled: the two reductions agree
    torch.testing.assert_close(hrn_loss(node, leaf, full, TREE, ce_reduction="batch").ce,
                               hrn_loss(node, leaf, full, TREE).ce)
    assert "ce_reduction='batch'" in repr(HRNLoss(TREE, ce_reduction="batch"))


def test_hrn_loss_logit_energies() -> None:
    node = logits(TREE, 3, seed=1)
    leaf = torch.zeros(3, 4, dtype=torch.float64)
    targets = torch.tensor([5, 6, 7])
    out = hrn_loss(node, leaf, targets, TREE, energy_fn="identity")
    torch.testing.assert_close(out.hier, marginal_nll(node, targets, TREE))
    torch.testing.assert_close(out.ce, torch.tensor(math.log(4), dtype=torch.float64))


def test_hrn_loss_without_leaf_labels_has_zero_ce_and_a_graph() -> None:
    node = logits(TREE, 3).requires_grad_()
    leaf = logits(TREE, 3)[:, :4].requires_grad_()
    out = hrn_loss(node, leaf, torch.tensor([0, 2, 4]), TREE)  # coarse labels only
    assert out.ce.item() == 0.0 and torch.isfinite(out.total)
    out.total.backward()
    assert torch.equal(leaf.grad, torch.zeros_like(leaf))
    assert torch.isfinite(node.grad).all() and node.grad.abs().sum() > 0


def test_sigmoid_energies_cannot_beat_the_floor_but_logits_can() -> None:
    cub = hierarchies.load("cub200")
    leaf = cub.leaves[:16]
    on_path = cub.ancestor_matrix()[leaf].double()  # (16, N)
    big = 30 * (2 * on_path - 1)  # confident logits: +30 on the true path, -30 elsewhere
    floor = -prob.best_log_marginals(cub)[leaf].mean()
    leaf_logits = torch.zeros(16, 200, dtype=torch.float64)
    sig = hrn_loss(big, leaf_logits, leaf, cub)
    assert sig.hier.item() == pytest.approx(floor.item(), abs=1e-6)
    assert 3.0 < floor.item() < 3.4
    lgt = hrn_loss(big, leaf_logits, leaf, cub, energy_fn="identity")
    assert lgt.hier.item() < 1e-6


CUB_FLOOR = -prob.best_log_marginals(CUB)  # (N,)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_sigmoid_hier_never_below_the_floor(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    node = 10 * torch.randn(8, CUB.num_nodes, generator=g, dtype=torch.float64)
    targets = torch.randint(CUB.num_nodes, (8,), generator=g)
    nll = marginal_nll(torch.sigmoid(node), targets, CUB, reduction="none")
    floor = CUB_FLOOR[targets]
    assert (nll >= floor - 1e-9).all()


# ---------------------------------------------------------------- precision
@pytest.mark.parametrize("tree", [TREE, CUB], ids=["toy-dense", "cub-recursion"])
def test_l_hier_of_bf16_energies_under_autocast_matches_float64(tree: LabelTree) -> None:
    g = torch.Generator().manual_seed(0)
    energies = torch.rand(64, tree.num_nodes, generator=g).to(torch.bfloat16)  # sigmoid-like
    targets = tree.leaves[torch.randint(len(tree.leaves), (64,), generator=g)]
    reference = marginal_nll(energies.double(), targets, tree, reduction="none")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = marginal_nll(energies, targets, tree, reduction="none")
        mean = marginal_nll(energies, targets, tree)
    assert got.dtype == mean.dtype == torch.float32
    # bf16 arithmetic was off by ~0.04 nats per sample here
    torch.testing.assert_close(got.double(), reference, atol=1e-5, rtol=0)
    assert mean.item() == pytest.approx(reference.mean().item(), abs=1e-5)


def test_hrn_loss_of_bf16_logits_under_autocast_matches_float64() -> None:
    g = torch.Generator().manual_seed(1)
    node = (3 * torch.randn(32, CUB.num_nodes, generator=g)).to(torch.bfloat16)
    leaf = (3 * torch.randn(32, 200, generator=g)).to(torch.bfloat16)
    targets = torch.cat([CUB.leaves[:24], torch.arange(8)])  # leaf and coarse labels
    reference = hrn_loss(node.double(), leaf.double(), targets, CUB)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = hrn_loss(node.requires_grad_(), leaf, targets, CUB)
    assert got.total.dtype == got.hier.dtype == got.ce.dtype == torch.float32
    assert got.hier.item() == pytest.approx(reference.hier.item(), abs=1e-5)
    assert got.ce.item() == pytest.approx(reference.ce.item(), abs=1e-4)
    got.total.backward()
    assert node.grad.dtype == torch.bfloat16 and torch.isfinite(node.grad.float()).all()


# ---------------------------------------------------------------- bad input
def test_empty_batch_is_refused_where_the_mean_is_undefined() -> None:
    f = torch.zeros(0, TREE.num_nodes)
    none = torch.zeros(0, dtype=torch.long)
    with pytest.raises(ValueError, match=r"marginal_nll: the batch is empty \(energies has 0 "
                                         r"rows\).*Skip empty batches.*reduction='sum'"):
        marginal_nll(f, none, TREE)
    assert marginal_nll(f, none, TREE, reduction="sum").item() == 0.0  # exact: an empty sum
    assert marginal_nll(f, none, TREE, reduction="none").shape == (0,)
    with pytest.raises(ValueError, match=r"HRNLoss: the batch is empty \(node_logits has 0 "
                                         r"rows\).*Skip empty batches"):
        hrn_loss(f, torch.zeros(0, 4), none, TREE)


def test_non_finite_leaf_logits_are_refused() -> None:
    node = torch.zeros(2, TREE.num_nodes)
    leaf = torch.zeros(2, 4)
    leaf[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"HRNLoss: leaf_logits holds 1 NaN or infinite "
                                         r"values; logits must be finite"):
        hrn_loss(node, leaf, torch.tensor([5, 6]), TREE)
    leaf[0, 0] = float("inf")
    with pytest.raises(ValueError, match="HRNLoss: leaf_logits holds 2 NaN"):
        hrn_loss(node, leaf, torch.tensor([0, 1]), TREE)  # even with no leaf-labelled sample


def test_hrn_loss_bad_input() -> None:
    with pytest.raises(ValueError, match="energy_fn must be one of.*'sigmoid'.*'identity'"):
        HRNLoss(TREE, energy_fn="softplus")
    with pytest.raises(ValueError, match="former name 'logits' is now 'identity'"):
        HRNLoss(TREE, energy_fn="logits")
    with pytest.raises(ValueError, match="ce_reduction must be one of.*'labelled'.*'sum'"):
        HRNLoss(TREE, ce_reduction="sum")
    with pytest.raises(ValueError, match="terms must be a non-empty selection"):
        HRNLoss(TREE, terms=())
    with pytest.raises(ValueError, match="terms must be a non-empty selection"):
        HRNLoss(TREE, terms=("hier", "hier"))
    node = torch.zeros(2, TREE.num_nodes)
    with pytest.raises(TypeError, match=r"HRNLoss takes the model's output.*got Tensor"):
        HRNLoss(TREE)(node, torch.tensor([5, 6]))  # tensors, not the model's output

    def loss(n, leaf, t):
        return hrn_loss(n, leaf, t, TREE)

    with pytest.raises(ValueError, match=r"leaf_logits has shape \(2, 3\), expected \(2, 4\)"):
        loss(node, torch.zeros(2, 3), torch.tensor([5, 6]))
    with pytest.raises(TypeError, match="leaf_logits must be a float"):
        loss(node, torch.zeros(2, 4, dtype=torch.long), torch.tensor([5, 6]))
    with pytest.raises(ValueError, match=r"HRNLoss: node_logits has shape \(2, 4\)"):
        loss(torch.zeros(2, 4), torch.zeros(2, 4), torch.tensor([5, 6]))
    with pytest.raises(ValueError, match="HRNLoss: targets hold 1 node indices outside"):
        loss(node, torch.zeros(2, 4), torch.tensor([5, 60]))
    with pytest.raises(ValueError, match="HRNLoss: node_logits holds 1 NaN"):
        loss(node.index_fill(1, torch.tensor([0]), float("nan"))[:1].repeat(2, 1)
             .index_fill(0, torch.tensor([1]), 0.0), torch.zeros(2, 4), torch.tensor([5, 6]))
    assert "energy_fn='sigmoid'" in repr(HRNLoss(TREE))


def test_hrn_loss_terms_choose_what_total_sums() -> None:
    node, leaf = logits(TREE, 6, seed=3), logits(TREE, 6, seed=4)[:, :4]
    targets = torch.tensor([5, 2, 8, 0, 7, 6])
    both = HRNLoss(TREE)(hrn_output(node, leaf), targets)
    hier = HRNLoss(TREE, terms=("hier",))(hrn_output(node, leaf), targets)
    ce = HRNLoss(TREE, terms=["ce"])(hrn_output(node, leaf), targets)
    torch.testing.assert_close(hier.total, both.hier)
    torch.testing.assert_close(ce.total, both.ce)
    torch.testing.assert_close(hier.ce, both.ce)  # both parts are always reported
    torch.testing.assert_close(both.total, both.hier + both.ce)
    assert float(both.ce) > 0 and float(both.hier) > 0
