"""The baselines HRN is compared with: models and losses, against brute force."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hmglib import LabelTree, losses, metrics
from hmglib.models import SmallCNN_Weights
from hmglib.models.backbones import SmallCNN
from hmglib.models.baselines import CHMCNN, CHMCNNOutput, FlatClassifier, PerLevelClassifier

# nodes: 0 a, 1 b | 2 a1, 3 a2, 4 b1 | 5 x, 6 y, 7 z, 8 w
TREE = LabelTree.from_paths(
    [("a", "a1", "x"), ("a", "a1", "y"), ("a", "a2", "z"), ("b", "b1", "w")],
    ["top", "mid", "leaf"],
)
TARGETS = torch.tensor([5, 2, 0, 8, 7])  # leaf, mid, top, leaf, leaf
PARENT = {2: 0, 3: 0, 4: 1, 5: 2, 6: 2, 7: 3, 8: 4}  # by hand, from the paths above


def consistency_by_brute_force(scores: torch.Tensor) -> float:
    """% of rows whose per-level argmax nodes (levels 0..1, 2..4, 5..8) chain by PARENT."""
    ok = 0
    for row in scores.tolist():
        top = max(range(0, 2), key=lambda j: row[j])
        mid = max(range(2, 5), key=lambda j: row[j])
        leaf = max(range(5, 9), key=lambda j: row[j])
        ok += PARENT[mid] == top and PARENT[leaf] == mid
    return 100.0 * ok / len(scores)


def small(cls):
    torch.manual_seed(0)
    return cls(TREE, backbone=SmallCNN(width=4), feature_dim=8).eval()


def test_flat_classifier_scores_sum_leaves() -> None:
    out = small(FlatClassifier)(torch.rand(3, 3, 16, 16))
    p_leaf = torch.softmax(out.leaf_logits, 1)
    s = out.scores
    assert torch.allclose(s[:, 2], p_leaf[:, 0] + p_leaf[:, 1], atol=1e-6)  # a1 = x + y
    assert torch.allclose(s[:, 0], p_leaf[:, :3].sum(1), atol=1e-6)  # a = x + y + z
    for lv in range(3):
        assert torch.allclose(s[:, TREE.nodes_at(lv)].sum(1), torch.ones(3), atol=1e-6)
    assert not out.sigmoid_nodes


def test_per_level_classifier_shapes() -> None:
    out = small(PerLevelClassifier)(torch.rand(2, 3, 16, 16))
    assert [t.shape for t in out.level_logits] == [(2, 2), (2, 3), (2, 4)]
    assert torch.equal(out.leaf_logits, out.level_logits[-1])


def test_chmcnn_scores_respect_the_hierarchy() -> None:
    out = small(CHMCNN)(torch.rand(4, 3, 16, 16))
    s = out.scores
    child = TREE.parent >= 0
    assert torch.all(s[:, TREE.parent[child]] >= s[:, child])  # parent >= child
    h = torch.sigmoid(out.node_logits)
    assert torch.allclose(s[:, 2], torch.stack([h[:, 2], h[:, 5], h[:, 6]], 1).amax(1))
    report = metrics.hierarchical_report(out, torch.tensor([5, 6, 7, 8]), TREE)
    assert report["consistency"] == pytest.approx(consistency_by_brute_force(s))


def test_chmcnn_consistency_by_hand() -> None:
    # max-constrained scores (a node = the max of its subtree), nodes a b | a1 a2 b1 | x y z w
    constrained = torch.tensor([
        [0.9, 0.4, 0.9, 0.3, 0.4, 0.9, 0.2, 0.3, 0.4],  # a > a1 > x: a legal path
        [0.9, 0.5, 0.3, 0.2, 0.5, 0.3, 0.1, 0.2, 0.5],  # a (its own score) > b1 > w: not legal
        [0.2, 0.8, 0.1, 0.2, 0.8, 0.1, 0.1, 0.2, 0.8],  # b > b1 > w: legal
        [0.7, 0.6, 0.6, 0.7, 0.6, 0.6, 0.1, 0.7, 0.6],  # a > a2 > z: legal
    ])
    out = CHMCNNOutput([torch.zeros(4, 2), torch.zeros(4, 3), torch.zeros(4, 4)],
                       torch.zeros(4, 4), [], constrained)
    report = metrics.hierarchical_report(out, torch.tensor([5, 8, 8, 7]), TREE)
    assert report["consistency"] == 75.0
    assert consistency_by_brute_force(constrained) == 75.0
    # truth a a b a | a1 b1 b1 a2 | x w w z; predicted a a b a | a1 b1 b1 a2 | x w w z
    assert [report[f"OA/{lv}"] for lv in ("top", "mid", "leaf")] == [75.0, 100.0, 100.0]


def test_leaf_cross_entropy_by_hand() -> None:
    logits = torch.randn(5, 4, requires_grad=True)
    got = losses.leaf_cross_entropy(logits, TARGETS, TREE)
    leaf = TARGETS >= 5
    assert torch.allclose(got, F.cross_entropy(logits[leaf], TARGETS[leaf] - 5))
    none = losses.leaf_cross_entropy(logits[1:3], TARGETS[1:3], TREE)
    assert none.item() == 0.0 and none.requires_grad


def test_per_level_cross_entropy_by_brute_force() -> None:
    torch.manual_seed(1)
    logits = [torch.randn(5, s) for s in TREE.level_sizes]
    got = losses.per_level_cross_entropy(logits, TARGETS, TREE)
    expected = 0.0
    for lv in range(3):
        terms = []
        for i, t in enumerate(TARGETS.tolist()):
            if TREE.level_of[t] >= lv:
                node = TREE.path(t)[lv]
                terms.append(F.cross_entropy(logits[lv][i:i + 1],
                                             (node - TREE.offset(lv)).view(1)))
        expected += torch.stack(terms).mean()
    assert torch.allclose(got, expected)


def test_max_constraint_loss_by_brute_force() -> None:
    torch.manual_seed(2)
    logits = torch.randn(5, 9, dtype=torch.float64, requires_grad=True)
    got = losses.max_constraint_loss(logits, TARGETS, TREE)
    h = torch.sigmoid(logits)
    terms = []
    for b, t in enumerate(TARGETS.tolist()):
        path = set(TREE.path(t).tolist())
        below = set(TREE.descendants(t).tolist())
        for i in range(9):
            if i in below:
                continue  # unknown below a coarse label
            sub = [i, *TREE.descendants(i).tolist()]
            if i in path:
                pred = max(h[b, j] * (j in path) for j in sub)
                terms.append(-torch.log(pred))
            else:
                pred = max(h[b, j] for j in sub)
                terms.append(-torch.log(1 - pred))
    assert torch.allclose(got, torch.stack(terms).mean())
    got.backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize(("call", "message"), [
    (lambda: losses.leaf_cross_entropy(torch.zeros(5, 3), TARGETS, TREE), r"expected \(5, 4\)"),
    (lambda: losses.per_level_cross_entropy([torch.zeros(5, 2)], TARGETS, TREE),
     "1 level outputs for a tree of 3"),
    (lambda: losses.max_constraint_loss(torch.zeros(5, 9), TARGETS.float(), TREE),
     "integer node indices"),
    (lambda: losses.max_constraint_loss(torch.zeros(5, 9), torch.tensor([0, 1, 2, 3, 99]), TREE),
     "99"),
])
def test_bad_inputs(call, message) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        call()


NAN_AT = torch.zeros(5, 9).index_fill(1, torch.tensor([3]), float("nan"))  # (5, 9), 5 NaN


@pytest.mark.parametrize(("call", "message"), [
    (lambda: losses.leaf_cross_entropy(torch.zeros(0, 4), TARGETS[:0], TREE),
     r"leaf_cross_entropy: the batch is empty \(leaf_logits has 0 rows\).*Skip empty batches"),
    (lambda: losses.per_level_cross_entropy([torch.zeros(0, s) for s in TREE.level_sizes],
                                            TARGETS[:0], TREE),
     r"per_level_cross_entropy: the batch is empty \(level_logits\[0\] has 0 rows\)"),
    (lambda: losses.max_constraint_loss(torch.zeros(0, 9), TARGETS[:0], TREE),
     r"max_constraint_loss: the batch is empty \(node_logits has 0 rows\).*Skip empty"),
    (lambda: losses.leaf_cross_entropy(NAN_AT[:, :4], TARGETS, TREE),
     r"leaf_cross_entropy: leaf_logits holds 5 NaN or infinite values"),
    (lambda: losses.per_level_cross_entropy([NAN_AT[:, :2], NAN_AT[:, 1:4], NAN_AT[:, 5:]],
                                            TARGETS, TREE),
     r"per_level_cross_entropy: level_logits\[1\] holds 5 NaN or infinite values"),
    (lambda: losses.max_constraint_loss(NAN_AT, TARGETS, TREE),
     r"max_constraint_loss: node_logits holds 5 NaN or infinite values; logits must be finite"),
])
def test_empty_or_non_finite_inputs(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("cls", [FlatClassifier, PerLevelClassifier, CHMCNN])
def test_baselines_take_pretrained_weights_by_name(cls) -> None:
    state = SmallCNN_Weights.DEFAULT.get_state_dict()
    got = cls(TREE, backbone="small_cnn", weights="DEFAULT", feature_dim=8).trunk.backbone
    assert all(torch.equal(got.state_dict()[k], v) for k, v in state.items())
    with pytest.raises(ValueError, match="load them into the module yourself"):
        cls(TREE, backbone=SmallCNN(width=4), weights="DEFAULT")


@pytest.mark.parametrize("cls", [FlatClassifier, PerLevelClassifier, CHMCNN])
@pytest.mark.parametrize(("images", "error", "message"), [
    (torch.rand(3, 16, 16), ValueError, r"unsqueeze\(0\)"),
    (torch.rand(2, 1, 16, 16), ValueError, "channel"),
    (torch.randint(0, 255, (2, 3, 16, 16), dtype=torch.uint8), TypeError, "/ 255"),
])
def test_baselines_name_bad_images(cls, images, error, message) -> None:
    with pytest.raises(error, match=message):
        small(cls)(images)
