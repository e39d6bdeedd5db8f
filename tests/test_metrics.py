"""Hierarchical metrics: hand-computed values and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from hmglib import LabelTree, metrics
from hmglib.models import HRNOutput

# nodes: 0 a, 1 b | 2 a1, 3 a2, 4 b1 | 5 x, 6 y, 7 z, 8 w
TREE = LabelTree.from_paths(
    [("a", "a1", "x"), ("a", "a1", "y"), ("a", "a2", "z"), ("b", "b1", "w")],
    ["top", "mid", "leaf"],
)


def onehot_logits(nodes: list[int], level: int) -> torch.Tensor:
    size = TREE.level_sizes[level]
    out = torch.full((len(nodes), size), -5.0)
    out[torch.arange(len(nodes)), torch.tensor(nodes) - TREE.offset(level)] = 5.0
    return out


def test_paper_rule_and_accuracy_by_hand() -> None:
    targets = torch.tensor([5, 6, 7, 8])
    level_logits = [onehot_logits([0, 0, 1, 1], 0), onehot_logits([2, 3, 3, 4], 1),
                    onehot_logits([8, 8, 8, 8], 2)]  # sigmoid leaf head ignored by the paper rule
    leaf = onehot_logits([5, 5, 7, 7], 2)
    preds = metrics.level_predictions(HRNOutput(level_logits, leaf, []), TREE, rule="paper")
    assert [p.tolist() for p in preds] == [[0, 0, 1, 1], [2, 3, 3, 4], [5, 5, 7, 7]]
    # truth a a a b | a1 a1 a2 b1 | x y z w
    assert metrics.level_accuracy(preds, targets, TREE) == [75.0, 75.0, 50.0]
    # legal: a>a1>x only (a>a2>x, b>a2>z and b>b1>z break a parent link)
    assert metrics.consistency(preds, TREE) == 25.0


def test_marginal_rule_by_brute_force() -> None:
    torch.manual_seed(0)
    out = HRNOutput([torch.randn(16, s) for s in TREE.level_sizes], torch.randn(16, 4), [])
    for energy_fn in ("sigmoid", "identity"):
        preds = metrics.level_predictions(out, TREE, rule="marginal", energy_fn=energy_fn)
        f = torch.sigmoid(out.node_logits) if energy_fn == "sigmoid" else out.node_logits
        states = TREE.legal_states().double()  # (N + 1, N)
        joint = torch.softmax(f.double() @ states.T, dim=1)  # (B, N + 1)
        marginals = joint @ states  # (B, N)
        for lv, p in enumerate(preds):
            expected = marginals[:, TREE.nodes_at(lv)].argmax(1) + TREE.offset(lv)
            assert torch.equal(p, expected)


def test_mistake_severity_by_hand() -> None:
    # x vs y share 2 levels -> 2 edges; x vs z share 1 -> 4; x vs w share 0 -> 6
    pred = torch.tensor([6, 7, 8, 5])
    truth = torch.tensor([5, 5, 5, 5])
    assert metrics.mistake_severity(pred, truth, TREE) == pytest.approx((2 + 4 + 6) / 3)
    assert math.isnan(metrics.mistake_severity(truth, truth, TREE))


def test_au_prc_bar_by_hand() -> None:
    # one sample, target x: positives a, a1, x (nodes 0, 2, 5)
    scores = torch.zeros(1, 9)
    scores[0, [0, 2, 5]] = torch.tensor([0.9, 0.8, 0.3])
    scores[0, 6] = 0.5  # a negative ranked between the positives
    # ranking: a(+) a1(+) y(-) x(+) ...: precision at each positive 1, 1, 3/4
    expected = 100 * (1 + 1 + 0.75) / 3
    assert metrics.au_prc_bar(scores, torch.tensor([5]), TREE) == pytest.approx(expected)


def test_scores_and_report() -> None:
    out = HRNOutput([torch.zeros(2, s) for s in TREE.level_sizes], torch.zeros(2, 4), [])
    s = out.scores
    assert s.shape == (2, 9)
    assert torch.allclose(s[:, :5], torch.full((2, 5), 0.5))
    assert torch.allclose(s[:, 5:].sum(1), torch.ones(2))
    report = metrics.hierarchical_report(out, torch.tensor([5, 8]), TREE)
    assert set(report) == {"OA/top", "OA/mid", "OA/leaf", "OA-marginal/top", "OA-marginal/mid",
                           "OA-marginal/leaf", "AU(PRC)", "consistency", "consistency-marginal",
                           "severity"}


PARENT = {2: 0, 3: 0, 4: 1, 5: 2, 6: 2, 7: 3, 8: 4}  # by hand, from TREE's paths


def logit(p: list[float]) -> torch.Tensor:
    p = torch.tensor(p, dtype=torch.float64)
    return torch.log(p / (1 - p)).float()


# a hand-built batch of two samples, targets x (a > a1 > x) and w (b > b1 > w); the node
# scores (sigmoid of the coarse heads, softmax of the leaf head) are set exactly
#            a     b     a1    a2    b1     x     y     z     w
HAND = [[0.95, 0.08, 0.70, 0.60, 0.12], [0.30, 0.50, 0.15, 0.05]]
HAND2 = [[0.20, 0.90, 0.25, 0.65, 0.55], [0.04, 0.06, 0.10, 0.80]]


def hand_output() -> HRNOutput:
    coarse = logit([HAND[0], HAND2[0]])  # (2, 5)
    leaf = torch.log(torch.tensor([HAND[1], HAND2[1]]))  # softmax gives the row back
    return HRNOutput([coarse[:, :2], coarse[:, 2:], torch.zeros(2, 4)], leaf, [])


def test_report_values_by_hand() -> None:
    out = hand_output()
    expected_scores = torch.tensor([HAND[0] + HAND[1], HAND2[0] + HAND2[1]])
    torch.testing.assert_close(out.scores, expected_scores)
    report = metrics.hierarchical_report(out, torch.tensor([5, 8]), TREE)
    # paper rule: sample 0 predicts a, a1, y (leaf wrong); sample 1 b, a2, w (mid wrong)
    assert report["OA/top"] == 100.0
    assert report["OA/mid"] == 50.0
    assert report["OA/leaf"] == 50.0
    assert report["consistency"] == 50.0  # b > a2 is not a path
    assert report["severity"] == 2.0  # y vs x: siblings, 2 edges
    # AU(PRC): the 18 (sample, node) scores sorted, + on a path: .95+ .90+ .80+ .70+ .65-
    # .60- .55+ .50- .30+ then only negatives; precision at the 6 positives:
    # 1, 1, 1, 1, 5/7, 6/9
    assert report["AU(PRC)"] == pytest.approx(100 * (4 + 5 / 7 + 6 / 9) / 6)
    # marginal rule, by enumerating the legal states of sigmoid(node logits)
    f = torch.sigmoid(out.node_logits.double())  # (2, 9): the leaf sigmoid head is 0.5
    states = TREE.legal_states().double()  # (10, 9)
    marginals = torch.softmax(f @ states.T, dim=1) @ states  # (2, 9)
    preds = [marginals[:, lo:hi].argmax(1) + lo for lo, hi in ((0, 2), (2, 5), (5, 9))]
    truth = [[0, 1], [2, 4], [5, 8]]
    for lv, name in enumerate(("top", "mid", "leaf")):
        hits = sum(int(p) == t for p, t in zip(preds[lv].tolist(), truth[lv], strict=True))
        assert report[f"OA-marginal/{name}"] == 50.0 * hits
    chained = [PARENT[int(preds[1][b])] == int(preds[0][b])
               and PARENT[int(preds[2][b])] == int(preds[1][b]) for b in range(2)]
    assert report["consistency-marginal"] == 50.0 * sum(chained)


def test_predictions_on_the_wrong_level_are_refused() -> None:
    targets = torch.tensor([5, 8])
    preds = [torch.tensor([0, 1]), torch.tensor([2, 4]), torch.tensor([5, 8])]
    assert metrics.level_accuracy(preds, targets, TREE) == [100.0, 100.0, 100.0]
    # class indices within the leaf level instead of node indices: used to score 0 %
    within = [preds[0], preds[1], torch.tensor([0, 3])]
    with pytest.raises(ValueError, match=r"level_accuracy: predictions\[2\] \(level 'leaf'\) "
                                         r"must hold node indices of that level, 5\.\.8.*"
                                         r"\[0, 3\].*c \+ tree\.offset\(2\) = c \+ 5"):
        metrics.level_accuracy(within, targets, TREE)
    with pytest.raises(ValueError, match=r"predictions\[0\] \(level 'top'\) must hold node "
                                         r"indices of that level, 0\.\.1"):
        metrics.level_accuracy(preds[::-1], targets, TREE)  # fine to coarse
    with pytest.raises(ValueError, match=r"consistency: predictions\[1\] \(level 'mid'\) "
                                         r"must hold node indices of that level, 2\.\.4"):
        metrics.consistency([preds[0], preds[2], preds[2]], TREE)
    with pytest.raises(ValueError, match=r"level_accuracy: predictions must be 3 tensors, one "
                                         r"per level \['top', 'mid', 'leaf'\].*got 2 tensors"):
        metrics.level_accuracy(preds[1:], targets, TREE)
    with pytest.raises(ValueError, match=r"predictions\[1\] \(level 'mid'\) must have shape "
                                         r"\(B,\).*got shape \(3,\) \(B = 2\)"):
        metrics.level_accuracy([preds[0], torch.tensor([2, 4, 4]), preds[2]], targets, TREE)
    with pytest.raises(TypeError, match=r"predictions\[2\] \(level 'leaf'\) must hold integer"):
        metrics.level_accuracy([preds[0], preds[1], preds[2].float()], targets, TREE)
    with pytest.raises(ValueError, match=r"mistake_severity: pred_leaf \(level 'leaf'\) must "
                                         r"hold node indices of that level, 5\.\.8"):
        metrics.mistake_severity(torch.tensor([2, 8]), targets, TREE)


def test_coarse_targets_are_refused() -> None:
    scores = hand_output().scores
    # a coarse target (a1 instead of x) scored 75.0 before
    with pytest.raises(ValueError, match=r"au_prc_bar: targets must be leaf node indices "
                                         r"\(level 'leaf', nodes 5\.\.8\), but 1 are coarser "
                                         r"\(e\.g\. node 2 'a1' at level 'mid'\)"):
        metrics.au_prc_bar(scores, torch.tensor([2, 8]), TREE)
    with pytest.raises(ValueError, match=r"mistake_severity: target_leaf must be leaf node"):
        metrics.mistake_severity(torch.tensor([5, 8]), torch.tensor([5, 1]), TREE)
    with pytest.raises(ValueError, match=r"level_accuracy: targets must have shape \(B,\) with "
                                         r"B >= 1"):
        metrics.level_accuracy([torch.zeros(0, dtype=torch.long)] * 3,
                               torch.zeros(0, dtype=torch.long), TREE)


def test_bad_inputs() -> None:
    bad = HRNOutput([torch.zeros(1, 2), torch.zeros(1, 3)], torch.zeros(1, 4), [])
    with pytest.raises(ValueError, match=r"level_logits have sizes \(2, 3\)"):
        metrics.level_predictions(bad, TREE)
    good = HRNOutput([torch.zeros(1, s) for s in TREE.level_sizes], torch.zeros(1, 4), [])
    with pytest.raises(ValueError, match="unknown rule 'best'"):
        metrics.level_predictions(good, TREE, rule="best")
    preds = metrics.level_predictions(good, TREE)
    with pytest.raises(ValueError, match=r"level_accuracy: targets must be leaf node indices "
                                         r"\(level 'leaf', nodes 5\.\.8\)"):
        metrics.level_accuracy(preds, torch.tensor([2]), TREE)
    with pytest.raises(ValueError, match=r"scores must be \(B, N\) = \(1, 9\)"):
        metrics.au_prc_bar(torch.zeros(1, 8), torch.tensor([5]), TREE)
