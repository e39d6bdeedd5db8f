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
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from sklearn.metrics import average_precision_score

from hmglib.hierarchy import LabelTree
from hmglib.models.hrn import HRNOutput

__all__ = [
    "level_predictions",
    "level_accuracy",
    "au_prc_bar",
    "consistency",
    "mistake_severity",
    "hierarchical_report",
]

RULES = ("paper", "marginal")


def _check_output(output: HRNOutput, tree: LabelTree) -> None:
    sizes = tuple(int(x.shape[-1]) for x in output.level_logits)
    if sizes != tree.level_sizes:
        raise ValueError(f"the output's level_logits have sizes {sizes}, but the tree's levels "
                         f"are {tree.level_sizes} ({list(tree.level_names)}).")


def level_predictions(
    output: HRNOutput, tree: LabelTree, rule: str = "paper", energies: str = "sigmoid"
) -> list[torch.Tensor]:
    """One predicted node index per level and sample.

    Args:
        output: a hierarchical model's output (:class:`~hmglib.models.HRNOutput`
            or a baseline's subclass of it) for ``B`` samples.
        tree: the label tree.
        rule: ``"paper"``: the argmax of ``output.scores`` within each level (for
            HRN: each coarse sigmoid head, and the softmax head at the leaf);
            ``"marginal"``: the argmax of the tree marginals ``P(y_i = 1)`` within
            each level (models with sigmoid node heads only).
        energies: for the marginal rule, how node logits become energies:
            ``"sigmoid"`` (the paper) or ``"logits"``.

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
        if energies not in ("sigmoid", "logits"):
            raise ValueError(f"energies must be 'sigmoid' or 'logits', got '{energies}'.")
        from hmglib.probability import log_marginals

        f = output.node_logits.double()  # (B, N)
        scores = log_marginals(torch.sigmoid(f) if energies == "sigmoid" else f, tree)
    return [scores[:, tree.nodes_at(lv)].argmax(dim=1) + tree.offset(lv)
            for lv in range(tree.num_levels)]


def level_accuracy(
    predictions: Sequence[torch.Tensor], targets: torch.Tensor, tree: LabelTree
) -> list[float]:
    """Per-level overall accuracy in % (coarse to fine).

    Args:
        predictions: ``L`` tensors ``(B,)`` of node indices (one per level).
        targets: ``(B,)`` leaf node indices (test labels are complete).

    Returns:
        ``L`` floats in ``[0, 100]``.
    """
    targets = torch.as_tensor(targets)
    if not torch.all(tree.level_of[tree.check_nodes(targets, "targets")] == tree.num_levels - 1):
        raise ValueError("level_accuracy: targets must be leaf node indices (complete labels).")
    return [
        100.0 * float((pred == tree.lift(targets, lv)).double().mean())
        for lv, pred in enumerate(predictions)
    ]


def au_prc_bar(scores: torch.Tensor, targets: torch.Tensor, tree: LabelTree) -> float:
    """Micro-averaged average precision (%) over all nodes: every (sample, node)
    pair is one binary decision, positive when the node is on the sample's path.

    Args:
        scores: ``(B, N)`` node scores (higher = more likely).
        targets: ``(B,)`` leaf node indices.
    """
    if scores.shape != (len(targets), tree.num_nodes):
        raise ValueError(f"scores must be (B, N) = ({len(targets)}, {tree.num_nodes}), "
                         f"got {tuple(scores.shape)}.")
    truth = tree.ancestor_matrix()[tree.check_nodes(targets, "targets")]  # (B, N)
    return 100.0 * float(average_precision_score(
        truth.flatten().numpy(), scores.detach().float().flatten().cpu().numpy()))


def consistency(predictions: Sequence[torch.Tensor], tree: LabelTree) -> float:
    """Share (%) of samples whose per-level predictions form one root-to-leaf path."""
    ok = torch.ones_like(predictions[0], dtype=torch.bool)
    for upper, lower in zip(predictions[:-1], predictions[1:], strict=True):
        ok &= tree.parent[lower] == upper
    return 100.0 * float(ok.double().mean())


def mistake_severity(pred_leaf: torch.Tensor, target_leaf: torch.Tensor, tree: LabelTree) -> float:
    """Mean tree distance (edges) between wrong leaf predictions and their truth.

    Two leaves whose paths share ``k`` levels are ``2 (L - k)`` edges apart
    (leaves under different roots meet at an implicit root: ``2 L``). Returns
    ``nan`` when no prediction is wrong.
    """
    wrong = pred_leaf != target_leaf
    if not wrong.any():
        return float("nan")
    p, t = pred_leaf[wrong], target_leaf[wrong]
    shared = torch.zeros_like(p)
    for lv in range(tree.num_levels):
        shared += (tree.lift(p, lv) == tree.lift(t, lv)).long()
    return float((2 * (tree.num_levels - shared)).double().mean())


def hierarchical_report(
    output: HRNOutput, targets: torch.Tensor, tree: LabelTree, energies: str = "sigmoid"
) -> dict[str, float]:
    """Every hierarchical metric of the book from a model's outputs on a test set.

    Args:
        output: the model's outputs for ``B`` test samples.
        targets: ``(B,)`` leaf node indices.
        tree: the label tree.
        energies: how the marginal rule turns node logits into energies.

    Returns:
        A flat dict: ``OA/<level>`` (the paper's rule), ``AU(PRC)``, ``consistency``
        (%), ``severity`` (edges); for models with sigmoid node heads also
        ``OA-marginal/<level>`` and ``consistency-marginal``.
    """
    out: dict[str, float] = {}
    rules = RULES if output.sigmoid_nodes else ("paper",)
    for rule in rules:
        suffix = "" if rule == "paper" else "-marginal"
        preds = level_predictions(output, tree, rule=rule, energies=energies)
        for name, acc in zip(tree.level_names, level_accuracy(preds, targets, tree), strict=True):
            out[f"OA{suffix}/{name}"] = acc
        out[f"consistency{suffix}"] = consistency(preds, tree)
        if rule == "paper":
            out["severity"] = mistake_severity(preds[-1], targets, tree)
    out["AU(PRC)"] = au_prc_bar(output.scores, targets, tree)
    return out
