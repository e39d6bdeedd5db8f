"""The losses of the book's three methods.

HRN (Chen et al., CVPR 2022):

* :func:`marginal_nll` — ``L_Hier``, the probabilistic classification loss:
  ``-log P(y_target = 1 | x)`` under the tree-constrained joint of
  :mod:`hmglib.probability`, for a target at any level of the label tree.
* :class:`HRNLoss` — the composite loss: ``L_Hier`` on every sample plus
  cross-entropy on the leaf head for the samples labelled at the leaf level.

The baselines HRN is compared with (:mod:`hmglib.models.baselines`):
:func:`leaf_cross_entropy` (flat), :func:`per_level_cross_entropy` (independent
heads) and :func:`max_constraint_loss` (C-HMCNN).

``L_Hier`` (and with it :class:`HRNLoss`) is computed in float32 or better
whatever the autocast context: half-precision inputs are upcast to float32 and
autocast is off inside (see :mod:`hmglib.probability`). Every loss that
averages over the batch refuses an empty batch (a mean over no samples is NaN)
and non-finite logits, with a message that names the input.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from hmglib.hierarchy import LabelTree
from hmglib.probability import (
    _autocast_off,
    _log_marginal_of_any,
    _upcast,
    check_energies,
    check_finite,
    check_nodes,
)

__all__ = ["marginal_nll", "HRNLoss", "HRNLossOutput", "leaf_cross_entropy",
           "per_level_cross_entropy", "max_constraint_loss"]


def _check_batch(batch: int, fn: str, what: str, alternative: str = "") -> None:
    """Refuse an empty batch: the mean loss over no samples is NaN."""
    if batch == 0:
        raise ValueError(
            f"{fn}: the batch is empty ({what} has 0 rows); the mean loss over no samples is "
            f"undefined (NaN). Skip empty batches before calling the loss{alternative}."
        )


def marginal_nll(
    energies: torch.Tensor,
    targets: torch.Tensor,
    tree: LabelTree,
    reduction: Literal["mean", "sum", "none"] = "mean",
    method: Literal["auto", "recursion", "dense"] = "auto",
) -> torch.Tensor:
    """``L_Hier``: the negative log marginal probability of each sample's label.

    ``-log P(y_t = 1 | x) = log Z - log(sum over legal y with y_t = 1 of exp(f^T y))``,
    the HEX-graph loss HRN trains with. A target may sit at any level: a coarse
    label's probability sums over its whole subtree, so a sample labelled only
    with a family still trains the species below it. Exact; ``O(N)`` per sample
    by the tree recursion, or a dense sum over the legal states on tiny trees
    (:func:`hmglib.probability.log_marginal_of`).

    Args:
        energies: ``(B, N)`` float, finite unary energies in level-major node order
            (HRN: the sigmoid outputs of the per-level heads, in ``(0, 1)``).
        targets: ``(B,)`` int64 node indices in ``[0, N)``, at any level.
        tree: the label tree (``N`` nodes).
        reduction: ``"mean"`` (HRN's), ``"sum"`` or ``"none"`` (per sample).
        method: ``"auto"``, ``"recursion"`` or ``"dense"``
            (see :func:`hmglib.probability.log_marginal_of`).

    Returns:
        A scalar (``mean``/``sum``) or ``(B,)`` (``none``), ``>= 0``; float32 for
        float32 and half-precision energies (autocast is off inside), float64
        for float64.

    Raises:
        TypeError, ValueError: malformed ``energies`` or ``targets`` (the message
            names the input and its expected shape), an unknown ``reduction``,
            an empty batch with ``reduction="mean"`` (``"sum"`` gives 0 and
            ``"none"`` an empty tensor); a target outside the tree raises
            :class:`~hmglib.LabelTreeError` (a ``ValueError``).
    """
    _check_reduction(reduction)
    check_energies(energies, tree, "marginal_nll: energies")
    targets = check_nodes(targets, energies.shape[0], tree, "marginal_nll: targets")
    if reduction == "mean":
        _check_batch(energies.shape[0], "marginal_nll", "energies",
                     " (or pass reduction='sum', which gives 0 for an empty batch)")
    return _marginal_nll(energies, targets.to(energies.device), tree, reduction, method)


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"marginal_nll: reduction must be 'mean', 'sum' or 'none', got "
                         f"{reduction!r}.")


def _marginal_nll(
    energies: torch.Tensor, targets: torch.Tensor, tree: LabelTree, reduction: str, method: str
) -> torch.Tensor:
    nll = -_log_marginal_of_any(energies, targets, tree, method)  # (B,), float32 or float64
    if reduction == "mean":
        return nll.mean()
    if reduction == "sum":
        return nll.sum()
    return nll


class HRNLossOutput(NamedTuple):
    """The composite loss and its two parts (all scalars)."""

    #: ``hier + ce``, what to back-propagate.
    total: torch.Tensor
    #: ``L_Hier``, the mean of ``-log P(y_target = 1)`` over all samples.
    hier: torch.Tensor
    #: cross-entropy of the leaf head over the leaf-labelled samples, divided by
    #: their number (the paper) or by the batch size (``ce_reduction="batch"``);
    #: 0, still attached to the graph, when the batch has none.
    ce: torch.Tensor


class HRNLoss(nn.Module):
    """HRN's composite loss: ``L = L_Hier + CE_leaf``.

    * ``L_Hier`` (:func:`marginal_nll`) on every sample, whatever the level of
      its label, with energies from the per-node sigmoid heads;
    * cross-entropy of the separate leaf (softmax) head on the samples labelled
      at the leaf level, averaged over those samples (weight 1). Coarsely
      labelled samples reach only ``L_Hier``.

    **CE reduction.** ``ce_reduction="labelled"`` (the default, the paper's and
    the official code's) divides the summed cross-entropy by the number ``m`` of
    leaf-labelled samples in the batch. With few leaf labels (``m << B``) each
    of them then weighs ``B / m`` times as much in the CE term as a sample does
    in ``L_Hier``, and the CE term dominates the gradient the shared layers
    receive. ``ce_reduction="batch"`` (**not in the paper**, the book's option)
    divides by the batch size ``B`` instead: the CE term of a sample weighs the
    same as its ``L_Hier`` term, whatever the ratio. The two agree when every
    sample is leaf-labelled.

    **Energies.** ``energies="sigmoid"`` (the default, as in the paper's code)
    uses ``f = sigmoid(node_logits)``, bounded to ``(0, 1)``. The joint over
    legal states then cannot concentrate: the best a leaf can reach is its path
    at 1 and every other node at 0, which on the CUB tree gives a leaf
    probability of only 0.043 on average (a floor of about 3.2 nats for the
    leaf ``L_Hier``; :func:`hmglib.probability.best_log_marginals` computes it for
    any tree). The loss never saturates: it keeps pushing the true path up and
    every other node down, a persistent hierarchical regulariser beside the
    leaf cross-entropy, which does the fine classification.
    ``energies="logits"`` uses the logits themselves (unbounded): ``L_Hier`` can
    then go to 0 and is a proper classification loss on its own.

    Args:
        tree: the label tree (``N`` nodes, ``C_leaf`` leaves).
        energies: ``"sigmoid"`` or ``"logits"``.
        ce_reduction: ``"labelled"`` (the paper) or ``"batch"`` (not in the paper).
    """

    def __init__(self, tree: LabelTree, energies: Literal["sigmoid", "logits"] = "sigmoid",
                 ce_reduction: Literal["labelled", "batch"] = "labelled"):
        super().__init__()
        if energies not in ("sigmoid", "logits"):
            raise ValueError(f"HRNLoss: energies must be 'sigmoid' (the paper) or 'logits', "
                             f"got {energies!r}.")
        if ce_reduction not in ("labelled", "batch"):
            raise ValueError(f"HRNLoss: ce_reduction must be 'labelled' (the paper: a mean over "
                             f"the leaf-labelled samples) or 'batch' (their sum over the batch "
                             f"size), got {ce_reduction!r}.")
        self.tree = tree
        self.energies = energies
        self.ce_reduction = ce_reduction
        self.num_leaves = tree.level_sizes[-1]
        self.leaf_offset = tree.offset(-1)

    def forward(
        self, node_logits: torch.Tensor, leaf_logits: torch.Tensor, targets: torch.Tensor
    ) -> HRNLossOutput:
        """The loss of a batch.

        Args:
            node_logits: ``(B, N)`` float, the per-level sigmoid heads' logits
                concatenated level-major (node order).
            leaf_logits: ``(B, C_leaf)`` float, the leaf softmax head's logits.
            targets: ``(B,)`` int64 node indices at any level.

        Returns:
            :class:`HRNLossOutput` ``(total, hier, ce)``, scalars ``>= 0``, computed
            in float32 (float64 for float64 inputs) whatever the autocast context:
            the sigmoid, ``L_Hier`` and the cross-entropy all run on upcast inputs.

        Raises:
            TypeError, ValueError: a malformed input (the message names it): a
                wrong shape or dtype, NaN or infinite logits, an empty batch.
        """
        tree = self.tree
        check_energies(node_logits, tree, "HRNLoss: node_logits")
        batch = node_logits.shape[0]
        if not isinstance(leaf_logits, torch.Tensor) or not leaf_logits.is_floating_point():
            raise TypeError("HRNLoss: leaf_logits must be a float tensor of shape "
                            f"(B, {self.num_leaves}).")
        if tuple(leaf_logits.shape) != (batch, self.num_leaves):
            raise ValueError(
                f"HRNLoss: leaf_logits has shape {tuple(leaf_logits.shape)}, expected "
                f"({batch}, {self.num_leaves}): one row per sample of node_logits, one column "
                f"per leaf ('{tree.level_names[-1]}') in leaf order."
            )
        check_finite(leaf_logits, "HRNLoss: leaf_logits", "logits")
        targets = check_nodes(targets, batch, tree, "HRNLoss: targets")
        _check_batch(batch, "HRNLoss", "node_logits")
        targets = targets.to(node_logits.device)
        node_logits = _upcast(node_logits)  # (B, N) float32 or float64
        leaf_logits = leaf_logits.to(node_logits.dtype)  # (B, C_leaf)
        with _autocast_off(node_logits.device):
            f = torch.sigmoid(node_logits) if self.energies == "sigmoid" else node_logits
            hier = _marginal_nll(f, targets, tree, "mean", "auto")
            at_leaf = targets >= self.leaf_offset  # (B,) leaf-labelled samples
            if bool(at_leaf.any()):
                ce = F.cross_entropy(leaf_logits[at_leaf], targets[at_leaf] - self.leaf_offset,
                                     reduction="sum")
                ce = ce / (int(at_leaf.sum()) if self.ce_reduction == "labelled" else batch)
            else:
                ce = leaf_logits[:0].sum()  # 0, attached to the graph (no NaN from a mean)
            return HRNLossOutput(hier + ce, hier, ce)

    def extra_repr(self) -> str:
        return (f"tree={self.tree!r}, energies={self.energies!r}, "
                f"ce_reduction={self.ce_reduction!r}")


# ------------------------------------------------------------------ baselines
def _float_input(x: torch.Tensor, shape: tuple[int, ...], what: str) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{what} must be a float tensor of shape {shape}.")
    if tuple(x.shape) != shape:
        raise ValueError(f"{what} has shape {tuple(x.shape)}, expected {shape}.")
    check_finite(x, what, "logits")


def _empty_mean(x: torch.Tensor) -> torch.Tensor:
    return x[:0].sum()  # 0, attached to the graph (no NaN from an empty mean)


def leaf_cross_entropy(
    leaf_logits: torch.Tensor, targets: torch.Tensor, tree: LabelTree
) -> torch.Tensor:
    """The flat baseline: cross-entropy on the samples labelled at the leaf level.

    Coarsely labelled samples are dropped (a flat classifier cannot use them).

    Args:
        leaf_logits: ``(B, C_leaf)`` float.
        targets: ``(B,)`` int64 node indices at any level.

    Returns:
        The mean over the leaf-labelled samples (0, attached to the graph, when
        there are none).

    Raises:
        TypeError, ValueError: a malformed, non-finite or empty input (the
            message names it).
    """
    batch = leaf_logits.shape[0] if isinstance(leaf_logits, torch.Tensor) else -1
    _float_input(leaf_logits, (batch, tree.level_sizes[-1]), "leaf_cross_entropy: leaf_logits")
    targets = check_nodes(targets, batch, tree, "leaf_cross_entropy: targets")
    _check_batch(batch, "leaf_cross_entropy", "leaf_logits")
    targets = targets.to(leaf_logits.device)
    at_leaf = targets >= tree.offset(-1)  # (B,)
    if not bool(at_leaf.any()):
        return _empty_mean(leaf_logits)
    return F.cross_entropy(leaf_logits[at_leaf], targets[at_leaf] - tree.offset(-1))


def per_level_cross_entropy(
    level_logits: list[torch.Tensor], targets: torch.Tensor, tree: LabelTree
) -> torch.Tensor:
    """Independent per-level heads: for each level, cross-entropy on the samples
    labelled at or below it (their label lifted to that level); the sum over levels.

    Args:
        level_logits: ``L`` float tensors ``(B, C_l)``.
        targets: ``(B,)`` int64 node indices at any level.

    Returns:
        A scalar, the sum over levels of the per-level means.

    Raises:
        TypeError, ValueError: a malformed, non-finite or empty input (the
            message names it).
    """
    if len(level_logits) != tree.num_levels:
        raise ValueError(f"per_level_cross_entropy: got {len(level_logits)} level outputs for "
                         f"a tree of {tree.num_levels} levels.")
    batch = level_logits[0].shape[0]
    for lv, x in enumerate(level_logits):
        _float_input(x, (batch, tree.level_sizes[lv]),
                     f"per_level_cross_entropy: level_logits[{lv}]")
    targets = check_nodes(targets, batch, tree, "per_level_cross_entropy: targets")
    _check_batch(batch, "per_level_cross_entropy", "level_logits[0]")
    targets = targets.to(level_logits[0].device)
    target_level = tree.level_of.to(targets.device)[targets]  # (B,)
    total = _empty_mean(level_logits[0])
    for lv, x in enumerate(level_logits):
        known = target_level >= lv  # (B,) labelled at or below this level
        if bool(known.any()):
            lifted = tree.lift(targets[known].cpu(), lv).to(x.device)  # (K,)
            total = total + F.cross_entropy(x[known], lifted - tree.offset(lv))
    return total


def max_constraint_loss(
    node_logits: torch.Tensor, targets: torch.Tensor, tree: LabelTree
) -> torch.Tensor:
    """C-HMCNN's max constraint loss (Giunchiglia and Lukasiewicz, NeurIPS 2020).

    With ``h = sigmoid(node_logits)`` and ``y`` the label's root path, the loss is
    the binary cross-entropy of ``y`` against
    ``y_i max_{j in sub(i)} (y_j h_j) + (1 - y_i) max_{j in sub(i)} h_j``
    (``sub(i)``: the subtree of node ``i``), which trains each node through the
    descendant that decides its constrained score. Below a coarse label nothing
    is known: the strict descendants of the target are left out of the mean.

    Args:
        node_logits: ``(B, N)`` float, one logit per node in node order.
        targets: ``(B,)`` int64 node indices at any level.

    Returns:
        The mean over the known (sample, node) entries.

    Raises:
        TypeError, ValueError: a malformed, non-finite or empty input (the
            message names it).
    """
    batch = node_logits.shape[0] if isinstance(node_logits, torch.Tensor) else -1
    _float_input(node_logits, (batch, tree.num_nodes), "max_constraint_loss: node_logits")
    targets = check_nodes(targets, batch, tree, "max_constraint_loss: targets").cpu()
    _check_batch(batch, "max_constraint_loss", "node_logits")
    anc = tree.ancestor_matrix()  # (N, N): [j, t] t is j or an ancestor of j
    y = anc[targets].to(node_logits)  # (B, N): the root path of each label
    below = anc[:, targets].T & ~y.bool().cpu()  # (B, N): strict descendants of the label
    known = (~below).to(node_logits.device)  # (B, N)
    h = torch.sigmoid(node_logits)  # (B, N)
    pos = tree.subtree_reduce(h * y, "amax")  # (B, N)
    neg = tree.subtree_reduce(h, "amax")  # (B, N)
    pred = (y * pos + (1 - y) * neg).clamp(1e-7, 1 - 1e-7)  # (B, N)
    bce = F.binary_cross_entropy(pred, y, reduction="none")  # (B, N)
    return bce[known].mean()
