"""RA-CNN's attention crops drawn: the paper's soft boxcar mask and its
derivative, the region of the image each scale attends and the input it sees,
and one box cropped both ways (:func:`hmglib.models.racnn.attention_crop`).

Attention boxes are ``(t_x, t_y, t_l)``: the centre as a fraction of the width
and the height from the top-left corner, and the half-side as a fraction of the
side. The figures draw them, and the ground-truth pixel boxes ``xyxy`` beside
them, as rectangles on top of the image in its own pixel coordinates (pixel
``j`` spans ``[j, j + 1)``), each with a dark outline so that it reads on any
colour: the object box in ``BOX_COLORS[0]``, the part box in ``BOX_COLORS[1]``
and the region of scale ``s`` (counted from 1) in ``BOX_COLORS[2 + (s - 2) % 4]``
(:data:`~hmglib.viz.colors.BOX_COLORS`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from hmglib.checks import check_choice, check_int, check_real
from hmglib.models.racnn import CROP_METHODS, attention_crop, boxcar_mask, boxes_to_xyxy
from hmglib.viz._axes import (
    as_numpy,
    check_boxes,
    image_to_uint8,
    outline_box,
    show_picture,
)
from hmglib.viz.colors import BOX_COLORS, level_color
from hmglib.viz.page import FONT_PT, PAGE_WIDTH_IN

__all__ = ["draw_boxcar_mask", "draw_attention_regions", "draw_crop_views"]

#: What :func:`draw_boxcar_mask` differentiates the mask with respect to.
_WRT = {"t_x": 0, "t_l": 2}
_MAX_SAMPLES = 2048  # of the curves across x: the mask is evaluated on this many squared
_SMALL_PT = FONT_PT - 1  # legends and axis notes; the figures fit the page, so as shown


# ------------------------------------------------------------------ helpers
def _region_color(scale: int) -> str:
    """The colour of scale ``scale``'s region (counted from 1): yellow, red,
    green, purple for scales 2, 3, 4, 5, then again."""
    return BOX_COLORS[2 + (scale - 2) % 4]


def _as_box(fn: str, box, what: str = "box") -> torch.Tensor:
    """One attention box ``(t_x, t_y, t_l)`` as a ``(3,)`` float64 tensor.

    Raises:
        ValueError: not three finite numbers, or a half-side ``t_l <= 0``.
    """
    try:
        t = torch.as_tensor(as_numpy(box)).reshape(-1)  # (3,)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{fn}: {what}={box!r} must be three numbers (t_x, t_y, t_l).") from err
    if t.numel() != 3:
        raise ValueError(f"{fn}: {what} has {t.numel()} numbers; give one box (t_x, t_y, t_l): "
                         "the centre and the half-side as fractions of the image side.")
    if not torch.isfinite(t).all():
        raise ValueError(f"{fn}: {what}={t.tolist()} holds nan or inf.")
    if t[2] <= 0:
        raise ValueError(f"{fn}: {what} has half-side t_l={float(t[2]):g}; it must be > 0 "
                         "(a fraction of the image side, e.g. 0.25 for half the side).")
    return t


def _outside(box: torch.Tensor) -> bool:
    """Whether the square of ``box`` ``(..., 3)`` reaches outside the image."""
    tx, ty, tl = box.unbind(-1)
    return bool(((tx - tl < -1e-9) | (ty - tl < -1e-9) | (tx + tl > 1 + 1e-9)
                 | (ty + tl > 1 + 1e-9)).any())


def _float_image(fn: str, image, what: str = "image") -> tuple[torch.Tensor, torch.Tensor]:
    """One image validated: ``(pixels, shown)``, ``(C, H, W)`` float32 in ``[0, 1]``
    as given (uint8 divided by 255) and its ``(3, H, W)`` uint8 picture."""
    shown = image_to_uint8(fn, image, what)  # (3, H, W)
    t = image.detach().cpu() if isinstance(image, torch.Tensor) else torch.as_tensor(
        np.asarray(image))
    pixels = t.float() if t.is_floating_point() else t.float() / 255  # (C, H, W)
    return pixels, shown


def _names(fn: str, what: str, names, n: int, default: list[str]) -> list[str]:
    """``names`` as ``n`` strings (``default`` when None)."""
    if names is None:
        return default
    names = [str(x) for x in names]
    if len(names) != n:
        raise ValueError(f"{fn}: {len(names)} {what} for {n}; give one each, or None.")
    return names


# ----------------------------------------------------------------- the mask
def _sharpness_list(fn: str, sharpness) -> list[float]:
    """``sharpness`` (one ``k`` or several) as a list of floats ``> 0``."""
    try:
        values = list(sharpness)
    except TypeError:  # one number (a float, a NumPy scalar, a 0-d tensor)
        values = [sharpness]
    if not values:
        raise ValueError(f"{fn}: sharpness is empty; give one k or several, e.g. (0.5, 2, 10).")
    return [check_real(fn, "sharpness", k, 0.0, closed_low=False,
                       hint="k of the logistic, in 1 / pixel") for k in values]


def _mask_profile(box: torch.Tensor, size: int, k: float, oversample: int,
                  wrt: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mask across x through the box's centre and its derivative.

    The mask of a ``size x size`` image is evaluated ``oversample`` times finer
    (``boxcar_mask`` of a ``size * r`` image at ``k / r``, the same function of
    ``x`` in pixels of the ``size`` image); the derivative is a Jacobian-vector product by autograd
    through :func:`~hmglib.models.racnn.boxcar_mask`.

    Returns:
        ``x`` ``(size * r,)`` in pixels, ``M`` ``(size * r,)`` in ``[0, 1]`` and
        ``dM / d wrt`` ``(size * r,)``.
    """
    fine = size * oversample
    tangent = torch.zeros(1, 3, dtype=torch.float64)
    tangent[0, _WRT[wrt]] = 1.0
    row = min(fine - 1, max(0, round(float(box[1]) * fine - 0.5)))  # nearest the centre

    def mask_row(b: torch.Tensor) -> torch.Tensor:
        return boxcar_mask(b, fine, fine, k / oversample)[0, row]  # (fine,)

    # a Jacobian-vector product by double back-propagation (no forward-mode AD)
    value, slope = torch.autograd.functional.jvp(mask_row, box[None], tangent)
    xs = (np.arange(fine) + 0.5) / oversample  # (fine,) in pixels
    return xs, value.detach().numpy(), slope.detach().numpy()


