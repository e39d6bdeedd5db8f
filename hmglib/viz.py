"""Figures of the book: pure functions that take data and return a Figure.

Nothing here trains, loads or caches; widgets (:mod:`hmglib.widgets`) call the
same functions, so the static figure before a widget and the widget agree.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hmglib.hierarchy import LabelTree

__all__ = [
    "LEVEL_COLORS",
    "draw_tree",
    "draw_tree_summary",
    "draw_legal_states",
    "draw_level_sizes",
    "draw_node_view",
    "draw_marginals",
    "RELATION_COLORS",
    "node_relations",
    "draw_label_gradient",
    "draw_scaling",
    "draw_sigmoid_ceiling",
    "BOX_COLORS",
    "PARTIAL_COLORS",
    "draw_samples",
    "draw_accuracy_vs_chance",
    "draw_label_counts",
    "draw_degraded_pairs",
    "draw_partial_labels",
    "draw_cooccurrence",
    "draw_relabel_curves",
    "draw_training_curves",
    "draw_grouped_bars",
]

#: One colour per level (cycled for deeper trees).
LEVEL_COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]

#: Trees with more nodes than this are drawn as a per-level summary.
MAX_DRAWN_NODES = 60


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def tree_layout(tree: LabelTree) -> np.ndarray:
    """``(N, 2)`` float: an (x, y) position per node for a layered drawing.

    Leaves are spread evenly in depth-first order (so edges never cross), each
    inner node sits above the mean of its children, and level ``l`` is at
    ``y = -l``.
    """
    paths = [tuple(tree.path(int(leaf)).tolist()) for leaf in tree.leaves]
    order = sorted(range(len(paths)), key=lambda i: paths[i])  # depth-first leaf order
    pos = np.zeros((tree.num_nodes, 2))
    leaves = tree.leaves.numpy()
    pos[leaves[order], 0] = np.arange(len(order))
    pos[:, 1] = -tree.level_of.numpy()
    parent = tree.parent.numpy()
    for lv in range(tree.num_levels - 2, -1, -1):
        for node in tree.nodes_at(lv).tolist():
            kids = np.nonzero(parent == node)[0]
            pos[node, 0] = pos[kids, 0].mean()
    return pos


def draw_tree(
    tree: LabelTree,
    highlight: Mapping[int, str] | None = None,
    ax: Axes | None = None,
    max_nodes: int = MAX_DRAWN_NODES,
    title: str | None = None,
) -> Figure:
    """Draw a label tree, one row per level, root(s) at the top.

    Args:
        tree: the tree. With more than ``max_nodes`` nodes the figure is
            :func:`draw_tree_summary` instead (names would not be readable).
        highlight: optional ``{node: colour}``; highlighted nodes and the edges
            between them are drawn in that colour, every other node faded.
        ax: draw into these axes instead of a new figure.
        max_nodes: the largest tree drawn node by node.
        title: optional axes title.
    """
    if tree.num_nodes > max_nodes:
        return draw_tree_summary(tree, title=title)
    n_leaf = len(tree.leaves)
    rotate = n_leaf > 12  # many leaves: vertical labels; few: wrapped horizontal ones
    width = 0.32 * n_leaf + 2.5 if rotate else 1.05 * n_leaf + 1.5
    fig, ax = _new_axes(ax, (max(6.0, width), 1.4 * tree.num_levels + 1.2))
    pos = tree_layout(tree)
    faded = highlight is not None
    highlight = dict(highlight or {})
    for node in range(tree.num_nodes):
        p = int(tree.parent[node])
        if p < 0:
            continue
        on = node in highlight and p in highlight
        ax.plot(
            pos[[p, node], 0], pos[[p, node], 1], "-",
            color=highlight[node] if on else "0.6", lw=2.2 if on else 1.0,
            alpha=1.0 if (on or not faded) else 0.35, zorder=1,
        )
    for node in range(tree.num_nodes):
        lv = int(tree.level_of[node])
        color = highlight.get(node, LEVEL_COLORS[lv % len(LEVEL_COLORS)])
        alpha = 1.0 if (node in highlight or not faded) else 0.3
        ax.scatter(*pos[node], s=90, color=color, alpha=alpha, zorder=2,
                   edgecolor="black" if node in highlight else "none")
        is_leaf = lv == tree.num_levels - 1
        label = tree.names[node]
        if is_leaf and not rotate:
            label = textwrap.fill(label, 13)  # long leaf names side by side: wrap, don't overlap
        ax.annotate(
            label, pos[node],
            xytext=(0, -9) if is_leaf else (6, 5), textcoords="offset points",
            rotation=90 if (is_leaf and rotate) else 0,
            ha="center" if is_leaf else "left", va="top" if is_leaf else "bottom",
            fontsize=8, alpha=max(alpha, 0.5),
            fontweight="bold" if node in highlight else "normal",
        )
    ax.set_yticks(-np.arange(tree.num_levels), labels=tree.level_names)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_xlim(-0.8, n_leaf - 0.2)
    ax.set_ylim(-(tree.num_levels - 1) - (1.6 if rotate else 0.8), 0.6)
    if title:
        ax.set_title(title)
    return fig


def draw_tree_summary(tree: LabelTree, title: str | None = None) -> Figure:
    """A per-level summary of a large tree: nodes per level, and how many children
    the nodes of each level have (the branching factor)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    colors = [LEVEL_COLORS[i % len(LEVEL_COLORS)] for i in range(tree.num_levels)]
    bars = a.bar(tree.level_names, tree.level_sizes, color=colors)
    a.bar_label(bars)
    a.set_ylabel("nodes")
    a.set_title("nodes per level")
    counts = torch.bincount(tree.parent[tree.parent >= 0], minlength=tree.num_nodes)
    data = [counts[tree.nodes_at(lv)].numpy() for lv in range(tree.num_levels - 1)]
    if data:
        b.boxplot(data, showmeans=True)
        b.set_xticks(range(1, len(data) + 1), labels=list(tree.level_names[:-1]))
        for lv, d in enumerate(data):
            jitter = np.random.default_rng(lv).uniform(-0.12, 0.12, len(d))
            b.scatter(lv + 1 + jitter, d, s=10, color=colors[lv], alpha=0.6, zorder=3)
    b.set_ylabel("children per node")
    b.set_title("branching")
    fig.suptitle(title or repr(tree), fontsize=10)
    return fig


