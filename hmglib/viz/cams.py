"""Class activation maps drawn: where each level, scale or class looks
(:mod:`hmglib.cam`), and how well its map falls on the ground-truth boxes.

A map is an ``(H, W)`` float in ``[0, 1]`` on its image's pixels (Grad-CAM's maps
are scaled to a maximum of 1); it is drawn colour-mapped through
:data:`~hmglib.viz.colors.CAM_CMAP` and blended with the image
(:func:`overlay`). Ground-truth boxes are float pixel ``xyxy`` (pixel ``j``
spans ``[j, j + 1)``), given as a dict kind → boxes, and outlined on every
panel in the colours of :data:`~hmglib.viz.colors.BOX_COLORS` in turn (the
first kind, e.g. ``"object"``, in ``BOX_COLORS[0]``, the second, e.g.
``"part"``, in ``BOX_COLORS[1]``); an image may hold several boxes of a kind,
padded with rows of NaN. RA-CNN's regions ``(t_x, t_y, t_l)`` are outlined in
the colours of :func:`~hmglib.viz.crops.draw_attention_regions`.

* :func:`overlay`: one map blended with its image, as an RGB array;
* :func:`draw_cams`: a grid, one row per image, one column per map (levels,
  scales or classes);
* :func:`draw_scale_cams`: RA-CNN's maps, each scale's on the input it saw and
  pasted back onto the image;
* :func:`draw_cam_grid`: one image, methods × levels;
* :func:`draw_localisation`: a table of localisation scores as bars over seeds,
  with what a map scores without looking at the image;
* :func:`draw_hand_vs_package`: a map computed by hand beside the package's.

Nothing here computes a map: the figures take the maps :mod:`hmglib.cam`
returned (and draw without the ``grad-cam`` package installed).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from torchvision.ops import clip_boxes_to_image

from hmglib.checks import check_choice, check_int, check_real
from hmglib.models.racnn import boxes_to_xyxy
from hmglib.viz._axes import as_numpy, check_boxes, image_to_uint8, outline_box, show_picture
from hmglib.viz.colors import BOX_COLORS, CAM_CMAP, level_color
from hmglib.viz.page import CHAR_IN, FONT_PT, PAGE_WIDTH_IN

if TYPE_CHECKING:
    import pandas as pd

    from hmglib.cam import ScaleCam

__all__ = [
    "overlay",
    "draw_cams",
    "draw_scale_cams",
    "draw_cam_grid",
    "draw_localisation",
    "draw_hand_vs_package",
]

#: What the figures take as an array: a tensor (any device), an array or nested lists.
Array = torch.Tensor | np.ndarray | Sequence
_SMALL_PT = FONT_PT - 1  # notes, legends, ticks; the figures fit the page, so as shown
_MAX_PANELS = 8  # image panels a row of the page holds readably (about 0.8 in each)
_MAX_GRID_ROWS = 6  # rows of draw_cam_grid
_RANGE_ATOL = 1e-5  # of a map's values to [0, 1] (float32 rounding of a rescaled map)
_PANEL_IN = 1.8  # the largest side of an image panel, in inches
_MARGIN_IN = 0.15  # the figure's edge
_LABEL_IN = 0.35  # a row label left of the first panel
_COLORBAR_IN = 0.75  # a colour bar and its label right of the panels
#: The value-axis labels of :func:`draw_localisation`, by metric.
_METRIC_LABELS = {"pointing": "pointing game (share of hits)",
                  "energy": "energy in the box (share)"}
_REFERENCE_STYLES = ("--", ":", "-.")
_REFERENCE_COLORS = ("black", "0.35", "#8c564b")
_DIFF_CMAP = "viridis"


# ------------------------------------------------------------------ checks
def _tensor(values) -> torch.Tensor:
    """A tensor, array or nested list as a CPU tensor (same dtype, no grad)."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu()
    return torch.as_tensor(np.asarray(values))


def _rgb(fn: str, image, what: str = "image") -> np.ndarray:
    """One image ``(3, H, W)`` (or ``(1, H, W)``) float in ``[0, 1]`` or uint8 as an
    ``(H, W, 3)`` float64 array in ``[0, 1]``.

    Raises:
        ValueError: another shape, values that are not finite or outside ``[0, 1]``.
        TypeError: a dtype neither floating nor uint8.
    """
    t = _tensor(image)
    image_to_uint8(fn, t, what)  # the shape, dtype and range, with the book's messages
    arr = t.double().numpy() / (1.0 if t.is_floating_point() else 255.0)  # (C, H, W)
    arr = np.moveaxis(arr, 0, -1)  # (H, W, C)
    return np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr  # (H, W, 3)


def _batch(fn: str, images, what: str = "images") -> list[np.ndarray]:
    """A batch ``(B, 3, H, W)`` as ``B`` ``(H, W, 3)`` float64 arrays in ``[0, 1]``."""
    t = _tensor(images)
    if t.dim() != 4 or t.shape[1] not in (1, 3):
        raise ValueError(f"{fn}: {what} must be a batch (B, 3, H, W), got shape "
                         f"{tuple(t.shape)}; one image becomes a batch with image[None].")
    if t.shape[0] == 0:
        raise ValueError(f"{fn}: {what} is empty; give at least one image.")
    return [_rgb(fn, t[i], f"{what}[{i}]") for i in range(t.shape[0])]