def draw_boxcar_mask(
    sharpness: float | Sequence[float] = (0.5, 2.0, 10.0),
    size: int = 64,
    box: Sequence[float] | torch.Tensor = (0.5, 0.5, 0.25),
    wrt: str = "t_x",
    log: bool = True,
    oversample: int = 8,
    title: str | None = None,
) -> Figure:
    """The paper's soft boxcar mask ``M`` (:func:`~hmglib.models.racnn.boxcar_mask`)
    and how its box learns through it, in one row of three panels at the page's
    width:

    (a) ``M`` across ``x`` on the row through the box's centre, one line per ``k``;
    (b) its derivative with respect to ``t_x`` (or ``t_l``) across ``x``, computed
        with autograd (a Jacobian-vector product) through ``boxcar_mask``, one line per ``k``; on
        a log scale (``log``) its magnitude, so that one sees that at ``k = 10``
        in pixel units it vanishes farther than about a pixel from the box's
        edges (the bands shaded there);
    (c) the 2-D mask at the largest ``k``, with the box's outline.

    The box's edges ``(t_x - t_l) W`` and ``(t_x + t_l) W`` are marked in panels
    (a) and (b) (dashed). The curves sample ``M`` ``oversample`` times per pixel,
    so that the shape of a sharp edge shows; the 2-D mask is the one
    :func:`~hmglib.models.racnn.attention_crop` multiplies an image with, one value
    per pixel.

    Args:
        sharpness: ``k > 0`` in 1 / pixel (10 in the paper), one or several.
        size: the side ``H = W`` of the square image, in pixels, ``>= 2``.
        box: ``(t_x, t_y, t_l)``: centre and half-side as fractions of the side.
        wrt: ``"t_x"`` or ``"t_l"``, what panel (b) differentiates with respect to.
        log: panel (b) shows ``|dM / d wrt|`` on a log scale (down to ``1e-4`` of its
            largest value); ``False``: the signed derivative on a linear scale. The
            lines' data are the values drawn (absolute values when ``log``).
        oversample: samples per pixel of the curves, ``>= 1``, with ``size *
            oversample <= 2048``.
        title: optional figure title.

    Returns:
        A Figure :data:`~hmglib.viz.page.PAGE_WIDTH_IN` wide with three axes; in
        (a) and (b) one line per ``k``, labelled ``"k = 10"`` (``format(k, "g")``).

    Raises:
        ValueError: no ``k`` or a ``k <= 0``; ``size < 2``; a box that is not three
            finite numbers or has ``t_l <= 0``; an unknown ``wrt``; ``oversample < 1``
            or ``size * oversample > 2048``.
    """
    fn = "draw_boxcar_mask"
    ks = _sharpness_list(fn, sharpness)
    size = check_int(fn, "size", size, 2)
    b = _as_box(fn, box)  # (3,)
    wrt = check_choice(fn, "wrt", wrt, tuple(_WRT))
    oversample = check_int(fn, "oversample", oversample, 1)
    if size * oversample > _MAX_SAMPLES:
        raise ValueError(f"{fn}: size * oversample = {size * oversample} samples across the "
                         f"image; at most {_MAX_SAMPLES} are drawn (the mask is evaluated on "
                         "that many squared): lower oversample.")
    fig, axes = plt.subplots(1, 3, figsize=(PAGE_WIDTH_IN, 2.7), layout="constrained",
                             gridspec_kw={"width_ratios": [1.15, 1.15, 0.8]})
    ax_m, ax_d, ax_2d = axes
    edges = [float(b[0] - b[2]) * size, float(b[0] + b[2]) * size]
    for e in edges:
        ax_d.axvspan(e - 1, e + 1, color="0.85", lw=0, zorder=0)
        for ax in (ax_m, ax_d):
            ax.axvline(e, color="0.35", ls="--", lw=0.8, zorder=1)
    peak = 0.0
    for i, k in enumerate(ks):
        xs, value, slope = _mask_profile(b, size, k, oversample, wrt)
        slope = np.abs(slope) if log else slope
        peak = max(peak, float(np.abs(slope).max()))
        ax_m.plot(xs, value, color=level_color(i), lw=1.4, label=f"k = {k:g}", zorder=2)
        ax_d.plot(xs, slope, color=level_color(i), lw=1.2, label=f"k = {k:g}", zorder=2)
    derivative = f"\\partial M / \\partial {wrt}"
    shown = f"$|{derivative}|$" if log else f"${derivative}$"
    if log and peak > 0:
        ax_d.set_yscale("log")
        ax_d.set_ylim(peak * 1e-4, peak * 3)
    ax_m.set_title("(a) M across x, through the centre", fontsize=FONT_PT)
    ax_m.set_ylabel("M", fontsize=FONT_PT)
    ax_m.set_ylim(-0.05, 1.12)
    ax_m.legend(handles=[*ax_m.lines[len(edges):],
                         plt.Line2D([], [], color="0.35", ls="--", lw=0.8, label="box edges")],
                fontsize=_SMALL_PT, loc="center", frameon=False, handlelength=1.4)
    ax_d.set_title(f"(b) {shown} across x", fontsize=FONT_PT)
    ax_d.set_ylabel(shown, fontsize=FONT_PT)
    ax_d.legend(handles=[Patch(color="0.85", label="edge ± 1 px")], fontsize=_SMALL_PT,
                loc="upper center", frameon=False)
    for ax in (ax_m, ax_d):
        ax.set_xlim(0, size)
        ax.set_xlabel("x (pixels)", fontsize=FONT_PT)
        ax.tick_params(labelsize=_SMALL_PT)
    k_max = max(ks)
    mask = boxcar_mask(b[None], size, size, k_max)[0]  # (size, size)
    ax_2d.imshow(mask.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest",
                 extent=(0, size, size, 0))
    outline_box(ax_2d, boxes_to_xyxy(b[None], size, size)[0], BOX_COLORS[2], "box", lw=1.2)
    ax_2d.set_title(f"(c) M at k = {k_max:g}", fontsize=FONT_PT)
    ax_2d.set_xlabel("x (pixels)", fontsize=FONT_PT)
    ax_2d.set_ylabel("y (pixels)", fontsize=FONT_PT)
    ax_2d.tick_params(labelsize=_SMALL_PT)
    if title:
        fig.suptitle(title, fontsize=FONT_PT + 1)
    return fig


