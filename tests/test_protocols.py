"""Label protocols: exact coarsening counts, degradation, partial labels, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hmglib import LabelTree
from hmglib.data import (
    CoarsenedDataset,
    HierShapes,
    PartialLabelDataset,
    coarsen_labels,
    degrade_resolution,
    drop_labels,
)

PATHS = [("a", "a1", "x"), ("a", "a1", "y"), ("a", "a2", "z"), ("b", "b1", "w")]


@pytest.fixture
def tree() -> LabelTree:
    return LabelTree.from_paths(PATHS, ["top", "mid", "leaf"])


def leaves(tree: LabelTree, ids: list[int]) -> torch.Tensor:
    return tree.offset(-1) + torch.tensor(ids)


# ------------------------------------------------------------------ coarsen
def test_ordered_rule_by_hand(tree: LabelTree) -> None:
    # leaves: x=5, y=6, z=7, w=8; parents a1=2, a1=2, a2=3, b1=4
    targets = leaves(tree, [0, 1, 0, 0, 1, 2, 0, 3])  # x y x x y z x w
    out = coarsen_labels(targets, tree, 0.5, rule="ordered")
    # x: 4 samples keep ceil(2) = 2 (the first two); y: 2 keep 1; z, w: 1 keep 1
    assert out.tolist() == [5, 6, 5, 2, 2, 7, 2, 8]
    to_top = coarsen_labels(targets, tree, 0.5, level="top", rule="ordered")
    assert to_top.tolist() == [5, 6, 5, 0, 0, 7, 0, 8]


def test_float_rounding_keeps_the_exact_count(tree: LabelTree) -> None:
    targets = leaves(tree, [0] * 10)
    assert 10 * (1 - 0.7) > 3  # floating point: 3.0000000000000004
    out = coarsen_labels(targets, tree, 0.7, rule="ordered")
    assert int((out == targets).sum()) == 3


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 40), min_size=4, max_size=4),
    ratio=st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0, 1 / 3]),
    rule=st.sampled_from(["ordered", "random"]),
    seed=st.integers(0, 2**31),
)
def test_exact_count_per_class(counts: list[int], ratio: float, rule: str, seed: int) -> None:
    tree = LabelTree.from_paths(PATHS, ["top", "mid", "leaf"])
    ids = [c for c, n in enumerate(counts) for _ in range(n)]
    perm = torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))
    targets = leaves(tree, ids)[perm] if ids else torch.zeros(0, dtype=torch.long)
    out = coarsen_labels(targets, tree, ratio, rule=rule, seed=seed)
    parents = tree.lift(targets, "mid")
    assert torch.all((out == targets) | (out == parents))
    for c, n in enumerate(counts):
        leaf = tree.offset(-1) + c
        kept = int((out == leaf).sum())
        assert kept == math.ceil(round(n * (1 - ratio), 9))
        assert abs((n - kept) - n * ratio) < 1 + 1e-9  # the requested share, +-1
    if rule == "ordered":  # the kept samples come first within each class
        for c in range(4):
            leaf = tree.offset(-1) + c
            mine = out[targets == leaf]
            kept = int((mine == leaf).sum())
            assert torch.all(mine[:kept] == leaf)


def test_random_rule_is_seeded_and_differs_from_ordered() -> None:
    ds = HierShapes(samples_per_class=20)
    t = ds.targets
    a = coarsen_labels(t, ds.tree, 0.5, seed=1)
    b = coarsen_labels(t, ds.tree, 0.5, seed=1)
    c = coarsen_labels(t, ds.tree, 0.5, seed=2)
    ordered = coarsen_labels(t, ds.tree, 0.5, rule="ordered")
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, ordered)
    assert int((a != t).sum()) == int((ordered != t).sum()) == 270
    assert torch.equal(coarsen_labels(t, ds.tree, 0.0), t)
    assert torch.equal(coarsen_labels(t, ds.tree, 1.0), ds.tree.lift(t, -2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ratio": -0.1}, "ratio"),
        ({"ratio": 1.5}, "ratio"),
        ({"ratio": float("nan")}, "ratio"),
        ({"ratio": "0.5"}, "ratio"),
        ({"rule": "first"}, "rule"),
        ({"level": -1}, "leaf level"),
        ({"level": "leaf"}, "leaf level"),
        ({"seed": -1}, "seed"),
    ],
)
def test_coarsen_bad_arguments(tree: LabelTree, kwargs: dict, match: str) -> None:
    args = {"ratio": 0.5, **kwargs}
    with pytest.raises(ValueError, match=match):
        coarsen_labels(leaves(tree, [0, 1]), tree, **args)


def test_coarsen_bad_targets(tree: LabelTree) -> None:
    with pytest.raises(ValueError, match="not leaf"):
        coarsen_labels(torch.tensor([5, 2]), tree, 0.5)  # 2 is a family
    with pytest.raises(ValueError, match="not leaf"):
        coarsen_labels(torch.tensor([5, 99]), tree, 0.5)
    with pytest.raises(ValueError, match="1-D integer"):
        coarsen_labels(torch.tensor([[5, 6]]), tree, 0.5)
    with pytest.raises(ValueError, match="1-D integer"):
        coarsen_labels(torch.tensor([5.0, 6.0]), tree, 0.5)


# ------------------------------------------------------------------ degrade
def test_degrade_nearest_is_block_subsampling() -> None:
    x = torch.rand(2, 3, 16, 12)
    out = degrade_resolution(x, 0.25, "nearest", up_mode="nearest")
    small = x[..., ::4, ::4]  # nearest picks pixel 4i of every 4 x 4 block
    want = small.repeat_interleave(4, dim=-2).repeat_interleave(4, dim=-1)
    assert torch.equal(out, want)
    single = degrade_resolution(x[0], 0.25, "nearest", up_mode="nearest")
    assert torch.equal(single, want[0])


def test_degrade_shapes_ranges_and_identity() -> None:
    x = torch.rand(3, 30, 30)
    out = degrade_resolution(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    assert not torch.equal(out, x)
    assert torch.equal(degrade_resolution(x, 1.0, "nearest", "nearest"), x)
    cubic = degrade_resolution(x, 0.5, "bicubic", "bicubic")
    assert 0 <= float(cubic.min()) and float(cubic.max()) <= 1
    tiny = degrade_resolution(torch.rand(1, 3, 3, 3), 0.1)  # at least one pixel
    assert tiny.shape == (1, 3, 3, 3)


@pytest.mark.parametrize(
    "image, kwargs, match",
    [
        (torch.rand(8, 8), {}, r"\(C, H, W\)"),
        (torch.rand(1, 1, 3, 8, 8), {}, r"\(C, H, W\)"),
        (torch.zeros(3, 8, 8, dtype=torch.uint8), {}, "float"),
        (torch.rand(3, 8, 8), {"factor": 0.0}, "factor"),
        (torch.rand(3, 8, 8), {"factor": 2.0}, "factor"),
        (torch.rand(3, 8, 8), {"mode": "linear"}, "mode"),
        (torch.rand(3, 8, 8), {"up_mode": "cubic"}, "up_mode"),
    ],
)
def test_degrade_bad_input(image: torch.Tensor, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        degrade_resolution(image, **kwargs)


def test_coarsened_dataset_degrades_exactly_the_coarse_samples() -> None:
    base = HierShapes(samples_per_class=2, image_size=32)
    targets = coarsen_labels(base.targets, base.tree, 0.5, rule="ordered")
    ds = CoarsenedDataset(base, targets)
    assert int(ds.coarse.sum()) == 27
    for i in range(len(ds)):
        image, target = ds[i]
        original = base[i][0]
        assert target == int(targets[i])
        if targets[i] == base.targets[i]:
            assert torch.equal(image, original)
        else:
            assert torch.equal(image, degrade_resolution(original, 0.25, "nearest"))
    clean = CoarsenedDataset(base, targets, degrade=False, transform=lambda x: x * 2)
    assert torch.equal(clean[1][0], base[1][0] * 2)


def test_coarsened_dataset_bad_input() -> None:
    base = HierShapes(samples_per_class=1, image_size=16)
    t = base.targets
    with pytest.raises(ValueError, match="one label per sample"):
        CoarsenedDataset(base, t[:5])
    wrong = t.clone()
    wrong[0] = base.tree.index("triangle")  # not an ancestor of an ellipse species
    with pytest.raises(ValueError, match="not its base label"):
        CoarsenedDataset(base, wrong)
    with pytest.raises(ValueError, match="outside the tree"):
        CoarsenedDataset(base, t + 100)
    with pytest.raises(ValueError, match="tree="):
        CoarsenedDataset([(torch.zeros(3, 4, 4), 0)], torch.tensor([0]))
    with pytest.raises(ValueError, match="factor"):
        CoarsenedDataset(base, t, factor=3.0)


# --------------------------------------------------------------------- drop
@pytest.mark.parametrize("rule", ["entry", "per_image"])
@pytest.mark.parametrize("known", [0.1, 0.5, 0.9])
def test_drop_labels_keeps_the_requested_share(rule: str, known: float) -> None:
    y = (torch.rand(10_000, 20, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    out = drop_labels(y, known=known, seed=3, rule=rule)
    assert out.shape == y.shape and out.dtype == y.dtype
    assert set(out.unique().tolist()) <= {-1.0, 0.0, 1.0}
    kept = out != 0
    assert abs(float(kept.float().mean()) - known) <= 0.01
    assert torch.equal(out[kept], (2 * y - 1)[kept])  # known entries tell the truth
    # positives and negatives are hidden alike
    pos_share = float(kept[y == 1].float().mean())
    neg_share = float(kept[y == 0].float().mean())
    assert abs(pos_share - neg_share) < 0.02
    if rule == "per_image":
        assert torch.all(kept.sum(dim=1) == round(known * 20))


def test_drop_labels_seed_extremes_and_dtypes() -> None:
    y = torch.tensor([[1, 0, 1, 0]] * 50, dtype=torch.bool)
    a = drop_labels(y, 0.5, seed=1)
    assert a.dtype == torch.int64
    assert torch.equal(a, drop_labels(y, 0.5, seed=1))
    assert not torch.equal(a, drop_labels(y, 0.5, seed=2))
    assert torch.all(drop_labels(y, 0.0) == 0)
    assert torch.equal(drop_labels(y, 1.0), y.long() * 2 - 1)
    assert drop_labels(y.int(), 0.5).dtype == torch.int32
    assert drop_labels(y.to(torch.uint8), 0.5).dtype == torch.int64


@pytest.mark.parametrize(
    "labels, kwargs, match",
    [
        (torch.ones(5), {}, r"\(N, C\)"),
        (torch.tensor([[1, -1]]), {}, "only 0 and 1"),
        (torch.tensor([[1, 2]]), {}, "only 0 and 1"),
        (torch.ones(2, 2), {"known": 1.2}, "known"),
        (torch.ones(2, 2), {"known": -0.5}, "known"),
        (torch.ones(2, 2), {"rule": "row"}, "rule"),
        (torch.ones(2, 2), {"seed": -3}, "seed"),
    ],
)
def test_drop_labels_bad_input(labels: torch.Tensor, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        drop_labels(labels, **kwargs)


def test_partial_label_dataset() -> None:
    from hmglib.data import MultiShapes

    base = MultiShapes(num_images=6, image_size=32)
    partial = drop_labels(base.targets, 0.5)
    ds = PartialLabelDataset(base, partial)
    image, target = ds[3]
    assert torch.equal(image, base[3][0]) and torch.equal(target, partial[3])
    with pytest.raises(ValueError, match=r"len\(base\)"):
        PartialLabelDataset(base, partial[:2])
    with pytest.raises(ValueError, match="1, 0 and -1"):
        PartialLabelDataset(base, partial + 3)
