"""The losses of the book's methods: called as ``loss(output, targets)`` on what
the model returns, with a typed result.

Every loss class takes the model's output and the targets and returns a named
tuple whose ``.total`` is what to back-propagate, beside its parts (logged by
:func:`hmglib.engine.fit`)::

    loss = get_loss("hrn", tree)            # or HRNLoss(tree)
    parts = loss(model(images), targets)     # HRNLossOutput(total, hier, ce)
    parts.total.backward()

The losses by name (:func:`get_loss`), the model each trains and its result:

* ``"hrn"``: :class:`HRNLoss` (HRN) → :class:`HRNLossOutput`;
* ``"leaf-ce"``: :class:`LeafCrossEntropyLoss` (the flat classifier) →
  :class:`CrossEntropyLossOutput`;
* ``"per-level-ce"``: :class:`PerLevelCrossEntropyLoss` (independent heads) →
  :class:`PerLevelLossOutput`;
* ``"max-constraint"``: :class:`MaxConstraintLoss` (C-HMCNN) →
  :class:`MaxConstraintLossOutput`;
* ``"racnn"``: :class:`RACNNLoss` (RA-CNN: a cross-entropy per scale and the
  inter-scale ranking loss :func:`rank_loss`) → :class:`RACNNLossOutput`.

The functional forms on tensors stay for the chapters that teach them:
:func:`marginal_nll` (``L_Hier`` of HRN, Chen et al., CVPR 2022: ``-log P(y_target
= 1 | x)`` under the tree-constrained joint of :mod:`hmglib.probability`, for a
target at any level), :func:`hrn_loss`, :func:`leaf_cross_entropy`,
:func:`per_level_cross_entropy` and :func:`max_constraint_loss`. Arguments come
data first, then the tree, then options.

**Energy functions.** How node logits become the energies of the tree
distribution is named ``energy_fn`` everywhere (losses, metrics and
:meth:`.HRNOutput.energies`): ``"sigmoid"`` (the paper) or
``"identity"`` (:data:`hmglib.probability.ENERGY_FNS`).

``L_Hier`` (and with it :class:`HRNLoss`) is computed in float32 or better
whatever the autocast context: half-precision inputs are upcast to float32 and
autocast is off inside (see :mod:`hmglib.precision`). Every loss that averages
over the batch refuses an empty batch (a mean over no samples is NaN) and
non-finite logits, with a message that names the input.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from hmglib.checks import check_partial_labels
from hmglib.hierarchy import LabelTree
from hmglib.precision import autocast_off, upcast
from hmglib.probability import (
    check_energies,
    check_energy_fn,
    check_finite,
    log_marginal_of,
    node_energies,
)

__all__ = [
    "get_loss", "list_losses",
    "TreeLoss", "HRNLoss", "HRNLossOutput", "LeafCrossEntropyLoss", "CrossEntropyLossOutput",
    "PerLevelCrossEntropyLoss", "PerLevelLossOutput", "MaxConstraintLoss",
    "MaxConstraintLossOutput",
    "marginal_nll", "hrn_loss", "leaf_cross_entropy", "per_level_cross_entropy",
    "max_constraint_loss", "rank_loss", "RACNNLoss", "RACNNLossOutput", "RACNN_TERMS",
    "partial_bce", "prototype_contrastive_loss", "SARBLoss", "PartialBCELoss",
    "MultiLabelLossOutput", "SARB_TERMS",
]


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
            :class:`~hmglib.hierarchy.LabelTreeError` (a ``ValueError``).
    """
    _check_reduction(reduction)
    check_energies(energies, tree, "marginal_nll: energies")
    targets = tree.check_nodes(targets, "marginal_nll: targets", batch=energies.shape[0])
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
    nll = -log_marginal_of(energies, targets, tree, method, validate=False)  # (B,) checked
    if reduction == "mean":
        return nll.mean()
    if reduction == "sum":
        return nll.sum()
    return nll


class HRNLossOutput(NamedTuple):
    """HRN's composite loss and its two parts (all scalars)."""

    #: the sum of the terms the loss trains with (``hier + ce`` by default):
    #: what to back-propagate.
    total: torch.Tensor
    #: ``L_Hier``, the mean of ``-log P(y_target = 1)`` over all samples.
    hier: torch.Tensor
    #: cross-entropy of the leaf head over the leaf-labelled samples, divided by
    #: their number (the paper) or by the batch size (``ce_reduction="batch"``);
    #: 0, still attached to the graph, when the batch has none.
    ce: torch.Tensor


HRN_TERMS = ("hier", "ce")
CE_REDUCTIONS = ("labelled", "batch")