# ---------------------------------------------------------- attention regions
def _check_batch(fn: str, images, what: str, n: int | None = None) -> list[torch.Tensor]:
    """A batch ``(N, 3, H, W)`` as ``N`` ``(3, H, W)`` uint8 pictures."""
    t = images.detach().cpu() if isinstance(images, torch.Tensor) else torch.as_tensor(
        np.asarray(images))
    if t.dim() != 4 or t.shape[1] != 3:
        raise ValueError(f"{fn}: {what} must be a batch (N, 3, H, W), got shape "
                         f"{tuple(t.shape)}; one image becomes a batch with image[None].")
    if n is not None and t.shape[0] != n:
        raise ValueError(f"{fn}: {what} holds {t.shape[0]} images but images holds {n}; give "
                         "one per image.")
    if t.shape[0] == 0:
        raise ValueError(f"{fn}: {what} is empty; give at least one image.")
    return [image_to_uint8(fn, t[i], f"{what}[{i}]") for i in range(t.shape[0])]


def _check_regions(fn: str, regions, n: int) -> torch.Tensor:
    """``regions`` as an ``(N, S, 3)`` float64 tensor of valid boxes."""
    r = torch.as_tensor(as_numpy(regions))
    if r.dim() != 3 or r.shape[2] != 3 or r.shape[1] < 1:
        raise ValueError(f"{fn}: regions must have shape (N, S, 3): for each image one "
                         f"(t_x, t_y, t_l) per scale (RACNNOutput.regions), got shape "
                         f"{tuple(r.shape)}.")
    if r.shape[0] != n:
        raise ValueError(f"{fn}: regions holds {r.shape[0]} images but images holds {n}; give "
                         "one row of regions per image.")
    if not torch.isfinite(r).all():
        raise ValueError(f"{fn}: regions hold nan or inf; check the network that made them.")
    if (r[..., 2] <= 0).any():
        raise ValueError(f"{fn}: every half-side t_l of regions must be > 0, got min "
                         f"{float(r[..., 2].min()):g}.")
    return r


