"""Probabilities on a label tree: the joint over legal states, its partition
function, and the marginal probability of every node.

HRN (Chen et al., CVPR 2022) scores the nodes of a label tree with unary
energies ``f in R^N`` and puts a distribution on the legal states of the tree
(the HEX graph of Deng et al., ECCV 2014)::

    P(y | x) = exp(f^T y) / Z,        Z = sum over legal y of exp(f^T y).

A legal state is the empty assignment (energy 0) or the path from a root to
some node ``k`` (energy ``F(k)``, the sum of ``f`` along that path; see
:func:`path_energies`), so a tree of ``N`` nodes has ``N + 1`` of them. The
marginal of node ``i`` sums over the states in which ``i`` is true, the paths
that end in ``i``'s subtree::

    P(y_i = 1 | x) = sum over k in subtree(i) of exp(F(k)) / Z.

Summing the subtree bottom-up gives an exact ``O(N)`` recursion: with
``S(u) = exp(f_u) * (1 + sum over children c of S(c))``,

    Z = 1 + sum over roots r of S(r),
    P(y_i = 1 | x) = exp(sum over strict ancestors a of i of f_a) * S(i) / Z.

The passes run one level at a time (no loop over samples or nodes), for a
batch of energies, and are differentiable. When the energies are moderate (HRN's
sigmoid energies always are) the sums use ``exp`` directly, which takes the
fewest operations; otherwise the recursion runs in log space, shifting each
parent's sum by its largest term, and stays exact and finite for energies
anywhere in ``[-1e4, 1e4]``. Results are returned as logarithms either way.

**Precision.** Every computation here runs in float32 or float64, whatever
the autocast context: energies that arrive in half precision (float16,
bfloat16, e.g. from a model under ``torch.autocast``) are upcast to float32,
float64 stays float64, and autocast is switched off inside (under bfloat16
autocast the state sums would otherwise lose about 0.04 nats per sample).
Results come back in that dtype; gradients flow back to the input's dtype.

The recursion itself needs neither equal depth nor a single root. A
:class:`~hmglib.hierarchy.LabelTree` forest always has its leaves on the last level (ragged
trees are not representable by it), so the code walks the levels of the tree.

The brute-force sums over :meth:`.LabelTree.legal_states` are here too
(:func:`enumerate_log_partition`, :func:`enumerate_log_marginals`), for
teaching and for the tests that hold the recursion to them.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import Literal

import torch

from hmglib.hierarchy import LabelTree
from hmglib.precision import autocast_off, upcast

__all__ = [
    "DENSE_MAX_NODES",
    "ENERGY_DTYPES",
    "check_energies",
    "check_finite",
    "ENERGY_FNS",
    "node_energies",
    "check_energy_fn",
    "path_energies",
    "log_subtree_sums",
    "log_partition",
    "log_marginals",
    "log_state_probabilities",
    "log_marginal_of",
    "enumerate_log_partition",
    "enumerate_log_marginals",
    "best_log_marginals",
]


#: Trees with at most this many nodes use the dense formulation in
#: :func:`log_marginal_of` (``method="auto"``): a matrix product with the
#: ``(N + 1) x N`` legal-state matrix and a masked ``logsumexp``, exact and
#: stable, and faster than the level-by-level recursion on tiny trees (fewer
#: operations). Above it the recursion wins, and its memory is ``O(N)`` instead
#: of ``O(N^2)``. Measured on one CPU core with a batch of 64, forward and
#: backward (``benchmarks/bench_marginals.py``): dense is ~30 % faster at 40
#: nodes, the two are level near 150, the recursion is ~30 % faster on the CUB
#: tree (250) and 2.5x at 600. On a GPU the crossover moves up; pass ``method=``.
DENSE_MAX_NODES = 128

# ------------------------------------------------------------------ indices
@dataclass
class _TreeIndex:
    """Per-tree index tensors the level-by-level passes need, built once.

    ``bounds[l]:bounds[l + 1]`` is level ``l``'s node slice; ``parent_local[l]``
    (``l >= 1``) holds, for each node of level ``l``, its parent's position
    within level ``l - 1`` (``parent_local[0]`` is all zeros: the roots share one
    virtual parent, whose ``log(1 + sum S)`` is ``log Z``); ``ancestor_at`` is
    ``(L, N)``, the ancestor of each node at each level (``-1`` below the node's
    own level); ``strict_index``/``strict_mask`` are ``(N, L)``: the strict
    ancestors of each node (index clamped to 0, mask 1.0 where it is one).
    """

    bounds: tuple[int, ...]
    parent_local: list[torch.Tensor]
    ancestor_at: torch.Tensor
    strict_index: torch.Tensor
    strict_mask: torch.Tensor
    _dense: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)
    _on: dict[tuple[torch.device, torch.dtype], _TreeIndex] = field(
        default_factory=dict, repr=False
    )

    @property
    def num_levels(self) -> int:
        return len(self.bounds) - 1

    def dense_states(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The legal states for the dense formulation, built on first use:
        ``(N + 1, N)`` 0/1 in ``strict_mask``'s dtype (row 0 empty, row ``k + 1``
        the path to ``k``) and its ``(N, N + 1)`` bool transpose (row ``i``: the
        states in which node ``i`` is true)."""
        if self._dense is None:
            levels, n = self.ancestor_at.shape
            states = self.strict_mask.new_zeros(n + 1, n)  # (N + 1, N)
            rows = torch.arange(n, device=states.device).expand(levels, n)  # (L, N)
            valid = self.ancestor_at >= 0  # (L, N)
            states[1 + rows[valid], self.ancestor_at[valid]] = 1.0
            self._dense = (states, states.T.bool().contiguous())  # (N + 1, N), (N, N + 1)
        return self._dense

    def to(self, device: torch.device, dtype: torch.dtype) -> _TreeIndex:
        key = (device, dtype)
        if key not in self._on:
            self._on[key] = _TreeIndex(
                self.bounds,
                [p.to(device) for p in self.parent_local],
                self.ancestor_at.to(device),
                self.strict_index.to(device),
                self.strict_mask.to(device=device, dtype=dtype),
            )
        return self._on[key]