def _check_choice(fn: str, name: str, value: object, choices: Sequence[str], note: str) -> None:
    if value not in choices:
        raise ValueError(f"{fn}: {name} must be one of {list(choices)}{note}, got {value!r}.")


def _check_terms(terms: object) -> tuple[str, ...]:
    ok = (isinstance(terms, (tuple, list)) and len(terms) > 0
          and all(t in HRN_TERMS for t in terms) and len(set(terms)) == len(terms))
    if not ok:
        raise ValueError(f"HRNLoss: terms must be a non-empty selection of {list(HRN_TERMS)} "
                         f"without repeats (the paper trains with both), got {terms!r}.")
    return tuple(terms)  # type: ignore[arg-type]


def hrn_loss(
    node_logits: torch.Tensor,
    leaf_logits: torch.Tensor,
    targets: torch.Tensor,
    tree: LabelTree,
    *,
    energy_fn: Literal["sigmoid", "identity"] = "sigmoid",
    ce_reduction: Literal["labelled", "batch"] = "labelled",
    terms: Sequence[str] = HRN_TERMS,
) -> HRNLossOutput:
    """HRN's composite loss on tensors (what :class:`HRNLoss` computes from a
    model's output; see there for the options).

    Args:
        node_logits: ``(B, N)`` float, the per-level sigmoid heads' logits
            concatenated level-major (node order).
        leaf_logits: ``(B, C_leaf)`` float, the leaf softmax head's logits.
        targets: ``(B,)`` int64 node indices at any level.
        tree: the label tree (``N`` nodes, ``C_leaf`` leaves).
        energy_fn: ``"sigmoid"`` (the paper) or ``"identity"``.
        ce_reduction: ``"labelled"`` (the paper) or ``"batch"``.
        terms: the parts summed into ``total``: ``("hier", "ce")`` (the paper),
            ``("hier",)`` or ``("ce",)`` (the ablations of the paper's Table 2).

    Returns:
        :class:`HRNLossOutput` ``(total, hier, ce)``, scalars ``>= 0``, computed
        in float32 (float64 for float64 inputs) whatever the autocast context.

    Raises:
        TypeError, ValueError: a malformed input (the message names it): a
            wrong shape or dtype, NaN or infinite logits, an empty batch, an
            unknown option.
    """
    check_energy_fn(energy_fn, "HRNLoss: energy_fn")
    _check_choice("HRNLoss", "ce_reduction", ce_reduction, CE_REDUCTIONS,
                  " ('labelled', the paper: a mean over the leaf-labelled samples; 'batch': "
                  "their sum over the batch size)")
    terms = _check_terms(terms)
    check_energies(node_logits, tree, "HRNLoss: node_logits")
    batch = node_logits.shape[0]
    num_leaves, leaf_offset = tree.level_sizes[-1], tree.offset(-1)
    if not isinstance(leaf_logits, torch.Tensor) or not leaf_logits.is_floating_point():
        raise TypeError(f"HRNLoss: leaf_logits must be a float tensor of shape (B, {num_leaves}).")
    if tuple(leaf_logits.shape) != (batch, num_leaves):
        raise ValueError(
            f"HRNLoss: leaf_logits has shape {tuple(leaf_logits.shape)}, expected "
            f"({batch}, {num_leaves}): one row per sample of node_logits, one column "
            f"per leaf ('{tree.level_names[-1]}') in leaf order."
        )
    check_finite(leaf_logits, "HRNLoss: leaf_logits", "logits")
    targets = tree.check_nodes(targets, "HRNLoss: targets", batch=batch)
    _check_batch(batch, "HRNLoss", "node_logits")
    targets = targets.to(node_logits.device)
    node_logits = upcast(node_logits)  # (B, N) float32 or float64
    leaf_logits = leaf_logits.to(node_logits.dtype)  # (B, C_leaf)
    with autocast_off(node_logits.device):
        f = node_energies(node_logits, energy_fn)  # (B, N)
        hier = _marginal_nll(f, targets, tree, "mean", "auto")
        at_leaf = targets >= leaf_offset  # (B,) leaf-labelled samples
        if bool(at_leaf.any()):
            ce = F.cross_entropy(leaf_logits[at_leaf], targets[at_leaf] - leaf_offset,
                                 reduction="sum")
            ce = ce / (int(at_leaf.sum()) if ce_reduction == "labelled" else batch)
        else:
            ce = leaf_logits[:0].sum()  # 0, attached to the graph (no NaN from a mean)
        parts = {"hier": hier, "ce": ce}
        total = parts[terms[0]]
        for term in terms[1:]:
            total = total + parts[term]
        return HRNLossOutput(total, hier, ce)