def _check_gt(fn: str, boxes, what: str, n: int, height: int, width: int) -> torch.Tensor | None:
    """Ground-truth boxes ``(N, 4)`` pixel ``xyxy``, one per image (or None)."""
    if boxes is None:
        return None
    b = torch.as_tensor(as_numpy(boxes))
    if b.dim() != 2 or b.shape[1] != 4:
        raise ValueError(f"{fn}: {what} must have shape (N, 4), one pixel xyxy box per image, "
                         f"got shape {tuple(b.shape)}.")
    if b.shape[0] != n:
        raise ValueError(f"{fn}: {what} holds {b.shape[0]} boxes but images holds {n}; give "
                         "one box per image.")
    return torch.cat([check_boxes(fn, b[i:i + 1], height, width, f"{what}[{i}]")
                      for i in range(n)])  # (N, 4)


def _check_crops(fn: str, crops, n: int, scales: int) -> list[list[torch.Tensor]] | None:
    """``crops`` as ``S`` lists of ``N`` ``(3, h_s, w_s)`` uint8 pictures (or None)."""
    if crops is None:
        return None
    if isinstance(crops, torch.Tensor | np.ndarray) or not isinstance(crops, Sequence):
        raise TypeError(f"{fn}: crops must be a list of {scales} batches (N, 3, h_s, w_s), one "
                        f"per scale, got {type(crops).__name__}.")
    if len(crops) != scales:
        raise ValueError(f"{fn}: crops holds {len(crops)} batches for {scales} scales; give one "
                         "batch (N, 3, h_s, w_s) per scale: the input each scale saw.")
    return [_check_batch(fn, c, f"crops[{s}]", n) for s, c in enumerate(crops)]