_INDEX_CACHE: dict[int, tuple[weakref.ref, _TreeIndex]] = {}


def _index(tree: LabelTree, like: torch.Tensor) -> _TreeIndex:
    """The cached :class:`_TreeIndex` of ``tree`` on the device (and for the
    dtype) of the tensor ``like``.

    Keyed by the tree object's identity (a :class:`LabelTree` is not hashable);
    an entry dies with its tree, so a training loop builds the indices once.
    """
    key = id(tree)
    hit = _INDEX_CACHE.get(key)
    if hit is None or hit[0]() is not tree:
        bounds = tuple(tree.offset(lv) for lv in range(tree.num_levels)) + (tree.num_nodes,)
        parent_local = [torch.zeros(bounds[1], dtype=torch.long)]  # roots: one virtual parent
        for lv in range(1, tree.num_levels):
            parents = tree.parent[bounds[lv] : bounds[lv + 1]]  # (n_l,)
            if bool((parents < bounds[lv - 1]).any() or (parents >= bounds[lv]).any()):
                raise ValueError(  # LabelTree guarantees this; a hand-edited tree may not
                    f"tree {tree!r}: a node of level {lv} has a parent outside level {lv - 1}; "
                    "build trees with LabelTree.from_paths or from_csv."
                )
            parent_local.append((parents - bounds[lv - 1]).contiguous())
        anc = tree.ancestor_table()  # (L, N): the ancestor of each node at each level
        strict = (anc >= 0) & (anc != torch.arange(tree.num_nodes))  # (L, N)
        index = _TreeIndex(
            bounds, parent_local, anc, anc.clamp(min=0).T.contiguous(), strict.T.double()
        )
        hit = (weakref.ref(tree), index)
        _INDEX_CACHE[key] = hit
        weakref.finalize(tree, _INDEX_CACHE.pop, key, None)
    return hit[1].to(like.device, like.dtype)