def _output_field(loss: str, output: Any, field: str, model: str) -> Any:
    """``output.<field>``, or a clear error when ``output`` is not a model output."""
    if isinstance(output, torch.Tensor) or not hasattr(output, field):
        raise TypeError(
            f"{loss} takes the model's output (an object with .{field}, such as "
            f"{model}) and the targets: loss(model(images), targets); got "
            f"{type(output).__name__}. For tensors, call the functional form."
        )
    return getattr(output, field)


class TreeLoss(nn.Module):
    """A loss over a label tree, called as ``loss(output, targets)``: the base of
    the loss classes (subclass it and define ``forward``).

    Args:
        tree: the label tree.
    """

    def __init__(self, tree: LabelTree) -> None:
        super().__init__()
        self.tree = tree

    def extra_repr(self) -> str:
        return f"tree={self.tree!r}"


class HRNLoss(TreeLoss):
    """HRN's composite loss ``L = L_Hier + CE_leaf``, called as ``loss(output, targets)``
    on an :class:`~hmglib.models.hrn.HRNOutput`.

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

    **Energy function.** ``energy_fn="sigmoid"`` (the default, as in the paper's
    code) uses ``f = sigmoid(node_logits)``, bounded to ``(0, 1)``. The joint
    over legal states then cannot concentrate: the best a leaf can reach is its
    path at 1 and every other node at 0, which on the CUB tree gives a leaf
    probability of only 0.043 on average (a floor of about 3.2 nats for the
    leaf ``L_Hier``; :func:`hmglib.probability.best_log_marginals` computes it for
    any tree). The loss never saturates: it keeps pushing the true path up and
    every other node down, a persistent hierarchical regulariser beside the
    leaf cross-entropy, which does the fine classification.
    ``energy_fn="identity"`` uses the logits themselves (unbounded): ``L_Hier``
    can then go to 0 and is a proper classification loss on its own.

    Args:
        tree: the label tree (``N`` nodes, ``C_leaf`` leaves).
        energy_fn: ``"sigmoid"`` or ``"identity"``.
        ce_reduction: ``"labelled"`` (the paper) or ``"batch"`` (not in the paper).
        terms: the parts summed into ``total`` (both by default; one of them for
            the loss ablations). Both parts are always reported.

    Shapes: ``forward(output, targets)`` with ``output.node_logits`` ``(B, N)``,
    ``output.leaf_logits`` ``(B, C_leaf)`` and ``targets`` ``(B,)`` int64 node
    indices at any level → :class:`HRNLossOutput` (see :func:`hrn_loss`).
    """

    def __init__(self, tree: LabelTree, *, energy_fn: Literal["sigmoid", "identity"] = "sigmoid",
                 ce_reduction: Literal["labelled", "batch"] = "labelled",
                 terms: Sequence[str] = HRN_TERMS) -> None:
        super().__init__(tree)
        check_energy_fn(energy_fn, "HRNLoss: energy_fn")
        _check_choice("HRNLoss", "ce_reduction", ce_reduction, CE_REDUCTIONS,
                      " ('labelled', the paper: a mean over the leaf-labelled samples; 'batch': "
                      "their sum over the batch size)")
        self.energy_fn = energy_fn
        self.ce_reduction = ce_reduction
        self.terms = _check_terms(terms)

    def forward(self, output: Any, targets: torch.Tensor) -> HRNLossOutput:
        """The loss of a batch: ``output`` an :class:`~hmglib.models.hrn.HRNOutput`,
        ``targets`` ``(B,)`` int64 node indices at any level (see :func:`hrn_loss`)."""
        node_logits = _output_field("HRNLoss", output, "node_logits", "HRNOutput")
        return hrn_loss(node_logits, output.leaf_logits, targets, self.tree,
                        energy_fn=self.energy_fn, ce_reduction=self.ce_reduction,
                        terms=self.terms)

    def extra_repr(self) -> str:
        return (f"tree={self.tree!r}, energy_fn={self.energy_fn!r}, "
                f"ce_reduction={self.ce_reduction!r}, terms={self.terms!r}")


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
    targets = tree.check_nodes(targets, "leaf_cross_entropy: targets", batch=batch)
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
        tree: the label tree (``L`` levels).

    Returns:
        A scalar, the sum over levels of the per-level means (a level no sample
        is labelled at or below contributes 0).

    Raises:
        TypeError, ValueError: a malformed, non-finite or empty input (the
            message names it).
    """
    return torch.stack(_per_level_terms(level_logits, targets, tree)).sum()


def _per_level_terms(
    level_logits: Sequence[torch.Tensor], targets: torch.Tensor, tree: LabelTree
) -> list[torch.Tensor]:
    """The ``L`` per-level means of :func:`per_level_cross_entropy` (0, attached
    to the graph, for a level without labels)."""
    if len(level_logits) != tree.num_levels:
        raise ValueError(f"per_level_cross_entropy: got {len(level_logits)} level outputs for "
                         f"a tree of {tree.num_levels} levels.")
    batch = level_logits[0].shape[0]
    for lv, x in enumerate(level_logits):
        _float_input(x, (batch, tree.level_sizes[lv]),
                     f"per_level_cross_entropy: level_logits[{lv}]")
    targets = tree.check_nodes(targets, "per_level_cross_entropy: targets", batch=batch)
    _check_batch(batch, "per_level_cross_entropy", "level_logits[0]")
    targets = targets.to(level_logits[0].device)
    target_level = tree.level_of.to(targets.device)[targets]  # (B,)
    terms = []
    for lv, x in enumerate(level_logits):
        known = target_level >= lv  # (B,) labelled at or below this level
        if bool(known.any()):
            lifted = tree.lift(targets[known].cpu(), lv).to(x.device)  # (K,)
            terms.append(F.cross_entropy(x[known], lifted - tree.offset(lv)))
        else:
            terms.append(_empty_mean(x))
    return terms


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
    targets = tree.check_nodes(targets, "max_constraint_loss: targets", batch=batch).cpu()
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


# ------------------------------------------------- the baselines' loss classes
class CrossEntropyLossOutput(NamedTuple):
    """A cross-entropy loss: ``total`` and its one part ``ce`` (the same scalar)."""

    #: what to back-propagate.
    total: torch.Tensor
    #: the mean cross-entropy over the samples it applies to.
    ce: torch.Tensor


class PerLevelLossOutput(NamedTuple):
    """The per-level cross-entropy: ``total`` and the term of each level."""

    #: the sum over levels: what to back-propagate.
    total: torch.Tensor
    #: ``(L,)``: each level's mean cross-entropy, coarse to fine.
    levels: torch.Tensor


class MaxConstraintLossOutput(NamedTuple):
    """C-HMCNN's loss: ``total`` and its one part ``bce`` (the same scalar)."""

    #: what to back-propagate.
    total: torch.Tensor
    #: the mean binary cross-entropy over the known (sample, node) entries.
    bce: torch.Tensor


