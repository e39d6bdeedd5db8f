"""The data drawn: images with their boxes, two views of the same images, how
many labels sit on each level, partial label matrices, and label co-occurrence.

Boxes are burned into the image with :func:`torchvision.utils.draw_bounding_boxes`
and the result is shown with ``imshow``; :func:`draw_boxes` is the building
block for any figure of boxes on one image (crops, attended regions).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from hmglib.viz._axes import (
    as_numpy,
    box_scale,
    check_boxes,
    image_grid,
    image_to_uint8,
    new_axes,
    render_boxes,
    rgb255,
    to_hwc,
)
from hmglib.viz.colors import BOX_COLORS, PARTIAL_COLORS, level_color

__all__ = [
    "draw_boxes",
    "draw_samples",
    "draw_degraded_pairs",
    "draw_label_counts",
    "draw_partial_labels",
    "draw_cooccurrence",
]


def draw_boxes(
    image,
    boxes,
    labels: Sequence[str] | None = None,
    colors: str | tuple[float, float, float] | Sequence[str | tuple[float, float, float]]
    | None = None,
    width: int = 2,
    scale: int | None = None,
    font_size: int = 11,
    title: str | None = None,
    ax: Axes | None = None,
    size: float = 3.0,
) -> Figure:
    """One image with boxes on it.

    The boxes are drawn into the pixels by :func:`torchvision.utils.draw_bounding_boxes`
    (each with a dark outline, so it reads on any colour, and its label in its
    colour inside its top-left corner); the axes keep the image's own pixel
    coordinates, so more can be drawn on top in the coordinates of ``boxes``.

    Args:
        image: ``(3, H, W)`` float in ``[0, 1]`` or uint8 (``(1, H, W)``: grey), a
            tensor or an array.
        boxes: ``(K, 4)`` float pixel boxes ``xyxy`` (pixel ``j`` spans ``[j, j + 1)``),
            ``K >= 0``; parts outside the image are clipped away.
        labels: optional ``K`` strings (``""``: no label).
        colors: optional: one colour for all boxes, or ``K`` colours (any matplotlib
            colour: a name, a hex string, an RGB tuple in ``[0, 1]``). Default:
            :data:`~hmglib.viz.colors.BOX_COLORS` in turn, one per distinct label (boxes with
            the same label share a colour).
        width: line width, in pixels of the enlarged image.
        scale: enlarge the image this many times (nearest neighbour) before drawing,
            so that lines and labels stay thin next to the pixels of a small image;
            default ``max(1, 200 // max(H, W))`` (about the image's size on the page).
        font_size: the labels' height, in pixels of the enlarged image.
        title: optional axes title.
        ax: draw into these axes instead of a new figure.
        size: inches of a new figure's side.

    Raises:
        ValueError: an image that is not ``(3, H, W)`` or ``(1, H, W)`` or holds
            float values outside ``[0, 1]``; boxes that are not ``(K, 4)``, not
            ``xyxy`` or entirely outside the image; ``labels`` or ``colors`` that
            are not one per box; an unknown colour; ``width`` or ``scale`` below 1.
        TypeError: an image neither float nor uint8.
    """
    fn = "draw_boxes"
    picture = image_to_uint8(fn, image)  # (3, H, W)
    height, wide = picture.shape[-2:]
    bxs = check_boxes(fn, boxes, height, wide)  # (K, 4)
    k = len(bxs)
    if labels is not None:
        labels = [str(n) for n in labels]
        if len(labels) != k:
            raise ValueError(f"{fn}: {len(labels)} labels for {k} boxes; give one label per "
                             "box ('' for none), or labels=None.")
    if colors is None:
        palette: dict[str, str] = {}
        keys = labels if labels is not None else [""] * k
        names = [palette.setdefault(key or f"#{i}", BOX_COLORS[len(palette) % len(BOX_COLORS)])
                 for i, key in enumerate(keys)]
    elif isinstance(colors, str) or (isinstance(colors, tuple) and len(colors) in (3, 4)
                                      and all(isinstance(c, float | int) for c in colors)):
        names = [colors] * k
    else:
        names = list(colors)
        if len(names) != k:
            raise ValueError(f"{fn}: {len(names)} colors for {k} boxes; give one colour per "
                             "box, a single colour, or colors=None.")
    rgb = [rgb255(fn, c) for c in names]
    if int(width) != width or width < 1:
        raise ValueError(f"{fn}: width={width}; give a whole number of pixels >= 1.")
    scale = box_scale(height, wide) if scale is None else scale
    if int(scale) != scale or scale < 1:
        raise ValueError(f"{fn}: scale={scale}; give a whole factor >= 1, or None.")
    if int(font_size) != font_size or font_size < 1:
        raise ValueError(f"{fn}: font_size={font_size}; give a whole number of pixels >= 1.")
    drawn = render_boxes(picture, bxs, labels, rgb, width=int(width), scale=int(scale),
                         font_size=int(font_size))
    fig, ax = new_axes(ax, (size, size * height / wide))
    ax.imshow(drawn.permute(1, 2, 0).numpy(), interpolation="antialiased",
              extent=(0, wide, height, 0))  # antialiased: thin lines survive shrinking
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def draw_samples(
    images,
    boxes=None,
    box_labels=None,
    titles: Iterable[str] | None = None,
    ncols: int = 8,
    size: float = 1.7,
    title: str | None = None,
) -> Figure:
    """A grid of images with optional boxes.

    Args:
        images: ``(B, 3, H, W)`` float in ``[0, 1]`` (tensor or array), or a list of
            ``B`` ``(3, H, W)`` images; values outside ``[0, 1]`` are clipped.
        boxes: optional, per image a ``(K, 4)`` float ``xyxy`` array of pixel boxes
            (pixel ``j`` spans ``[j, j + 1)``), drawn as in :func:`draw_boxes`.
        box_labels: optional, per image ``K`` strings written in the boxes' corners;
            the same string gets the same colour in every image (and unlabelled
            boxes the colour of their position).
        titles: optional, one title per image.
        ncols: images per row.
        size: inches per image.
        title: optional figure title.

    Raises:
        ValueError: an image not ``(3, H, W)`` or ``(1, H, W)``; ``boxes``,
            ``box_labels`` or ``titles`` not one per image; invalid boxes.
    """
    fn = "draw_samples"
    images = list(images)
    titles = list(titles) if titles is not None else None
    for what, per in (("boxes", boxes), ("box_labels", box_labels), ("titles", titles)):
        if per is not None and len(per) != len(images):
            raise ValueError(f"{fn}: {len(per)} {what} for {len(images)} images; give one "
                             "entry per image.")
    fig, axes = image_grid(len(images), ncols, size)
    palette: dict[str, str] = {}
    for i, image in enumerate(images):
        ax = axes.flat[i]
        if boxes is None:
            arr = to_hwc(image)
            ax.imshow(arr, interpolation="nearest", cmap="gray" if arr.ndim == 2 else None,
                      extent=(0, arr.shape[1], arr.shape[0], 0))
        else:
            picture = image_to_uint8(fn, image, f"images[{i}]", clip=True)  # (3, H, W)
            height, wide = picture.shape[-2:]
            bxs = check_boxes(fn, as_numpy(boxes[i]).reshape(-1, 4), height, wide,
                              f"boxes[{i}]")  # (K, 4)
            names = ([str(n) for n in box_labels[i]] if box_labels is not None
                     else [""] * len(bxs))
            if len(names) != len(bxs):
                raise ValueError(f"{fn}: box_labels[{i}] has {len(names)} labels for "
                                 f"{len(bxs)} boxes.")
            colors = [palette.setdefault(name or f"#{k}", BOX_COLORS[len(palette)
                                                                     % len(BOX_COLORS)])
                      for k, name in enumerate(names)]
            drawn = render_boxes(picture, bxs, names, [rgb255(fn, c) for c in colors],
                                 scale=box_scale(height, wide))
            ax.imshow(drawn.permute(1, 2, 0).numpy(), interpolation="antialiased",
                      extent=(0, wide, height, 0))
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def draw_degraded_pairs(
    originals,
    degraded,
    titles: Iterable[str] | None = None,
    size: float = 1.7,
    row_labels: tuple[str, str] = ("original", "degraded"),
) -> Figure:
    """Two views of the same images: one row each (original above degraded,
    or any other pair of views).

    Args:
        originals: ``(B, 3, H, W)`` float in ``[0, 1]``, the top row.
        degraded: ``(B, 3, H', W')`` float in ``[0, 1]``, the same images in another view.
        titles: optional, one title per column.
        size: inches per image.
        row_labels: the names of the two rows.

    Raises:
        ValueError: not as many originals as degraded images.
    """
    originals, degraded = list(originals), list(degraded)
    if len(originals) != len(degraded):
        raise ValueError(f"draw_degraded_pairs: {len(originals)} originals but "
                         f"{len(degraded)} degraded images.")
    n = len(originals)
    fig, axes = plt.subplots(2, n, figsize=(size * n, 2 * size + 0.3), layout="constrained",
                             squeeze=False)
    titles = list(titles) if titles is not None else [""] * n
    for j in range(n):
        for row, image in enumerate((originals[j], degraded[j])):
            ax = axes[row, j]
            ax.imshow(to_hwc(image), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, j].set_title(titles[j], fontsize=7)
    axes[0, 0].set_ylabel(row_labels[0], fontsize=8)
    axes[1, 0].set_ylabel(row_labels[1], fontsize=8)
    return fig


def draw_label_counts(
    counts: Mapping[str, Mapping[str, float]],
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Stacked bars: how many training labels sit on each level, per setting.

    Args:
        counts: ``{setting: {level: number of labels}}``, e.g.
            ``{"30 %": {"family": 1215, "species": 2835}}``; levels are stacked in the
            order of the first setting, coarse at the bottom.
        title: optional axes title.
        ax: draw into these axes instead of a new figure.
    """
    settings = list(counts)
    levels = list(next(iter(counts.values()))) if counts else []
    fig, ax = new_axes(ax, (1.8 + 1.1 * len(settings), 3.4))
    bottom = np.zeros(len(settings))
    for lv, level in enumerate(levels):
        values = np.array([float(counts[s].get(level, 0)) for s in settings])
        bars = ax.bar(settings, values, bottom=bottom, label=level, color=level_color(lv))
        ax.bar_label(bars, labels=[f"{v:.0f}" if v else "" for v in values], label_type="center",
                     fontsize=7, color="white")
        bottom += values
    ax.set_ylabel("training labels")
    ax.legend(fontsize=8, title="label level", title_fontsize=8, loc="upper left",
              bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title)
    return fig


def draw_partial_labels(
    partials: Mapping[str, object],
    class_names: Iterable[str] | None = None,
    max_rows: int = 24,
) -> Figure:
    """Partial label matrices side by side: green known positive, red known
    negative, grey unknown.

    Args:
        partials: ``{setting: (N, C) labels in {1, 0, -1}}``; the first ``max_rows``
            images of each are drawn.
        class_names: optional ``C`` column names.
        max_rows: images drawn per matrix.
    """
    names = list(class_names) if class_names is not None else None
    cmap = ListedColormap(PARTIAL_COLORS)
    n = len(partials)
    fig, axes = plt.subplots(1, n, figsize=(0.2 + 2.9 * n, 4.2), layout="constrained",
                             squeeze=False, sharey=True)
    for ax, (setting, labels) in zip(axes[0], partials.items(), strict=True):
        arr = as_numpy(labels, np.float32)[:max_rows]  # (rows, C)
        ax.imshow(arr, cmap=cmap, vmin=-1.5, vmax=1.5, interpolation="nearest", aspect="auto")
        known = float(np.mean(arr != 0)) * 100
        ax.set_title(f"{setting}\n({known:.0f} % known in view)", fontsize=9)
        if names is not None:
            ax.set_xticks(range(len(names)), labels=names, rotation=90, fontsize=6)
        else:
            ax.set_xlabel("class")
    axes[0, 0].set_ylabel("image")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in PARTIAL_COLORS]
    fig.legend(handles, ["known negative (-1)", "unknown (0)", "known positive (1)"],
               loc="outside lower center", ncols=3, fontsize=8)
    return fig


def draw_cooccurrence(
    matrices: Mapping[str, object],
    class_names: Iterable[str] | None = None,
) -> Figure:
    """Conditional co-occurrence matrices ``P(column present | row present)`` as heat maps.

    Args:
        matrices: ``{title: (C, C) float in [0, 1]}``, e.g. the exact matrix of a world
            beside the one estimated from its labels.
        class_names: optional ``C`` names for the rows and columns.
    """
    names = list(class_names) if class_names is not None else None
    n = len(matrices)
    fig, axes = plt.subplots(1, n, figsize=(0.8 + 4.2 * n, 4.3), layout="constrained",
                             squeeze=False)
    image = None
    for ax, (title, matrix) in zip(axes[0], matrices.items(), strict=True):
        arr = as_numpy(matrix, np.float32)  # (C, C)
        image = ax.imshow(arr, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        if names is not None:
            ax.set_xticks(range(len(names)), labels=names, rotation=90, fontsize=6)
            ax.set_yticks(range(len(names)), labels=names, fontsize=6)
        ax.set_xlabel("j (present?)", fontsize=8)
        ax.set_ylabel("i (present)", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="P(j | i)")
    return fig