def _is_whole(region: torch.Tensor) -> bool:
    """Whether ``region`` ``(3,)`` is the whole image ``(0.5, 0.5, 0.5)``."""
    return bool(torch.allclose(region, region.new_tensor([0.5, 0.5, 0.5]), atol=1e-6))


def _in_crop(xyxy: torch.Tensor, region: torch.Tensor, crop_hw: tuple[int, int]) -> torch.Tensor:
    """Pixel boxes ``(K, 4)`` of the image → pixel boxes of a crop of ``region``
    (``(4,)`` pixel ``xyxy`` of the image) zoomed to ``crop_hw``."""
    x0, y0, x1, y1 = region.unbind(-1)
    h, w = crop_hw
    sx, sy = w / (x1 - x0), h / (y1 - y0)
    return torch.stack([(xyxy[:, 0] - x0) * sx, (xyxy[:, 1] - y0) * sy,
                        (xyxy[:, 2] - x0) * sx, (xyxy[:, 3] - y0) * sy], 1)  # (K, 4)


def draw_attention_regions(
    images,
    regions,
    object_boxes=None,
    part_boxes=None,
    crops: Sequence[torch.Tensor] | None = None,
    scale_names: Sequence[str] | None = None,
    titles: Sequence[str] | None = None,
) -> Figure:
    """Where each scale of an RA-CNN looks: one row per image, and for each scale
    a panel of the image with that scale's region, then (with ``crops``) the
    input that scale saw beside it.

    The panel of scale ``s`` draws the regions of scales ``2..s``, nested, each in
    its own colour (scale 1's region is the whole image, drawn only if it is
    not); under it, the zoom of the region, ``1 / (2 t_l)``. The ground-truth
    boxes are drawn on every panel, and on every crop where the crop shows them
    (mapped through the crop's region). A legend names the colours. The figure
    is at most :data:`~hmglib.viz.page.PAGE_WIDTH_IN` wide and reads well up to
    4 images and 3 scales (it grows taller with more images).

    Args:
        images: ``(N, 3, H, W)`` float in ``[0, 1]`` (or uint8), a tensor or an array.
        regions: ``(N, S, 3)`` float ``(t_x, t_y, t_l)``, each scale's region in the
            coordinates of the original image (``RACNNOutput.regions``; scale 1:
            ``(0.5, 0.5, 0.5)``, the whole image), ``t_l > 0``.
        object_boxes: optional ``(N, 4)`` float pixel ``xyxy`` boxes of the objects
            (pixel ``j`` spans ``[j, j + 1)``), drawn in ``BOX_COLORS[0]``.
        part_boxes: optional ``(N, 4)`` pixel ``xyxy`` boxes of the parts, in
            ``BOX_COLORS[1]``.
        crops: optional list of ``S`` batches ``(N, 3, h_s, w_s)`` in ``[0, 1]``: the
            input each scale saw (scale 1: the image as the network read it).
        scale_names: optional ``S`` names (default ``"scale 1"``, …).
        titles: optional ``N`` row labels (e.g. the species and the predictions).

    Returns:
        A Figure with ``N * S`` axes (``2 * N * S`` with ``crops``), row by row.

    Raises:
        ValueError: ``images`` not ``(N, 3, H, W)`` or outside ``[0, 1]``;
            ``regions`` not ``(N, S, 3)``, not finite, with ``t_l <= 0``, or not one
            row per image; boxes not ``(N, 4)`` ``xyxy`` inside the image; ``crops``
            not one ``(N, 3, h, w)`` batch per scale; ``scale_names`` or
            ``titles`` of the wrong length.
        TypeError: ``crops`` is not a list.
    """
    fn = "draw_attention_regions"
    pictures = _check_batch(fn, images, "images")  # N x (3, H, W)
    n = len(pictures)
    height, width = pictures[0].shape[-2:]
    regs = _check_regions(fn, regions, n)  # (N, S, 3)
    scales = regs.shape[1]
    truth = [(name, _check_gt(fn, b, f"{name}_boxes", n, height, width), BOX_COLORS[k])
             for k, (name, b) in enumerate((("object", object_boxes), ("part", part_boxes)))]
    truth = [(name, b, c) for name, b, c in truth if b is not None]
    seen = _check_crops(fn, crops, n, scales)
    names = _names(fn, "scale_names", scale_names, scales,
                   [f"scale {s + 1}" for s in range(scales)])
    rows = _names(fn, "titles", titles, n, [""] * n)
    xyxy = boxes_to_xyxy(regs, height, width)  # (N, S, 4)
    per = 2 if seen is not None else 1
    fig, axes = _region_axes(n, scales * per, height / width, any(rows))
    drawn: set[int] = set()
    for i in range(n):
        for s in range(scales):
            ax = axes[i, s * per]
            show_picture(ax, pictures[i])
            for name, b, color in truth:
                outline_box(ax, b[i], color, name)
            for t in range(s + 1):
                if not _is_whole(regs[i, t]):
                    outline_box(ax, xyxy[i, t], _region_color(t + 1), f"{names[t]} region")
                    drawn.add(t)
            ax.set_xlabel(f"zoom ×{0.5 / float(regs[i, s, 2]):.1f}", fontsize=_SMALL_PT,
                          labelpad=2)
            if i == 0:
                whole = all(_is_whole(regs[j, s]) for j in range(n))
                ax.set_title(f"{names[s]}: {'the image' if whole else 'region'}",
                             fontsize=FONT_PT)
            if seen is not None:
                _draw_crop(axes[i, s * per + 1], seen[s][i], truth, i, xyxy[i, s])
                if i == 0:
                    axes[i, s * per + 1].set_title(f"{names[s]}: input", fontsize=FONT_PT)
        if rows[i]:
            axes[i, 0].set_ylabel(textwrap.fill(rows[i], 18), fontsize=_SMALL_PT)
    handles = [Patch(facecolor=c, edgecolor="black", label=name) for name, _, c in truth]
    handles += [Patch(facecolor=_region_color(t + 1), edgecolor="black",
                      label=f"{names[t]} region") for t in sorted(drawn)]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5),
                   fontsize=_SMALL_PT, frameon=False)
    return fig