def draw_legal_states(
    tree: LabelTree,
    rows: Iterable[int] | None = None,
    ax: Axes | None = None,
    max_names: int = 40,
) -> Figure:
    """The ``(N + 1) x N`` legal-state matrix of a tree as an image.

    Row 0 is the empty state; row ``k + 1`` the path to node ``k``. Columns are
    nodes, separated by level.

    Args:
        tree: the tree.
        rows: optional rows (state indices) to emphasise; the others are faded.
        ax: draw into these axes instead of a new figure.
        max_names: name the rows and columns when the tree has at most this many nodes.
    """
    states = tree.legal_states().float().numpy()  # (N + 1, N)
    n = tree.num_nodes
    fig, ax = _new_axes(ax, (min(12.0, 2 + 0.28 * n), min(12.0, 2 + 0.28 * (n + 1))))
    shade = np.ones(n + 1)
    if rows is not None:
        shade[:] = 0.25
        shade[list(rows)] = 1.0
    ax.imshow(states * shade[:, None], cmap="Greys", vmin=0, vmax=1, aspect="auto",
              interpolation="nearest")
    for lv in range(1, tree.num_levels):
        ax.axvline(tree.offset(lv) - 0.5, color=LEVEL_COLORS[lv % len(LEVEL_COLORS)], lw=1.5)
    if n <= max_names:
        ax.set_xticks(range(n), labels=tree.names, rotation=90, fontsize=7)
        ax.set_yticks(range(n + 1), labels=["∅ (empty)"] + [f"→ {s}" for s in tree.names],
                      fontsize=7)
    else:
        ax.set_xlabel("node")
        ax.set_ylabel("legal state")
    ax.set_title(f"{n + 1} legal states of a tree with {n} nodes")
    return fig


def draw_level_sizes(trees: Mapping[str, LabelTree]) -> Figure:
    """The real hierarchies side by side: nodes per level of each tree."""
    fig, axes = plt.subplots(1, len(trees), figsize=(3.6 * len(trees), 3.4),
                             layout="constrained", squeeze=False)
    for ax, (name, tree) in zip(axes[0], trees.items(), strict=True):
        colors = [LEVEL_COLORS[i % len(LEVEL_COLORS)] for i in range(tree.num_levels)]
        bars = ax.bar(tree.level_names, tree.level_sizes, color=colors)
        ax.bar_label(bars)
        ax.set_title(f"{name}: {tree.num_nodes} nodes")
        ax.set_ylim(0, max(tree.level_sizes) * 1.15)
        ax.tick_params(axis="x", labelrotation=20)
    axes[0, 0].set_ylabel("nodes per level")
    return fig


