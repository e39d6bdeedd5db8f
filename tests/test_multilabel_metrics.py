"""Multi-label metrics (SARB): per-class AP and mAP against scikit-learn, the
thresholded report by hand, and bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from hmglib.metrics import average_precision, mean_average_precision, multilabel_report


def random_problem(n: int, c: int, seed: int, decimals: int | None = None,
                   dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n, c)`` scores in [0, 1] and bool targets (about 30 % positive); the last
    class has no positive. ``decimals`` rounds the scores, which makes many ties."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(n, c, generator=g, dtype=torch.float64)
    if decimals is not None:
        scores = scores.round(decimals=decimals)
    targets = torch.rand(n, c, generator=g) < 0.3
    targets[0, :-1] = True  # every class but the last has a positive
    targets[:, -1] = False
    return scores.to(dtype), targets


def sklearn_ap(scores: torch.Tensor, targets: torch.Tensor) -> list[float]:
    """scikit-learn's AP (%) per class; NaN for a class without a positive."""
    s, t = scores.numpy(), targets.numpy()
    return [100.0 * average_precision_score(t[:, c], s[:, c]) if t[:, c].any() else math.nan
            for c in range(t.shape[1])]


# ------------------------------------------------------------ AP against scikit-learn
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("decimals", [None, 1])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("target_type", [torch.bool, torch.int64, torch.float32])
def test_ap_and_map_equal_sklearn(seed, decimals, dtype, target_type) -> None:
    scores, targets = random_problem(60, 7, seed, decimals, dtype)
    if decimals is not None:
        assert len(scores[:, 0].unique()) <= 11  # many tied scores per class
    ap = average_precision(scores, targets.to(target_type))
    assert ap.shape == (7,) and ap.dtype == torch.float64
    expected = torch.tensor(sklearn_ap(scores, targets), dtype=torch.float64)
    torch.testing.assert_close(ap, expected, equal_nan=True, rtol=1e-12, atol=1e-10)
    assert math.isnan(ap[-1]) and not ap[:-1].isnan().any()
    scored = targets.any(0).numpy()  # (C,)
    macro = 100.0 * average_precision_score(targets.numpy()[:, scored],
                                             scores.numpy()[:, scored], average="macro")
    assert mean_average_precision(scores, targets.to(target_type)) == pytest.approx(macro,
                                                                                    rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 3), min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n, max_size=n))))
def test_ap_equals_sklearn_on_few_heavily_tied_scores(column) -> None:
    """One class, 1 to 12 samples, scores from {0, 1, 2, 3}: ties everywhere."""
    levels, labels = column
    scores = torch.tensor(levels, dtype=torch.float64)[:, None]  # (N, 1)
    targets = torch.tensor(labels)[:, None]  # (N, 1)
    ap = average_precision(scores, targets)
    if not any(labels):
        assert math.isnan(ap[0])
    else:
        assert float(ap[0]) == pytest.approx(sklearn_ap(scores, targets)[0], rel=1e-12)


def test_ap_by_hand_with_a_tie() -> None:
    # class 0 ranked: 0.9 (+) | 0.8 (+), 0.8 (-) tied | 0.4 (-) | 0.1 (+); 3 positives
    #   threshold 0.9: P = 1/1, R = 1/3
    #   threshold 0.8: P = 2/3, R = 2/3  (the tie is one threshold: the positive listed
    #                                    first does not get precision 2/2)
    #   threshold 0.4: P = 2/4, R = 2/3  (no recall gained: no term)
    #   threshold 0.1: P = 3/5, R = 1
    #   AP = 1/3 * 1 + 1/3 * 2/3 + 0 * 1/2 + 1/3 * 3/5 = 34/45
    # class 1: no positive -> NaN
    scores = torch.tensor([[0.8, 0.1], [0.9, 0.2], [0.8, 0.3], [0.1, 0.4], [0.4, 0.5]])
    targets = torch.tensor([[1, 0], [1, 0], [0, 0], [1, 0], [0, 0]])
    ap = average_precision(scores, targets)
    assert float(ap[0]) == pytest.approx(100 * 34 / 45, rel=1e-12)
    assert math.isnan(ap[1])
    assert mean_average_precision(scores, targets) == pytest.approx(100 * 34 / 45, rel=1e-12)