def _map_array(fn: str, what: str, values, shape: tuple[int, ...], shape_text: str) -> np.ndarray:
    """``values`` as a float64 array of ``shape``, finite and in ``[0, 1]``."""
    try:
        arr = as_numpy(values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{fn}: {what} must be numbers of shape {shape_text}.") from err
    if arr.shape != tuple(shape):
        raise ValueError(f"{fn}: {what} has shape {arr.shape}; give {shape_text} = "
                         f"{tuple(shape)}, at the size of its image (a map of a smaller "
                         "feature map is upsampled to the image first).")
    if not np.isfinite(arr).all():
        raise ValueError(f"{fn}: {what} holds nan or inf; replace them (torch.nan_to_num) "
                         "before drawing.")
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if lo < -_RANGE_ATOL or hi > 1 + _RANGE_ATOL:
        raise ValueError(f"{fn}: {what} has values in [{lo:.3g}, {hi:.3g}], outside [0, 1]; "
                         "a map is drawn as Grad-CAM returns it: keep its positive part and "
                         "divide it by its maximum.")
    return np.clip(arr, 0.0, 1.0)


def _colormap(fn: str, cmap: str | Colormap) -> Colormap:
    """``cmap`` (a matplotlib colormap's name, or a Colormap) as a Colormap."""
    if isinstance(cmap, Colormap):
        return cmap
    try:
        return mpl.colormaps[cmap]
    except (KeyError, TypeError) as err:
        raise ValueError(f"{fn}: unknown cmap={cmap!r}; give a matplotlib colormap's name "
                         f"('{CAM_CMAP}', 'inferno') or a Colormap.") from err


def _strings(fn: str, what: str, values, n: int) -> list[str]:
    """``values`` as ``n`` strings (``n`` empty strings when None)."""
    if values is None:
        return [""] * n
    if isinstance(values, str):
        raise ValueError(f"{fn}: {what} is one string; give a list of {n} strings.")
    out = [str(v) for v in values]
    if len(out) != n:
        raise ValueError(f"{fn}: {what} holds {len(out)} strings for {n}; give one each, "
                         "or None.")
    return out


def _named(fn: str, what: str, values, example: str) -> list[tuple[str, object]]:
    """A non-empty mapping as ``(name, value)`` pairs."""
    if not isinstance(values, Mapping) or not values:
        raise ValueError(f"{fn}: {what} must be a non-empty dict {example}.")
    return [(str(k), v) for k, v in values.items()]


def _image_boxes(fn: str, what: str, boxes, height: int, width: int) -> torch.Tensor:
    """One image's boxes ``(4,)`` or ``(K, 4)`` (all-NaN rows are padding) as
    ``(K', 4)`` float64, the padding dropped and the rest clipped to the image."""
    t = _tensor(boxes).double()
    if t.dim() == 1:
        t = t[None]  # (1, 4)
    if t.dim() != 2 or t.shape[1] != 4:
        raise ValueError(f"{fn}: {what} must be (K, 4) float pixel xyxy boxes, got shape "
                         f"{tuple(t.shape)}.")
    pad = torch.isnan(t).all(1)  # (K,)
    partly = torch.isnan(t).any(1) & ~pad
    if partly.any():
        k = int(torch.nonzero(partly)[0])
        raise ValueError(f"{fn}: {what}[{k}] = {t[k].tolist()} mixes nan and numbers; a "
                         "padding row is all nan, a box has four numbers.")
    return check_boxes(fn, t[~pad], height, width, what)  # (K', 4)


def _batch_boxes(fn: str, boxes, n: int, height: int,
                 width: int) -> list[tuple[str, str, list[torch.Tensor]]]:
    """``boxes`` (kind → ``(B, 4)`` or ``(B, K, 4)``) as ``(kind, colour, B boxes
    (K_i, 4))`` triples (none without ``boxes``)."""
    if boxes is None:
        return []
    out = []
    for k, (kind, values) in enumerate(_named(fn, "boxes", boxes,
                                              "{kind: (B, 4) or (B, K, 4) pixel xyxy}")):
        t = _tensor(values).double()
        if t.dim() == 2:
            t = t[:, None]  # (B, 1, 4)
        if t.dim() != 3 or t.shape[-1] != 4:
            raise ValueError(f"{fn}: boxes[{kind!r}] must be (B, 4) or (B, K, 4) float pixel "
                             f"xyxy, got shape {tuple(_tensor(values).shape)}.")
        if t.shape[0] != n:
            raise ValueError(f"{fn}: boxes[{kind!r}] holds boxes of {t.shape[0]} images but "
                             f"images holds {n}; give one row per image (all nan: none).")
        per = [_image_boxes(fn, f"boxes[{kind!r}][{i}]", t[i], height, width) for i in range(n)]
        out.append((kind, BOX_COLORS[k % len(BOX_COLORS)], per))
    return out


def _one_image_boxes(fn: str, boxes, height: int,
                     width: int) -> list[tuple[str, str, list[torch.Tensor]]]:
    """One image's ``boxes`` (kind → ``(4,)`` or ``(K, 4)``), as :func:`_batch_boxes`
    gives a batch of one."""
    if boxes is None:
        return []
    return [(kind, BOX_COLORS[k % len(BOX_COLORS)],
             [_image_boxes(fn, f"boxes[{kind!r}]", values, height, width)])
            for k, (kind, values) in enumerate(_named(fn, "boxes", boxes,
                                                      "{kind: (4,) or (K, 4) pixel xyxy}"))]


# ------------------------------------------------------------------ regions
def _region_color(scale: int) -> str:
    """The outline of scale ``scale``'s region (counted from 1), as
    :func:`~hmglib.viz.crops.draw_attention_regions` draws it: ``BOX_COLORS[2]``
    for scale 2, then the next colours, cycling over the four after the box kinds."""
    return BOX_COLORS[2 + (scale - 2) % 4]


def _is_whole(region: torch.Tensor) -> bool:
    """Whether ``region`` ``(3,)`` ``(t_x, t_y, t_l)`` is the whole image ``(0.5, 0.5, 0.5)``."""
    return bool(torch.allclose(region.double(), torch.full((3,), 0.5, dtype=torch.float64),
                               atol=1e-6))


def _in_crop(xyxy: torch.Tensor, region: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Pixel boxes ``(K, 4)`` of the image in the pixels of the crop of ``region``
    (``(4,)`` pixel ``xyxy`` of the image) zoomed to ``hw`` = ``(h, w)``."""
    x0, y0, x1, y1 = region.unbind(-1)
    scale = torch.stack([hw[1] / (x1 - x0), hw[0] / (y1 - y0)] * 2)  # (4,)
    return (xyxy - torch.stack([x0, y0, x0, y0])) * scale  # (K, 4)


# ------------------------------------------------------------------ drawing helpers
def _wrap(text: str, width_in: float) -> str:
    """``text`` wrapped to lines of about ``width_in`` inches at the figure font."""
    return textwrap.fill(text, max(6, int(width_in / CHAR_IN)))


def _show_rgb(ax: Axes, rgb: np.ndarray) -> None:
    """``(H, W, 3)`` float in ``[0, 1]`` in ``ax``, in its own pixel coordinates."""
    height, width = rgb.shape[:2]
    ax.imshow(rgb, interpolation="nearest", extent=(0, width, height, 0))
    ax.set_xticks([])
    ax.set_yticks([])


def _show_image(ax: Axes, rgb: np.ndarray) -> None:
    """The image itself, as every figure of the book shows it."""
    picture = torch.from_numpy(np.round(rgb * 255).astype(np.uint8)).permute(2, 0, 1)
    show_picture(ax, picture)  # (3, H, W) uint8


def _outline(ax: Axes, truth: list[tuple[str, str, list[torch.Tensor]]], i: int) -> None:
    """Image ``i``'s boxes of every kind in ``ax``."""
    for kind, color, per in truth:
        for box in per[i]:
            outline_box(ax, box, color, kind, lw=1.3)


def _grid(nrows: int, ncols: int, aspect: float, labels: bool,
          colorbar: bool) -> tuple[Figure, np.ndarray, float]:
    """``(nrows, ncols)`` image axes at most the page wide, with room for row
    labels and a colour bar; returns the figure, the axes and a panel's side."""
    extra = 2 * _MARGIN_IN + (_LABEL_IN if labels else 0.0) + (_COLORBAR_IN if colorbar else 0.0)
    side = min(_PANEL_IN, (PAGE_WIDTH_IN - extra) / ncols)
    figsize = (min(PAGE_WIDTH_IN, side * ncols + extra), nrows * (side * aspect + 0.45) + 0.55)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, layout="constrained", squeeze=False)
    return fig, axes, side


def _colorbar(fig: Figure, axes: list[Axes], cmap: Colormap, label: str = "map") -> None:
    """One colour bar in ``[0, 1]`` for ``axes``."""
    bar = fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap), ax=axes, shrink=0.8,
                       ticks=[0.0, 0.5, 1.0], fraction=0.08)
    bar.set_label(label, fontsize=_SMALL_PT)
    bar.ax.tick_params(labelsize=_SMALL_PT)