def draw_node_view(tree: LabelTree, node: int) -> Figure:
    """One node in its tree: its root path, its subtree, and the legal states in
    which it is true (the states whose marginal is the node's probability)."""
    node = int(node)
    path = tree.path(node).tolist()
    below = tree.descendants(node).tolist()
    highlight = {n: "#c44e52" for n in path}
    highlight.update({n: "#4c72b0" for n in below})
    fig, (a, b) = plt.subplots(
        1, 2, figsize=(13, 4.6), layout="constrained", width_ratios=[1.5, 1]
    )
    draw_tree(tree, highlight=highlight, ax=a, max_nodes=10**9)
    a.set_title(f"'{tree.names[node]}': path (red) and subtree (blue)")
    true_in = [1 + n for n in [node, *below]]  # rows of the states ending at node or below
    draw_legal_states(tree, rows=true_in, ax=b)
    b.set_title(f"the {len(true_in)} legal states with '{tree.names[node]}' true")
    return fig


# ------------------------------------------------------------ chapter 2
def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=float)


def _tree_axes_style(ax: Axes, tree: LabelTree, pos: np.ndarray) -> None:
    ax.set_yticks(-np.arange(tree.num_levels), labels=tree.level_names)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_xlim(pos[:, 0].min() - 0.8, pos[:, 0].max() + 0.8)
    ax.set_ylim(-(tree.num_levels - 1) - 0.7, 0.6)


def draw_marginals(
    tree: LabelTree,
    marginals,
    state_probs=None,
    energies=None,
    title: str | None = None,
) -> Figure:
    """The marginal probability of every node of a small tree, and (optionally)
    the distribution over its legal states.

    Args:
        tree: a small tree (drawn node by node).
        marginals: ``(N,)`` floats in ``[0, 1]``, ``P(y_i = 1)``.
        state_probs: optional ``(N + 1,)`` floats summing to 1: the legal states in
            :meth:`LabelTree.legal_states` order (empty state first); adds a panel.
        energies: optional ``(N,)`` energies, written under each node.
        title: optional figure title.
    """
    p = _as_numpy(marginals)
    pos = tree_layout(tree)
    panels = 2 if state_probs is not None else 1
    width = max(6.0, 0.75 * len(tree.leaves) + 2)
    fig, axes = plt.subplots(1, panels, figsize=(width + 5.5 * (panels - 1), 3.9),
                             layout="constrained", squeeze=False,
                             width_ratios=[width, 5.5][:panels])
    ax = axes[0, 0]
    for node in range(tree.num_nodes):
        parent = int(tree.parent[node])
        if parent >= 0:
            ax.plot(pos[[parent, node], 0], pos[[parent, node], 1], "-", color="0.7", zorder=1)
    dots = ax.scatter(pos[:, 0], pos[:, 1], s=420, c=p, cmap="Blues", vmin=0, vmax=1,
                      edgecolor="0.3", zorder=2)
    for node in range(tree.num_nodes):
        ax.annotate(tree.names[node], pos[node], xytext=(0, 13), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8)
        text = f"{p[node]:.2f}"
        if energies is not None:
            text += f"\nf={float(_as_numpy(energies)[node]):+.1f}"
        ax.annotate(text, pos[node], xytext=(0, -13), textcoords="offset points",
                    ha="center", va="top", fontsize=7.5)
    _tree_axes_style(ax, tree, pos)
    ax.set_ylim(-(tree.num_levels - 1) - 0.75, 0.6)
    fig.colorbar(dots, ax=ax, shrink=0.8, label="P(y_i = 1)")
    ax.set_title("marginals: P(node is true)")
    if state_probs is not None:
        q = _as_numpy(state_probs)
        b = axes[0, 1]
        labels = ["∅"] + [f"→ {n}" for n in tree.names]
        colors = ["0.5"] + [LEVEL_COLORS[int(lv) % len(LEVEL_COLORS)]
                            for lv in tree.level_of.tolist()]
        b.barh(np.arange(len(q)), q, color=colors)
        b.set_yticks(np.arange(len(q)), labels=labels, fontsize=7.5)
        b.invert_yaxis()
        b.set_xlim(0, max(0.05, float(q.max()) * 1.15))
        b.set_xlabel("P(state)")
        b.set_title(f"the {len(q)} legal states")
    if title:
        fig.suptitle(title)
    return fig