# ------------------------------------------------------------ energy functions
#: How node logits become the unary energies of the tree distribution, by name:
#: ``"sigmoid"`` (HRN's paper and official code: energies bounded to ``(0, 1)``)
#: or ``"identity"`` (the logits themselves, unbounded). The losses, the
#: metrics and the model outputs take the same names.
ENERGY_FNS: tuple[str, ...] = ("sigmoid", "identity")


def node_energies(node_logits: torch.Tensor, energy_fn: str = "sigmoid") -> torch.Tensor:
    """The unary energies ``f`` of the tree distribution from node logits.

    Args:
        node_logits: ``(B, N)`` float, one logit per node in node order (any shape
            works: the function is element-wise).
        energy_fn: one of :data:`ENERGY_FNS`: ``"sigmoid"`` gives
            ``sigmoid(node_logits)`` in ``(0, 1)``, ``"identity"`` the logits.

    Returns:
        A tensor of ``node_logits``' shape and dtype.

    Raises:
        ValueError: an unknown ``energy_fn``.
    """
    check_energy_fn(energy_fn)
    return torch.sigmoid(node_logits) if energy_fn == "sigmoid" else node_logits


def check_energy_fn(energy_fn: object, what: str = "energy_fn") -> str:
    """Return ``energy_fn`` if it is one of :data:`ENERGY_FNS`, else raise a
    ``ValueError`` that names ``what`` and the choices."""
    if energy_fn not in ENERGY_FNS:
        hint = " (the former name 'logits' is now 'identity')" if energy_fn == "logits" else ""
        raise ValueError(f"{what} must be one of {list(ENERGY_FNS)}: 'sigmoid' (the paper) or "
                         f"'identity' (the logits themselves), got {energy_fn!r}{hint}.")
    return energy_fn  # type: ignore[return-value]


# ------------------------------------------------------------------ checks
#: The energy dtypes every function of this module accepts (and the error of
#: :func:`check_energies` names). Half precision is computed in float32.
ENERGY_DTYPES: tuple[torch.dtype, ...] = (
    torch.float16, torch.bfloat16, torch.float32, torch.float64
)
_DTYPE_NAMES = ", ".join(str(d).removeprefix("torch.") for d in ENERGY_DTYPES)


def check_energies(energies: torch.Tensor, tree: LabelTree, what: str = "energies") -> None:
    """Raise a clear error unless ``energies`` is a finite ``(B, N)`` tensor of
    one of :data:`ENERGY_DTYPES` with ``N == tree.num_nodes``.

    Finiteness is checked element by element (a count of NaN/inf entries), so
    large finite energies are never reported as infinite.

    Raises:
        TypeError: not a tensor, or a dtype outside :data:`ENERGY_DTYPES`.
        ValueError: wrong number of dimensions, wrong node count, or a NaN/inf
            (the message counts them).
    """
    if not isinstance(energies, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor of shape (B, N), got "
                        f"{type(energies).__name__}.")
    if energies.dtype not in ENERGY_DTYPES:
        raise TypeError(f"{what} must be a floating-point tensor of dtype {_DTYPE_NAMES} "
                        f"(half precision is computed in float32), got dtype {energies.dtype}; "
                        "convert with .float().")
    if energies.dim() != 2:
        hint = " Add a batch dimension with .unsqueeze(0)." if energies.dim() == 1 else ""
        raise ValueError(f"{what} must have shape (B, N) = (batch, {tree.num_nodes} nodes), "
                         f"got shape {tuple(energies.shape)}.{hint}")
    if energies.shape[1] != tree.num_nodes:
        raise ValueError(
            f"{what} has shape {tuple(energies.shape)}, but the tree has {tree.num_nodes} nodes: "
            f"expected (B, {tree.num_nodes}), one energy per node in level-major node order "
            "(concatenate the per-level outputs)."
        )
    check_finite(energies, what)