def _box_legend(fig: Figure, truth, extra: Sequence[tuple[str, str]] = ()) -> None:
    """A legend of the box kinds (and ``extra`` ``(label, colour)`` outlines) below."""
    handles = [Patch(facecolor=c, edgecolor="black", label=kind) for kind, c, _ in truth]
    handles += [Patch(facecolor=c, edgecolor="black", label=label) for label, c in extra]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5),
                   fontsize=_SMALL_PT, frameon=False)


def _panels_fit(fn: str, panels: int, what: str) -> None:
    if panels > _MAX_PANELS:
        raise ValueError(f"{fn}: {what} makes {panels} panels a row; at most {_MAX_PANELS} fit "
                         "the page readably: draw fewer, or split them over several figures.")


# ------------------------------------------------------------------ overlay
def overlay(image: Array, cam: Array, alpha: float = 0.5,
            cmap: str | Colormap = CAM_CMAP) -> np.ndarray:
    """One map laid over its image: ``(1 - alpha) image + alpha cmap(cam)``.

    Args:
        image: ``(3, H, W)`` float in ``[0, 1]`` (or uint8, divided by 255; ``(1, H, W)``:
            grey), a tensor or an array.
        cam: ``(H, W)`` float in ``[0, 1]`` on the image's pixels.
        alpha: the map's weight in ``[0, 1]``: 0 gives the image, 1 the map's colours.
        cmap: a matplotlib colormap (its name or the Colormap), default
            :data:`~hmglib.viz.colors.CAM_CMAP`.

    Returns:
        ``(H, W, 3)`` float64 in ``[0, 1]``.

    Raises:
        ValueError: an image not ``(3, H, W)`` or ``(1, H, W)`` or outside ``[0, 1]``;
            a map not ``(H, W)`` of the image, not finite or outside ``[0, 1]``;
            ``alpha`` outside ``[0, 1]``; an unknown colormap.
        TypeError: an image neither float nor uint8.
    """
    fn = "overlay"
    rgb = _rgb(fn, image)  # (H, W, 3)
    heat = _map_array(fn, "cam", cam, rgb.shape[:2], "(H, W) of the image")  # (H, W)
    alpha = check_real(fn, "alpha", alpha, 0.0, 1.0, hint="the map's weight")
    colours = _colormap(fn, cmap)(heat)[..., :3]  # (H, W, 3), alpha channel dropped
    return np.clip((1.0 - alpha) * rgb + alpha * colours, 0.0, 1.0)