#: Colours of the relations of a node to a label, in :func:`draw_label_gradient`.
RELATION_COLORS = {"label": "#c44e52", "ancestor": "#dd8452", "descendant": "#4c72b0",
                   "sibling": "#8172b3", "elsewhere": "0.6"}


def node_relations(tree: LabelTree, node: int) -> list[str]:
    """For every node of ``tree``: ``"label"`` (``node`` itself), ``"ancestor"``,
    ``"descendant"``, ``"sibling"`` (same parent, or both roots) or ``"elsewhere"``."""
    node = int(node)
    up = set(tree.ancestors(node).tolist())
    down = set(tree.descendants(node).tolist())
    parent = int(tree.parent[node])
    out = []
    for j in range(tree.num_nodes):
        if j == node:
            out.append("label")
        elif j in up:
            out.append("ancestor")
        elif j in down:
            out.append("descendant")
        elif int(tree.parent[j]) == parent:
            out.append("sibling")
        else:
            out.append("elsewhere")
    return out


def draw_label_gradient(tree: LabelTree, grad, node: int, title: str | None = None) -> Figure:
    """Which way a label at ``node`` pushes every node's energy.

    Args:
        tree: a small tree.
        grad: ``(N,)`` the gradient of the loss ``-log P(y_node = 1)`` with respect
            to the energies; the figure shows ``-grad``, the direction gradient
            descent moves each energy (up: raise it).
        node: the labelled node.
        title: optional figure title.
    """
    step = -_as_numpy(grad)
    relation = node_relations(tree, node)
    pos = tree_layout(tree)
    width = max(6.0, 0.75 * len(tree.leaves) + 2)
    fig, (a, b) = plt.subplots(1, 2, figsize=(width + 6, 3.9), layout="constrained",
                               width_ratios=[width, 6])
    lim = max(float(np.abs(step).max()), 1e-12)
    for j in range(tree.num_nodes):
        parent = int(tree.parent[j])
        if parent >= 0:
            a.plot(pos[[parent, j], 0], pos[[parent, j], 1], "-", color="0.7", zorder=1)
    dots = a.scatter(pos[:, 0], pos[:, 1], s=420, c=step, cmap="RdBu", vmin=-lim, vmax=lim,
                     edgecolor=["black" if r == "label" else "0.4" for r in relation],
                     linewidths=[2.5 if r == "label" else 0.8 for r in relation], zorder=2)
    for j in range(tree.num_nodes):
        a.annotate(tree.names[j], pos[j], xytext=(0, 13), textcoords="offset points",
                   ha="center", va="bottom", fontsize=8,
                   fontweight="bold" if relation[j] == "label" else "normal")
    _tree_axes_style(a, tree, pos)
    fig.colorbar(dots, ax=a, shrink=0.8, label="−∂L/∂f (blue: raise, red: lower)")
    a.set_title(f"label '{tree.names[int(node)]}': the update of each energy")
    b.bar(np.arange(tree.num_nodes), step, color=[RELATION_COLORS[r] for r in relation])
    b.axhline(0, color="black", lw=0.8)
    b.set_xticks(np.arange(tree.num_nodes), labels=tree.names, rotation=90, fontsize=7.5)
    b.set_ylabel("−∂L/∂f")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in RELATION_COLORS.values()]
    b.legend(handles, list(RELATION_COLORS), fontsize=7.5, loc="best")
    b.set_title("by relation to the label")
    if title:
        fig.suptitle(title)
    return fig


def draw_scaling(
    nodes: Iterable[int],
    seconds: Mapping[str, Iterable[float]],
    title: str | None = None,
    linear: str | None = None,
    quadratic: str | None = None,
) -> Figure:
    """Time against tree size on log-log axes, one line per formulation.

    Args:
        nodes: the tree sizes ``N``.
        seconds: formulation → one time per size (``nan`` where it was not run).
        title: optional axes title.
        linear: the formulation a dotted ``∝ N`` guide passes through (at its
            largest size); default the last formulation.
        quadratic: the formulation a dashed ``∝ N²`` guide passes through (at its
            largest size); default none.
    """
    n = _as_numpy(list(nodes))
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    markers = itertools.cycle("osD^v")
    for k, (name, values) in enumerate(seconds.items()):
        t = _as_numpy(list(values))
        ok = np.isfinite(t)
        ax.loglog(n[ok], t[ok], marker=next(markers), label=name,
                  color=LEVEL_COLORS[k % len(LEVEL_COLORS)])
    grid = np.geomspace(n.min(), n.max(), 20)
    guides = [(linear if linear is not None else list(seconds)[-1], 1, ":", "∝ N")]
    if quadratic is not None:
        guides.append((quadratic, 2, "--", "∝ N²"))
    for name, slope, style, label in guides:
        ref = _as_numpy(list(seconds[name]))
        ok = np.isfinite(ref)
        if ok.any():
            n0, t0 = n[ok][-1], ref[ok][-1]
            ax.loglog(grid, t0 * (grid / n0) ** slope, style, color="0.5", lw=1, label=label)
    ax.set_xlabel("nodes N")
    ax.set_ylabel("seconds per forward + backward")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title or "L_Hier: time against tree size")
    return fig