def _region_axes(n: int, cols: int, aspect: float, row_labels: bool) -> tuple[Figure, np.ndarray]:
    """The ``(n, cols)`` axes of :func:`draw_attention_regions`, at most the page wide."""
    margin = 0.45 if row_labels else 0.15
    side = min(1.9, (PAGE_WIDTH_IN - margin) / cols)
    figsize = (min(PAGE_WIDTH_IN, side * cols + margin),
               n * (side * max(aspect, 1.0) + 0.2) + 0.6)
    fig, axes = plt.subplots(n, cols, figsize=figsize, layout="constrained", squeeze=False)
    return fig, axes


def _draw_crop(ax: Axes, picture: torch.Tensor, truth, i: int, region: torch.Tensor) -> None:
    """One scale's input in ``ax``, with the ground-truth boxes it shows."""
    show_picture(ax, picture)
    h, w = picture.shape[-2:]
    for name, b, color in truth:
        box = _in_crop(b[i:i + 1], region, (h, w))[0]  # (4,)
        if box[2] > 0 and box[3] > 0 and box[0] < w and box[1] < h:
            outline_box(ax, box, color, name)
    ax.set_xlabel(f"{h}×{w} px", fontsize=_SMALL_PT, labelpad=2)


# ---------------------------------------------------------------- crop views
def _methods(fn: str, methods) -> list[str]:
    names = [methods] if isinstance(methods, str) else list(methods)
    if not names:
        raise ValueError(f"{fn}: methods is empty; give one or more of {list(CROP_METHODS)}.")
    return [check_choice(fn, "methods", m, CROP_METHODS) for m in names]