def check_finite(x: torch.Tensor, what: str, kind: str = "energies") -> None:
    """Raise a ``ValueError`` counting the NaN/inf elements of ``x`` (any shape), if any.

    The count is taken element by element, so large finite values are never
    reported as infinite. ``what`` names the input and ``kind`` what it holds
    (``"energies"``, ``"logits"``) in the message.
    """
    with torch.no_grad():
        bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise ValueError(
            f"{what} holds {bad} NaN or infinite values; {kind} must be finite "
            "(check the model's outputs and the learning rate)."
        )


# -------------------------------------------------------------- recursions
def _log_one_plus_sum_by_parent(
    child: torch.Tensor, parent_local: torch.Tensor, n_parents: int
) -> torch.Tensor:
    """``log(1 + sum over the children of p of exp(child))`` for every parent ``p``.

    Args:
        child: ``(B, n_c)`` log-values of one level's nodes.
        parent_local: ``(n_c,)`` int64, each node's parent within ``[0, n_parents)``.
        n_parents: the number of nodes on the level above.

    Returns:
        ``(B, n_parents)``, ``>= 0``; exactly ``0`` for a parent without children.
    """
    b = child.shape[0]
    with torch.no_grad():  # a per-parent shift for stability: the result does not depend on it
        shift = child.new_zeros(b, n_parents).scatter_reduce_(
            1, parent_local.expand(b, -1), child, reduce="amax", include_self=True
        )  # (B, n_p): max(0, max over the children)
        shift_of_child = shift.index_select(1, parent_local)  # (B, n_c)
        one = torch.exp(-shift)  # (B, n_p): the "1 +" term, shifted
    terms = torch.exp(child - shift_of_child)  # (B, n_c) in (0, 1]
    total = torch.index_add(one, 1, parent_local, terms)  # (B, n_p) >= 1
    return shift + torch.log(total)  # (B, n_p)


def _split_levels(energies: torch.Tensor, idx: _TreeIndex) -> list[torch.Tensor]:
    """The energies of each level: ``L`` views ``(B, n_l)`` (one split, so the
    backward pass concatenates instead of zero-filling a ``(B, N)`` per slice)."""
    sizes = [idx.bounds[lv + 1] - idx.bounds[lv] for lv in range(idx.num_levels)]
    return list(energies.split(sizes, dim=1))  # L x (B, n_l)


def _log_subtree_levels(levels: list[torch.Tensor], idx: _TreeIndex) -> list[torch.Tensor]:
    """``log S(u)`` per level, bottom-up, from the per-level energies: ``L`` x ``(B, n_l)``."""
    out = list(levels)  # the leaves: S = exp(f)
    for lv in range(len(levels) - 2, -1, -1):
        below = _log_one_plus_sum_by_parent(
            out[lv + 1], idx.parent_local[lv + 1], levels[lv].shape[1]
        )  # (B, n_lv)
        out[lv] = levels[lv] + below  # (B, n_lv)
    return out


def _log_partition(log_s_roots: torch.Tensor, idx: _TreeIndex) -> torch.Tensor:
    # log Z = log(1 + sum over roots of S(r)): the roots' virtual parent; the
    # empty state contributes the 1 = exp(0)
    return _log_one_plus_sum_by_parent(log_s_roots, idx.parent_local[0], 1)[:, 0]  # (B,)


