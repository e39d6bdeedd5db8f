"""Network architectures drawn: HRN as boxes and arrows, with the shape of
every tensor for a given backbone and image size.

:func:`draw_hrn_architecture` runs one forward pass of a zero image through
an :class:`~hmglib.models.hrn.HRN` (in evaluation mode, without gradients, the
model's modes restored afterwards) and writes the shapes it measured on the
figure: the backbone's map ``M``, each level's granularity-specific feature
``g_l`` and fused feature ``h_l``, the heads' outputs and, in a note, the
stages inside one granularity-specific block. The figure follows
the model's ablation switches (a shared block, no residual sum, no ReLU).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch

from hmglib.viz.colors import level_color
from hmglib.viz.page import FONT_PT as _FONT  # the figure is at most the page's width

__all__ = ["draw_hrn_architecture"]

_WIDTH = 7.2  # inches
_GREY = "0.35"


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    """The shape of one image's tensor: the batch dimension dropped."""
    return tuple(int(s) for s in t.shape[1:])


def _text_shape(shape: Sequence[int]) -> str:
    """``(2048, 14, 14)`` → ``"2048 × 14 × 14"``."""
    return " × ".join(str(s) for s in shape)


def _image_size(fn: str, image_size) -> tuple[int, int]:
    """``image_size`` as ``(H, W)`` positive ints, or a clear error."""
    square = isinstance(image_size, Integral) and not isinstance(image_size, bool)
    sizes = (image_size, image_size) if square else image_size
    try:
        h, w = sizes
    except (TypeError, ValueError):
        raise TypeError(f"{fn}: image_size must be an int (a square image, e.g. 448) or a "
                        f"pair (H, W), got {image_size!r}.") from None
    for s in (h, w):
        if isinstance(s, bool) or not isinstance(s, Integral):
            raise TypeError(f"{fn}: image_size must hold ints (pixels), got {image_size!r}; "
                            "e.g. 448 or (448, 448).")
        if s < 1:
            raise ValueError(f"{fn}: image_size={image_size!r} must be positive pixels, "
                             "e.g. 448 or (448, 448).")
    return int(h), int(w)


def _trace(fn: str, model, size: tuple[int, int]) -> dict:
    """The per-image shapes of one forward pass of a zero image through ``model``.

    The model is put in evaluation mode (BatchNorm uses its running statistics
    and updates nothing) and every module's mode is restored afterwards.
    """
    found: dict[str, tuple[int, ...]] = {}
    block = model.blocks[0]
    taps = {"M": model.backbone, "gsb_mid": block.conv[2], "gsb_conv": block.conv,
            "gsb_pool": block.pool, "gsb_hidden": block.mlp[3]}
    g: list[tuple[int, ...]] = [() for _ in model.blocks]

    def tap(key: str | int):
        def hook(_module, _inputs, out) -> None:  # returns None: the output stays as it is
            if isinstance(key, int):
                g[key] = _shape(out)
            else:
                found.setdefault(key, _shape(out))
        return hook

    hooks = [module.register_forward_hook(tap(key)) for key, module in taps.items()]
    hooks += [b.register_forward_hook(tap(k)) for k, b in enumerate(model.blocks)]
    modes = {m: m.training for m in model.modules()}
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        image = torch.zeros(1, model.in_channels, *size, device=device)
        model.eval()
        with torch.no_grad():
            out = model(image)
    except RuntimeError as err:
        raise ValueError(
            f"{fn}: a {size[0]} x {size[1]} image does not pass through this model's "
            f"backbone ({err}); give a larger image_size (ResNet-50 divides the side by "
            "32, the small CNN by 8).") from err
    finally:
        for hook in hooks:
            hook.remove()
        for m, mode in modes.items():
            m.train(mode)
    if "gsb_pool" in found:
        found["gsb_pool"] = found["gsb_pool"][:1]  # (C, 1, 1) → (C,): flattened
    return {**found, "image": (model.in_channels, *size), "g": g,
            "h": [_shape(x) for x in out.features],
            "level": [_shape(x) for x in out.level_logits], "leaf": _shape(out.leaf_logits)}