def test_ap_of_a_perfect_and_a_reversed_ranking() -> None:
    scores = torch.tensor([[4.0, 1.0], [3.0, 2.0], [2.0, 3.0], [1.0, 4.0]])
    targets = torch.tensor([[1, 1], [0, 0], [0, 0], [0, 0]])
    # class 0: the positive ranked first -> 1; class 1: ranked last -> P = 1/4
    torch.testing.assert_close(average_precision(scores, targets),
                               torch.tensor([100.0, 25.0], dtype=torch.float64))
    one = average_precision(torch.tensor([[0.3]]), torch.tensor([[True]]))  # N = 1
    torch.testing.assert_close(one, torch.tensor([100.0], dtype=torch.float64))


def test_ap_takes_logits_and_ignores_autograd() -> None:
    g = torch.Generator().manual_seed(5)
    logits = (3 * torch.randn(40, 4, generator=g, dtype=torch.float64)).requires_grad_()
    targets = torch.rand(40, 4, generator=g) < 0.4
    ap = average_precision(logits, targets)
    assert not ap.requires_grad
    torch.testing.assert_close(ap, average_precision(torch.sigmoid(logits), targets))


# ------------------------------------------------------------------ multilabel_report
# probabilities (4 samples x 3 classes) and complete labels
PROBS = torch.tensor([[0.9, 0.2, 0.6],
                      [0.7, 0.5, 0.1],
                      [0.3, 0.8, 0.4],
                      [0.1, 0.4, 0.5]])
LABELS = torch.tensor([[1, 0, 1],
                       [0, 1, 0],
                       [1, 1, 0],
                       [0, 0, 0]])
# predicted at 0.5 (score >= 0.5; both 0.5 entries count as predicted):
#   [[1, 0, 1],
#    [1, 1, 0],
#    [0, 1, 0],
#    [0, 0, 1]]
# class 0: predicted {0, 1}, positive {0, 2}: TP 1 -> P = 1/2, R = 1/2, F1 = 1/2
# class 1: predicted {1, 2}, positive {1, 2}: TP 2 -> P = 1,   R = 1,   F1 = 1
# class 2: predicted {0, 3}, positive {0}:    TP 1 -> P = 1/2, R = 1,   F1 = 2/3
# pooled: TP 4, predicted 6, positive 5 -> OP = 4/6, OR = 4/5,
#   OF1 = 2 (2/3)(4/5) / (2/3 + 4/5) = (16/15) / (22/15) = 8/11
# CP = (1/2 + 1 + 1/2) / 3 = 2/3, CR = (1/2 + 1 + 1) / 3 = 5/6,
#   CF1 = 2 (2/3)(5/6) / (2/3 + 5/6) = (10/9) / (3/2) = 20/27
# the mean of the per-class F1s would be (1/2 + 1 + 2/3) / 3 = 13/18, not 20/27
# AP: class 0 ranked 0.9 (+), 0.7 (-), 0.3 (+), 0.1 (-): 1/2 * 1 + 1/2 * 2/3 = 5/6;
#   class 1 ranked 0.8 (+), 0.5 (+), ...: 1; class 2 ranked 0.6 (+), ...: 1
#   mAP = (5/6 + 1 + 1) / 3 = 17/18
EXPECTED = {"mAP": 17 / 18, "OP": 4 / 6, "OR": 4 / 5, "OF1": 8 / 11,
            "CP": 2 / 3, "CR": 5 / 6, "CF1": 20 / 27}