class LeafCrossEntropyLoss(TreeLoss):
    """The flat classifier's loss, ``loss(output, targets)``: :func:`leaf_cross_entropy`
    on ``output.leaf_logits`` ``(B, C_leaf)``; targets ``(B,)`` node indices at
    any level (the coarse ones are dropped).

    Args:
        tree: the label tree.
    """

    def forward(self, output: Any, targets: torch.Tensor) -> CrossEntropyLossOutput:
        """:class:`CrossEntropyLossOutput` of a batch."""
        leaf = _output_field("LeafCrossEntropyLoss", output, "leaf_logits", "SoftmaxLevelsOutput")
        ce = leaf_cross_entropy(leaf, targets, self.tree)
        return CrossEntropyLossOutput(ce, ce)


class PerLevelCrossEntropyLoss(TreeLoss):
    """Independent per-level heads' loss, ``loss(output, targets)``:
    :func:`per_level_cross_entropy` on ``[*output.level_logits[:-1],
    output.leaf_logits]`` (a softmax head per level; for HRN's output, its coarse
    heads and its leaf softmax head).

    Args:
        tree: the label tree.
    """

    def forward(self, output: Any, targets: torch.Tensor) -> PerLevelLossOutput:
        """:class:`PerLevelLossOutput` of a batch."""
        levels = _output_field("PerLevelCrossEntropyLoss", output, "level_logits",
                               "SoftmaxLevelsOutput")
        terms = _per_level_terms([*levels[:-1], output.leaf_logits], targets, self.tree)
        per_level = torch.stack(terms)  # (L,)
        return PerLevelLossOutput(per_level.sum(), per_level)


class MaxConstraintLoss(TreeLoss):
    """C-HMCNN's loss, ``loss(output, targets)``: :func:`max_constraint_loss` on
    ``output.node_logits`` ``(B, N)``.

    Args:
        tree: the label tree.
    """

    def forward(self, output: Any, targets: torch.Tensor) -> MaxConstraintLossOutput:
        """:class:`MaxConstraintLossOutput` of a batch."""
        logits = _output_field("MaxConstraintLoss", output, "node_logits", "CHMCNNOutput")
        bce = max_constraint_loss(logits, targets, self.tree)
        return MaxConstraintLossOutput(bce, bce)