def draw_sigmoid_ceiling(
    best: Mapping[str, Iterable[float]],
    bounds: Iterable[float],
    curves: Mapping[str, Iterable[float]],
) -> Figure:
    """What bounded energies allow: the best leaf probability per tree.

    Args:
        best: tree name → the best probability of each leaf with energies in
            ``[0, 1]`` (sigmoid outputs).
        bounds: upper bounds ``h`` of the energy range ``[0, h]``.
        curves: tree name → the mean best leaf probability for each bound.
    """
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.9), layout="constrained")
    names = list(best)
    for k, name in enumerate(names):
        v = _as_numpy(list(best[name]))
        jitter = np.random.default_rng(k).uniform(-0.18, 0.18, len(v))
        color = LEVEL_COLORS[k % len(LEVEL_COLORS)]
        a.scatter(k + jitter, v, s=9, alpha=0.5, color=color)
        a.plot([k - 0.3, k + 0.3], [v.mean()] * 2, color="black", lw=2)
        a.annotate(f"mean {v.mean():.3f}", (k + 0.32, v.mean()), va="center", fontsize=8)
    a.set_xticks(range(len(names)), labels=names)
    a.set_xlim(-0.5, len(names) - 0.1)
    a.set_ylabel("best P(leaf) with energies in [0, 1]")
    a.set_title("sigmoid energies: the ceiling of every leaf")
    h = _as_numpy(list(bounds))
    for k, (name, values) in enumerate(curves.items()):
        b.plot(h, _as_numpy(list(values)), marker="o", ms=3, label=name,
               color=LEVEL_COLORS[k % len(LEVEL_COLORS)])
    b.axvline(1.0, color="0.5", ls=":", lw=1)
    b.annotate("sigmoid (h = 1)", (1.0, 0.5), xytext=(4, 0), textcoords="offset points",
               fontsize=8, rotation=90, va="center")
    b.set_xlabel("energies bounded to [0, h]")
    b.set_ylabel("mean best P(leaf)")
    b.set_ylim(0, 1.02)
    b.legend(fontsize=8)
    b.set_title("a wider energy range lifts the ceiling")
    return fig


# ------------------------------------------------------------------ the data
#: Colours of boxes drawn on samples (cycled): object, part, then more objects.
BOX_COLORS = ["#ffffff", "#00e5ff", "#ffd60a", "#ff2d55", "#30d158", "#bf5af2"]
#: A dark outline under boxes and their labels, so they read on any colour.
_OUTLINE = [patheffects.Stroke(linewidth=2.4, foreground="black"), patheffects.Normal()]
#: Colours of partial labels: known negative, unknown, known positive.
PARTIAL_COLORS = ["#c44e52", "#e6e6e6", "#55a868"]


def _image_grid(n: int, ncols: int, size: float) -> tuple[Figure, np.ndarray]:
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.2),
                             layout="constrained", squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float32)