# ------------------------------------------------------------------ draw_cams
def draw_cams(
    images: Array,
    maps: Mapping[str, Array],
    boxes: Mapping[str, Array] | None = None,
    titles: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    notes: Mapping[str, Sequence[str]] | None = None,
    *,
    alpha: float = 0.5,
    cmap: str | Colormap = CAM_CMAP,
    max_rows: int = 4,
    colorbar: bool = True,
) -> Figure:
    """Where each level (scale, class) looks: one row per image, the image first,
    then one panel per map laid over the image (:func:`overlay`).

    Every panel outlines the image's ground-truth boxes, one colour per kind
    (:data:`~hmglib.viz.colors.BOX_COLORS` in the order of ``boxes``), named in a
    legend below; one colour bar gives the maps' scale.

    Args:
        images: ``(B, 3, H, W)`` float in ``[0, 1]`` (or uint8), ``B <= max_rows``.
        maps: ``{name: (B, H, W) float in [0, 1]}``, one column each in order, e.g.
            ``{"order": ..., "family": ..., "species": ...}`` (what
            :func:`hmglib.cam.level_cam` returns for each level).
        boxes: optional ``{kind: (B, 4) or (B, K, 4) float pixel xyxy}`` (pixel ``j``
            spans ``[j, j + 1)``), e.g. ``{"object": ..., "part": ...}``; rows of
            NaN are padding (an image with fewer boxes, or none of a kind).
        titles: optional column titles, one per map (default: the names of ``maps``);
            the image column is titled ``"image"``.
        row_labels: optional ``B`` labels, one per row (e.g. the class).
        notes: optional ``{name: B strings}`` written under that map's panels (e.g.
            ``"energy 0.62"``); names of ``maps`` only.
        alpha: the maps' weight over the image, in ``[0, 1]``.
        cmap: the maps' colormap (a name or a Colormap).
        max_rows: the most images drawn, ``>= 1`` (more raise an error, none is dropped).
        colorbar: draw the colour bar.

    Returns:
        A Figure at most :data:`~hmglib.viz.page.PAGE_WIDTH_IN` wide with
        ``B * (1 + len(maps))`` image axes row by row (then the colour bar's);
        a map's panel holds one ``(H, W, 3)`` image, :func:`overlay` of the map.

    Raises:
        ValueError: images not ``(B, 3, H, W)`` in ``[0, 1]``, empty or more than
            ``max_rows``; no maps, or a map not ``(B, H, W)`` in ``[0, 1]``; more
            than 8 panels a row; boxes not ``(B, 4)`` / ``(B, K, 4)`` xyxy inside
            the image (or a row mixing nan and numbers); ``titles``,
            ``row_labels`` or a note of the wrong length; a note for no map;
            ``alpha`` outside ``[0, 1]``; an unknown colormap.
        TypeError: images neither float nor uint8.
    """
    fn = "draw_cams"
    max_rows = check_int(fn, "max_rows", max_rows, 1)
    pictures = _batch(fn, images)  # B x (H, W, 3)
    n = len(pictures)
    if n > max_rows:
        raise ValueError(f"{fn}: images holds {n} images but max_rows={max_rows}; draw fewer "
                         f"(images[:{max_rows}] and each map's first rows) or raise max_rows.")
    height, width = pictures[0].shape[:2]
    items = _named(fn, "maps", maps, "{name: (B, H, W) maps}, e.g. {'order': cams}")
    _panels_fit(fn, 1 + len(items), f"the image and {len(items)} maps")
    heat = [(name, _map_array(fn, f"maps[{name!r}]", m, (n, height, width), "(B, H, W)"))
            for name, m in items]
    alpha = check_real(fn, "alpha", alpha, 0.0, 1.0, hint="the map's weight")
    colours = _colormap(fn, cmap)
    truth = _batch_boxes(fn, boxes, n, height, width)
    heads = _strings(fn, "titles", titles, len(items)) if titles is not None else [
        name for name, _ in items]
    rows = _strings(fn, "row_labels", row_labels, n)
    written = _notes(fn, notes, [name for name, _ in items], n)
    fig, axes, side = _grid(n, 1 + len(items), height / width, any(rows), colorbar)
    for i in range(n):
        _show_image(axes[i, 0], pictures[i])
        _outline(axes[i, 0], truth, i)
        for j, (name, m) in enumerate(heat, start=1):
            ax = axes[i, j]
            _show_rgb(ax, overlay(pictures[i].transpose(2, 0, 1), m[i], alpha, colours))
            _outline(ax, truth, i)
            if written.get(name):
                ax.set_xlabel(written[name][i], fontsize=_SMALL_PT, labelpad=2)
        if rows[i]:
            axes[i, 0].set_ylabel(_wrap(rows[i], 1.2), fontsize=_SMALL_PT)
    axes[0, 0].set_title("image", fontsize=FONT_PT)
    for j, head in enumerate(heads, start=1):
        axes[0, j].set_title(_wrap(head, side), fontsize=FONT_PT)
    if colorbar:
        _colorbar(fig, list(axes.flat), colours)
    _box_legend(fig, truth)
    return fig


def _notes(fn: str, notes, names: list[str], n: int) -> dict[str, list[str]]:
    """``notes`` (name → ``n`` strings) checked against the map ``names``."""
    if notes is None:
        return {}
    if not isinstance(notes, Mapping):
        raise ValueError(f"{fn}: notes must be a dict {{map name: one string per image}}, got "
                         f"{type(notes).__name__}.")
    out = {}
    for name, texts in notes.items():
        if str(name) not in names:
            raise ValueError(f"{fn}: notes[{name!r}] names no map; the maps are {names}.")
        out[str(name)] = _strings(fn, f"notes[{name!r}]", texts, n)
    return out


# ------------------------------------------------------------------ scale cams
def _scale_parts(fn: str, sc, s: int, n: int, height: int,
                 width: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], torch.Tensor]:
    """One scale's ``(maps (B, H, W), crop_maps (B, h, w), B crops (h, w, 3),
    regions (B, 3))``, checked."""
    what = f"scale_cams[{s}]"
    if not all(hasattr(sc, a) for a in ("maps", "crop_maps", "crops", "regions")):
        raise TypeError(f"{fn}: {what} is a {type(sc).__name__}; give the ScaleCam that "
                        "hmglib.cam.scale_cam returns (with .maps, .crop_maps, .crops and "
                        ".regions), one per scale.")
    maps = _map_array(fn, f"{what}.maps", sc.maps, (n, height, width), "(B, H, W)")
    crops = _tensor(sc.crops)
    if crops.dim() != 4 or crops.shape[0] != n:
        raise ValueError(f"{fn}: {what}.crops must be ({n}, 3, h, w), one zoomed input per "
                         f"image, got shape {tuple(crops.shape)}.")
    if crops.is_floating_point() and (float(crops.min()) < -1e-3 or float(crops.max()) > 1 + 1e-3):
        raise ValueError(f"{fn}: {what}.crops have values in [{float(crops.min()):.3g}, "
                         f"{float(crops.max()):.3g}], outside [0, 1]: the model read "
                         "normalised images; undo the normalisation (x * std + mean) of the "
                         "crops, e.g. dataclasses.replace(scale_cam, crops=...).")
    if crops.is_floating_point():
        crops = crops.clamp(0.0, 1.0)
    seen = [_rgb(fn, crops[i], f"{what}.crops[{i}]") for i in range(n)]
    crop_maps = _map_array(fn, f"{what}.crop_maps", sc.crop_maps, (n, *seen[0].shape[:2]),
                           "(B, h, w) of its crops")
    regions = _tensor(sc.regions).double()
    if tuple(regions.shape) != (n, 3) or not torch.isfinite(regions).all() or bool(
            (regions[:, 2] <= 0).any()):
        raise ValueError(f"{fn}: {what}.regions must be ({n}, 3) finite (t_x, t_y, t_l) with "
                         f"t_l > 0, got shape {tuple(regions.shape)}.")
    return maps, crop_maps, seen, regions


