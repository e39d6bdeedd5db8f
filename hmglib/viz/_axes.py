"""Drawing helpers shared by the figure modules of :mod:`hmglib.viz`.

Not part of the public API (the module is private), but the names carry no
underscore so that the figure modules may import them: new axes, arrays for
matplotlib, image grids, the axes of a layered tree, and boxes burned into an
image with :func:`torchvision.utils.draw_bounding_boxes`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from matplotlib import font_manager, patheffects
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torchvision.ops import clip_boxes_to_image
from torchvision.transforms import InterpolationMode
from torchvision.utils import draw_bounding_boxes

from hmglib.hierarchy import LabelTree

__all__ = [
    "new_axes",
    "as_numpy",
    "to_hwc",
    "image_grid",
    "tree_edges",
    "style_tree_axes",
    "check_tree",
    "check_per_node",
    "image_to_uint8",
    "check_boxes",
    "rgb255",
    "box_scale",
    "render_boxes",
]


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new figure of ``figsize`` inches with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def as_numpy(x, dtype: type = np.float64) -> np.ndarray:
    """A tensor (any device, with or without grad), array or nested list as a
    NumPy array of ``dtype`` (same shape)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy().astype(dtype)
    return np.asarray(x, dtype=dtype)


def to_hwc(image) -> np.ndarray:
    """``(3, H, W)`` or ``(1, H, W)`` image in ``[0, 1]`` (tensor or array) →
    ``(H, W, 3)`` or ``(H, W)`` float32 array for ``imshow``, clipped to ``[0, 1]``.

    Raises:
        ValueError: another shape.
    """
    arr = as_numpy(image, np.float32)
    if arr.ndim != 3 or arr.shape[0] not in (1, 3):
        raise ValueError(f"expected a (3, H, W) or (1, H, W) image, got shape {arr.shape}.")
    arr = np.clip(np.moveaxis(arr, 0, -1), 0.0, 1.0)  # (H, W, C)
    return arr[..., 0] if arr.shape[-1] == 1 else arr


def image_grid(n: int, ncols: int, size: float) -> tuple[Figure, np.ndarray]:
    """A figure with room for ``n`` images, ``ncols`` per row, ``size`` inches each;
    returns it and its ``(rows, cols)`` array of axes, all without axis lines."""
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.2),
                             layout="constrained", squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes


def tree_edges(ax: Axes, tree: LabelTree, pos: np.ndarray, color: str = "0.7") -> None:
    """Draw every parent-child edge of ``tree`` as a plain line, under the nodes.

    Args:
        pos: ``(N, 2)`` node positions, e.g. ``tree.layout().numpy()``.
    """
    parent = tree.parent.tolist()
    for node, p in enumerate(parent):
        if p >= 0:
            ax.plot(pos[[p, node], 0], pos[[p, node], 1], "-", color=color, zorder=1)


def style_tree_axes(ax: Axes, tree: LabelTree, pos: np.ndarray) -> None:
    """Level names on the y axis, no x axis, and limits that fit ``pos`` (``(N, 2)``)."""
    ax.set_yticks(-np.arange(tree.num_levels), labels=tree.level_names)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_xlim(pos[:, 0].min() - 0.8, pos[:, 0].max() + 0.8)
    ax.set_ylim(-(tree.num_levels - 1) - 0.75, 0.6)


def check_tree(fn: str, tree: object, order: str) -> LabelTree:
    """``tree`` if it is a :class:`LabelTree`.

    Raises:
        TypeError: anything else; the message shows ``order``, the argument
            order of ``fn`` (data first, then the tree).
    """
    if not isinstance(tree, LabelTree):
        raise TypeError(f"{fn}: tree must be a LabelTree, got {type(tree).__name__}; the "
                        f"arguments are {fn}({order}): the data first, then the tree.")
    return tree


def check_per_node(fn: str, what: str, values, tree: LabelTree, order: str) -> np.ndarray:
    """``values`` as a float64 ``(N,)`` array, one value per node of ``tree``.

    Raises:
        TypeError: ``values`` is a :class:`LabelTree` (the old argument order).
        ValueError: not ``N`` values.
    """
    if isinstance(values, LabelTree):
        raise TypeError(f"{fn}: {what} is a LabelTree; the arguments are {fn}({order}): "
                        "the data first, then the tree.")
    arr = as_numpy(values)
    if arr.shape != (tree.num_nodes,):
        raise ValueError(f"{fn}: {what} has shape {arr.shape}; give one value per node of the "
                         f"tree, shape ({tree.num_nodes},) (one row of a batch: x[0]).")
    return arr