def _to_hwc(image) -> np.ndarray:
    """``(3, H, W)`` or ``(1, H, W)`` tensor/array in [0, 1] → ``(H, W, 3)`` or
    ``(H, W)`` array for imshow."""
    arr = _numpy(image)
    if arr.ndim != 3 or arr.shape[0] not in (1, 3):
        raise ValueError(f"expected a (3, H, W) or (1, H, W) image, got shape {arr.shape}.")
    arr = np.clip(np.moveaxis(arr, 0, -1), 0.0, 1.0)  # (H, W, C)
    return arr[..., 0] if arr.shape[-1] == 1 else arr


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
            ``(3, H, W)`` images.
        boxes: optional, per image a ``(K, 4)`` float ``xyxy`` array of pixel boxes
            (pixel ``j`` spans ``[j, j + 1)``).
        box_labels: optional, per image ``K`` strings written at the boxes' corners;
            the same string gets the same colour in every image.
        titles: optional, one title per image.
        ncols: images per row.
        size: inches per image.
        title: optional figure title.
    """
    images = list(images)
    fig, axes = _image_grid(len(images), ncols, size)
    titles = list(titles) if titles is not None else None
    palette: dict[str, str] = {}
    for i, image in enumerate(images):
        ax = axes.flat[i]
        arr = _to_hwc(image)
        ax.imshow(arr, interpolation="nearest", cmap="gray" if arr.ndim == 2 else None,
                  extent=(0, arr.shape[1], arr.shape[0], 0))
        if boxes is not None:
            bxs = _numpy(boxes[i]).reshape(-1, 4)
            names = list(box_labels[i]) if box_labels is not None else [""] * len(bxs)
            for k, (box, name) in enumerate(zip(bxs, names, strict=True)):
                key = name or str(k)
                color = palette.setdefault(key, BOX_COLORS[len(palette) % len(BOX_COLORS)])
                x0, y0, x1, y1 = box.tolist()
                ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False,
                                           edgecolor=color, linewidth=1.2,
                                           path_effects=_OUTLINE))
                if name:
                    ax.text(x0, y0, name, color=color, fontsize=6, va="bottom", ha="left",
                            clip_on=True, path_effects=_OUTLINE)
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def draw_accuracy_vs_chance(
    accuracy: Mapping[str, Mapping[str, float]],
    chance: Mapping[str, float],
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Grouped bars of accuracy (%) per level, with each level's chance level.

    Args:
        accuracy: ``{run: {level: accuracy in %}}``, e.g. ``{"probe": {"order": 99.1, ...}}``.
        chance: ``{level: chance accuracy in %}`` (``100 / classes``), drawn as a dashed
            line over the level's bars.
        title: optional axes title.
        ax: draw into these axes instead of a new figure.
    """
    runs = list(accuracy)
    levels = list(chance)
    fig, ax = _new_axes(ax, (1.6 + 1.5 * len(levels) * max(1, len(runs)) ** 0.5, 3.4))
    width = 0.8 / max(1, len(runs))
    for r, run in enumerate(runs):
        values = [accuracy[run].get(level, np.nan) for level in levels]
        xs = np.arange(len(levels)) + (r - (len(runs) - 1) / 2) * width
        bars = ax.bar(xs, values, width, label=run,
                      color=LEVEL_COLORS[r % len(LEVEL_COLORS)])
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    for i, level in enumerate(levels):
        ax.hlines(chance[level], i - 0.45, i + 0.45, colors="black", linestyles="--", lw=1,
                  label="chance" if i == 0 else None)
    ax.set_xticks(range(len(levels)), labels=levels)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 109)
    ax.legend(fontsize=8, loc="lower left")
    if title:
        ax.set_title(title)
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
    fig, ax = _new_axes(ax, (1.8 + 1.1 * len(settings), 3.4))
    bottom = np.zeros(len(settings))
    for lv, level in enumerate(levels):
        values = np.array([float(counts[s].get(level, 0)) for s in settings])
        bars = ax.bar(settings, values, bottom=bottom, label=level,
                      color=LEVEL_COLORS[lv % len(LEVEL_COLORS)])
        ax.bar_label(bars, labels=[f"{v:.0f}" if v else "" for v in values], label_type="center",
                     fontsize=7, color="white")
        bottom += values
    ax.set_ylabel("training labels")
    ax.legend(fontsize=8, title="label level", title_fontsize=8, loc="upper left",
              bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title)
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
            ax.imshow(_to_hwc(image), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, j].set_title(titles[j], fontsize=7)
    axes[0, 0].set_ylabel(row_labels[0], fontsize=8)
    axes[1, 0].set_ylabel(row_labels[1], fontsize=8)
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
    from matplotlib.colors import ListedColormap

    names = list(class_names) if class_names is not None else None
    cmap = ListedColormap(PARTIAL_COLORS)
    n = len(partials)
    fig, axes = plt.subplots(1, n, figsize=(0.2 + 2.9 * n, 4.2), layout="constrained",
                             squeeze=False, sharey=True)
    for ax, (setting, labels) in zip(axes[0], partials.items(), strict=True):
        arr = _numpy(labels)[:max_rows]  # (rows, C)
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
        arr = _numpy(matrix)
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