def _linear_is_safe(energies: torch.Tensor, idx: _TreeIndex) -> bool:
    """Whether ``S`` can be summed with plain ``exp`` (fewer operations than the
    log-space pass): every ``S``, ``Z`` and their gradients stay far inside the
    dtype's range. ``|F(k)| <= L max|f|``, so ``exp(-L max|f|) <= S <= (N + 1)
    exp(L max|f|)``; the test keeps twice that exponent inside the range (HRN's
    sigmoid energies always pass, energies of ±1e4 never do)."""
    if energies.dtype not in (torch.float32, torch.float64):
        return False
    info = torch.finfo(energies.dtype)
    if energies.numel() == 0:
        return True
    with torch.no_grad():
        reach = idx.num_levels * float(energies.abs().max())  # bound on |F(k)|
    spread = reach + math.log(idx.bounds[-1] + 1)
    return 2 * spread < math.log(info.max) and 2 * reach < -math.log(info.tiny)


def _subtree(
    energies: torch.Tensor, levels: list[torch.Tensor], idx: _TreeIndex
) -> tuple[list[torch.Tensor], torch.Tensor, bool]:
    """The bottom-up pass: ``S`` (or ``log S``) per level, and ``log Z``.

    Returns:
        ``(values, log_z, linear)``: ``L`` tensors ``(B, n_l)`` holding ``S`` when
        ``linear`` else ``log S``; ``log_z`` ``(B,)``.
    """
    if not _linear_is_safe(energies, idx):
        log_s = _log_subtree_levels(levels, idx)  # L x (B, n_l)
        return log_s, _log_partition(log_s[0], idx), False
    s = _split_levels(energies.exp(), idx)  # L x (B, n_l): the leaves' S = exp(f)
    for lv in range(len(s) - 2, -1, -1):
        one_plus = torch.index_add(
            s[lv].new_ones(s[lv].shape), 1, idx.parent_local[lv + 1], s[lv + 1]
        )  # (B, n_lv): 1 + sum of the children's S
        s[lv] = s[lv] * one_plus  # (B, n_lv)
    return s, torch.log1p(s[0].sum(dim=1)), True  # log Z = log(1 + sum over roots)


def _log_marginals(energies: torch.Tensor, idx: _TreeIndex) -> torch.Tensor:
    levels = _split_levels(energies, idx)  # L x (B, n_l)
    values, log_z, linear = _subtree(energies, levels, idx)
    log_s = [v.log() for v in values] if linear else values  # L x (B, n_l)
    log_z = log_z[:, None]  # (B, 1)
    parts = [log_s[0] - log_z]  # (B, n_0): roots have no strict ancestors
    path = levels[0]  # (B, n_0): F on level 0
    for lv in range(1, idx.num_levels):
        above = path.index_select(1, idx.parent_local[lv])  # (B, n_lv): F(parent)
        parts.append(above + log_s[lv] - log_z)  # (B, n_lv)
        path = above + levels[lv]  # (B, n_lv): F on level lv
    return torch.cat(parts, dim=1)  # (B, N)


def _log_marginal_of(energies: torch.Tensor, nodes: torch.Tensor, idx: _TreeIndex) -> torch.Tensor:
    values, log_z, linear = _subtree(energies, _split_levels(energies, idx), idx)
    s_of = torch.cat(values, dim=1).gather(1, nodes[:, None])[:, 0]  # (B,): S or log S
    log_s_of = s_of.log() if linear else s_of  # (B,)
    anc = idx.strict_index.index_select(0, nodes)  # (B, L): strict ancestors (clamped)
    mask = idx.strict_mask.index_select(0, nodes)  # (B, L): 1.0 where anc is one
    above = (energies.gather(1, anc) * mask).sum(dim=1)  # (B,): sum over strict ancestors
    return above + log_s_of - log_z  # (B,)