class _Canvas:
    """An axes over the whole figure in inches, ``y`` measured from the top."""

    def __init__(self, ax: Axes, height: float) -> None:
        self.ax, self.height = ax, height

    def y(self, top: float) -> float:
        return self.height - top

    def box(self, x: float, top: float, w: float, h: float, text: str,
            edge: str = _GREY, face: str = "white", bold: bool = False) -> None:
        self.ax.add_patch(FancyBboxPatch(
            (x - w / 2, self.y(top + h)), w, h, boxstyle="round,pad=0,rounding_size=0.06",
            linewidth=1.4, edgecolor=edge, facecolor=face))
        self.ax.text(x, self.y(top + h / 2), text, ha="center", va="center", fontsize=_FONT,
                     fontweight="bold" if bold else "normal", linespacing=1.25)

    def arrow(self, x0: float, top0: float, x1: float, top1: float,
              color: str = _GREY) -> None:
        self.ax.annotate("", xy=(x1, self.y(top1)), xytext=(x0, self.y(top0)),
                         arrowprops=dict(arrowstyle="-|>", color=color, lw=1.2,
                                         shrinkA=0, shrinkB=0, mutation_scale=10))

    def line(self, xs: Sequence[float], tops: Sequence[float], color: str = _GREY) -> None:
        self.ax.plot(list(xs), [self.y(t) for t in tops], color=color, lw=1.2,
                     solid_capstyle="butt")

    def label(self, x: float, top: float, text: str, ha: str = "left",
              color: str = "black") -> None:
        self.ax.text(x, self.y(top), text, ha=ha, va="center", fontsize=_FONT, color=color)

    def plus(self, x: float, top: float, r: float, color: str) -> None:
        self.ax.add_patch(Circle((x, self.y(top)), r, facecolor="white", edgecolor=color,
                                 linewidth=1.4))
        self.ax.text(x, self.y(top), "+", ha="center", va="center_baseline",
                     fontsize=_FONT + 3, color=color)