# ------------------------------------------------------------------- boxes
def image_to_uint8(fn: str, image, what: str = "image", clip: bool = False) -> torch.Tensor:
    """One image as a ``(3, H, W)`` uint8 tensor, for torchvision's drawing utilities.

    Args:
        fn: the calling figure, for the error messages.
        image: ``(3, H, W)`` or ``(1, H, W)`` (grey, repeated to 3 channels), float
            in ``[0, 1]`` or uint8; a tensor or an array.
        what: the input's name, for the error messages.
        clip: clip float values to ``[0, 1]`` instead of refusing values outside.

    Raises:
        TypeError: a dtype neither floating nor uint8.
        ValueError: another shape, a value that is not finite, or (without
            ``clip``) a float value outside ``[0, 1]``.
    """
    t = image.detach().cpu() if isinstance(image, torch.Tensor) else torch.as_tensor(
        np.asarray(image))
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"{fn}: {what} must be one image of shape (3, H, W) or (1, H, W), "
                         f"channels first, got shape {tuple(t.shape)}; an (H, W, 3) image "
                         "becomes (3, H, W) with image.permute(2, 0, 1).")
    if t.is_floating_point():
        if not torch.isfinite(t).all():
            raise ValueError(f"{fn}: {what} holds nan or inf values; replace them "
                             "(torch.nan_to_num) before drawing.")
        lo, hi = float(t.min()), float(t.max())
        if not clip and (lo < 0.0 or hi > 1.0):
            raise ValueError(f"{fn}: {what} has values in [{lo:.3g}, {hi:.3g}], outside "
                             "[0, 1]; undo the normalisation (x * std + mean) or clamp it to "
                             "[0, 1], or pass a uint8 image.")
        t = TF.to_dtype(t.clamp(0.0, 1.0), torch.uint8, scale=True)
    elif t.dtype != torch.uint8:
        raise TypeError(f"{fn}: {what} has dtype {t.dtype}; give floats in [0, 1] or uint8 "
                        "in [0, 255].")
    return t.expand(3, -1, -1).contiguous() if t.shape[0] == 1 else t


def check_boxes(fn: str, boxes, height: int, width: int, what: str = "boxes") -> torch.Tensor:
    """Validate pixel boxes of one ``height x width`` image; return them clipped to it.

    Args:
        boxes: ``(K, 4)`` ``xyxy`` pixel coordinates (pixel ``j`` spans ``[j, j + 1)``),
            a tensor, array or nested list; ``K`` may be 0.

    Returns:
        ``(K, 4)`` float64: the boxes, clipped to ``[0, width] x [0, height]``.

    Raises:
        ValueError: not ``(K, 4)``, a value that is not finite, a box with
            ``x0 > x1`` or ``y0 > y1`` (not ``xyxy``), or a box entirely outside the image.
    """
    b = (boxes.detach().cpu().double() if isinstance(boxes, torch.Tensor)
         else torch.as_tensor(as_numpy(boxes)))
    if b.dim() != 2 or b.shape[1] != 4:
        raise ValueError(f"{fn}: {what} must have shape (K, 4), one xyxy row per box, got "
                         f"shape {tuple(b.shape)}; a single box is box.reshape(1, 4).")
    if not torch.isfinite(b).all():
        raise ValueError(f"{fn}: {what} hold nan or inf coordinates; drop those boxes.")
    flipped = (b[:, 0] > b[:, 2]) | (b[:, 1] > b[:, 3])
    if flipped.any():
        k = int(torch.nonzero(flipped)[0])
        raise ValueError(f"{fn}: {what}[{k}] = {b[k].tolist()} is not xyxy (x0 <= x1, "
                         "y0 <= y1); convert xywh or cxcywh boxes with "
                         "torchvision.ops.box_convert(boxes, 'xywh', 'xyxy').")
    outside = (b[:, 2] <= 0) | (b[:, 3] <= 0) | (b[:, 0] >= width) | (b[:, 1] >= height)
    if outside.any():
        k = int(torch.nonzero(outside)[0])
        raise ValueError(f"{fn}: {what}[{k}] = {b[k].tolist()} lies outside the {width} x "
                         f"{height} image; boxes are in pixels of this image (normalised "
                         "boxes times (W, H, W, H)).")
    return clip_boxes_to_image(b, (height, width))


def rgb255(fn: str, color, what: str = "colors") -> tuple[int, int, int]:
    """A matplotlib colour (``"#4c72b0"``, ``"white"``, ``"0.6"``, an RGB tuple in
    ``[0, 1]``) as an RGB tuple in ``[0, 255]``, as torchvision's drawing takes it.

    Raises:
        ValueError: not a colour matplotlib knows.
    """
    try:
        rgb = to_rgb(color)
    except ValueError as err:
        raise ValueError(f"{fn}: {what} holds {color!r}, not a colour; give a name "
                         "('white'), a hex string ('#ffd60a') or an RGB tuple in [0, 1].") from err
    r, g, b = (round(255 * c) for c in rgb)
    return r, g, b