def path_energies(energies: torch.Tensor, tree: LabelTree) -> torch.Tensor:
    """``F(k)``: the energy of the legal state that ends at node ``k``.

    Args:
        energies: ``(B, N)`` float, unary energies in node order.
        tree: the label tree (``N`` nodes).

    Returns:
        ``(B, N)``: ``F[b, k] = sum of energies[b, a]`` over the root-to-``k`` path
        (``k`` included); the state's unnormalised log-probability; float32
        for half-precision energies (see the module's note on precision).
    """
    check_energies(energies, tree)
    energies = upcast(energies)
    with autocast_off(energies.device):
        idx = _index(tree, energies)
        levels = _split_levels(energies, idx)  # L x (B, n_l)
        parts = [levels[0]]  # (B, n_0)
        for lv in range(1, idx.num_levels):
            above = parts[-1].index_select(1, idx.parent_local[lv])  # (B, n_lv)
            parts.append(above + levels[lv])  # (B, n_lv)
        return torch.cat(parts, dim=1)  # (B, N)


def log_subtree_sums(energies: torch.Tensor, tree: LabelTree) -> torch.Tensor:
    """``log S(u)`` for every node, by the bottom-up recursion
    ``S(u) = exp(f_u) * (1 + sum over children c of S(c))``.

    ``S(u)`` sums ``exp`` of the energies from ``u`` down to ``k`` over every node
    ``k`` of ``u``'s subtree: the part of ``Z`` below ``u``.

    Args:
        energies: ``(B, N)`` float, unary energies in node order.
        tree: the label tree (``N`` nodes).

    Returns:
        ``(B, N)`` float, ``log S`` (float32 for half-precision energies).
    """
    check_energies(energies, tree)
    energies = upcast(energies)
    with autocast_off(energies.device):
        idx = _index(tree, energies)
        values, _, linear = _subtree(energies, _split_levels(energies, idx), idx)
        out = torch.cat(values, dim=1)  # (B, N): S or log S
        return out.log() if linear else out


def log_partition(energies: torch.Tensor, tree: LabelTree) -> torch.Tensor:
    """``log Z``: the log-sum over the ``N + 1`` legal states of ``exp(f^T y)``.

    ``O(N)`` per sample (``Z = 1 + sum over roots of S(r)``), batched,
    differentiable (``d log Z / d f = P(y = 1)``, the marginals), stable for
    energies anywhere in ``[-1e4, 1e4]``.

    Args:
        energies: ``(B, N)`` float, finite unary energies in level-major node order.
        tree: the label tree or forest (``N`` nodes).

    Returns:
        ``(B,)`` float, ``log Z >= max(0, max_k F(k))``; float32 for
        half-precision energies.

    Raises:
        TypeError, ValueError: ``energies`` is not a finite ``(B, N)`` float tensor.
    """
    check_energies(energies, tree)
    energies = upcast(energies)
    with autocast_off(energies.device):
        idx = _index(tree, energies)
        return _subtree(energies, _split_levels(energies, idx), idx)[1]  # (B,)


def log_marginals(energies: torch.Tensor, tree: LabelTree) -> torch.Tensor:
    """``log P(y_i = 1 | x)`` for every node ``i``, exactly, in ``O(N)`` per sample.

    ``P(y_i = 1) = exp(sum over strict ancestors a of f_a) * S(i) / Z``: the
    probability mass of the states that end in ``i``'s subtree. Computed one
    level at a time (bottom-up for ``S``, top-down for the ancestors' sums), in
    log space unless the energies are moderate; batched and differentiable;
    stable for energies in ``[-1e4, 1e4]``. The recursion needs no equal depth;
    :class:`~hmglib.hierarchy.LabelTree` has it anyway.

    Args:
        energies: ``(B, N)`` float, finite unary energies in level-major node order
            (for HRN, the sigmoid outputs of the per-level heads, in ``(0, 1)``).
        tree: the label tree or forest (``N`` nodes).

    Returns:
        ``(B, N)`` float, ``<= 0``. The roots' probabilities sum to ``1 - P(empty)``,
        and ``P(i) = sum over children c of P(c) + P(state ending at i)``.
        Float32 for half-precision energies.

    Raises:
        TypeError, ValueError: ``energies`` is not a finite ``(B, N)`` float tensor.
    """
    check_energies(energies, tree)
    energies = upcast(energies)
    with autocast_off(energies.device):
        return _log_marginals(energies, _index(tree, energies))


