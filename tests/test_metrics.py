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
    for energies in ("sigmoid", "logits"):
        preds = metrics.level_predictions(out, TREE, rule="marginal", energies=energies)
        f = torch.sigmoid(out.node_logits) if energies == "sigmoid" else out.node_logits
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
    assert set(report) >= {"OA/top", "OA/mid", "OA/leaf", "OA-marginal/leaf", "AU(PRC)",
                           "consistency", "consistency-marginal", "severity"}


def test_bad_inputs() -> None:
    bad = HRNOutput([torch.zeros(1, 2), torch.zeros(1, 3)], torch.zeros(1, 4), [])
    with pytest.raises(ValueError, match=r"level_logits have sizes \(2, 3\)"):
        metrics.level_predictions(bad, TREE)
    good = HRNOutput([torch.zeros(1, s) for s in TREE.level_sizes], torch.zeros(1, 4), [])
    with pytest.raises(ValueError, match="unknown rule 'best'"):
        metrics.level_predictions(good, TREE, rule="best")
    preds = metrics.level_predictions(good, TREE)
    with pytest.raises(ValueError, match="targets must be leaf node indices"):
        metrics.level_accuracy(preds, torch.tensor([2]), TREE)
    with pytest.raises(ValueError, match=r"scores must be \(B, N\) = \(1, 9\)"):
        metrics.au_prc_bar(torch.zeros(1, 8), torch.tensor([5]), TREE)