def test_report_by_hand() -> None:
    report = multilabel_report(PROBS, LABELS)
    assert set(report) == {*EXPECTED, "classes_scored"}
    for key, value in EXPECTED.items():
        assert report[key] == pytest.approx(100 * value, rel=1e-12), key
    assert report["classes_scored"] == 3
    assert report["mAP"] == pytest.approx(mean_average_precision(PROBS, LABELS), rel=1e-12)
    as_float = multilabel_report(PROBS.double(), LABELS.float())
    assert as_float == pytest.approx(report, rel=1e-12)


def test_cf1_comes_from_averaged_cp_and_cr_not_from_per_class_f1s() -> None:
    report = multilabel_report(PROBS, LABELS)
    mean_f1 = 100 * 13 / 18  # the mean of the per-class F1s (see the comments above)
    assert abs(report["CF1"] - mean_f1) > 1.0
    cp, cr = report["CP"], report["CR"]
    assert report["CF1"] == pytest.approx(2 * cp * cr / (cp + cr), rel=1e-12)


def test_a_score_at_the_threshold_is_predicted_positive() -> None:
    scores = torch.tensor([[0.25], [0.25], [0.125]])  # exact in float32 and float64
    targets = torch.tensor([[1], [0], [0]])
    at = multilabel_report(scores, targets, threshold=0.25)  # both 0.25 entries predicted
    assert at["OP"] == pytest.approx(50.0) and at["OR"] == pytest.approx(100.0)
    above = multilabel_report(scores, targets, threshold=0.2500001)  # none predicted
    assert above["OP"] == 0.0 and above["OR"] == 0.0
    # at the default 0.5: the two 0.5 entries of the hand example are predicted
    assert multilabel_report(PROBS, LABELS, threshold=0.5)["OR"] == pytest.approx(80.0)
    assert multilabel_report(PROBS, LABELS, threshold=0.5000001)["OR"] == pytest.approx(60.0)


def test_report_leaves_classes_without_a_positive_out_of_cp_and_cr() -> None:
    scores = torch.tensor([[0.9, 0.1, 0.7],
                           [0.2, 0.3, 0.1],
                           [0.8, 0.2, 0.2]])
    targets = torch.tensor([[1, 1, 0],
                            [0, 0, 0],
                            [1, 0, 0]])
    # predicted at 0.5: [[1, 0, 1], [0, 0, 0], [1, 0, 0]]
    # class 0: TP 2 of 2 predicted, 2 positive -> P = 1, R = 1
    # class 1: nothing predicted (0/0 precision -> 0), 1 positive -> P = 0, R = 0
    # class 2: no positive -> left out of CP and CR (and mAP); its false positive
    #   still counts in the pooled OP
    # CP = (1 + 0) / 2, CR = (1 + 0) / 2, CF1 = 1/2
    # pooled: TP 2, predicted 3, positive 3 -> OP = OR = OF1 = 2/3
    # mAP: class 0 -> 1; class 1 ranked 0.3 (-), 0.2 (-), 0.1 (+) -> 1/3; mean 2/3
    report = multilabel_report(scores, targets)
    expected = {"CP": 1 / 2, "CR": 1 / 2, "CF1": 1 / 2, "OP": 2 / 3, "OR": 2 / 3,
                "OF1": 2 / 3, "mAP": 2 / 3}
    for key, value in expected.items():
        assert report[key] == pytest.approx(100 * value, rel=1e-12), key
    assert report["classes_scored"] == 2


def test_report_counts_zero_over_zero_as_zero() -> None:
    # nothing predicted: precision 0/0 and F1 0/0, overall and per class
    report = multilabel_report(torch.tensor([[0.1, 0.2], [0.3, 0.4]]),
                               torch.tensor([[1, 0], [0, 1]]))
    for key in ("OP", "OR", "OF1", "CP", "CR", "CF1"):
        assert report[key] == 0.0, key
    assert report["mAP"] == pytest.approx(100 * (1 / 2 + 1) / 2)
    assert not any(math.isnan(v) for v in report.values())