# ------------------------------------------------------------------ RA-CNN
def _probabilities(p: torch.Tensor, what: str, shape: tuple[int, ...] | None = None) -> None:
    if not isinstance(p, torch.Tensor) or not p.is_floating_point() or p.dim() != 2:
        raise TypeError(f"rank_loss: {what} must be a float tensor (B, K) of softmax "
                        f"probabilities, got {getattr(p, 'shape', type(p).__name__)}.")
    if shape is not None and tuple(p.shape) != shape:
        raise ValueError(f"rank_loss: {what} has shape {tuple(p.shape)}, expected {shape}.")
    if not bool(((p >= 0) & (p <= 1)).all()):
        raise ValueError(f"rank_loss: {what} must be probabilities in [0, 1] (apply softmax "
                         "to the logits first); it holds values outside, or NaN.")


def rank_loss(p_coarse: torch.Tensor, p_fine: torch.Tensor, targets: torch.Tensor,
              margin: float = 0.05) -> torch.Tensor:
    """RA-CNN's inter-scale pairwise ranking loss (Fu et al., CVPR 2017):
    ``max(0, p_t^(s) - p_t^(s+1) + margin)``, the mean over the batch.

    ``p_t`` is the softmax probability of the true class; the loss asks the finer
    scale to be more sure of it than the coarser one, by at least ``margin``.

    Args:
        p_coarse: ``(B, K)`` softmax probabilities of scale ``s``.
        p_fine: ``(B, K)`` softmax probabilities of scale ``s + 1``.
        targets: ``(B,)`` int64 class indices in ``0..K-1``.
        margin: the margin, ``>= 0`` (0.05 in the paper).

    Returns:
        A scalar ``>= 0`` (0 for an empty batch, attached to the graph).

    Raises:
        TypeError, ValueError: inputs that are not probabilities of one shape, or
            a target outside ``0..K-1``.
    """
    _probabilities(p_coarse, "p_coarse")
    _probabilities(p_fine, "p_fine", tuple(p_coarse.shape))
    margin = float(margin)
    if not margin >= 0:
        raise ValueError(f"rank_loss: margin={margin} must be >= 0.")
    batch, classes = p_coarse.shape
    targets = _class_targets("rank_loss", targets, batch, classes).to(p_coarse.device)
    if batch == 0:
        return _empty_mean(p_coarse)
    idx = targets[:, None]  # (B, 1)
    pt_coarse = p_coarse.gather(1, idx)[:, 0]  # (B,)
    pt_fine = p_fine.gather(1, idx)[:, 0]  # (B,)
    return torch.clamp(pt_coarse - pt_fine + margin, min=0).mean()


def _class_targets(fn: str, targets: object, batch: int, classes: int) -> torch.Tensor:
    """``targets`` checked as ``(B,)`` int64 class indices in ``0..K-1``."""
    if not isinstance(targets, torch.Tensor) or targets.is_floating_point() or targets.dim() != 1:
        raise TypeError(f"{fn}: targets must be an int64 tensor (B,) of class indices, got "
                        f"{getattr(targets, 'shape', type(targets).__name__)}.")
    if targets.shape[0] != batch:
        raise ValueError(f"{fn}: {targets.shape[0]} targets for a batch of {batch}.")
    if batch and not bool(((targets >= 0) & (targets < classes)).all()):
        raise ValueError(f"{fn}: targets must be class indices in 0..{classes - 1}; got "
                         f"{int(targets.min())}..{int(targets.max())}.")
    return targets.long()


#: The terms :class:`RACNNLoss` can add: ``"cls"`` (a cross-entropy per scale and
#: the fused classifier's) and ``"rank"`` (the ranking loss between consecutive scales).
RACNN_TERMS = ("cls", "rank")


class RACNNLossOutput(NamedTuple):
    """The parts of RA-CNN's loss (:class:`RACNNLoss`) on one batch."""

    #: what to back-propagate: the chosen terms' sum.
    total: torch.Tensor
    #: ``L_cls``: the sum over scales of each scale's mean cross-entropy.
    cls: torch.Tensor
    #: the fused classifier's mean cross-entropy (it learns on detached
    #: descriptors, so it trains the fused layer only).
    fused: torch.Tensor
    #: ``L_rank``: the sum over consecutive scales of :func:`rank_loss`.
    rank: torch.Tensor