# ------------------------------------------------------------- HRN chapters
def draw_grouped_bars(
    table,
    x: str,
    hue: str,
    value: str = "value",
    panel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    chance: Mapping[str, float] | None = None,
    log: bool = False,
    fmt: str = "%.0f",
    marks: Mapping[tuple, float] | None = None,
    marks_label: str | None = None,
) -> Figure:
    """Grouped bars from a long table: one group per ``x``, one bar per ``hue``,
    one panel per ``panel`` value (e.g. per relabel ratio).

    Args:
        table: a pandas DataFrame (or anything ``pandas.DataFrame`` accepts) with
            the columns ``x``, ``hue``, ``value`` (and ``panel``).
        chance: optional ``{x value: level}`` drawn as a dashed mark per group.
        log: logarithmic value axis.
        fmt: the format of the value printed on each bar (none on a log axis).
        marks: optional ``{(x value, hue value): level}`` drawn as a dotted mark
            across that one bar (e.g. a reference level of its own), in every panel.
        marks_label: the legend entry of the marks.
    """
    import pandas as pd

    df = pd.DataFrame(table)
    panels = [None] if panel is None else list(dict.fromkeys(df[panel]))
    xs, hues = list(dict.fromkeys(df[x])), list(dict.fromkeys(df[hue]))
    fig, axes = plt.subplots(1, len(panels), figsize=(max(5.0, 1.2 * len(xs) * len(panels)
                                                          + 0.5 * len(hues) + 2), 3.6),
                             layout="constrained", squeeze=False, sharey=True)
    width = 0.8 / len(hues)
    for ax, p in zip(axes[0], panels, strict=True):
        sub = df if p is None else df[df[panel] == p]
        for k, h in enumerate(hues):
            vals = [sub[(sub[x] == v) & (sub[hue] == h)][value].mean() for v in xs]
            bars = ax.bar(np.arange(len(xs)) + (k - (len(hues) - 1) / 2) * width, vals, width,
                          label=str(h), color=LEVEL_COLORS[k % len(LEVEL_COLORS)])
            if not log:
                ax.bar_label(bars, fmt=fmt, fontsize=7)
            for v, bar in zip(xs, bars, strict=True):
                if marks and (v, h) in marks:
                    first = not any(line.get_label() == marks_label for line in ax.lines)
                    ax.plot([bar.get_x(), bar.get_x() + bar.get_width()], [marks[(v, h)]] * 2,
                            "k:", lw=2, label=marks_label if first and marks_label else None)
        if chance:
            for i, v in enumerate(xs):
                if v in chance:
                    ax.plot([i - 0.45, i + 0.45], [chance[v]] * 2, "k--", lw=1)
        ax.set_xticks(range(len(xs)), labels=[str(v) for v in xs])
        if log:
            ax.set_yscale("log")
        if p is not None:
            ax.set_title(f"{panel} = {p}")
    axes[0, 0].set_ylabel(ylabel or value)
    axes[0, -1].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return fig


# ------------------------------------------------------------ chapter 4
def _check_series(fn: str, what: str, values, n: int) -> np.ndarray:
    v = _as_numpy(list(values))
    if v.shape != (n,):
        raise ValueError(f"{fn}: {what} has {v.size} values, expected {n} (one per relabel "
                         "ratio; use nan for a missing run).")
    return v


