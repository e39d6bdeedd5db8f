"""SARB's representations and blends drawn: where each class looks (the
per-class attention of semantic decoupling), the targets that instance- and
prototype-level blending give a batch, the category features and their
prototypes in two dimensions, and how much the training loss fluctuates from
step to step.

Semantic decoupling gives each class ``c`` an attention map over the backbone's
``h x w`` feature map (a softmax over positions) and the category feature
``f_c``, the map's weighted sum of the features. Instance-level blending
(ILRB) replaces the feature of a class unknown in image ``n`` by
``alpha f_c^n + (1 - alpha) f_c^m``, ``m`` an image of the batch where ``c`` is
a known positive, with the soft target ``1 - alpha``; prototype-level blending
(PLRB) blends with a K-means prototype of the class instead,
``beta f_c^n + (1 - beta) p_c^k``, with the target ``1 - beta``.

Partial labels are coloured as everywhere in the book
(:data:`~hmglib.viz.colors.PARTIAL_COLORS`); a soft, blended target gets
:data:`BLEND_COLOR` and its value written in its cell.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from hmglib.checks import check_choice, check_int, check_seed
from hmglib.viz._axes import (
    as_numpy,
    check_boxes,
    image_to_uint8,
    outline_box,
    show_picture,
)
from hmglib.viz.colors import BLEND_COLOR, BOX_COLORS, LEVEL_COLORS, PARTIAL_COLORS
from hmglib.viz.page import CHAR_IN, FONT_PT, PAGE_WIDTH_IN

__all__ = [
    "draw_class_attention",
    "draw_blend_targets",
    "draw_feature_projection",
    "draw_step_losses",
]

#: The heat map laid over the image in :func:`draw_class_attention`.
_HEAT_CMAP = "inferno"
_HEAT_ALPHA = 0.6
#: Partial label states (-1, 0, 1) and complete ones (0, 1) as panel titles.
_PARTIAL_STATES = {-1: "known −", 0: "unknown", 1: "known +"}
_COMPLETE_STATES = {0: "absent", 1: "present"}
_METHODS = ("pca", "tsne")
#: What the figures take as an array: a tensor (any device), an array or nested lists.
Array = torch.Tensor | np.ndarray | Sequence
_SUM_ATOL = 1e-3  # of an attention map's sum to 1 (a float32 softmax is far closer)


# ------------------------------------------------------------------ helpers
def _array(fn: str, what: str, values, ndim: int, shape_text: str) -> np.ndarray:
    """``values`` (tensor, array, nested list) as a finite float64 array of ``ndim`` dims."""
    try:
        arr = as_numpy(values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{fn}: {what} must be numbers of shape {shape_text}.") from err
    if arr.ndim != ndim:
        raise ValueError(f"{fn}: {what} must have shape {shape_text}, got shape "
                         f"{arr.shape}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"{fn}: {what} holds nan or inf; drop or replace those values "
                         "(torch.nan_to_num) before drawing.")
    return arr


def _class_ids(fn: str, what: str, values, n: int | None, num_classes: int | None) -> np.ndarray:
    """``values`` as ``(n,)`` int64 class ids in ``[0, num_classes)`` (``>= 0`` when
    ``num_classes`` is None)."""
    arr = _array(fn, what, values, 1, "(K,), a list of class ids" if n is None else f"({n},)")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{fn}: {what} holds {arr.shape[0]} class ids for {n} rows; give one "
                         "class id per row.")
    frac = arr[arr != np.round(arr)]
    if frac.size:
        raise ValueError(f"{fn}: {what} must be whole class ids, got {frac[0]:g}; pass the "
                         "class index, not a score.")
    top = "" if num_classes is None else f", < {num_classes}"
    if (arr < 0).any() or (num_classes is not None and (arr >= num_classes).any()):
        bad = arr[(arr < 0) | (arr >= (num_classes if num_classes is not None else np.inf))][0]
        raise ValueError(f"{fn}: {what} holds the class id {bad:g}; class ids are >= 0{top} "
                         "(one per name of class_names).")
    return arr.astype(np.int64)


def _class_names(fn: str, names, n: int) -> list[str]:
    """``names`` as ``n`` strings."""
    if isinstance(names, str):
        raise ValueError(f"{fn}: class_names is one string; give a list of {n} names.")
    out = [str(x) for x in names]
    if len(out) != n:
        raise ValueError(f"{fn}: class_names holds {len(out)} names for {n} classes; give "
                         "one name per class.")
    return out


def _wrap(text: str, width_in: float) -> str:
    """``text`` wrapped to lines of about ``width_in`` inches at the figure font."""
    return textwrap.fill(text, max(6, int(width_in / CHAR_IN)))


def _class_colors(num: int) -> list[str | tuple[float, float, float]]:
    """``num`` distinct colours: the book's six, or ``tab20``'s twenty beyond six."""
    if num <= len(LEVEL_COLORS):
        return LEVEL_COLORS[:num]
    cmap = plt.get_cmap("tab20")
    return [cmap(k % 20)[:3] for k in range(num)]


# ----------------------------------------------------------- class attention
def _check_attention(fn: str, attention, num_classes: int) -> np.ndarray:
    """``attention`` as a ``(C, h, w)`` float64 array of maps that each sum to 1."""
    att = _array(fn, "attention", attention, 3, "(C, h, w), one map per class")
    if att.shape[0] != num_classes:
        raise ValueError(f"{fn}: attention holds {att.shape[0]} maps for {num_classes} "
                         "class_names; give one map per class and one name per map.")
    if (att < 0).any():
        raise ValueError(f"{fn}: attention has a negative value ({att.min():.3g}); the maps are "
                         "a softmax over positions: logits.flatten(1).softmax(1).view_as(logits).")
    sums = att.reshape(num_classes, -1).sum(1)  # (C,)
    off = np.abs(sums - 1.0) > _SUM_ATOL
    if off.any():
        c = int(np.argmax(off))
        raise ValueError(f"{fn}: attention[{c}] sums to {sums[c]:.4g} over its h·w positions; "
                         "each class's map must sum to 1, a softmax over positions: "
                         "logits.flatten(1).softmax(1).view_as(logits).")
    return att


def _label_states(fn: str, labels, num_classes: int, partial: bool | None) -> list[str] | None:
    """The state of each class as a title line (None without ``labels``)."""
    if labels is None:
        return None
    lab = _array(fn, "labels", labels, 1, f"({num_classes},), one label per class")
    if lab.shape[0] != num_classes:
        raise ValueError(f"{fn}: labels holds {lab.shape[0]} values for {num_classes} classes; "
                         "give one label per class (one row of the batch: targets[n]).")
    if not np.isin(lab, (-1.0, 0.0, 1.0)).all():
        bad = lab[~np.isin(lab, (-1.0, 0.0, 1.0))][0]
        raise ValueError(f"{fn}: labels holds {bad:g}; give partial labels in {{1, 0, -1}} "
                         "(known positive, unknown, known negative) or complete ones in {0, 1}.")
    if partial is None:
        partial = bool((lab == -1).any())
    elif not partial and (lab == -1).any():
        raise ValueError(f"{fn}: labels holds -1 but partial=False; complete labels are "
                         "{0, 1}: pass partial=True (or None) for partial labels.")
    states = _PARTIAL_STATES if partial else _COMPLETE_STATES
    return [states[int(v)] for v in lab]


def _shown_classes(fn: str, classes, labels, num_classes: int, max_classes: int) -> list[int]:
    """The classes given a panel: ``classes``, or the positive ones first."""
    if classes is None:
        if labels is None:
            order = list(range(num_classes))
        else:
            lab = as_numpy(labels).reshape(-1)  # (C,)
            order = [c for c in range(num_classes) if lab[c] == 1]
            order += [c for c in range(num_classes) if lab[c] != 1]
        return order[:max_classes]
    picked = _class_ids(fn, "classes", classes, None, num_classes).tolist()
    if not picked:
        raise ValueError(f"{fn}: classes is empty; give at least one class id, or None.")
    if len(set(picked)) != len(picked):
        raise ValueError(f"{fn}: classes={picked} repeats a class; give each class once.")
    if len(picked) > max_classes:
        raise ValueError(f"{fn}: classes holds {len(picked)} classes but max_classes="
                         f"{max_classes}; pick fewer or raise max_classes.")
    return picked


def _check_class_boxes(fn: str, boxes, box_labels, height: int, width: int,
                       num_classes: int) -> tuple[torch.Tensor, np.ndarray]:
    """Boxes ``(K, 4)`` (clipped to the image) and their ``(K,)`` class ids."""
    if boxes is None and box_labels is None:
        return torch.zeros(0, 4, dtype=torch.float64), np.zeros(0, np.int64)
    if boxes is None or box_labels is None:
        given, missing = ("boxes", "box_labels") if box_labels is None else ("box_labels",
                                                                              "boxes")
        raise ValueError(f"{fn}: {given} without {missing}; give both (boxes (K, 4) pixel xyxy "
                         "and box_labels (K,) their class ids) or neither.")
    bxs = check_boxes(fn, boxes, height, width)  # (K, 4)
    ids = _class_ids(fn, "box_labels", box_labels, len(bxs), num_classes)  # (K,)
    return bxs, ids


def _upsampled(att: np.ndarray, height: int, width: int) -> np.ndarray:
    """Maps ``(n, h, w)`` upsampled bilinearly to ``(n, H, W)`` (pixel centres at
    ``j + 1/2``), each divided by its maximum."""
    t = torch.from_numpy(att)[None]  # (1, n, h, w)
    up = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)[0]
    peak = up.flatten(1).amax(1).clamp_min(1e-300)  # (n,)
    return (up / peak[:, None, None]).numpy()  # (n, H, W) in [0, 1]


def draw_class_attention(
    image: Array,
    attention: Array,
    class_names: Sequence[str],
    *,
    labels: Array | None = None,
    boxes: Array | None = None,
    box_labels: Array | None = None,
    classes: Sequence[int] | None = None,
    max_classes: int = 6,
    partial: bool | None = None,
) -> Figure:
    """Where each class looks: semantic decoupling's per-class attention maps
    over the image.

    The image comes first (with every box), then one panel per shown class: the
    image under the class's map, upsampled bilinearly from the feature map's
    ``h x w`` to the image's ``H x W`` (pixel ``j``'s centre at ``j + 1/2``) and
    divided by its maximum, as a heat map (one colour bar, "attention / its
    max"); titled with the class's name and its label state, with the boxes of
    that class. At most four panels a row, :data:`~hmglib.viz.page.PAGE_WIDTH_IN`
    wide, every text at :data:`~hmglib.viz.page.FONT_PT`.

    Args:
        image: ``(3, H, W)`` float in ``[0, 1]`` (or uint8), e.g. ``H = W = S``.
        attention: ``(C, h, w)`` float ``>= 0``, each class's map summing to 1 over
            its ``h * w`` positions (a softmax over positions).
        class_names: ``C`` names.
        labels: optional ``(C,)`` labels of the image: partial ones in ``{1, 0, -1}``
            (titled "known +", "unknown", "known −") or complete ones in ``{0, 1}``
            ("present", "absent").
        boxes: optional ``(K, 4)`` float pixel ``xyxy`` object boxes (pixel ``j``
            spans ``[j, j + 1)``), with ``box_labels``.
        box_labels: optional ``(K,)`` class ids in ``[0, C)`` of the boxes.
        classes: the class ids shown, in order, at most ``max_classes``; default:
            the known-positive (present) classes first, then the others in
            order, up to ``max_classes``.
        max_classes: the most class panels, ``>= 1``.
        partial: whether ``labels`` are partial (``{1, 0, -1}``) or complete
            (``{0, 1}``); None: partial when they hold a -1 (pass True for partial
            labels without a known negative).

    Returns:
        A Figure with ``1 + n`` image axes (``n`` the shown classes), then the
        colour bar's axes; each class panel holds two images: the picture and
        the ``(H, W)`` heat map in ``[0, 1]``.

    Raises:
        ValueError: an image not ``(3, H, W)`` / ``(1, H, W)`` or outside
            ``[0, 1]``; attention not ``(C, h, w)``, negative, not finite or not
            summing to 1 per class; ``class_names``, ``labels`` or ``box_labels``
            of the wrong length; labels outside ``{1, 0, -1}`` (or a -1 with
            ``partial=False``); boxes without their labels, not ``xyxy`` or
            outside the image; class ids outside ``[0, C)``; repeated, empty or
            too many ``classes``; ``max_classes < 1``.
        TypeError: an image neither float nor uint8.
    """
    fn = "draw_class_attention"
    picture = image_to_uint8(fn, image)  # (3, H, W)
    height, width = picture.shape[-2:]
    max_classes = check_int(fn, "max_classes", max_classes, 1)
    if isinstance(class_names, str):
        raise ValueError(f"{fn}: class_names is one string; give a list of C names, one per "
                         "map of attention.")
    names = [str(x) for x in class_names]
    att = _check_attention(fn, attention, len(names))  # (C, h, w)
    states = _label_states(fn, labels, len(names), partial)
    bxs, ids = _check_class_boxes(fn, boxes, box_labels, height, width, len(names))
    shown = _shown_classes(fn, classes, labels, len(names), max_classes)
    heat = _upsampled(att[shown], height, width)  # (n, H, W)
    fig, axes, side = _attention_axes(1 + len(shown), height / width)
    show_picture(axes[0], picture)
    for box, c in zip(bxs, ids, strict=True):
        outline_box(axes[0], box, BOX_COLORS[1], names[c])
    axes[0].set_title("image", fontsize=FONT_PT)
    for ax, c, m in zip(axes[1:], shown, heat, strict=True):
        show_picture(ax, picture)
        ax.imshow(m, cmap=_HEAT_CMAP, vmin=0.0, vmax=1.0, alpha=_HEAT_ALPHA,
                  interpolation="nearest", extent=(0, width, height, 0))
        for box in bxs[torch.from_numpy(ids == c)]:
            outline_box(ax, box, BOX_COLORS[1], names[c])
        title = _wrap(names[c], side)
        ax.set_title(title if states is None else f"{title}\n{states[c]}", fontsize=FONT_PT)
    bar = fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), _HEAT_CMAP), ax=axes,
                       shrink=0.8, ticks=[0.0, 0.5, 1.0])
    bar.set_label("attention / its max", fontsize=FONT_PT)
    bar.ax.tick_params(labelsize=FONT_PT)
    return fig


def _attention_axes(n: int, aspect: float) -> tuple[Figure, list[Axes], float]:
    """``n`` image panels, at most four a row, at most the page's width wide
    (room for a colour bar on the right); the unused cells are removed. Returns
    the figure, its ``n`` axes and a panel's width in inches."""
    ncols = min(n, 4)
    nrows = -(-n // ncols)
    side = min(1.8, (PAGE_WIDTH_IN - 1.0) / ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(side * ncols + 1.0,
                                                    nrows * (side * aspect + 0.55)),
                             layout="constrained", squeeze=False)
    cells = list(grid.flat)
    for ax in cells[n:]:
        ax.remove()
    return fig, cells[:n], side


# ------------------------------------------------------------- blend targets
def _check_targets(fn: str, panels) -> list[tuple[str, np.ndarray]]:
    """``panels`` as ``(title, (B, C) targets)`` pairs with one ``C``."""
    if not isinstance(panels, Mapping) or not panels:
        raise ValueError(f"{fn}: panels must be a non-empty dict {{title: (B, C) targets}}, "
                         "e.g. {'partial labels': y, 'ILRB': y_ilrb, 'PLRB': y_plrb}.")
    out = []
    for title, values in panels.items():
        what = f"panels[{title!r}]"
        arr = _array(fn, what, values, 2, "(B, C), one row per image")
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(f"{fn}: {what} has shape {arr.shape}; give at least one image "
                             "and one class.")
        ok = (arr == -1) | ((arr >= 0) & (arr <= 1))
        if not ok.all():
            r, c = (int(i) for i in np.argwhere(~ok)[0])
            raise ValueError(f"{fn}: {what}[{r}, {c}] = {arr[r, c]:g}; targets are -1 (known "
                             "negative), 0 (unknown), 1 (known positive) or a soft target in "
                             "(0, 1).")
        if out and arr.shape[1] != out[0][1].shape[1]:
            raise ValueError(f"{fn}: {what} has {arr.shape[1]} classes but "
                             f"panels[{out[0][0]!r}] has {out[0][1].shape[1]}; every panel "
                             "shows the same classes.")
        out.append((str(title), arr))
    return out


def _target_colors(arr: np.ndarray) -> np.ndarray:
    """Targets ``(B, C)`` as ``(B, C, 3)`` RGB in ``[0, 1]``: the partial colours for
    -1, 0, 1 and :data:`BLEND_COLOR` for a soft target."""
    rgb = np.empty((*arr.shape, 3))  # (B, C, 3)
    rgb[...] = to_rgb(BLEND_COLOR)
    for value, color in zip((-1.0, 0.0, 1.0), PARTIAL_COLORS, strict=True):
        rgb[arr == value] = to_rgb(color)
    return rgb


def _soft(arr: np.ndarray) -> np.ndarray:
    """Where targets ``(B, C)`` are soft: strictly between 0 and 1."""
    return (arr > 0) & (arr < 1)


_CELL_W = 4 * CHAR_IN + 0.08  # "0.50" written across a cell, in inches
_CELL_W_MIN = 0.17  # one line of text written up a cell, in inches


def _cell_layout(fn: str, num_classes: int) -> tuple[float, bool]:
    """The width of a class's cell, in inches, and whether its value is written
    up the cell (rotated) because "0.50" does not fit across it."""
    room = PAGE_WIDTH_IN - 0.9  # the image axis, its label and a margin
    if num_classes * _CELL_W <= room:
        return _CELL_W, False
    width = room / num_classes
    if width < _CELL_W_MIN:
        most = int(room / _CELL_W_MIN)
        raise ValueError(f"{fn}: the targets hold {num_classes} classes; at most {most} fit "
                         "the page with their values readable: pass the columns of the "
                         "classes to show (targets[:, keep]) and their class_names.")
    return width, True


def draw_blend_targets(
    panels: Mapping[str, Array],
    class_names: Sequence[str] | None = None,
    *,
    max_rows: int = 8,
) -> Figure:
    """A batch's targets side by side: its partial labels, and the targets a
    blend gives it (ILRB, PLRB), as heat maps like
    :func:`~hmglib.viz.data.draw_partial_labels`.

    Known negatives, unknowns and known positives take the book's partial-label
    colours; a soft target, strictly between 0 and 1 (e.g. ``1 - alpha = 0.5``),
    takes :data:`BLEND_COLOR` and its value is written in its cell (``"0.50"``),
    so that a reader sees which entries a blend changed. Panels that do not fit
    a row of the page wrap to the next; the figure is at most
    :data:`~hmglib.viz.page.PAGE_WIDTH_IN` wide, every text at
    :data:`~hmglib.viz.page.FONT_PT`.

    Args:
        panels: ``{title: (B, C) targets}``, values ``-1`` (known negative), ``0``
            (unknown), ``1`` (known positive) or a soft target in ``(0, 1)``; every
            panel has the same ``C`` classes. The first ``max_rows`` images of each
            are drawn.
        class_names: optional ``C`` column names (default: the class ids).
        max_rows: images drawn per panel, ``>= 1``.

    Returns:
        A Figure with one axes per panel, titled with the panel's title and how
        many soft targets it shows; each holds one ``(rows, C, 3)`` RGB image and
        one text per soft target shown.

    Raises:
        ValueError: no panel; targets not ``(B, C)``, empty, not finite or with a
            value outside ``{-1} ∪ [0, 1]``; panels of different ``C``;
            ``class_names`` not ``C``; ``max_rows < 1``; more classes than fit the
            page readably (about 37).
    """
    fn = "draw_blend_targets"
    max_rows = check_int(fn, "max_rows", max_rows, 1)
    items = _check_targets(fn, panels)
    num_classes = items[0][1].shape[1]
    names = None if class_names is None else _class_names(fn, class_names, num_classes)
    cell_w, rotated = _cell_layout(fn, num_classes)
    cell_h = _CELL_W if rotated else 0.26
    rows = min(max_rows, max(arr.shape[0] for _, arr in items))
    panel_w = num_classes * cell_w + 0.3
    ncols = max(1, min(len(items), int((PAGE_WIDTH_IN - 0.6) // panel_w)))
    nrows = -(-len(items) // ncols)
    name_h = 0.25 if names is None else max(len(n) for n in names) * CHAR_IN + 0.1
    fig, grid = plt.subplots(nrows, ncols, figsize=(
        min(PAGE_WIDTH_IN, 0.6 + panel_w * ncols),
        0.55 + nrows * (rows * cell_h + name_h + 0.45)), layout="constrained", squeeze=False)
    cells = list(grid.flat)
    for ax in cells[len(items):]:
        ax.remove()
    for k, (ax, (title, arr)) in enumerate(zip(cells, items, strict=False)):
        shown = arr[:max_rows]  # (rows, C)
        _target_panel(ax, shown, names, rotated)
        soft = int(_soft(shown).sum())
        ax.set_title(_wrap(f"{title} ({soft} soft)", panel_w), fontsize=FONT_PT)
        if k % ncols == 0:
            ax.set_ylabel("image", fontsize=FONT_PT)
    handles = [Patch(color=c) for c in (*PARTIAL_COLORS, BLEND_COLOR)]
    texts = ["known − (−1)", "unknown (0)", "known + (1)", "blended (soft, value written)"]
    fig.legend(handles, texts, loc="outside lower center", ncols=2, fontsize=FONT_PT,
               frameon=False)
    return fig


def _target_panel(ax: Axes, arr: np.ndarray, names: list[str] | None, rotated: bool) -> None:
    """One matrix of targets ``(rows, C)`` in ``ax``, the soft ones written."""
    rows, num_classes = arr.shape
    ax.imshow(_target_colors(arr), interpolation="nearest", aspect="auto")  # (rows, C, 3)
    for r, c in np.argwhere(_soft(arr)):
        ax.text(c, r, f"{arr[r, c]:.2f}", ha="center", va="center", color="white",
                fontsize=FONT_PT, rotation=90 if rotated else 0)
    ax.set_yticks(range(rows), labels=[str(r) for r in range(rows)])
    if names is not None:
        ax.set_xticks(range(num_classes), labels=names, rotation=90)
    else:
        ax.set_xticks(range(num_classes), labels=[str(c) for c in range(num_classes)],
                      rotation=90 if rotated else 0)
        ax.set_xlabel("class", fontsize=FONT_PT)
    ax.tick_params(labelsize=FONT_PT, length=0)
    ax.set_xticks(np.arange(num_classes + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", lw=1.0)
    ax.tick_params(which="minor", length=0)


# -------------------------------------------------------- feature projection
def _projection(fn: str, method: str, feats: np.ndarray, protos: np.ndarray,
                seed: int) -> tuple[np.ndarray, np.ndarray, tuple[str, str], str]:
    """The 2-D coordinates of ``feats`` ``(N, D)`` and ``protos`` ``(P, D)``, the
    axis labels and a note on what the projection was fitted on."""
    if method == "pca":
        from sklearn.decomposition import PCA

        if feats.shape[0] < 2 or feats.shape[1] < 2:
            raise ValueError(f"{fn}: PCA onto two axes needs at least 2 features of at least "
                             f"2 dimensions, got features of shape {feats.shape}.")
        pca = PCA(n_components=2, svd_solver="full").fit(feats)
        share = 100 * pca.explained_variance_ratio_  # (2,)
        labels = (f"PC 1 ({share[0]:.1f} % of variance)", f"PC 2 ({share[1]:.1f} % of variance)")
        protos_2d = pca.transform(protos) if len(protos) else np.zeros((0, 2))  # (P, 2)
        return pca.transform(feats), protos_2d, labels, "PCA fitted on the features"
    from sklearn.manifold import TSNE

    both = np.concatenate([feats, protos])  # (N + P, D)
    if both.shape[0] < 5:
        raise ValueError(f"{fn}: t-SNE needs at least 5 points (features and prototypes), got "
                         f"{both.shape[0]}; use method='pca'.")
    perplexity = min(30.0, (both.shape[0] - 1) / 3)
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        both)  # (N + P, 2)
    note = ("t-SNE fitted on features and prototypes together" if len(protos)
            else "t-SNE fitted on the features")
    return xy[:len(feats)], xy[len(feats):], ("t-SNE 1", "t-SNE 2"), note


def draw_feature_projection(
    features: Array,
    labels: Array,
    *,
    prototypes: Array | None = None,
    prototype_labels: Array | None = None,
    class_names: Sequence[str] | None = None,
    method: str = "pca",
    seed: int = 0,
) -> Figure:
    """Category features in two dimensions, one colour per class, with the
    classes' prototypes (PLRB's K-means centres) as large starred markers with a
    black edge.

    With ``method="pca"`` (scikit-learn's PCA) the projection is fitted on the
    features alone and the prototypes are placed by it; the axis labels give the
    share of the features' variance each axis explains. t-SNE cannot place
    points it was not fitted on, so ``method="tsne"`` (scikit-learn's TSNE,
    seeded, perplexity ``min(30, (N + P - 1) / 3)``) is fitted on the features
    and the prototypes together, and its axes have no units; the title says
    which. A legend beside the axes names the classes.

    Args:
        features: ``(N, D)`` float category features (e.g. ``f_c^n`` of many images
            and classes), ``D >= 2`` for PCA.
        labels: ``(N,)`` class ids ``>= 0`` (``< C`` with ``class_names``).
        prototypes: optional ``(P, D)`` float prototypes, with ``prototype_labels``.
        prototype_labels: optional ``(P,)`` class ids of the prototypes.
        class_names: optional names, one per class id (default ``"class c"``).
        method: ``"pca"`` or ``"tsne"``.
        seed: the seed of t-SNE, an int ``>= 0``.

    Returns:
        A Figure with one axes: one scatter per class present (labelled with its
        name), then one scatter of the ``P`` prototypes labelled ``"prototypes"``.

    Raises:
        ValueError: features not ``(N, D)`` or not finite; labels not ``N`` whole
            class ids in range; prototypes without their labels (or the other way
            round), of another ``D``, or labels not one per prototype; an unknown
            method; too few points (PCA: 2 features of 2 dimensions; t-SNE: 5
            points); a negative seed.
    """
    fn = "draw_feature_projection"
    method = check_choice(fn, "method", method, _METHODS,
                          hint="PCA fitted on the features, or t-SNE on all points")
    seed = check_seed(fn, seed)
    feats = _array(fn, "features", features, 2, "(N, D), one feature per row")
    n_cls = None if class_names is None else len(list(class_names))
    ids = _class_ids(fn, "labels", labels, feats.shape[0], n_cls)  # (N,)
    protos, proto_ids = _check_prototypes(fn, prototypes, prototype_labels, feats.shape[1],
                                          n_cls)
    top = int(max(ids.max(initial=-1), proto_ids.max(initial=-1))) + 1
    names = (_class_names(fn, class_names, n_cls) if class_names is not None
             else [f"class {c}" for c in range(top)])
    xy, pxy, axis_labels, note = _projection(fn, method, feats, protos, seed)
    colors = _class_colors(len(names))
    fig, ax = plt.subplots(figsize=(min(PAGE_WIDTH_IN, 6.0), 3.9), layout="constrained")
    for c in sorted(set(ids.tolist())):
        pts = xy[ids == c]  # (n_c, 2)
        ax.scatter(pts[:, 0], pts[:, 1], s=16, color=colors[c], alpha=0.75, lw=0,
                   label=names[c], zorder=2)
    if len(protos):
        ax.scatter(pxy[:, 0], pxy[:, 1], s=220, marker="*", c=[colors[c] for c in proto_ids],
                   edgecolors="black", linewidths=1.2, label="prototypes", zorder=3)
    ax.set_xlabel(axis_labels[0], fontsize=FONT_PT)
    ax.set_ylabel(axis_labels[1], fontsize=FONT_PT)
    ax.set_title(note, fontsize=FONT_PT)
    ax.tick_params(labelsize=FONT_PT)
    if method == "tsne":
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [plt.Line2D([], [], ls="", marker="o", ms=5, color=colors[c], label=names[c])
               for c in sorted(set(ids.tolist()))]
    if len(protos):
        handles.append(plt.Line2D([], [], ls="", marker="*", ms=14, mfc="0.85", mec="black",
                                  mew=1.2, label="prototypes"))
    ax.legend(handles=handles, fontsize=FONT_PT, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              frameon=False)
    return fig


def _check_prototypes(fn: str, prototypes, prototype_labels, dim: int,
                      num_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Prototypes ``(P, D)`` and their ``(P,)`` class ids (``P = 0`` without them)."""
    if prototypes is None and prototype_labels is None:
        return np.zeros((0, dim)), np.zeros(0, np.int64)
    if prototypes is None or prototype_labels is None:
        given, missing = (("prototypes", "prototype_labels") if prototype_labels is None
                          else ("prototype_labels", "prototypes"))
        raise ValueError(f"{fn}: {given} without {missing}; give both (prototypes (P, D) and "
                         "prototype_labels (P,) their class ids) or neither.")
    protos = _array(fn, "prototypes", prototypes, 2, f"(P, {dim}), one prototype per row")
    if protos.shape[1] != dim:
        raise ValueError(f"{fn}: prototypes have {protos.shape[1]} dimensions but features "
                         f"have {dim}; give prototypes of the same feature space.")
    ids = _class_ids(fn, "prototype_labels", prototype_labels, protos.shape[0], num_classes)
    return protos, ids


# ---------------------------------------------------------------- step losses
def _moving(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean and standard deviation (``ddof = 0``) of each run of ``window``
    consecutive values of ``values`` ``(T,)``: two ``(T - window + 1,)`` arrays, entry
    ``t`` over steps ``t .. t + window - 1``."""
    runs = np.lib.stride_tricks.sliding_window_view(values, window)  # (T - window + 1, window)
    return runs.mean(1), runs.std(1)  # (T - window + 1,) each


def draw_step_losses(
    series: Mapping[str, Array],
    *,
    window: int = 20,
    ylabel: str = "training loss",
) -> Figure:
    """The training loss step by step, and how much it fluctuates: two panels,
    (a) the per-step loss (thin) with its moving average over ``window`` steps
    (thick), (b) the moving standard deviation over ``window`` steps, one colour
    per run. The moving statistics of step ``t`` (counted from 1) are over steps
    ``t - window + 1 .. t``, so they start at step ``window``; the standard
    deviation is the population one (``ddof = 0``).

    Args:
        series: ``{run name: (T,) per-step loss values}``, finite; runs may differ
            in length ``T``, each ``T >= window``.
        window: the steps of the moving statistics, ``>= 1``.
        ylabel: the value-axis label of panel (a).

    Returns:
        A Figure :data:`~hmglib.viz.page.PAGE_WIDTH_IN` wide with two axes. In (a)
        each run has a line ``"<run> (per step)"`` at steps ``1..T`` and a line
        ``"<run>"`` (its moving average) at steps ``window..T``; in (b) a line
        ``"<run>"`` (its moving standard deviation) at steps ``window..T``.

    Raises:
        ValueError: no run; a run that is not 1-D, is empty, holds nan or inf, or
            is shorter than ``window``; ``window < 1``.
    """
    fn = "draw_step_losses"
    window = check_int(fn, "window", window, 1, hint="steps of the moving statistics")
    if not isinstance(series, Mapping) or not series:
        raise ValueError(f"{fn}: series must be a non-empty dict {{run name: (T,) per-step "
                         "losses}}.")
    runs = []
    for name, values in series.items():
        v = _array(fn, f"series[{name!r}]", values, 1, "(T,), one loss per step")
        if v.size < window:
            raise ValueError(f"{fn}: series[{name!r}] has {v.size} steps, fewer than "
                             f"window={window}; pass a window of at most {v.size} steps.")
        runs.append((str(name), v))
    fig, (ax_loss, ax_std) = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 3.0),
                                          layout="constrained")
    for k, (name, v) in enumerate(runs):
        color = LEVEL_COLORS[k % len(LEVEL_COLORS)]
        steps = np.arange(1, v.size + 1)  # (T,)
        mean, std = _moving(v, window)  # (T - window + 1,)
        ax_loss.plot(steps, v, color=color, lw=0.7, alpha=0.4, label=f"{name} (per step)")
        ax_loss.plot(steps[window - 1:], mean, color=color, lw=2.0, label=name)
        ax_std.plot(steps[window - 1:], std, color=color, lw=1.6, label=name)
    ax_loss.set_title(f"(a) per step (thin), mean of {window} (thick)", fontsize=FONT_PT)
    ax_loss.set_ylabel(ylabel, fontsize=FONT_PT)
    ax_std.set_title(f"(b) std over the last {window} steps", fontsize=FONT_PT)
    ax_std.set_ylabel("moving std", fontsize=FONT_PT)
    ax_std.set_ylim(bottom=0)
    for ax in (ax_loss, ax_std):
        ax.set_xlabel("step", fontsize=FONT_PT)
        ax.tick_params(labelsize=FONT_PT)
        ax.grid(True, alpha=0.3)
    handles = [plt.Line2D([], [], color=LEVEL_COLORS[k % len(LEVEL_COLORS)], lw=2.0)
               for k in range(len(runs))]
    per_row = max(1, int(PAGE_WIDTH_IN // 1.8))
    fig.legend(handles, [name for name, _ in runs], loc="outside lower center",
               ncols=min(len(runs), per_row), fontsize=FONT_PT, frameon=False)
    return fig