def _crop_boxes(box: torch.Tensor, region: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Pixel boxes ``(K, 4)`` of the image in the pixels of a crop of ``region``
    (``(4,)`` pixel xyxy) zoomed to ``hw``, clipped to it; the boxes it does not
    show are dropped."""
    inside = _in_crop(box, region, hw)  # (K, 4)
    h, w = hw
    shown = (inside[:, 2] > 0) & (inside[:, 3] > 0) & (inside[:, 0] < w) & (inside[:, 1] < h)
    return clip_boxes_to_image(inside[shown], (h, w))  # (K', 4)


def draw_scale_cams(
    images: Array,
    scale_cams: Sequence[ScaleCam],
    boxes: Mapping[str, Array] | None = None,
    scale_names: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    *,
    alpha: float = 0.5,
    cmap: str | Colormap = CAM_CMAP,
    max_rows: int = 3,
    colorbar: bool = True,
) -> Figure:
    """Where each scale of an RA-CNN looks: one row per image, two panels per scale.

    The first panel of a scale is the zoomed input it classified with its map
    (``crop_maps``) and the ground-truth boxes it shows (mapped through its
    region); the second is the original image with the map pasted into the
    region (``maps``, zero outside) and the region outlined, in the colour
    :func:`~hmglib.viz.crops.draw_attention_regions` gives that scale (scale 1's
    region, the whole image, is not outlined). Under it, the zoom ``1 / (2 t_l)``.

    Args:
        images: ``(B, 3, H, W)`` float in ``[0, 1]`` (or uint8), ``B <= max_rows``.
        scale_cams: one :class:`~hmglib.cam.ScaleCam` per scale (what
            :func:`hmglib.cam.scale_cam` returns for these images): ``maps``
            ``(B, H, W)`` and ``crop_maps`` ``(B, h, w)`` in ``[0, 1]``, ``crops``
            ``(B, 3, h, w)`` in ``[0, 1]`` and ``regions`` ``(B, 3)`` ``(t_x, t_y, t_l)``.
        boxes: optional ``{kind: (B, 4) or (B, K, 4) float pixel xyxy}``; rows of NaN
            are padding.
        scale_names: optional names, one per scale (default ``"scale 1"``, …).
        row_labels: optional ``B`` labels, one per row.
        alpha: the maps' weight over the image, in ``[0, 1]``.
        cmap: the maps' colormap (a name or a Colormap).
        max_rows: the most images drawn, ``>= 1``.
        colorbar: draw the colour bar.

    Returns:
        A Figure at most :data:`~hmglib.viz.page.PAGE_WIDTH_IN` wide with
        ``B * 2 S`` image axes row by row (then the colour bar's).

    Raises:
        TypeError: ``scale_cams`` not a list, or an entry that is not a ScaleCam.
        ValueError: images as :func:`draw_cams` refuses them; no scale or more than
            four; a ScaleCam whose maps, crops or regions do not fit the images
            (crops outside ``[0, 1]``: normalised); malformed boxes; names or
            labels of the wrong length.
    """
    fn = "draw_scale_cams"
    max_rows = check_int(fn, "max_rows", max_rows, 1)
    pictures = _batch(fn, images)  # B x (H, W, 3)
    n = len(pictures)
    if n > max_rows:
        raise ValueError(f"{fn}: images holds {n} images but max_rows={max_rows}; draw fewer "
                         "(images[:k] with the ScaleCams of those images) or raise max_rows.")
    height, width = pictures[0].shape[:2]
    if not isinstance(scale_cams, Sequence) or isinstance(scale_cams, str):
        raise TypeError(f"{fn}: scale_cams must be a list of ScaleCams, one per scale, got "
                        f"{type(scale_cams).__name__}; one scale is [scale_cam(...)].")
    if not scale_cams:
        raise ValueError(f"{fn}: scale_cams is empty; give one ScaleCam per scale.")
    _panels_fit(fn, 2 * len(scale_cams), f"{len(scale_cams)} scales (two panels each)")
    parts = [_scale_parts(fn, sc, s, n, height, width) for s, sc in enumerate(scale_cams)]
    names = (_strings(fn, "scale_names", scale_names, len(parts)) if scale_names is not None
             else [f"scale {s + 1}" for s in range(len(parts))])
    rows = _strings(fn, "row_labels", row_labels, n)
    alpha = check_real(fn, "alpha", alpha, 0.0, 1.0, hint="the map's weight")
    colours = _colormap(fn, cmap)
    truth = _batch_boxes(fn, boxes, n, height, width)
    fig, axes, side = _grid(n, 2 * len(parts), height / width, any(rows), colorbar)
    drawn: dict[int, str] = {}
    for i in range(n):
        for s, (maps, crop_maps, seen, regions) in enumerate(parts):
            region = boxes_to_xyxy(regions[i:i + 1], height, width)[0]  # (4,)
            _draw_seen(axes[i, 2 * s], seen[i], crop_maps[i], truth, i, region, alpha, colours)
            ax = axes[i, 2 * s + 1]
            _show_rgb(ax, overlay(pictures[i].transpose(2, 0, 1), maps[i], alpha, colours))
            _outline(ax, truth, i)
            if not _is_whole(regions[i]):
                outline_box(ax, region, _region_color(s + 1), f"{names[s]} region", lw=1.3)
                drawn[s] = names[s]
            ax.set_xlabel(f"zoom ×{0.5 / float(regions[i, 2]):.1f}", fontsize=_SMALL_PT,
                          labelpad=2)
        if rows[i]:
            axes[i, 0].set_ylabel(_wrap(rows[i], 1.2), fontsize=_SMALL_PT)
    for s, name in enumerate(names):
        axes[0, 2 * s].set_title(_wrap(f"{name}: input", side), fontsize=FONT_PT)
        axes[0, 2 * s + 1].set_title(_wrap(f"{name}: on the image", side), fontsize=FONT_PT)
    if colorbar:
        _colorbar(fig, list(axes.flat), colours)
    _box_legend(fig, truth, [(f"{drawn[s]} region", _region_color(s + 1)) for s in sorted(drawn)])
    return fig


def _draw_seen(ax: Axes, crop: np.ndarray, crop_map: np.ndarray, truth, i: int,
               region: torch.Tensor, alpha: float, cmap: Colormap) -> None:
    """A scale's input ``(h, w, 3)`` under its map ``(h, w)``, with the boxes it shows."""
    _show_rgb(ax, overlay(crop.transpose(2, 0, 1), crop_map, alpha, cmap))
    hw = crop.shape[:2]
    for kind, color, per in truth:
        for box in _crop_boxes(per[i], region.double(), hw):
            outline_box(ax, box, color, kind, lw=1.3)
    ax.set_xlabel(f"{hw[0]}×{hw[1]} px", fontsize=_SMALL_PT, labelpad=2)


# ------------------------------------------------------------------ cam grid
def draw_cam_grid(
    image: Array,
    maps: Mapping[str, Mapping[str, Array]],
    boxes: Mapping[str, Array] | None = None,
    notes: Mapping[str, Mapping[str, str]] | None = None,
    *,
    image_title: str = "image",
    alpha: float = 0.5,
    cmap: str | Colormap = CAM_CMAP,
    colorbar: bool = True,
) -> Figure:
    """One image, many maps: a row per row name (e.g. a CAM method), a column per
    column name (e.g. a level), the image in an extra first column (first row).

    A cell that ``maps`` leaves out (a method without that level) stays empty and
    says so. Every panel outlines the image's boxes.

    Args:
        image: ``(3, H, W)`` float in ``[0, 1]`` (or uint8).
        maps: ``{row: {column: (H, W) float in [0, 1]}}``, e.g. ``{"gradcam":
            {"order": ..., "species": ...}, "scorecam": {...}}``; the columns in
            the order they first appear; at most 6 rows and 7 columns.
        boxes: optional ``{kind: (4,) or (K, 4) float pixel xyxy}``; rows of NaN are
            padding.
        notes: optional ``{row: {column: text}}`` written under those cells (e.g. a
            score).
        image_title: the image panel's title.
        alpha: the maps' weight over the image, in ``[0, 1]``.
        cmap: the maps' colormap (a name or a Colormap).
        colorbar: draw the colour bar.

    Returns:
        A Figure at most :data:`~hmglib.viz.page.PAGE_WIDTH_IN` wide: ``R x (1 + C)``
        cells row by row, the first column's cells below the image removed
        (``1 + R C`` image axes, then the colour bar's); an empty cell has no image
        and the text ``"not computed"``.

    Raises:
        ValueError: a malformed image; no rows, a row without columns, too many
            rows or columns; a map not ``(H, W)`` in ``[0, 1]``; malformed boxes; a
            note for no cell.
        TypeError: an image neither float nor uint8.
    """
    fn = "draw_cam_grid"
    rgb = _rgb(fn, image)  # (H, W, 3)
    height, width = rgb.shape[:2]
    rows = _named(fn, "maps", maps, "{row: {column: (H, W) map}}, e.g. {'gradcam': "
                  "{'order': cam}}")
    if len(rows) > _MAX_GRID_ROWS:
        raise ValueError(f"{fn}: maps holds {len(rows)} rows; at most {_MAX_GRID_ROWS} fit the "
                         "page: split them over several figures.")
    cells: dict[tuple[str, str], np.ndarray] = {}
    columns: list[str] = []
    for row, per in rows:
        for col, m in _named(fn, f"maps[{row!r}]", per, "{column: (H, W) map}"):
            cells[row, col] = _map_array(fn, f"maps[{row!r}][{col!r}]", m, (height, width),
                                         "(H, W) of the image")
            columns += [col] if col not in columns else []
    _panels_fit(fn, 1 + len(columns), f"the image and {len(columns)} columns")
    written = _grid_notes(fn, notes, cells)
    alpha = check_real(fn, "alpha", alpha, 0.0, 1.0, hint="the map's weight")
    colours = _colormap(fn, cmap)
    truth = _one_image_boxes(fn, boxes, height, width)
    fig, axes, side = _grid(len(rows), 1 + len(columns), height / width, True, colorbar)
    _show_image(axes[0, 0], rgb)
    _outline(axes[0, 0], truth, 0)
    axes[0, 0].set_title(_wrap(image_title, side), fontsize=FONT_PT)
    for r in range(1, len(rows)):
        axes[r, 0].remove()
    for r, (row, _) in enumerate(rows):
        for c, col in enumerate(columns, start=1):
            ax = axes[r, c]
            if (row, col) in cells:
                _show_rgb(ax, overlay(rgb.transpose(2, 0, 1), cells[row, col], alpha, colours))
                _outline(ax, truth, 0)
                if (row, col) in written:
                    ax.set_xlabel(written[row, col], fontsize=_SMALL_PT, labelpad=2)
            else:
                _empty(ax, "not computed")
        axes[r, 1].set_ylabel(_wrap(row, 1.2), fontsize=FONT_PT)
    for c, col in enumerate(columns, start=1):
        axes[0, c].set_title(_wrap(col, side), fontsize=FONT_PT)
    if colorbar:
        _colorbar(fig, list(fig.axes), colours)  # the cells left
    _box_legend(fig, truth)
    return fig


def _grid_notes(fn: str, notes, cells: Mapping[tuple[str, str], np.ndarray]
                ) -> dict[tuple[str, str], str]:
    """``notes`` (row → column → text) checked against the cells drawn."""
    if notes is None:
        return {}
    out = {}
    for row, per in _named(fn, "notes", notes, "{row: {column: text}}"):
        for col, text in _named(fn, f"notes[{row!r}]", per, "{column: text}"):
            if (row, col) not in cells:
                raise ValueError(f"{fn}: notes[{row!r}][{col!r}] names no map of maps; give "
                                 "notes only for the cells drawn.")
            out[row, col] = str(text)
    return out


def _empty(ax: Axes, text: str) -> None:
    """An axes without an image, saying why (its ticks hidden, not removed: an axis
    shared with other panels keeps theirs)."""
    ax.tick_params(left=False, bottom=False, labelleft=False, labelbottom=False)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center",
            fontsize=_SMALL_PT, color="0.4")


# ------------------------------------------------------------------ localisation
def _localisation_table(fn: str, frame, metric: str, by: str) -> pd.DataFrame:
    """The rows of ``metric`` with a finite ``value`` in ``[0, 1]``, one per seed."""
    import pandas as pd

    data = pd.DataFrame(frame)
    need = ["family", by, "method", "box", "metric", "seed", "value"]
    missing = [c for c in need if c not in data.columns]
    if missing or data.empty:
        raise ValueError(f"{fn}: frame needs rows with the columns {need}; it has {len(data)} "
                         f"rows and lacks {missing}"
                         + (" (a table with 'unit' for the level: pass by='unit')."
                            if by == "level" and "unit" in data.columns else "."))
    present = list(dict.fromkeys(str(m) for m in data.metric))
    check_choice(fn, "metric", metric, present, hint="the metrics of the frame")
    data = data[data.metric.astype(str) == metric].copy()
    data["value"] = pd.to_numeric(data.value, errors="coerce")
    data = data[np.isfinite(data.value.to_numpy(dtype=float))]
    bad = data[(data.value < 0) | (data.value > 1)]
    if len(bad):
        raise ValueError(f"{fn}: frame holds the {metric} value {float(bad.value.iloc[0]):g}, "
                         "outside [0, 1]; the scores are shares (a percentage divided by 100).")
    keys = ["family", by, "method", "box", "seed"]
    twice = data[data.duplicated(keys, keep=False)]
    if len(twice):
        row = twice.iloc[0]
        raise ValueError(f"{fn}: frame holds {int(data.duplicated(keys, keep=False).sum())} rows "
                         f"for the same family, {by}, method, box and seed (e.g. "
                         f"{row.family}, {row[by]}, {row.method}, {row.box}, seed {row.seed}); "
                         "give one value per seed, the mean over images.")
    return data


def _methods_of(fn: str, data: pd.DataFrame, methods, references: list[str]) -> list[str]:
    """The CAM methods drawn as bars: ``methods``, or every non-reference one."""
    found = list(dict.fromkeys(str(m) for m in data.method))
    if methods is None:
        chosen = [m for m in found if m not in references]
    else:
        chosen = [methods] if isinstance(methods, str) else [str(m) for m in methods]
        for m in chosen:
            check_choice(fn, "methods", m, [x for x in found if x not in references])
    if not chosen:
        raise ValueError(f"{fn}: the frame holds only the reference methods {found}; a bar "
                         "needs a CAM method (e.g. 'gradcam').")
    return chosen


def _seed_stats(values: np.ndarray) -> tuple[float, float]:
    """The mean and the sample standard deviation (0 for one seed) of ``values``."""
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def draw_localisation(
    frame,
    metric: str = "energy",
    *,
    references: Sequence[str] = ("random", "centre"),
    methods: Sequence[str] | None = None,
    by: str = "level",
    ylim: tuple[float, float] | None = (0.0, 1.0),
    title: str | None = None,
) -> Figure:
    """A localisation table as bars: one panel per family (row) and box kind
    (column), one group of bars per level, one bar per CAM method at the mean
    over seeds with an error bar of plus or minus the spread (the sample
    standard deviation over seeds), and the reference methods as horizontal
    lines across each group (what a map scores without looking at the image).

    A family without a box kind (SARB has no part boxes) gets an empty panel
    that says so; a method or reference missing at a level leaves that bar or
    line out.

    Args:
        frame: a pandas DataFrame (or what ``pandas.DataFrame`` takes) in long form
            with the columns ``family`` (``"HRN"``, ``"RA-CNN"``, ``"SARB"``), the
            level column ``by`` (``"order"``, ``"scale 1"``, ``"class"``),
            ``method`` (``"gradcam"``, …, and the references), ``box``
            (``"object"``, ``"part"``), ``metric`` (``"pointing"``, ``"energy"``),
            ``seed`` and ``value``: one row per seed, the mean over images, in
            ``[0, 1]`` (NaN values are left out).
        metric: the metric drawn, one of the frame's.
        references: the methods drawn as lines (default ``("random", "centre")``,
            :data:`hmglib.cam.REFERENCES`).
        methods: the CAM methods drawn as bars, in order (default: every method of
            the frame that is not a reference, in order of appearance).
        by: the column that names the levels (``"unit"`` for a table that calls
            them so).
        ylim: the value axis' limits (``None``: matplotlib's).
        title: optional figure title.

    Returns:
        A Figure at most :data:`~hmglib.viz.page.PAGE_WIDTH_IN` wide with one axes
        per (family, box kind), row by row; in each, one bar per (method, level)
        drawn, labelled with the method, an error bar per bar and one line per
        (reference, level) drawn, labelled ``"<reference> (reference)"``.

    Raises:
        ValueError: a frame without those columns or rows; an unknown metric or
            method; values outside ``[0, 1]``; two rows for one seed; no CAM
            method.
    """
    fn = "draw_localisation"
    if isinstance(references, str):
        references = (references,)
    refs = [str(r) for r in references]
    data = _localisation_table(fn, frame, metric, by)
    families = list(dict.fromkeys(str(f) for f in data.family))
    kinds = list(dict.fromkeys(str(b) for b in data.box))
    if not families:
        raise ValueError(f"{fn}: frame has no finite {metric} values to draw.")
    cams = _methods_of(fn, data, methods, refs)
    width = PAGE_WIDTH_IN if len(kinds) > 1 else min(PAGE_WIDTH_IN, 4.2)
    fig, axes = plt.subplots(len(families), len(kinds), figsize=(width, 2.2 * len(families)
                                                                  + 0.8),
                             layout="constrained", squeeze=False, sharey=True)
    for r, family in enumerate(families):
        rows = data[data.family.astype(str) == family]
        levels = list(dict.fromkeys(str(v) for v in rows[by]))
        for c, kind in enumerate(kinds):
            ax = axes[r, c]
            here = rows[rows.box.astype(str) == kind]
            ax.set_title(f"{family}: {kind} box", fontsize=FONT_PT)
            if here.empty:
                _empty(ax, f"no {kind} boxes")
                continue
            _localisation_panel(ax, here, levels, cams, refs, by)
            if c == 0:
                ax.set_ylabel(_wrap(_METRIC_LABELS.get(metric, metric), 1.9), fontsize=FONT_PT)
            if ylim is not None:
                ax.set_ylim(*ylim)
    handles: list[Patch | Line2D] = [Patch(color=level_color(k), label=m)
                                     for k, m in enumerate(cams)]
    handles += [Line2D([], [], color=_REFERENCE_COLORS[k % 3], ls=_REFERENCE_STYLES[k % 3],
                       lw=1.5, label=f"{ref} (reference)")
                for k, ref in enumerate(refs) if ref in set(data.method.astype(str))]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5),
               fontsize=_SMALL_PT, frameon=False)
    if title:
        fig.suptitle(title, fontsize=FONT_PT + 1)
    return fig