def draw_relabel_curves(
    ratios: Iterable[float],
    panels: Mapping[str, Mapping[str, Iterable[float]]],
    ylabel: str = "%",
    title: str | None = None,
    emphasis: str | None = None,
    ylims: Mapping[str, tuple[float, float]] | None = None,
    colors: Mapping[str, str] | None = None,
    dashed: Iterable[str] = (),
    spreads: Mapping[str, Mapping[str, Iterable[float]]] | None = None,
) -> Figure:
    """Metrics against the share of relabelled training images: one panel per
    metric (e.g. OA per level, AU(PRC)), one line per method, optionally with a
    band of plus or minus the spread over seeds.

    Args:
        ratios: the ``R`` relabel ratios in ``[0, 1]`` (drawn as %).
        panels: ``{panel title: {method: R values}}``; ``nan`` values are skipped.
            Every panel draws the methods in the order of the first panel, each in
            the same colour.
        ylabel: label of the value axis of the first panel.
        title: optional figure title.
        emphasis: a method drawn thicker (e.g. ``"HRN"``).
        ylims: optional ``{panel title: (low, high)}`` value-axis limits.
        colors: optional ``{method: colour}`` (default: one colour per method), e.g.
            one colour for two variants of a method.
        dashed: methods drawn with dashed lines (e.g. the variants).
        spreads: optional ``{panel title: {method: R spreads}}`` (e.g. the standard
            deviation over seeds), drawn as a band of the line's colour.

    Raises:
        ValueError: no panel, a panel without methods, or a series (or spread)
            whose length is not ``R``.
    """
    fn = "draw_relabel_curves"
    x = 100 * _as_numpy(list(ratios))  # (R,) in %
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{fn}: ratios must be a non-empty list of relabel ratios.")
    if not panels:
        raise ValueError(f"{fn}: panels is empty; give {{panel title: {{method: values}}}}.")
    methods: list[str] = []
    for name, series in panels.items():
        if not series:
            raise ValueError(f"{fn}: panel '{name}' has no methods.")
        methods += [m for m in series if m not in methods]
    colors = {m: LEVEL_COLORS[k % len(LEVEL_COLORS)] for k, m in enumerate(methods)} | dict(
        colors or {})
    markers = dict(zip(methods, itertools.cycle("osD^vP"), strict=False))
    styles = {m: "--" if m in set(dashed) else "-" for m in methods}
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(0.6 + 3.3 * n, 3.5), layout="constrained",
                             squeeze=False)
    for ax, (name, series) in zip(axes[0], panels.items(), strict=True):
        for method, values in series.items():
            y = _check_series(fn, f"panel '{name}', method '{method}'", values, x.size)
            ok = np.isfinite(y)
            strong = method == emphasis
            ax.plot(x[ok], y[ok], marker=markers[method], ms=5 if strong else 4,
                    lw=2.6 if strong else 1.4, color=colors[method], ls=styles[method],
                    label=method, zorder=3 if strong else 2)
            if spreads and method in spreads.get(name, {}):
                sd = _check_series(fn, f"spread of '{method}' in '{name}'",
                                   spreads[name][method], x.size)
                band = ok & np.isfinite(sd)
                ax.fill_between(x[band], (y - sd)[band], (y + sd)[band], color=colors[method],
                                alpha=0.15, lw=0, zorder=1)
        ax.set_title(name, fontsize=10)
        ax.set_xticks(x, labels=[f"{v:.0f}" for v in x])
        ax.set_xlabel("relabelled to the parent (%)")
        ax.grid(True, alpha=0.3)
        if ylims and name in ylims:
            ax.set_ylim(*ylims[name])
    axes[0, 0].set_ylabel(ylabel)
    handles = [plt.Line2D([], [], color=colors[m], marker=markers[m], ls=styles[m],
                          lw=2.6 if m == emphasis else 1.4) for m in methods]
    fig.legend(handles, methods, loc="outside lower center", ncols=min(len(methods), 6),
               fontsize=8.5)
    if title:
        fig.suptitle(title)
    return fig


def draw_training_curves(
    histories: Mapping[str, Iterable[Mapping[str, float]]],
    keys: Iterable[str] = ("loss", "hier", "ce"),
    titles: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Figure:
    """Per-epoch training curves: one panel per logged quantity, one line per run.

    Args:
        histories: ``{run: history}``, a history being one dict per epoch as
            :func:`hmglib.engine.fit` logs it (``epoch`` 0-based, the loss parts, ...).
        keys: the quantities to draw, one panel each.
        titles: optional ``{key: panel title}``.
        title: optional figure title.

    Raises:
        ValueError: no run, an empty history, or a key a history does not log
            (the message lists the keys it has).
    """
    fn = "draw_training_curves"
    keys = list(keys)
    if not histories or not keys:
        raise ValueError(f"{fn}: give at least one run and one key.")
    runs = {name: list(h) for name, h in histories.items()}
    for name, h in runs.items():
        if not h:
            raise ValueError(f"{fn}: the history of '{name}' is empty (no finished epoch).")
        for key in keys:
            missing = [i for i, row in enumerate(h) if key not in row]
            if missing:
                raise ValueError(f"{fn}: the history of '{name}' has no '{key}' at epoch "
                                 f"{missing[0]}; it logs {sorted(h[missing[0]])}.")
    fig, axes = plt.subplots(1, len(keys), figsize=(0.6 + 3.3 * len(keys), 3.3),
                             layout="constrained", squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for k, (name, h) in enumerate(runs.items()):
            epochs = [int(row.get("epoch", i)) + 1 for i, row in enumerate(h)]
            ax.plot(epochs, [float(row[key]) for row in h], marker="o", ms=3, label=name,
                    color=LEVEL_COLORS[k % len(LEVEL_COLORS)])
        ax.set_title((titles or {}).get(key, key), fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
    axes[0, 0].set_ylabel("training loss (mean per epoch)")
    axes[0, -1].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return fig