class RACNNLoss(TreeLoss):
    """RA-CNN's loss, ``loss(output, targets)`` on an
    :class:`~hmglib.models.racnn.RACNNOutput`: ``L = sum_s CE(Y^(s), Y*) +
    sum_s max(0, p_t^(s) - p_t^(s+1) + margin)`` (the paper), plus the fused
    classifier's cross-entropy with ``"cls"``.

    The paper never minimises the sum at once: its alternating optimisation
    trains the classifiers on ``L_cls`` and the APNs on ``L_rank`` in turn
    (:mod:`hmglib.alternation` builds one loss of each with ``terms``).

    Args:
        tree: the label tree; targets are its leaf nodes (the species), which
            RA-CNN classifies with ``K = tree.level_sizes[-1]`` classes.
            ``None``: targets are class indices ``0..K-1``.
        margin: the ranking margin (0.05 in the paper).
        terms: which of :data:`RACNN_TERMS` ``.total`` sums (every part is always
            computed and logged).

    Raises:
        ValueError: (at call time) a target that is not a leaf of the tree; RA-CNN
            classifies one level.
    """

    def __init__(self, tree: LabelTree | None = None, *, margin: float = 0.05,
                 terms: Sequence[str] = RACNN_TERMS) -> None:
        super().__init__(tree)
        if not float(margin) >= 0:
            raise ValueError(f"RACNNLoss: margin={margin} must be >= 0.")
        terms = tuple(terms)
        unknown = [t for t in terms if t not in RACNN_TERMS]
        if not terms or unknown:
            raise ValueError(f"RACNNLoss: terms={terms!r}; choose a non-empty subset of "
                             f"{RACNN_TERMS}.")
        self.margin, self.terms = float(margin), terms

    def classes(self, targets: torch.Tensor, classes: int) -> torch.Tensor:
        """Targets as class indices ``(B,)`` in ``0..K-1``."""
        batch = targets.shape[0] if isinstance(targets, torch.Tensor) and targets.dim() else -1
        if self.tree is None:
            return _class_targets("RACNNLoss", targets, batch, classes)
        nodes = self.tree.check_nodes(targets, "RACNNLoss: targets", batch=batch)
        leaf0 = self.tree.offset(-1)
        if bool((nodes < leaf0).any()):
            coarse = int(nodes[nodes < leaf0][0])
            raise ValueError(f"RACNNLoss: target node {coarse} ({self.tree.names[coarse]}) is "
                             f"not a leaf; RA-CNN classifies the tree's last level "
                             f"('{self.tree.level_names[-1]}'): train it on species labels.")
        return nodes - leaf0

    def forward(self, output: Any, targets: torch.Tensor) -> RACNNLossOutput:
        """:class:`RACNNLossOutput` of a batch."""
        logits = _output_field("RACNNLoss", output, "scale_logits", "RACNNOutput")
        batch, scales, k = logits.shape
        check_finite(logits, "RACNNLoss: scale_logits", "logits")
        y = self.classes(targets, k).to(logits.device)
        cls = sum(F.cross_entropy(logits[:, s], y) for s in range(scales))
        fused = (F.cross_entropy(output.fused_logits, y) if output.fused_logits is not None
                 else _empty_mean(logits))
        p = torch.softmax(logits.float(), dim=-1)  # (B, S, K)
        rank = sum((rank_loss(p[:, s], p[:, s + 1], y, self.margin)
                    for s in range(scales - 1)), _empty_mean(p))
        total = ((cls + fused) if "cls" in self.terms else 0) + (
            rank if "rank" in self.terms else 0)
        return RACNNLossOutput(total, cls, fused, rank)

    def extra_repr(self) -> str:
        return f"tree={self.tree!r}, margin={self.margin}, terms={self.terms!r}"


