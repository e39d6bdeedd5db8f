"""Metrics of the book.

Hierarchical classification (HRN, chapter 3–4):

* :func:`level_predictions` — one predicted node per level, by the paper's rule
  (coarse levels: argmax of that level's sigmoid head; leaf: argmax of the
  softmax head; baselines bring their own node scores) or by the tree-marginal
  rule (argmax of ``P(y_i = 1)`` within each level);
* :func:`level_accuracy` — per-level overall accuracy (OA, %);
* :func:`au_prc_bar` — micro-averaged average precision over every node of the
  forest (C-HMCNN's AU(PRC)-bar; our forests have no explicit root, so every
  node counts), through scikit-learn;
* :func:`consistency` — the share of samples whose per-level predictions form a
  legal path of the tree;
* :func:`mistake_severity` — the mean tree distance between a wrong leaf
  prediction and the truth.

:func:`hierarchical_report` computes all of them from a model's outputs.

Attention (RA-CNN, chapter 5):

* :func:`box_iou_pairs` — the IoU of box ``i`` of one set with box ``i`` of
  another (checked against :func:`torchvision.ops.box_iou` in the tests);
* :func:`centre_hits` — whether each attended region's centre lies in its
  ground-truth box;
* :func:`attention_report` — accuracy per scale and fused, the share of images
  whose true-class probability rises from scale to scale, each scale's species
  prediction lifted to the coarser levels of a tree, and the localisation of
  every scale's region against object and part boxes.

Multi-label recognition (SARB, chapter 6; test labels are complete, in {0, 1}):

* :func:`average_precision` — per-class average precision (%), scikit-learn's
  step-wise definition (tied scores form one threshold), vectorised over
  classes;
* :func:`mean_average_precision` — mAP (%), the mean over the classes that have
  a positive test label;
* :func:`multilabel_report` — mAP with the overall (OP, OR, OF1) and per-class
  (CP, CR, CF1) precision, recall and F1 at a probability threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from sklearn.metrics import average_precision_score

from hmglib.checks import check_real
from hmglib.hierarchy import LabelTree
from hmglib.models.hrn import HRNOutput
from hmglib.models.racnn import RACNNOutput, boxes_to_xyxy
from hmglib.probability import check_energy_fn, log_marginals, node_energies

__all__ = [
    "level_predictions",
    "level_accuracy",
    "au_prc_bar",
    "consistency",
    "mistake_severity",
    "hierarchical_report",
    "box_iou_pairs",
    "centre_hits",
    "attention_report",
    "average_precision",
    "mean_average_precision",
    "multilabel_report",
]

RULES = ("paper", "marginal")


def _node_range(tree: LabelTree, lv: int) -> tuple[int, int]:
    """The first and last node index of level ``lv``."""
    return tree.offset(lv), tree.offset(lv) + tree.level_sizes[lv] - 1


def _check_leaf_targets(targets: torch.Tensor, tree: LabelTree, fn: str,
                        what: str = "targets") -> torch.Tensor:
    """``targets`` as a ``(B,)`` int64 tensor of leaf node indices, ``B >= 1``."""
    targets = tree.check_nodes(torch.as_tensor(targets), f"{fn}: {what}")
    leaf = tree.num_levels - 1
    lo, hi = _node_range(tree, leaf)
    if targets.dim() != 1 or len(targets) == 0:
        raise ValueError(f"{fn}: {what} must have shape (B,) with B >= 1, one leaf node index "
                         f"({lo}..{hi}) per sample, got shape {tuple(targets.shape)}.")
    coarse = tree.level_of[targets] != leaf  # (B,)
    if bool(coarse.any()):
        t = int(targets[coarse][0])
        raise ValueError(
            f"{fn}: {what} must be leaf node indices (level '{tree.level_names[leaf]}', nodes "
            f"{lo}..{hi}), but {int(coarse.sum())} are coarser (e.g. node {t} "
            f"'{tree.names[t]}' at level '{tree.level_names[int(tree.level_of[t])]}'). "
            "These metrics score every level of each sample's root-to-leaf path, which a "
            "coarse label does not fix: evaluate on completely labelled samples (a leaf class "
            f"index c is node c + tree.offset(-1) = c + {lo})."
        )
    return targets


def _check_predictions(predictions: Sequence[torch.Tensor], tree: LabelTree, fn: str,
                       batch: int | None = None) -> list[torch.Tensor]:
    """``predictions`` as ``L`` int64 ``(B,)`` tensors, entry ``l`` holding node
    indices of level ``l`` (coarse to fine)."""
    names = list(tree.level_names)
    if isinstance(predictions, torch.Tensor) or len(predictions) != tree.num_levels:
        got = (f"a tensor of shape {tuple(predictions.shape)}"
               if isinstance(predictions, torch.Tensor) else f"{len(predictions)} tensors")
        raise ValueError(f"{fn}: predictions must be {tree.num_levels} tensors, one per level "
                         f"{names} coarse to fine (as level_predictions returns), got {got}.")
    out = []
    for lv, pred in enumerate(predictions):
        if batch is None:
            batch = len(pred) if torch.as_tensor(pred).dim() == 1 else -1
        out.append(_check_level_nodes(pred, tree, lv, f"{fn}: predictions[{lv}]", batch))
    return out


def _check_level_nodes(pred: torch.Tensor, tree: LabelTree, lv: int, where: str,
                       batch: int) -> torch.Tensor:
    """``pred`` as an int64 ``(batch,)`` tensor of node indices of level ``lv``."""
    pred = torch.as_tensor(pred)
    where = f"{where} (level '{tree.level_names[lv]}')"
    if pred.is_floating_point() or pred.is_complex() or pred.dtype == torch.bool:
        raise TypeError(f"{where} must hold integer node indices, got dtype {pred.dtype}.")
    if pred.dim() != 1 or len(pred) != batch or batch == 0:
        raise ValueError(f"{where} must have shape (B,) with B >= 1, the same B for every "
                         f"level and the targets, got shape {tuple(pred.shape)} (B = {batch}).")
    pred = pred.long()
    lo, hi = _node_range(tree, lv)
    bad = (pred < lo) | (pred > hi)  # (B,)
    if bool(bad.any()):
        raise ValueError(
            f"{where} must hold node indices of that level, {lo}..{hi}, but "
            f"{int(bad.sum())} fall outside (e.g. {pred[bad][:5].tolist()}). Predictions "
            "are node indices, one tensor per level coarse to fine: a class index c "
            f"within level {lv} is node c + tree.offset({lv}) = c + {lo}."
        )
    return pred


def _check_output(output: HRNOutput, tree: LabelTree) -> None:
    sizes = tuple(int(x.shape[-1]) for x in output.level_logits)
    if sizes != tree.level_sizes:
        raise ValueError(f"the output's level_logits have sizes {sizes}, but the tree's levels "
                         f"are {tree.level_sizes} ({list(tree.level_names)}).")


def level_predictions(
    output: HRNOutput, tree: LabelTree, rule: str = "paper", energy_fn: str = "sigmoid"
) -> list[torch.Tensor]:
    """One predicted node index per level and sample.

    Args:
        output: a hierarchical model's output (:class:`~hmglib.models.hrn.HRNOutput`
            or a baseline's subclass of it) for ``B`` samples.
        tree: the label tree.
        rule: ``"paper"``: the argmax of ``output.scores`` within each level (for
            HRN: each coarse sigmoid head, and the softmax head at the leaf);
            ``"marginal"``: the argmax of the tree marginals ``P(y_i = 1)`` within
            each level (models with sigmoid node heads only).
        energy_fn: for the marginal rule, how node logits become energies
            (:data:`hmglib.probability.ENERGY_FNS`): ``"sigmoid"`` (the paper) or
            ``"identity"``.

    Returns:
        ``L`` int64 tensors ``(B,)`` of node indices, coarse to fine.
    """
    _check_output(output, tree)
    if rule not in RULES:
        raise ValueError(f"unknown rule '{rule}'; choose one of {RULES}.")
    if rule == "paper":
        scores = output.scores  # (B, N)
    else:
        if not output.sigmoid_nodes:
            raise ValueError(f"the marginal rule needs sigmoid node heads; "
                             f"{type(output).__name__} has none.")
        check_energy_fn(energy_fn, "level_predictions: energy_fn")
        f = output.node_logits.double()  # (B, N)
        scores = log_marginals(node_energies(f, energy_fn), tree)  # (B, N)
    return [scores[:, tree.nodes_at(lv)].argmax(dim=1) + tree.offset(lv)
            for lv in range(tree.num_levels)]


def level_accuracy(
    predictions: Sequence[torch.Tensor], targets: torch.Tensor, tree: LabelTree
) -> list[float]:
    """Per-level overall accuracy in % (coarse to fine).

    Args:
        predictions: ``L`` int tensors ``(B,)``, coarse to fine; entry ``l`` holds
            node indices of level ``l`` (``tree.offset(l)`` to
            ``tree.offset(l) + C_l - 1``), as :func:`level_predictions` returns.
        targets: ``(B,)`` leaf node indices (test labels are complete), ``B >= 1``.

    Returns:
        ``L`` floats in ``[0, 100]``.

    Raises:
        ValueError, TypeError: a coarse or empty ``targets``, or predictions that
            are not one ``(B,)`` tensor of that level's node indices per level
            (the message names the level and its node range).
    """
    targets = _check_leaf_targets(targets, tree, "level_accuracy")
    predictions = _check_predictions(predictions, tree, "level_accuracy", len(targets))
    return [
        100.0 * float((pred == tree.lift(targets, lv)).double().mean())
        for lv, pred in enumerate(predictions)
    ]


def au_prc_bar(scores: torch.Tensor, targets: torch.Tensor, tree: LabelTree) -> float:
    """Micro-averaged average precision (%) over all nodes: every (sample, node)
    pair is one binary decision, positive when the node is on the sample's path.

    Args:
        scores: ``(B, N)`` node scores (higher = more likely).
        targets: ``(B,)`` leaf node indices, ``B >= 1``: the positives of a sample
            are its whole root-to-leaf path.

    Returns:
        A float in ``[0, 100]``.

    Raises:
        ValueError: ``scores`` is not ``(B, N)``, or ``targets`` are not leaf
            node indices (a coarse label does not say which nodes below it are
            positive).
    """
    targets = _check_leaf_targets(targets, tree, "au_prc_bar")
    if scores.shape != (len(targets), tree.num_nodes):
        raise ValueError(f"au_prc_bar: scores must be (B, N) = ({len(targets)}, "
                         f"{tree.num_nodes}), got {tuple(scores.shape)}.")
    truth = tree.ancestor_matrix()[targets]  # (B, N)
    return 100.0 * float(average_precision_score(
        truth.flatten().numpy(), scores.detach().float().flatten().cpu().numpy()))


def consistency(predictions: Sequence[torch.Tensor], tree: LabelTree) -> float:
    """Share (%) of samples whose per-level predictions form one root-to-leaf path.

    Args:
        predictions: ``L`` int tensors ``(B,)``, ``B >= 1``, coarse to fine; entry
            ``l`` holds node indices of level ``l``.

    Returns:
        A float in ``[0, 100]``.

    Raises:
        ValueError, TypeError: predictions that are not one ``(B,)`` tensor of
            that level's node indices per level.
    """
    predictions = _check_predictions(predictions, tree, "consistency")
    parent = tree.parent  # (N,)
    ok = torch.ones_like(predictions[0], dtype=torch.bool)
    for upper, lower in zip(predictions[:-1], predictions[1:], strict=True):
        ok &= parent[lower] == upper
    return 100.0 * float(ok.double().mean())


def mistake_severity(pred_leaf: torch.Tensor, target_leaf: torch.Tensor, tree: LabelTree) -> float:
    """Mean tree distance (edges) between wrong leaf predictions and their truth.

    Two leaves whose paths share ``k`` levels are ``2 (L - k)`` edges apart
    (leaves under different roots meet at an implicit root: ``2 L``). Returns
    ``nan`` when no prediction is wrong.

    Args:
        pred_leaf: ``(B,)`` predicted leaf node indices.
        target_leaf: ``(B,)`` true leaf node indices.

    Raises:
        ValueError: either input is not ``(B,)`` leaf node indices.
    """
    target_leaf = _check_leaf_targets(target_leaf, tree, "mistake_severity", "target_leaf")
    pred_leaf = _check_level_nodes(pred_leaf, tree, tree.num_levels - 1,
                                   "mistake_severity: pred_leaf", len(target_leaf))
    wrong = pred_leaf != target_leaf
    if not wrong.any():
        return float("nan")
    p, t = pred_leaf[wrong], target_leaf[wrong]
    shared = torch.zeros_like(p)
    for lv in range(tree.num_levels):
        shared += (tree.lift(p, lv) == tree.lift(t, lv)).long()
    return float((2 * (tree.num_levels - shared)).double().mean())


def hierarchical_report(
    output: HRNOutput, targets: torch.Tensor, tree: LabelTree, energy_fn: str = "sigmoid"
) -> dict[str, float]:
    """Every hierarchical metric of the book from a model's outputs on a test set.

    Args:
        output: the model's outputs for ``B`` test samples.
        targets: ``(B,)`` leaf node indices.
        tree: the label tree.
        energy_fn: how the marginal rule turns node logits into energies
            (``"sigmoid"`` or ``"identity"``).

    Returns:
        A flat dict: ``OA/<level>`` (the paper's rule), ``AU(PRC)``, ``consistency``
        (%), ``severity`` (edges); for models with sigmoid node heads also
        ``OA-marginal/<level>`` and ``consistency-marginal``.
    """
    out: dict[str, float] = {}
    rules = RULES if output.sigmoid_nodes else ("paper",)
    for rule in rules:
        suffix = "" if rule == "paper" else "-marginal"
        preds = level_predictions(output, tree, rule=rule, energy_fn=energy_fn)
        for name, acc in zip(tree.level_names, level_accuracy(preds, targets, tree), strict=True):
            out[f"OA{suffix}/{name}"] = acc
        out[f"consistency{suffix}"] = consistency(preds, tree)
        if rule == "paper":
            out["severity"] = mistake_severity(preds[-1], targets, tree)
    out["AU(PRC)"] = au_prc_bar(output.scores, targets, tree)
    return out


# ------------------------------------------------------------------ attention
def _xyxy(boxes: torch.Tensor, what: str, fn: str) -> torch.Tensor:
    if not isinstance(boxes, torch.Tensor) or boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{fn}: {what} must be a tensor (B, 4) of xyxy boxes, got "
                         f"{getattr(boxes, 'shape', type(boxes).__name__)}.")
    boxes = boxes.double()
    if not bool(torch.isfinite(boxes).all()) or bool((boxes[:, 2:] < boxes[:, :2]).any()):
        raise ValueError(f"{fn}: {what} must be finite xyxy boxes with x1 >= x0 and y1 >= y0.")
    return boxes


def box_iou_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The intersection over union of box ``i`` of ``a`` with box ``i`` of ``b``.

    Args:
        a, b: ``(B, 4)`` float ``xyxy`` boxes (the same units).

    Returns:
        ``(B,)`` float64 in ``[0, 1]`` (0 where both boxes are empty).
    """
    a, b = _xyxy(a, "a", "box_iou_pairs"), _xyxy(b, "b", "box_iou_pairs")
    if a.shape != b.shape:
        raise ValueError(f"box_iou_pairs: a {tuple(a.shape)} and b {tuple(b.shape)} differ; "
                         "pass one box of b per box of a.")
    lo = torch.maximum(a[:, :2], b[:, :2])  # (B, 2)
    hi = torch.minimum(a[:, 2:], b[:, 2:])  # (B, 2)
    inter = (hi - lo).clamp(min=0).prod(1)  # (B,)
    area = lambda x: (x[:, 2:] - x[:, :2]).prod(1)  # noqa: E731 - (B,)
    union = area(a) + area(b) - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(union))