def _dense_log_marginal_of(
    energies: torch.Tensor, nodes: torch.Tensor, idx: _TreeIndex
) -> torch.Tensor:
    states, member = idx.dense_states()  # (N + 1, N), (N, N + 1)
    scores = energies @ states.T  # (B, N + 1): f^T y for every legal y
    on = member.index_select(0, nodes)  # (B, N + 1): the states with y_node = 1
    with_node = torch.logsumexp(scores.masked_fill(~on, -math.inf), dim=1)  # (B,)
    return with_node - torch.logsumexp(scores, dim=1)  # (B,)


def log_marginal_of(
    energies: torch.Tensor,
    nodes: torch.Tensor,
    tree: LabelTree,
    method: Literal["auto", "recursion", "dense"] = "auto",
    *,
    validate: bool = True,
) -> torch.Tensor:
    """``log P(y_{nodes[b]} = 1 | x_b)``: one node per sample (what
    :func:`hmglib.losses.marginal_nll` needs), by the fastest exact formulation.

    Args:
        energies: ``(B, N)`` float, finite unary energies in node order.
        nodes: ``(B,)`` int64 node indices in ``[0, N)``, at any level.
        tree: the label tree (``N`` nodes).
        method: ``"recursion"`` (``O(N)`` per sample: the bottom-up sums, then the
            node's strict ancestors' energies), ``"dense"`` (``log Z`` and the
            node's sum as masked ``logsumexp`` over the ``N + 1`` legal states,
            ``O(N^2)`` memory for the state matrix), or ``"auto"``: dense up to
            :data:`DENSE_MAX_NODES` nodes, recursion above. All are exact.
        validate: check ``energies`` and ``nodes`` (the default). A caller that
            has checked them already (the losses of :mod:`hmglib.losses`) passes
            ``False`` and saves the second pass over the batch.

    Returns:
        ``(B,)`` float, ``<= 0`` (float32 for half-precision energies).

    Raises:
        TypeError, ValueError: malformed ``energies`` or ``nodes`` (see
            :func:`check_energies` and :meth:`.LabelTree.check_nodes`), an unknown ``method``.
    """
    if method not in ("auto", "recursion", "dense"):
        raise ValueError(f"log_marginal_of: method must be 'auto', 'recursion' or 'dense', got "
                         f"{method!r}.")
    if validate:
        check_energies(energies, tree, "log_marginal_of: energies")
        nodes = tree.check_nodes(nodes, "log_marginal_of: nodes", batch=energies.shape[0])
    energies = upcast(energies)
    with autocast_off(energies.device):
        idx = _index(tree, energies)
        nodes = nodes.to(energies.device)  # (B,)
        if method == "dense" or (method == "auto" and tree.num_nodes <= DENSE_MAX_NODES):
            return _dense_log_marginal_of(energies, nodes, idx)
        return _log_marginal_of(energies, nodes, idx)


def log_state_probabilities(energies: torch.Tensor, tree: LabelTree) -> torch.Tensor:
    """``log P(y = state)`` for the ``N + 1`` legal states, in the row order of
    :meth:`.LabelTree.legal_states` (column 0 the empty state, column ``k + 1`` the
    path ending at node ``k``).

    Args:
        energies: ``(B, N)`` float, finite unary energies in node order.
        tree: the label tree (``N`` nodes).

    Returns:
        ``(B, N + 1)`` float, ``<= 0``; ``exp`` of a row sums to 1 (float32 for
        half-precision energies).
    """
    f_path = path_energies(energies, tree)  # (B, N), checked and upcast
    log_z = log_partition(energies, tree)[:, None]  # (B, 1)
    with autocast_off(f_path.device):
        empty = torch.zeros_like(log_z)  # (B, 1): the empty state has energy 0
        return torch.cat([empty, f_path], dim=1) - log_z  # (B, N + 1)