def draw_crop_views(
    image,
    box: Sequence[float] | torch.Tensor,
    out_size: int,
    methods: str | Sequence[str] = ("grid", "mask"),
    sharpness: float = 10.0,
) -> Figure:
    """One image with an attention box, then the crop each method makes of it
    (:func:`~hmglib.models.racnn.attention_crop`), side by side.

    The title gives the box ``(t_x, t_y, t_l)`` with two decimals, its side in
    pixels ``2 t_l H`` and the zoom ``out_size / (2 t_l H)``; when the box's
    square reaches outside the image, a note under the image says so (the crop
    repeats the edge pixels there).

    Args:
        image: ``(3, H, W)`` float in ``[0, 1]`` (or uint8; ``(1, H, W)``: grey), a
            tensor or an array.
        box: ``(t_x, t_y, t_l)``: the centre and the half-side as fractions of the
            image's width and height, ``t_l > 0``.
        out_size: the crops' side ``s >= 1`` in pixels.
        methods: ``"grid"`` and/or ``"mask"`` (:data:`~hmglib.models.racnn.CROP_METHODS`).
        sharpness: the mask's ``k > 0`` in 1 / pixel (``"mask"`` only).

    Returns:
        A Figure at most :data:`~hmglib.viz.page.PAGE_WIDTH_IN` wide with
        ``1 + len(methods)`` axes: the image (with the box as a rectangle in its
        pixel coordinates), then each ``(s, s)`` crop.

    Raises:
        ValueError: a malformed image, a box that is not three finite numbers or
            has ``t_l <= 0``, ``out_size < 1``, no or an unknown method, ``k <= 0``.
        TypeError: an image neither float nor uint8.
    """
    fn = "draw_crop_views"
    pixels, picture = _float_image(fn, image)  # (C, H, W), (3, H, W)
    b = _as_box(fn, box)  # (3,)
    out_size = check_int(fn, "out_size", out_size, 1, hint="the crops' side in pixels")
    names = _methods(fn, methods)
    k = check_real(fn, "sharpness", sharpness, 0.0, closed_low=False)
    height, width = picture.shape[-2:]
    side = min(2.4, PAGE_WIDTH_IN / (1 + len(names)))
    fig, axes = plt.subplots(1, 1 + len(names), figsize=(side * (1 + len(names)), side + 0.8),
                             layout="constrained", squeeze=False)
    show_picture(axes[0, 0], picture)
    outline_box(axes[0, 0], boxes_to_xyxy(b[None], height, width)[0], BOX_COLORS[2], "box")
    axes[0, 0].set_title(f"image ({height}×{width} px)", fontsize=FONT_PT)
    if _outside(b):
        axes[0, 0].set_xlabel("the box reaches outside:\nedge pixels fill it",
                              fontsize=_SMALL_PT, color="#c44e52")
    for ax, method in zip(axes[0, 1:], names, strict=True):
        crop = attention_crop(pixels[None], b[None].float(), out_size, method, k)[0]  # (C, s, s)
        show_picture(ax, image_to_uint8(fn, crop.clamp(0.0, 1.0), "crop"))
        note = f", k = {k:g}" if method == "mask" else ""
        ax.set_title(f"{method} crop{note} ({out_size} px)", fontsize=FONT_PT)
    tx, ty, tl = (float(v) for v in b)
    box_side = 2 * tl * height  # the box's height in pixels of the image
    fig.suptitle(f"box $(t_x, t_y, t_l)$ = ({tx:.2f}, {ty:.2f}, {tl:.2f}): its {box_side:.1f} px "
                 f"→ {out_size} px, zoom ×{out_size / box_side:.2f}", fontsize=FONT_PT)
    return fig