def _localisation_panel(ax: Axes, rows: pd.DataFrame, levels: list[str], cams: list[str],
                        refs: list[str], by: str) -> None:
    """The bars of one family and box kind, and the reference lines.

    The bars of a level sit side by side in the order of ``cams``, one slot per
    method the panel has (a method the family lacks takes no room); a method
    keeps its colour, :func:`~hmglib.viz.colors.level_color` of its place in ``cams``.
    """
    present = set(rows.method.astype(str))
    here = [(k, m) for k, m in enumerate(cams) if m in present]
    bar_w = 0.8 / max(1, len(here))
    at_level = {lv: rows[rows[by].astype(str) == lv] for lv in levels}
    for slot, (k, method) in enumerate(here):
        for i, lv in enumerate(levels):
            values = at_level[lv][at_level[lv].method.astype(str) == method].value.to_numpy(
                dtype=float)
            if values.size == 0:
                continue
            mean, sd = _seed_stats(values)
            x = i + (slot - (len(here) - 1) / 2) * bar_w
            ax.bar(x, mean, bar_w * 0.92, color=level_color(k), alpha=0.9, label=method)
            ax.errorbar(x, mean, yerr=sd, color="black", capsize=2.5, lw=1)
    for k, ref in enumerate(refs):
        for i, lv in enumerate(levels):
            values = at_level[lv][at_level[lv].method.astype(str) == ref].value.to_numpy(
                dtype=float)
            if values.size == 0:
                continue
            ax.hlines(values.mean(), i - 0.45, i + 0.45, colors=_REFERENCE_COLORS[k % 3],
                      linestyles=_REFERENCE_STYLES[k % 3], lw=1.5, zorder=3,
                      label=f"{ref} (reference)")
    ax.set_xticks(range(len(levels)), labels=levels)
    ax.set_xlim(-0.6, len(levels) - 0.4)
    ax.tick_params(labelsize=_SMALL_PT)
    ax.grid(True, axis="y", alpha=0.3)


