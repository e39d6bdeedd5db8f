"""The label protocols of the papers: coarsen labels, degrade images, drop labels.

* :func:`coarsen_labels` — HRN's relabelling: a share of each leaf class's
  training samples is moved to an ancestor (the parent by default), the way an
  annotator without expert knowledge would label them.
* :func:`degrade_resolution` and :class:`CoarsenedDataset` — HRN's image-quality
  simulation: exactly the coarsened samples are shown at a quarter of their
  resolution, as if the annotator could only commit to a coarse label because
  the image was poor.
* :func:`drop_labels` and :class:`PartialLabelDataset` — SARB's partial labels:
  each (image, class) entry of a complete multi-label matrix stays known with
  a given probability; the rest become unknown.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from hmglib.checks import check_choice, check_real, check_seed, check_share
from hmglib.hierarchy import LabelTree, Level

__all__ = [
    "coarsen_labels",
    "degrade_resolution",
    "CoarsenedDataset",
    "drop_labels",
    "PartialLabelDataset",
]

_RULES = ("random", "ordered")
_DROP_RULES = ("entry", "per_image")
_MODES = ("nearest", "bilinear", "bicubic", "area", "nearest-exact")


# ------------------------------------------------------------------ coarsen
def coarsen_labels(
    targets: torch.Tensor,
    tree: LabelTree,
    ratio: float,
    level: Level = -2,
    rule: str = "random",
    seed: int = 0,
) -> torch.Tensor:
    """Move ``ratio`` of each leaf class's samples to their ancestor at ``level``.

    Within every leaf class of ``n`` samples, exactly ``ceil(n * (1 - ratio))``
    keep their leaf label and the other ``n - ceil(n * (1 - ratio))`` get the
    ancestor's node index. (The product is rounded to 9 decimals first, so
    that ``10 * (1 - 0.7)`` keeps 3, not 4 as floating point would.)

    Args:
        targets: ``(N,)`` int64 leaf node indices of ``tree`` (a dataset's labels).
        tree: the label tree.
        ratio: the share to coarsen, in ``[0, 1]`` (HRN uses 0, 0.3, 0.5, 0.7, 0.9).
        level: the level to move them to (int, negative from the leaves, or a
            name); strictly coarser than the leaves. Default: the parent level.
        rule: ``"ordered"``, the official HRN rule: the *first* samples of each
            class, in dataset order, keep the leaf; no randomness. ``"random"``:
            which samples keep the leaf is a seeded uniform choice per class.
        seed: the seed of the ``"random"`` rule (ignored by ``"ordered"``).

    Returns:
        ``(N,)`` int64 node indices: the leaf, or its ancestor at ``level``. The
        coarsened samples are ``result != targets``.

    Raises:
        ValueError: ``targets`` is not 1-D integer, holds a node that is not a
            leaf, ``ratio`` is outside ``[0, 1]``, ``level`` is not coarser than
            the leaves, or ``rule`` is unknown.
    """
    fn = "coarsen_labels"
    ratio = check_share(fn, "ratio", ratio)
    if rule not in _RULES:
        raise ValueError(f"{fn}: rule={rule!r}; choose 'ordered' (HRN's official rule: the "
                         "first samples of each class keep the leaf) or 'random' (seeded).")
    seed = check_seed(fn, seed)
    targets = torch.as_tensor(targets)
    if targets.dim() != 1 or targets.is_floating_point() or targets.dtype == torch.bool:
        raise ValueError(f"{fn}: targets must be a 1-D integer tensor of leaf node indices, got "
                         f"shape {tuple(targets.shape)} and dtype {targets.dtype}.")
    targets = targets.long()
    leaf_level = tree.num_levels - 1
    lv = tree.level_index(level)
    if lv >= leaf_level:
        raise ValueError(f"{fn}: level={level!r} is the leaf level '{tree.level_names[lv]}'; "
                         f"coarsen to a coarser level, one of {list(tree.level_names[:-1])}.")
    inside = (targets >= 0) & (targets < tree.num_nodes)
    not_leaf = ~inside
    not_leaf[inside] = tree.level_of[targets[inside]] != leaf_level
    if not_leaf.any():
        raise ValueError(f"{fn}: targets hold {int(not_leaf.sum())} values that are not leaf "
                         f"nodes (e.g. {targets[not_leaf][:5].tolist()}); leaves are node "
                         f"indices {tree.offset(-1)}..{tree.num_nodes - 1}. Coarsen the "
                         "complete (leaf) labels of a dataset.")
    n = len(targets)
    if n == 0:
        return targets.clone()
    classes = targets.numpy()  # (N,)
    if rule == "ordered":
        keys = np.arange(n, dtype=np.float64)  # dataset order
    else:
        keys = np.random.default_rng(seed).random(n)  # (N,) a random order per class
    order = np.lexsort((keys, classes))  # (N,) grouped by class, then by key
    sorted_classes = classes[order]
    starts = np.flatnonzero(np.r_[True, sorted_classes[1:] != sorted_classes[:-1]])  # (K,)
    counts = np.diff(np.r_[starts, n])  # (K,) samples per class
    keep = np.ceil(np.round(counts * (1.0 - ratio), 9)).astype(np.int64)  # (K,)
    rank = np.arange(n) - np.repeat(starts, counts)  # (N,) position within the class
    coarse_sorted = rank >= np.repeat(keep, counts)  # (N,)
    coarse = np.zeros(n, dtype=bool)
    coarse[order] = coarse_sorted
    out = targets.clone()
    mask = torch.from_numpy(coarse)
    out[mask] = tree.lift(targets[mask], lv)
    return out


# ------------------------------------------------------------------ degrade
def degrade_resolution(
    image: torch.Tensor, factor: float = 0.25, mode: str = "nearest", up_mode: str = "bilinear"
) -> torch.Tensor:
    """Lower an image's resolution and bring it back to its size: HRN's
    image-quality simulation.

    The image is downsampled by ``factor`` with ``mode`` (HRN: x0.25, nearest),
    then upsampled back to its original size with ``up_mode``, as the usual
    resize of the training transform does after HRN's downsampling. The result
    has the input's shape and carries only the detail of the small image.

    Args:
        image: ``(C, H, W)`` or ``(B, C, H, W)`` float in ``[0, 1]``.
        factor: the scale of the small image, in ``(0, 1]``; its side is
            ``max(1, round(side * factor))``.
        mode: downsampling interpolation: ``"nearest"``, ``"nearest-exact"``,
            ``"bilinear"``, ``"bicubic"`` or ``"area"``.
        up_mode: upsampling interpolation (same choices).

    Returns:
        A tensor of the input's shape and dtype, in ``[0, 1]``.

    Raises:
        ValueError: ``image`` is not a 3-D/4-D float tensor, or ``factor``/modes are invalid.
    """
    fn = "degrade_resolution"
    if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"{fn}: image must be a (C, H, W) or (B, C, H, W) tensor, got {shape}.")
    if not image.is_floating_point():
        raise ValueError(f"{fn}: image must be float in [0, 1], got dtype {image.dtype}; convert "
                         "with torchvision.transforms.functional.to_dtype(x, torch.float32, "
                         "scale=True).")
    factor = check_real(fn, "factor", factor, 0.0, 1.0, closed_low=False,
                        hint="0.25 shows a quarter of the resolution")
    check_choice(fn, "mode", mode, _MODES)
    check_choice(fn, "up_mode", up_mode, _MODES)
    batch = image if image.dim() == 4 else image[None]  # (B, C, H, W)
    h, w = batch.shape[-2:]
    small = (max(1, round(h * factor)), max(1, round(w * factor)))
    corners = {"bilinear": False, "bicubic": False}
    low = F.interpolate(batch, size=small, mode=mode, align_corners=corners.get(mode))
    out = F.interpolate(low, size=(h, w), mode=up_mode, align_corners=corners.get(up_mode))
    if "bicubic" in (mode, up_mode):
        out = out.clamp(0.0, 1.0)  # bicubic overshoots at edges
    return out if image.dim() == 4 else out[0]  # input shape


class CoarsenedDataset(Dataset):
    """A dataset seen through HRN's relabelling protocol.

    Item ``i`` is ``(image, targets[i])`` where ``targets`` are the labels after
    :func:`coarsen_labels`; with ``degrade=True`` exactly the samples whose label
    is coarser than a leaf are passed through :func:`degrade_resolution` (the
    image-quality simulation); leaf-labelled samples are untouched.

    Args:
        base: a dataset of ``(image, target)`` with images ``(C, H, W)`` float in
            ``[0, 1]`` (apply normalisation in ``transform``, after degrading).
        targets: ``(len(base),)`` int64 node indices of ``tree`` (the coarsened labels).
        tree: the label tree; defaults to ``base.tree``.
        degrade: whether to degrade the coarse-labelled samples.
        factor, mode: passed to :func:`degrade_resolution`.
        transform: optional callable applied to every image last.

    Attributes:
        coarse: ``(len,)`` bool, which samples carry a label coarser than a leaf.
    """

    def __init__(
        self,
        base: Dataset,
        targets: torch.Tensor,
        tree: LabelTree | None = None,
        degrade: bool = True,
        factor: float = 0.25,
        mode: str = "nearest",
        transform: Callable | None = None,
    ) -> None:
        tree = tree if tree is not None else getattr(base, "tree", None)
        if not isinstance(tree, LabelTree):
            raise ValueError("CoarsenedDataset: give tree= (the base dataset has no .tree).")
        targets = torch.as_tensor(targets)
        if targets.dim() != 1 or len(targets) != len(base):
            raise ValueError(f"CoarsenedDataset: targets must be 1-D with one label per sample "
                             f"({len(base)}), got shape {tuple(targets.shape)}.")
        if targets.is_floating_point() or targets.dtype == torch.bool:
            raise ValueError(f"CoarsenedDataset: targets must be integer node indices, got "
                             f"dtype {targets.dtype}.")
        targets = targets.long()
        outside = (targets < 0) | (targets >= tree.num_nodes)
        if outside.any():
            raise ValueError(f"CoarsenedDataset: targets hold node indices outside the tree "
                             f"(e.g. {targets[outside][:5].tolist()}); nodes run "
                             f"0..{tree.num_nodes - 1}.")
        base_targets = getattr(base, "targets", None)
        if isinstance(base_targets, torch.Tensor) and base_targets.shape == targets.shape:
            # every label must be the base label or one of its ancestors
            ok = tree.ancestor_matrix()[base_targets.long(), targets]  # (len,)
            if not ok.all():
                i = int(torch.nonzero(~ok)[0])
                raise ValueError(
                    f"CoarsenedDataset: sample {i} has label {int(targets[i])} "
                    f"('{tree.names[int(targets[i])]}'), which is not its base label "
                    f"'{tree.names[int(base_targets[i])]}' or an ancestor of it; pass the "
                    "output of coarsen_labels(base.targets, ...)."
                )
        self.targets = targets
        degrade_resolution(torch.zeros(1, 4, 4), factor, mode)  # validates factor and mode
        self.base = base
        self.tree = tree
        self.degrade = bool(degrade)
        self.factor = factor
        self.mode = mode
        self.transform = transform
        self.coarse = tree.level_of[self.targets] < tree.num_levels - 1  # (len,)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, _ = self.base[index]
        if self.degrade and bool(self.coarse[index]):
            image = degrade_resolution(image, self.factor, self.mode)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])


# --------------------------------------------------------------------- drop
def drop_labels(
    labels: torch.Tensor, known: float = 0.1, seed: int = 0, rule: str = "entry"
) -> torch.Tensor:
    """Hide labels of a complete multi-label matrix: SARB's partial-label protocol.

    Args:
        labels: ``(N, C)`` complete labels in ``{0, 1}`` (bool, int or float).
        known: the share of entries that stay known, in ``[0, 1]``.
        seed: the seed of the choice.
        rule: ``"entry"`` (SARB): every (image, class) entry stays known
            independently with probability ``known``, positives and negatives
            alike. ``"per_image"``: every image keeps exactly ``round(known * C)``
            entries, chosen uniformly.

    Returns:
        ``(N, C)`` in ``{1, 0, -1}``: known positive, unknown, known negative; the
        dtype of ``labels`` when it is floating point or signed integer, else int64.

    Raises:
        ValueError: ``labels`` is not 2-D or holds values other than 0 and 1
            (already partial labels, with -1, cannot be dropped again), ``known``
            is outside ``[0, 1]``, or ``rule`` is unknown.
    """
    fn = "drop_labels"
    known = check_share(fn, "known", known)
    seed = check_seed(fn, seed)
    if rule not in _DROP_RULES:
        raise ValueError(f"{fn}: rule={rule!r}; choose 'entry' (each entry independently, as "
                         "SARB) or 'per_image' (the same number of known entries per image).")
    labels = torch.as_tensor(labels)
    if labels.dim() != 2:
        raise ValueError(f"{fn}: labels must be (N, C), got shape {tuple(labels.shape)}.")
    bad = ~((labels == 0) | (labels == 1))
    if bad.any():
        raise ValueError(f"{fn}: labels must be complete, only 0 and 1; found "
                         f"{labels[bad][:5].tolist()}. Drop from the full label matrix.")
    n, c = labels.shape
    rng = np.random.default_rng(seed)
    if rule == "entry":
        keep = rng.random((n, c)) < known  # (N, C)
    else:
        quota = round(known * c)
        ranks = np.argsort(rng.random((n, c)), axis=1).argsort(axis=1)  # (N, C) random ranks
        keep = ranks < quota  # (N, C), exactly `quota` True per row
    signed = labels.is_floating_point() or labels.dtype in (
        torch.int8, torch.int16, torch.int32, torch.int64)
    dtype = labels.dtype if signed else torch.int64
    full = labels.to(dtype) * 2 - 1  # (N, C) in {1, -1}
    return torch.where(torch.from_numpy(keep), full, torch.zeros_like(full))


class PartialLabelDataset(Dataset):
    """A multi-label dataset whose targets are replaced by partial labels.

    Item ``i`` is ``(image, labels[i])`` with ``labels`` ``(N, C)`` in ``{1, 0, -1}``
    (typically :func:`drop_labels` of ``base.targets``).

    Args:
        base: a dataset of ``(image, target)``.
        labels: ``(len(base), C)`` partial labels in ``{1, 0, -1}``.
    """

    def __init__(self, base: Dataset, labels: torch.Tensor) -> None:
        labels = torch.as_tensor(labels)
        if labels.dim() != 2 or len(labels) != len(base):
            raise ValueError(f"PartialLabelDataset: labels must be (len(base)={len(base)}, C), "
                             f"got shape {tuple(labels.shape)}.")
        bad = ~((labels == 1) | (labels == 0) | (labels == -1))
        if bad.any():
            raise ValueError("PartialLabelDataset: labels must hold only 1, 0 and -1; found "
                             f"{labels[bad][:5].tolist()}.")
        self.base = base
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, _ = self.base[index]
        return image, self.labels[index]
