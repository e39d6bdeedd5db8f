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
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from sklearn.metrics import average_precision_score

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