def centre_hits(regions: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Whether the centre of each region lies inside its box (edges included).

    Args:
        regions, boxes: ``(B, 4)`` float ``xyxy`` boxes.

    Returns:
        ``(B,)`` bool.
    """
    regions = _xyxy(regions, "regions", "centre_hits")
    boxes = _xyxy(boxes, "boxes", "centre_hits")
    cx = (regions[:, 0] + regions[:, 2]) / 2  # (B,)
    cy = (regions[:, 1] + regions[:, 3]) / 2  # (B,)
    return (cx >= boxes[:, 0]) & (cx <= boxes[:, 2]) & (cy >= boxes[:, 1]) & (cy <= boxes[:, 3])


def attention_report(
    output: RACNNOutput, targets: torch.Tensor, tree: LabelTree | None = None, *,
    boxes: dict[str, torch.Tensor] | None = None, image_size: tuple[int, int] | None = None,
) -> dict[str, float]:
    """RA-CNN's metrics on a test set.

    Args:
        output: the model's outputs for ``B`` images (``regions`` ``(B, S, 3)``).
        targets: ``(B,)`` leaf nodes of ``tree`` (or class indices without a tree).
        tree: the label tree; with it, each scale's species prediction is also
            lifted to every coarser level.
        boxes: ground-truth ``xyxy`` pixel boxes by name, each ``(B, 4)``, e.g.
            ``{"object": ..., "part": ...}`` (HierShapes' :meth:`boxes`).
        image_size: ``(H, W)`` of the images the boxes are in (needed with ``boxes``).

    Returns:
        A flat dict, in % except IoU (a fraction in ``[0, 1]``):
        ``OA/scale s`` and ``OA/fused``; ``rise/scale s-(s+1)``, the share of
        images whose softmax probability of the true class is higher at scale
        ``s + 1`` than at ``s`` (what the ranking loss asks for); with a tree,
        ``OA/scale s/<level>`` for each coarser level; with boxes,
        ``IoU/<name>/scale s`` (mean IoU of the region with the box) and
        ``hit/<name>/scale s`` (share of regions whose centre is in the box).
        Scales count from 1.
    """
    logits = output.scale_logits
    batch, scales, k = logits.shape
    if tree is not None:
        y = _check_leaf_targets(targets, tree, "attention_report") - tree.offset(-1)  # (B,)
    else:
        y = torch.as_tensor(targets).long()
        if y.dim() != 1 or bool(((y < 0) | (y >= k)).any()):
            raise ValueError(f"attention_report: without a tree, targets must be class indices "
                             f"(B,) in 0..{k - 1}; got shape {tuple(y.shape)}.")
    if len(y) != batch:
        raise ValueError(f"attention_report: {len(y)} targets for {batch} outputs; pass one "
                         "target per image.")
    out: dict[str, float] = {}
    pred = logits.argmax(-1)  # (B, S)
    for s in range(scales):
        out[f"OA/scale {s + 1}"] = 100.0 * float((pred[:, s] == y).double().mean())
    if output.fused_logits is not None:
        out["OA/fused"] = 100.0 * float((output.fused_logits.argmax(-1) == y).double().mean())
    p = output.scale_probabilities.gather(2, y[:, None, None].expand(-1, scales, 1))[..., 0]
    for s in range(scales - 1):  # (B, S) true-class probabilities
        out[f"rise/scale {s + 1}-{s + 2}"] = 100.0 * float((p[:, s + 1] > p[:, s]).double().mean())
    if tree is not None:
        leaf0 = tree.offset(-1)
        for lv, name in enumerate(tree.level_names[:-1]):
            truth = tree.lift(y + leaf0, lv)  # (B,)
            for s in range(scales):
                hit = tree.lift(pred[:, s] + leaf0, lv) == truth
                out[f"OA/scale {s + 1}/{name}"] = 100.0 * float(hit.double().mean())
    if boxes:
        if image_size is None:
            raise ValueError("attention_report: boxes need image_size=(H, W), the size of the "
                             "images the boxes are drawn on.")
        h, w = image_size
        for name, gt in boxes.items():
            for s in range(scales):
                region = boxes_to_xyxy(output.regions[:, s], h, w)  # (B, 4)
                out[f"IoU/{name}/scale {s + 1}"] = float(box_iou_pairs(region, gt).mean())
                out[f"hit/{name}/scale {s + 1}"] = 100.0 * float(
                    centre_hits(region, gt).double().mean())
    return out


# ---------------------------------------------------------------- multi-label
def _as_tensor(x: object, fn: str, what: str) -> torch.Tensor:
    """``x`` as a CPU tensor cut from the autograd graph, or a ValueError."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    try:
        return torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{fn}: {what} must be a tensor (N, C), got "
                         f"{type(x).__name__}.") from err


def _check_multilabel(scores: object, targets: object, fn: str
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """``scores`` as float64 and ``targets`` as bool, both ``(N, C)`` with ``N, C >= 1``.

    Scores must be finite real numbers; targets complete labels in {0, 1}.
    """
    scores, targets = _as_tensor(scores, fn, "scores"), _as_tensor(targets, fn, "targets")
    for what, x in (("scores", scores), ("targets", targets)):
        if x.is_complex() or (what == "scores" and x.dtype == torch.bool):
            raise ValueError(f"{fn}: {what} must hold real numbers, got dtype {x.dtype}.")
        if x.dim() != 2:
            hint = (f"; for one class, add the class dimension with {what}[:, None]"
                    if x.dim() == 1 else "")
            raise ValueError(f"{fn}: {what} must be 2-D (N, C): N samples, C classes; got "
                             f"shape {tuple(x.shape)}{hint}.")
    if scores.shape != targets.shape:
        raise ValueError(f"{fn}: scores {tuple(scores.shape)} and targets "
                         f"{tuple(targets.shape)} differ; pass one score per target (N, C).")
    if scores.numel() == 0:
        raise ValueError(f"{fn}: scores and targets must have N >= 1 samples and C >= 1 "
                         f"classes, got shape {tuple(scores.shape)}.")
    scores = scores.double()  # exact for float32 and ints below 2**53: ties are kept
    if not bool(torch.isfinite(scores).all()):
        bad = int((~torch.isfinite(scores)).sum())
        raise ValueError(f"{fn}: scores must be finite, but {bad} are NaN or infinite; "
                         "check the model's outputs.")
    return scores, _binary_targets(targets, fn)


def _binary_targets(targets: torch.Tensor, fn: str) -> torch.Tensor:
    """``targets`` (N, C) in {0, 1} as bool, or a ValueError naming the bad values."""
    if targets.dtype == torch.bool:
        return targets
    t = targets.double()  # (N, C)
    if bool((t == -1).any()):
        raise ValueError(
            f"{fn}: targets hold {int((t == -1).sum())} entries -1 (partial labels: known "
            "negative / unknown / known positive are -1 / 0 / 1 in training). Test labels "
            "must be complete, 1 for a positive and 0 for a negative; for partial labels "
            "use the known entries only.")
    bad = (t != 0) & (t != 1)  # (N, C)
    if bool(bad.any()):
        raise ValueError(f"{fn}: targets must be complete labels in {{0, 1}}, but "
                         f"{int(bad.sum())} entries are not (e.g. "
                         f"{targets[bad][:5].tolist()}).")
    return t == 1


def _average_precision(scores: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Per-class AP (%) of checked ``(N, C)`` float64 scores and bool targets.

    Each class's scores are sorted from high to low; every run of tied scores is
    one threshold. AP is the mean, over the positives, of the precision at the
    threshold that first admits them (the end of their run of ties), which is
    ``sum_n (R_n - R_{n-1}) P_n`` written per positive.
    """
    n = scores.shape[0]
    ranked, order = scores.sort(dim=0, descending=True)  # (N, C) each
    hit = positive.gather(0, order).double()  # (N, C) 1 where the ranked sample is positive
    rank = torch.arange(1, n + 1, dtype=torch.float64)[:, None]  # (N, 1)
    precision = hit.cumsum(0) / rank  # (N, C) precision of the top 1..N
    last = torch.ones_like(positive)  # (N, C) the last sample of a run of ties
    last[:-1] = ranked[:-1] != ranked[1:]
    index = torch.arange(n)[:, None].expand_as(last)  # (N, C)
    end = torch.where(last, index, n).flip(0).cummin(0).values.flip(0)  # (N, C) run's end
    at_threshold = precision.gather(0, end)  # (N, C)
    positives = hit.sum(0)  # (C,)
    ap = 100.0 * (hit * at_threshold).sum(0) / positives.clamp(min=1)  # (C,)
    return torch.where(positives > 0, ap, torch.full_like(ap, float("nan")))


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-class average precision (AP) in %, scikit-learn's definition.

    For one class, with the distinct scores taken as thresholds from high to
    low, ``AP = sum_n (R_n - R_{n-1}) P_n``: ``P_n`` and ``R_n`` are the
    precision and recall of predicting positive every sample scored at or above
    the ``n``-th threshold, ``R_0 = 0``. Tied scores are one threshold (no
    interpolation, no arbitrary order among ties), as
    :func:`sklearn.metrics.average_precision_score`, computed for all classes
    at once.

    Args:
        scores: ``(N, C)`` real scores, ``N, C >= 1``: logits, probabilities or
            any score where higher means more likely; finite.
        targets: ``(N, C)`` complete labels in {0, 1} (bool, int or float): 1 for a
            positive. Partial labels (-1) are refused.

    Returns:
        ``(C,)`` float64 in ``[0, 100]``; NaN for a class without a positive
        target (AP is undefined there).

    Raises:
        ValueError: inputs that are not 2-D with the same shape, empty, non-finite
            scores, or targets other than 0 and 1 (the message names the input).
    """
    scores, positive = _check_multilabel(scores, targets, "average_precision")
    return _average_precision(scores, positive)


def _mean_over_scored(ap: torch.Tensor, fn: str) -> float:
    """The mean of the non-NaN entries of ``ap`` (C,), or a ValueError if there are none."""
    scored = ~torch.isnan(ap)  # (C,)
    if not bool(scored.any()):
        raise ValueError(f"{fn}: no class has a positive target among the given samples, so "
                         "mAP is undefined; evaluate on a test set in which some class has a "
                         "positive (targets == 1).")
    return float(ap[scored].mean())


def mean_average_precision(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean average precision (mAP) in %: :func:`average_precision` averaged over classes.

    Classes without a positive target are left out (their AP is undefined), as
    the VOC protocol does; :func:`multilabel_report` gives the number of classes
    used (``classes_scored``).

    Args:
        scores: ``(N, C)`` real scores (logits or probabilities; higher means more
            likely), finite, ``N, C >= 1``.
        targets: ``(N, C)`` complete labels in {0, 1} (bool, int or float).

    Returns:
        A float in ``[0, 100]``.

    Raises:
        ValueError: bad inputs (see :func:`average_precision`), or no class has a
            positive target.
    """
    scores, positive = _check_multilabel(scores, targets, "mean_average_precision")
    return _mean_over_scored(_average_precision(scores, positive), "mean_average_precision")


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` elementwise, 0 where ``den == 0`` (a 0/0 precision or F1 is 0)."""
    return torch.where(den > 0, num / den.clamp(min=1e-300), torch.zeros_like(num))


def _f1(precision: float, recall: float) -> float:
    """The harmonic mean of two percentages; 0 when both are 0."""
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def multilabel_report(
    scores: torch.Tensor, targets: torch.Tensor, threshold: float = 0.5
) -> dict[str, float]:
    """mAP and the thresholded multi-label metrics of SARB's tables, in %.

    A prediction is positive when ``score >= threshold``. With ``TP``, ``FP``
    and ``FN`` counted at that threshold:

    * overall metrics pool the counts over all ``N x C`` entries (every class):
      ``OP = sum TP / sum (TP + FP)``, ``OR = sum TP / sum (TP + FN)``,
      ``OF1 = 2 OP OR / (OP + OR)``;
    * per-class metrics average each class's precision ``TP_c / (TP_c + FP_c)``
      and recall ``TP_c / (TP_c + FN_c)`` over the classes with a positive
      target (the same classes as mAP; recall is undefined for the others):
      ``CP`` and ``CR``. ``CF1 = 2 CP CR / (CP + CR)`` is computed from the
      averaged CP and CR, as the paper does, not as the mean of per-class F1s.

    A precision with no predicted positive (0/0) counts as 0, and so does an F1
    whose precision and recall are both 0.

    Args:
        scores: ``(N, C)`` probabilities in ``[0, 1]`` (apply ``torch.sigmoid`` to
            logits first), ``N, C >= 1``.
        targets: ``(N, C)`` complete labels in {0, 1} (bool, int or float).
        threshold: the probability at and above which a label is predicted, in
            ``(0, 1)``.

    Returns:
        ``{"mAP", "OP", "OR", "OF1", "CP", "CR", "CF1"}``, each a float in
        ``[0, 100]``, and ``"classes_scored"``: the number of classes with a
        positive target (those in mAP, CP and CR).

    Raises:
        ValueError: bad inputs (see :func:`average_precision`), scores outside
            ``[0, 1]``, a threshold outside ``(0, 1)``, or no class has a
            positive target.
    """
    fn = "multilabel_report"
    scores, positive = _check_multilabel(scores, targets, fn)
    threshold = check_real(fn, "threshold", threshold, 0.0, 1.0, closed_low=False,
                           closed_high=False, hint="the probability at which a label is "
                           "predicted, e.g. 0.5")
    outside = (scores < 0) | (scores > 1)  # (N, C)
    if bool(outside.any()):
        raise ValueError(f"{fn}: scores must be probabilities in [0, 1], but "
                         f"{int(outside.sum())} are not (e.g. {scores[outside][:3].tolist()}); "
                         "apply torch.sigmoid to logits first.")
    ap = _average_precision(scores, positive)  # (C,)
    out = {"mAP": _mean_over_scored(ap, fn)}
    predicted = scores >= threshold  # (N, C)
    tp = (predicted & positive).sum(0).double()  # (C,)
    n_pred, n_pos = predicted.sum(0).double(), positive.sum(0).double()  # (C,) each
    out["OP"] = 100.0 * float(_ratio(tp.sum(), n_pred.sum()))
    out["OR"] = 100.0 * float(_ratio(tp.sum(), n_pos.sum()))
    out["OF1"] = _f1(out["OP"], out["OR"])
    scored = n_pos > 0  # (C,)
    out["CP"] = 100.0 * float(_ratio(tp, n_pred)[scored].mean())
    out["CR"] = 100.0 * float(_ratio(tp, n_pos)[scored].mean())
    out["CF1"] = _f1(out["CP"], out["CR"])
    out["classes_scored"] = float(scored.sum())
    return out