# --------------------------------------------------------------------- bad inputs
GOOD_S, GOOD_T = torch.rand(4, 3), torch.tensor([[1, 0, 0]] * 4)
EMPTY = r"scores and targets must have N >= 1 samples and C >= 1 classes, got shape"
BAD_INPUTS = [
    (torch.rand(4), torch.ones(4), r"scores must be 2-D \(N, C\).*scores\[:, None\]"),
    (torch.rand(2, 3, 4), torch.ones(2, 3, 4), r"scores must be 2-D.*\(2, 3, 4\)"),
    (GOOD_S, torch.ones(4), r"targets must be 2-D"),
    (GOOD_S, torch.ones(4, 2), r"scores \(4, 3\) and targets \(4, 2\) differ"),
    (torch.rand(0, 3), torch.ones(0, 3), EMPTY),
    (torch.rand(4, 0), torch.ones(4, 0), EMPTY),
    (torch.tensor([[0.1, math.nan]]), torch.tensor([[1, 0]]), r"scores must be finite.*1 are"),
    (torch.tensor([[0.1, math.inf]]), torch.tensor([[1, 0]]), r"scores must be finite"),
    (torch.ones(2, 2, dtype=torch.bool), torch.ones(2, 2), r"scores must hold real numbers"),
    (GOOD_S, torch.tensor([[1, -1, 0]] * 4), r"targets hold 4 entries -1.*must be complete"
                                             r".*use the known entries only"),
    (GOOD_S, torch.tensor([[1, 2, 0]] * 4), r"targets must be complete labels in \{0, 1\}"),
    (GOOD_S, torch.full((4, 3), 0.5), r"targets must be complete labels in \{0, 1\}"),
    (GOOD_S, torch.full((4, 3), math.nan), r"targets must be complete labels"),
    ("abc", GOOD_T, r"scores must be a tensor \(N, C\), got str"),
]


@pytest.mark.parametrize("fn", [average_precision, mean_average_precision, multilabel_report])
@pytest.mark.parametrize(("scores", "targets", "message"), BAD_INPUTS)
def test_bad_inputs_are_refused(fn, scores, targets, message) -> None:
    with pytest.raises(ValueError, match=rf"^{fn.__name__}: {message}"):
        fn(scores, targets)


@pytest.mark.parametrize("fn", [mean_average_precision, multilabel_report])
def test_map_without_any_positive_is_refused(fn) -> None:
    with pytest.raises(ValueError, match=rf"^{fn.__name__}: no class has a positive target"):
        fn(torch.rand(3, 2), torch.zeros(3, 2))
    assert average_precision(torch.rand(3, 2), torch.zeros(3, 2)).isnan().all()


@pytest.mark.parametrize("scores", [torch.tensor([[1.2, 0.1]]), torch.tensor([[-0.5, 0.1]]),
                                    torch.tensor([[3.0, -2.0]])])
def test_report_refuses_scores_that_are_not_probabilities(scores) -> None:
    with pytest.raises(ValueError, match=r"multilabel_report: scores must be probabilities "
                                         r"in \[0, 1\].*apply torch.sigmoid to logits"):
        multilabel_report(scores, torch.tensor([[1, 0]]))


@pytest.mark.parametrize("threshold", [0, 0.0, 1.0, 1.5, -0.1, math.nan, True, "0.5"])
def test_report_refuses_a_threshold_outside_zero_one(threshold) -> None:
    with pytest.raises(ValueError, match=r"multilabel_report: threshold=.* must be a number "
                                         r"in \(0, 1\)"):
        multilabel_report(PROBS, LABELS, threshold=threshold)


def test_report_takes_numpy_and_tensor_thresholds() -> None:
    report = multilabel_report(PROBS, LABELS, threshold=np.float32(0.5))
    assert report["OR"] == pytest.approx(80.0)
    assert multilabel_report(PROBS, LABELS, threshold=torch.tensor(0.5)) == report