# ------------------------------------------------------------------ by hand vs package
def draw_hand_vs_package(
    image: Array,
    hand: Array,
    package: Array,
    *,
    names: tuple[str, str] = ("by hand", "grad-cam package"),
    alpha: float = 0.5,
    cmap: str | Colormap = CAM_CMAP,
) -> Figure:
    """A Grad-CAM map computed by hand beside the package's, and how far apart
    they are: four panels, the image, each map laid over it (:func:`overlay`), and
    ``|hand - package|`` on the maps' scale ``[0, 1]`` (dark where they agree),
    titled with its maximum.

    Args:
        image: ``(3, H, W)`` float in ``[0, 1]`` (or uint8).
        hand: ``(H, W)`` float in ``[0, 1]``, the map computed by hand.
        package: ``(H, W)`` float in ``[0, 1]``, the package's map of the same class.
        names: the titles of the two maps.
        alpha: the maps' weight over the image, in ``[0, 1]``.
        cmap: the maps' colormap (a name or a Colormap).

    Returns:
        A Figure at most :data:`~hmglib.viz.page.PAGE_WIDTH_IN` wide with four
        image axes and two colour bars'; the last panel holds the ``(H, W)``
        absolute difference, its title ``"|difference|\\nmax 2.4e-07"``.

    Raises:
        ValueError: a malformed image; a map not ``(H, W)`` of the image, not finite
            or outside ``[0, 1]``; ``names`` not two strings; ``alpha`` outside
            ``[0, 1]``; an unknown colormap.
        TypeError: an image neither float nor uint8.
    """
    fn = "draw_hand_vs_package"
    rgb = _rgb(fn, image)  # (H, W, 3)
    height, width = rgb.shape[:2]
    a = _map_array(fn, "hand", hand, (height, width), "(H, W) of the image")
    b = _map_array(fn, "package", package, (height, width), "(H, W) of the image")
    titles = _strings(fn, "names", names, 2)
    alpha = check_real(fn, "alpha", alpha, 0.0, 1.0, hint="the map's weight")
    colours = _colormap(fn, cmap)
    diff = np.abs(a - b)  # (H, W)
    extra = 2 * _MARGIN_IN + 2 * _COLORBAR_IN
    side = min(_PANEL_IN, (PAGE_WIDTH_IN - extra) / 4)
    fig, axes = plt.subplots(1, 4, figsize=(min(PAGE_WIDTH_IN, 4 * side + extra),
                                            side * height / width + 1.0),
                             layout="constrained", squeeze=False)
    axes = axes[0]
    _show_image(axes[0], rgb)
    axes[0].set_title("image", fontsize=FONT_PT)
    for ax, m, title in zip(axes[1:3], (a, b), titles, strict=True):
        _show_rgb(ax, overlay(rgb.transpose(2, 0, 1), m, alpha, colours))
        ax.set_title(_wrap(title, side), fontsize=FONT_PT)
    axes[3].imshow(diff, cmap=_DIFF_CMAP, vmin=0.0, vmax=1.0, interpolation="nearest",
                   extent=(0, width, height, 0))
    axes[3].set_xticks([])
    axes[3].set_yticks([])
    axes[3].set_title(f"|difference|\nmax {float(diff.max()):.2g}", fontsize=FONT_PT)
    _colorbar(fig, list(axes[:3]), colours)
    _colorbar(fig, [axes[3]], _colormap(fn, _DIFF_CMAP), label="|difference|")
    return fig