# ------------------------------------------------------------- brute force
def _state_scores(energies: torch.Tensor, tree: LabelTree) -> tuple[torch.Tensor, torch.Tensor]:
    states = tree.legal_states().to(device=energies.device)  # (N + 1, N) bool
    scores = energies @ states.to(energies.dtype).T  # (B, N + 1): f^T y for every legal y
    return states, scores


def enumerate_log_partition(energies: torch.Tensor, tree: LabelTree) -> torch.Tensor:
    """``log Z`` by enumeration: ``logsumexp`` of ``f^T y`` over every row of
    :meth:`.LabelTree.legal_states`. ``O(N^2)`` per sample; for teaching and tests.

    Args:
        energies: ``(B, N)`` float, finite unary energies in node order.
        tree: the label tree (``N`` nodes).

    Returns:
        ``(B,)`` float (float32 for half-precision energies).
    """
    check_energies(energies, tree)
    energies = upcast(energies)
    with autocast_off(energies.device):
        _, scores = _state_scores(energies, tree)  # (B, N + 1)
        return torch.logsumexp(scores, dim=1)  # (B,)


def enumerate_log_marginals(energies: torch.Tensor, tree: LabelTree) -> torch.Tensor:
    """``log P(y_i = 1 | x)`` by enumeration over the legal states: for each node,
    ``logsumexp`` of ``f^T y`` over the states with ``y_i = 1``, minus ``log Z``.

    The definition, computed literally: ``O(B N^2)`` time and memory, so for
    teaching and for testing :func:`log_marginals` on small trees.

    Args:
        energies: ``(B, N)`` float, finite unary energies in node order.
        tree: the label tree (``N`` nodes).

    Returns:
        ``(B, N)`` float, ``<= 0`` (float32 for half-precision energies).
    """
    check_energies(energies, tree)
    energies = upcast(energies)
    with autocast_off(energies.device):
        states, scores = _state_scores(energies, tree)  # (N + 1, N), (B, N + 1)
        log_z = torch.logsumexp(scores, dim=1, keepdim=True)  # (B, 1)
        masked = scores[:, :, None].masked_fill(~states[None], -math.inf)  # (B, N + 1, N)
        return torch.logsumexp(masked, dim=1) - log_z  # (B, N)


# --------------------------------------------------------- bounded energies
def best_log_marginals(tree: LabelTree, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """The largest ``log P(y_i = 1)`` that energies bounded to ``[low, high]`` allow.

    ``d log P(y_i = 1) / d f_j = P(y_j = 1 | y_i = 1) - P(y_j = 1)``: positive for
    ``j`` on the root-to-``i`` path and in ``i``'s subtree, negative for every other
    node, whatever the energies. So the best bounded energies put ``high`` on
    ``i``'s path and subtree and ``low`` everywhere else (for a leaf: on its path
    only). With HRN's sigmoid energies (``low = 0``, ``high = 1``, approached but
    never reached) this is the supremum of the probability, and
    ``-best_log_marginals`` the floor of the loss ``-log P(y_i = 1)``.

    Args:
        tree: the label tree (``N`` nodes).
        low, high: the energy bounds, ``low < high``.

    Returns:
        ``(N,)`` float64, ``<= 0``: entry ``i`` is the best ``log P(y_i = 1)``.
        ``O(N^2)`` time and memory (one batch row per node).

    Raises:
        ValueError: ``low >= high`` or a bound is not finite.
    """
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"best_log_marginals: need finite low < high, got low={low}, "
                         f"high={high}.")
    anc = tree.ancestor_matrix()  # (N, N): row i = the path to i
    related = (anc | anc.T).to(torch.float64)  # (N, N): row i = i's path and subtree
    energies = low + (high - low) * related  # (N, N): one scenario per node
    return log_marginals(energies, tree).diagonal()  # (N,)