def box_scale(height: int, width: int, target: int = 200) -> int:
    """The integer factor that enlarges a ``height x width`` image towards ``target``
    pixels on its longer side (about its size on the page), at least 1:
    ``max(1, target // max(height, width))``."""
    return max(1, target // max(height, width))


def render_boxes(
    image: torch.Tensor,
    boxes: torch.Tensor,
    labels: Sequence[str | None] | None,
    colors: Sequence[tuple[int, int, int]],
    width: int = 2,
    scale: int = 1,
    font_size: int = 11,
) -> torch.Tensor:
    """Burn boxes into an image with :func:`torchvision.utils.draw_bounding_boxes`.

    The image is first enlarged ``scale`` times (nearest neighbour), so lines
    ``width`` pixels wide and the labels stay readable on small images. Each box
    gets a dark outline on both sides of its line (it reads on any colour) and
    its label, if any, in the box colour on black inside its top-left corner.

    Args:
        image: ``(3, H, W)`` uint8 (see :func:`image_to_uint8`).
        boxes: ``(K, 4)`` float ``xyxy`` pixel boxes within the image (see
            :func:`check_boxes`).
        labels: ``K`` labels (``None`` or ``""``: no label), or None.
        colors: ``K`` RGB tuples in ``[0, 255]``.
        width: the line width in pixels of the enlarged image.
        scale: the integer enlargement, ``>= 1``.
        font_size: the labels' height in pixels of the enlarged image (matplotlib's
            own DejaVu Sans, so the labels look alike on every machine).

    Returns:
        ``(3, scale * H, scale * W)`` uint8: a box's line runs along the outermost
        enlarged pixels it touches (pixel ``j`` spans ``[j, j + 1)``), inside the box.
    """
    height, wide = image.shape[-2:]
    if scale > 1:
        image = TF.resize(image, [scale * height, scale * wide],
                          interpolation=InterpolationMode.NEAREST_EXACT, antialias=False)
    if len(boxes) == 0:
        return image
    h, w = image.shape[-2:]
    s = boxes.double() * scale
    x0, y0 = s[:, 0].floor(), s[:, 1].floor()
    x1 = torch.maximum(s[:, 2].ceil() - 1, x0)  # the last pixel column the box touches
    y1 = torch.maximum(s[:, 3].ceil() - 1, y0)
    low = torch.tensor([0, 0, 0, 0])
    high = torch.tensor([w - 1, h - 1, w - 1, h - 1])  # the last pixel column and row

    def inside(b: torch.Tensor) -> torch.Tensor:  # (K, 4) pixel boxes, clamped into the image
        return torch.minimum(torch.maximum(b, low), high)

    pixels = inside(torch.stack([x0, y0, x1, y1], dim=1).long())  # (K, 4), corners inclusive
    halo = inside(pixels + torch.tensor([-1, -1, 1, 1]))  # one pixel out on every side
    image = draw_bounding_boxes(image, halo, colors="black", width=width + 2)
    names = None if labels is None else [str(n) if n else None for n in labels]
    named = names is not None and any(n is not None for n in names)
    return draw_bounding_boxes(
        image, pixels, labels=names if named else None, colors=list(colors), width=width,
        label_colors=list(colors) if named else None,
        label_background_colors="black" if named else None, fill_labels=named,
        font=font_manager.findfont("DejaVu Sans") if named else None,
        font_size=font_size if named else None,
    )


def show_picture(ax: Axes, picture: torch.Tensor) -> None:
    """``(3, H, W)`` uint8 in ``ax``, in its own pixel coordinates, without ticks."""
    height, width = picture.shape[-2:]
    ax.imshow(picture.permute(1, 2, 0).numpy(), interpolation="nearest",
              extent=(0, width, height, 0))  # (H, W, 3)
    ax.set_xticks([])
    ax.set_yticks([])


def outline_box(ax: Axes, xyxy, color: str, label: str, lw: float = 1.6) -> Rectangle:
    """An unfilled rectangle ``xyxy`` (pixels) with a dark outline, labelled ``label``."""
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    patch = Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, lw=lw,
                      label=label, zorder=3)
    patch.set_path_effects([patheffects.withStroke(linewidth=lw + 1.6, foreground="black"),
                            patheffects.Normal()])
    ax.add_patch(patch)
    return patch