def draw_hrn_architecture(
    model,
    image_size: int | tuple[int, int],
    backbone_name: str | None = None,
    title: str | None = None,
) -> Figure:
    """HRN as a diagram: backbone → a granularity-specific block (GSB) per level
    → the residual sums (+, then ReLU) → a sigmoid head per level and the leaf
    level's softmax head, each arrow labelled with the shape of its tensor for
    one image of ``image_size`` pixels (a batch adds ``B`` in front).

    The shapes are measured, not computed from a formula: one zero image runs
    through ``model`` in evaluation mode without gradients (a ResNet-50 at 448 px
    takes a second or two on a CPU), and every module's train/eval mode is
    restored afterwards, so the model is left as it was. The drawing follows
    ``model``'s switches: ``gsb=False`` draws one shared block,
    ``linear_combination=False`` no residual sums, ``relu=False`` no ReLU.

    The figure is 7.2 in wide with every text at 9 pt, readable at the page's
    width, for trees of up to about 5 levels (one column per level, plus one
    for the softmax head).

    Args:
        model: an :class:`~hmglib.models.hrn.HRN`, e.g. ``get_model("hrn", tree,
            backbone="resnet50")``.
        image_size: the side of a square image in pixels (``S``, e.g. 448), or
            ``(H, W)``.
        backbone_name: the backbone's name in its box (default: the class name of
            ``model.backbone``, or ``"backbone"`` for a plain ``nn.Sequential``).
        title: the figure's title (default: names the backbone and image size).

    Returns:
        A matplotlib Figure.

    Raises:
        TypeError: ``model`` is not an HRN; ``image_size`` is neither an int nor
            a pair of ints; ``backbone_name`` or ``title`` is not a string.
        ValueError: ``image_size`` is not positive, or too small for the
            backbone (the message says by how much each backbone shrinks it).
    """
    from hmglib.models.hrn import HRN

    fn = "draw_hrn_architecture"
    if not isinstance(model, HRN):
        raise TypeError(f"{fn}: model must be an HRN, got {type(model).__name__}; build one "
                        "with hmglib.models.get_model('hrn', tree, backbone=...).")
    size = _image_size(fn, image_size)
    for what, value in (("backbone_name", backbone_name), ("title", title)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{fn}: {what} must be a string or None, got "
                            f"{type(value).__name__}.")
    if backbone_name is None:
        backbone_name = type(model.backbone).__name__
        backbone_name = "backbone" if backbone_name == "Sequential" else backbone_name
    shapes = _trace(fn, model, size)
    tree = model.tree
    levels = list(tree.level_names)
    n_levels = len(levels)

    # ---------------------------------------------------------------- layout
    rows = {"image": 0.45, "backbone": 1.05, "fan": 1.93, "gsb": 2.13, "sum": 3.13,
            "relu": 3.5, "head": 4.28, "loss": 5.05, "note": 5.62}
    box_h, head_h, relu_h, r = 0.46, 0.5, 0.26, 0.13
    height = rows["note"] + 0.8
    fig = plt.figure(figsize=(_WIDTH, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, _WIDTH)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    c = _Canvas(ax, height)
    col_w = _WIDTH / (n_levels + 1)
    xs = [col_w * (k + 0.5) for k in range(n_levels + 1)]  # level columns, then softmax
    box_w = min(1.55, col_w - 0.2)
    mid = (xs[0] + xs[n_levels - 1]) / 2
    gap = 0.05  # a label's distance from its arrow

    h_img, w_img = size
    c.ax.text(_WIDTH / 2, c.y(0.2), title or
              f"HRN with {backbone_name} on {h_img} × {w_img}-pixel images "
              "(shapes of one image)", ha="center", va="center", fontsize=_FONT + 1,
              fontweight="bold")
    c.box(mid, rows["image"], 2.3, 0.38,
          f"image $x$: {_text_shape(shapes['image'])}")
    c.arrow(mid, rows["image"] + 0.38, mid, rows["backbone"])
    c.box(mid, rows["backbone"], 2.3, box_h, f"backbone\n{backbone_name}", bold=False)
    c.line([mid, mid], [rows["backbone"] + box_h, rows["fan"]])
    c.label(mid + gap, (rows["backbone"] + box_h + rows["fan"]) / 2,
            rf"$\mathbf{{M}}$: {_text_shape(shapes['M'])}")

    # ---------------------------------------------------------------- blocks
    gsb_bottom = rows["gsb"] + box_h
    if model.gsb:
        c.line([xs[0], xs[n_levels - 1]], [rows["fan"], rows["fan"]])
        for k, level in enumerate(levels):
            c.arrow(xs[k], rows["fan"], xs[k], rows["gsb"])
            c.box(xs[k], rows["gsb"], box_w, box_h,
                  rf"GSB $\varphi_{{{k + 1}}}$" + f"\n{level}", edge=level_color(k))
    else:
        c.arrow(mid, rows["fan"], mid, rows["gsb"])
        c.box(mid, rows["gsb"], xs[n_levels - 1] - xs[0] + box_w, box_h,
              r"one shared block $\varphi$" + "\n(all levels)")
    g_name = [rf"$\mathbf{{g}}_{{{k + 1}}}$" if model.gsb else r"$\mathbf{g}$"
              for k in range(n_levels)]
    g_shape = [shapes["g"][k if model.gsb else 0] for k in range(n_levels)]

    # ---------------------------------------------------------------- fusion
    into_head = rows["head"]
    for k in range(n_levels):
        x, color = xs[k], level_color(k)
        g_label = f"{g_name[k]}: {_text_shape(g_shape[k])}"
        top = gsb_bottom
        if model.linear_combination:
            c.arrow(x, top, x, rows["sum"] - r)
            c.label(x + gap, (top + rows["sum"] - r) / 2, g_label)
            g_label = ""
            c.plus(x, rows["sum"], r, color)
            if k > 0:
                c.arrow(xs[k - 1] + r, rows["sum"], x - r, rows["sum"], color=_GREY)
                carried = (" + ".join(f"$\\mathbf{{g}}_{{{j + 1}}}$" for j in range(k))
                           if model.gsb else f"{k} " + r"$\mathbf{g}$")
                if k > 2 and model.gsb:
                    carried = rf"$\mathbf{{g}}_1 + \dots + \mathbf{{g}}_{{{k}}}$"
                c.label((xs[k - 1] + x) / 2, rows["sum"] - 0.14, carried, ha="center")
            top = rows["sum"] + r
        if model.relu:
            c.arrow(x, top, x, rows["relu"])
            if g_label:  # no residual sum: the ReLU reads g_l itself
                c.label(x + gap, (top + rows["relu"]) / 2, g_label)
                g_label = ""
            c.box(x, rows["relu"], 0.7, relu_h, "ReLU", edge=color)
            top = rows["relu"] + relu_h
        c.arrow(x, top, x, into_head)
        h_label = rf"$\mathbf{{h}}_{{{k + 1}}}$: {_text_shape(shapes['h'][k])}"
        if g_label:  # neither a sum nor a ReLU: h_l is g_l
            h_label = rf"{g_name[k]} = $\mathbf{{h}}_{{{k + 1}}}$: {_text_shape(g_shape[k])}"
        low = min(into_head - 0.2, top + 0.5 * (into_head - top))
        c.label(x + gap, low - 0.06 if k == n_levels - 1 else low, h_label)

    # ---------------------------------------------------------------- heads
    d = shapes["h"][-1][0]
    for k in range(n_levels):
        n_out = shapes["level"][k][0]
        c.box(xs[k], into_head, box_w, head_h, f"linear {d} → {n_out}\nsigmoid",
              edge=level_color(k))
        c.arrow(xs[k], into_head + head_h, xs[k], rows["loss"])
    leaf_x, soft_x = xs[n_levels - 1], xs[n_levels]
    branch = into_head - 0.1
    c.line([leaf_x, soft_x], [branch, branch])
    c.arrow(soft_x, branch, soft_x, into_head)
    c.box(soft_x, into_head, box_w, head_h, f"linear {d} → {shapes['leaf'][0]}\nsoftmax",
          edge=level_color(n_levels - 1))
    c.arrow(soft_x, into_head + head_h, soft_x, rows["loss"])
    n_nodes = sum(s[0] for s in shapes["level"])
    c.box(mid, rows["loss"], xs[n_levels - 1] - xs[0] + box_w, 0.38,
          f"{n_nodes} node energies $f$ (level-major) → " + r"$\mathcal{L}_\mathrm{Hier}$",
          face="0.95")
    c.box(soft_x, rows["loss"], box_w, 0.38,
          f"{shapes['leaf'][0]} leaf scores → " + r"$\mathcal{L}_\mathrm{CE}$", face="0.95")

    # ---------------------------------------------------------------- inside a GSB
    inside = (rf"Inside a GSB: $\mathbf{{M}}$ {_text_shape(shapes['M'])} → 1×1 conv + BN + "
              f"ReLU → {_text_shape(shapes['gsb_mid'])}\n→ 3×3 conv + BN + ReLU → "
              f"{_text_shape(shapes['gsb_conv'])} → global average pool → "
              f"{_text_shape(shapes['gsb_pool'])}\n→ MLP (BN, linear, BN, ELU) → "
              f"{_text_shape(shapes['gsb_hidden'])} → linear → {_text_shape(g_shape[0])}")
    c.ax.text(0.15, c.y(rows["note"] + 0.35), inside, ha="left", va="center",
              fontsize=_FONT, color="0.15", linespacing=1.4)
    return fig