# ------------------------------------------------------------------ multi-label (SARB)
def _partial_inputs(fn: str, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.dim() != 2:
        raise TypeError(f"{fn}: logits must be a (B, C) float tensor.")
    targets = torch.as_tensor(targets, device=logits.device)
    if tuple(targets.shape) != tuple(logits.shape):
        raise ValueError(f"{fn}: targets have shape {tuple(targets.shape)}, logits "
                         f"{tuple(logits.shape)}; they must match (B, C).")
    check_finite(logits, f"{fn}: logits", "logits")
    ok = (targets == -1) | ((targets >= 0) & (targets <= 1))
    if not bool(ok.all()):
        raise ValueError(f"{fn}: targets must be -1 (known negative), 0 (unknown), 1 (known "
                         f"positive) or a soft positive in (0, 1]; found "
                         f"{targets[~ok][:5].tolist()}.")
    return targets


def partial_bce(logits: torch.Tensor, targets: torch.Tensor,
                unknown: str = "ignore") -> torch.Tensor:
    """Partial binary cross-entropy: the mean over the *known* entries only.

    ``loss = mean over known (b, c) of -[t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))]``,
    computed stably as ``softplus(z) - t z``, with ``t = 1`` for a known positive,
    ``t = 0`` for a known negative and ``t`` itself for a soft positive (a blended
    target ``1 - alpha``); gradients reach a soft target too, so a learnable
    ``alpha`` learns through it.

    Args:
        logits: ``(B, C)`` float.
        targets: ``(B, C)``: ``-1`` known negative, ``0`` unknown, ``1`` known
            positive, or a soft positive in ``(0, 1)``.
        unknown: ``"ignore"`` (the partial BCE) or ``"negative"`` (the naive
            alternative: every unknown counted as a known negative).

    Returns:
        A scalar: 0 (attached to the graph) when no entry is known.

    Raises:
        TypeError, ValueError: logits that are not ``(B, C)`` float or not finite,
            targets of another shape or with other values, an unknown ``unknown``.
    """
    fn = "partial_bce"
    _check_choice(fn, "unknown", unknown, ("ignore", "negative"),
                  " ('ignore': the partial BCE; 'negative': unknowns as negatives)")
    targets = _partial_inputs(fn, logits, targets)
    known = torch.ones_like(logits, dtype=torch.bool) if unknown == "negative" else targets != 0
    t = targets.to(logits.dtype).clamp(min=0)  # (B, C): -1 -> 0
    per_entry = F.softplus(logits) - t * logits  # (B, C)
    n = known.sum()
    if int(n) == 0:
        return _empty_mean(logits)
    return (per_entry * known).sum() / n


def prototype_contrastive_loss(features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """SARB's contrastive loss on category features.

    For every class ``c`` and every pair of images ``n != m`` of the batch whose
    labels of ``c`` are both known: ``1 - cos(f_c^n, f_c^m)`` when both are
    positive (pulled together), ``1 + cos(f_c^n, f_c^m)`` otherwise (a pair
    involving a negative is pushed apart). Unknown entries take no part.

    The loss is the mean over the positive pairs plus the mean over the other
    pairs, each 0 when it has no pair. Known labels are mostly negatives, so a
    single mean over all pairs would be almost all push; the official code
    balances the two groups by sampling (at most three other pairs per positive
    pair, a third of them the hardest), the library by averaging each group on
    its own. SARB weighs the loss by ``lambda = 0.05``.

    Args:
        features: ``(B, C, D)`` float.
        targets: ``(B, C)`` partial labels in ``{1, 0, -1}``.

    Returns:
        A scalar in ``[0, 4]``; 0 (attached to the graph) when no pair is known.
    """
    fn = "prototype_contrastive_loss"
    if not isinstance(features, torch.Tensor) or features.dim() != 3:
        raise TypeError(f"{fn}: features must be a (B, C, D) float tensor.")
    targets = check_partial_labels(targets, f"{fn}: targets",
                                   tuple(features.shape[:2])).to(features.device)
    f = F.normalize(features.transpose(0, 1), dim=-1)  # (C, B, D)
    cos = f @ f.transpose(1, 2)  # (C, B, B)
    y = targets.T  # (C, B)
    known = (y != 0)[:, :, None] & (y != 0)[:, None, :]  # (C, B, B)
    known &= ~torch.eye(y.shape[1], dtype=torch.bool, device=y.device)[None]
    both_pos = (y == 1)[:, :, None] & (y == 1)[:, None, :]  # (C, B, B)
    loss = _empty_mean(features)
    for group, per_pair in ((known & both_pos, 1 - cos), (known & ~both_pos, 1 + cos)):
        n = group.sum()
        if int(n) > 0:
            loss = loss + (per_pair * group).sum() / n
    return loss


class MultiLabelLossOutput(NamedTuple):
    """The parts of a multi-label loss (:class:`SARBLoss`, :class:`PartialBCELoss`)."""

    #: what to back-propagate: ``cls + instance + prototype + lam * contrastive``
    #: (the chosen terms).
    total: torch.Tensor
    #: the partial BCE of the original features' scores.
    cls: torch.Tensor
    #: the partial BCE of the ILRB-blended scores (0 without them).
    instance: torch.Tensor
    #: the partial BCE of the PLRB-blended scores (0 without them).
    prototype: torch.Tensor
    #: :func:`prototype_contrastive_loss` (unweighted; 0 without features).
    contrastive: torch.Tensor


#: The terms of :class:`SARBLoss`.
SARB_TERMS = ("cls", "instance", "prototype", "contrastive")


class SARBLoss(nn.Module):
    """SARB's loss on a :class:`~hmglib.models.sarb.MultiLabelOutput`:
    ``L = l(y, s) + l(y_ILRB, s_ILRB) + l(y_PLRB, s_PLRB) + lam * L_cst`` with ``l``
    the :func:`partial_bce` and ``L_cst`` the :func:`prototype_contrastive_loss`.

    Args:
        tree: unused (multi-label targets are ``(B, C)`` partial labels); accepted
            so that :func:`get_loss` builds every loss alike.
        lam: the contrastive weight (0.05 in the paper).
        terms: which of :data:`SARB_TERMS` ``.total`` sums (all are logged).
        unknown: ``"ignore"`` (partial BCE) or ``"negative"`` (see :func:`partial_bce`).
    """

    def __init__(self, tree: LabelTree | None = None, *, lam: float = 0.05,
                 terms: Sequence[str] = SARB_TERMS, unknown: str = "ignore") -> None:
        super().__init__()
        if not float(lam) >= 0:
            raise ValueError(f"SARBLoss: lam={lam} must be >= 0.")
        terms = tuple(terms)
        if not terms or any(t not in SARB_TERMS for t in terms) or len(set(terms)) < len(terms):
            raise ValueError(f"SARBLoss: terms={terms!r}; choose a non-empty subset of "
                             f"{SARB_TERMS}, each term once.")
        _check_choice("SARBLoss", "unknown", unknown, ("ignore", "negative"),
                      " (see partial_bce)")
        self.tree, self.lam, self.terms, self.unknown = tree, float(lam), terms, unknown

    def forward(self, output: Any, targets: torch.Tensor) -> MultiLabelLossOutput:
        """:class:`MultiLabelLossOutput` of a batch."""
        logits = _output_field(type(self).__name__, output, "logits", "MultiLabelOutput")
        cls = partial_bce(logits, targets, self.unknown)
        zero = _empty_mean(logits)

        def blended(scores: torch.Tensor | None, soft: torch.Tensor | None) -> torch.Tensor:
            return zero if scores is None else partial_bce(scores, soft)

        inst = blended(getattr(output, "instance_logits", None),
                       getattr(output, "instance_targets", None))
        proto = blended(getattr(output, "prototype_logits", None),
                        getattr(output, "prototype_targets", None))
        feats = getattr(output, "features", None)
        cst = zero if feats is None else prototype_contrastive_loss(feats, targets)
        parts = {"cls": cls, "instance": inst, "prototype": proto, "contrastive": self.lam * cst}
        total = sum((parts[t] for t in self.terms[1:]), parts[self.terms[0]])
        return MultiLabelLossOutput(total, cls, inst, proto, cst)

    def extra_repr(self) -> str:
        return f"lam={self.lam}, terms={self.terms!r}, unknown={self.unknown!r}"


class PartialBCELoss(SARBLoss):
    """The baselines' loss: the :func:`partial_bce` of the scores alone
    (``SARBLoss(terms=("cls",))``; the other parts are still logged).

    Args:
        tree: unused (see :class:`SARBLoss`).
        unknown: ``"ignore"`` (partial BCE) or ``"negative"`` (unknowns as negatives).
    """

    def __init__(self, tree: LabelTree | None = None, *, unknown: str = "ignore") -> None:
        super().__init__(tree, terms=("cls",), unknown=unknown)


# ------------------------------------------------------------------ by name
_LOSSES: dict[str, type[nn.Module]] = {
    "hrn": HRNLoss,
    "leaf-ce": LeafCrossEntropyLoss,
    "per-level-ce": PerLevelCrossEntropyLoss,
    "max-constraint": MaxConstraintLoss,
    "racnn": RACNNLoss,
    "sarb": SARBLoss,
    "partial-bce": PartialBCELoss,
}


def list_losses() -> list[str]:
    """The names :func:`get_loss` builds, sorted."""
    return sorted(_LOSSES)


def get_loss(name: str, tree: LabelTree | None, **config: Any) -> nn.Module:
    """The loss ``name`` over ``tree``, called as ``loss(output, targets)``.

    Args:
        name: one of :func:`list_losses`; a model's own is
            :func:`~hmglib.models.registry.model_loss` of its name.
        tree: the label tree.
        **config: the loss's options (``HRNLoss``: ``energy_fn``, ``ce_reduction``,
            ``terms``; ``RACNNLoss``: ``margin``, ``terms``; ``SARBLoss``: ``lam``,
            ``terms``, ``unknown``; ``PartialBCELoss``: ``unknown``; the others take
            none). A multi-label loss ignores ``tree`` (pass ``None``).

    Raises:
        ValueError: an unknown name or option (the message lists the valid ones).
    """
    if name not in _LOSSES:
        raise ValueError(f"unknown loss '{name}'; choose one of {list_losses()}.")
    cls = _LOSSES[name]
    options = [n for n in inspect.signature(cls).parameters if n != "tree"]
    unknown = sorted(set(config) - set(options))
    if unknown:
        raise ValueError(f"get_loss('{name}'): unknown option(s) {unknown}; {cls.__name__} "
                         f"takes {options or 'no options'}.")
    return cls(tree, **config)
