"""Label trees drawn: the tree itself (node by node, or as nested bands when it
is large), a summary of a large one, its legal states, the sizes of its levels,
and one node in its tree.

The tree is the only data of these figures, so it comes first. Node positions
come from :meth:`.LabelTree.layout`. Every figure fits the book's page column
(``hmglib.viz.page.PAGE_WIDTH_IN`` inches) with text of at least 9 points.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from matplotlib.textpath import TextPath

from hmglib.hierarchy import LabelTree
from hmglib.viz._axes import new_axes
from hmglib.viz.colors import level_color
from hmglib.viz.page import CHAR_IN, PAGE_WIDTH_IN
from hmglib.viz.page import FONT_PT as _FONT_PT  # these figures fit the page: as shown

__all__ = [
    "draw_tree",
    "draw_tree_icicle",
    "draw_tree_summary",
    "draw_legal_states",
    "draw_level_sizes",
    "draw_node_view",
]

#: Trees with more nodes than this are drawn as nested bands
#: (:func:`draw_tree_icicle`) by :func:`draw_tree`: one name per node would not
#: be readable.
MAX_DRAWN_NODES = 60


def draw_tree(
    tree: LabelTree,
    highlight: Mapping[int, str] | None = None,
    ax: Axes | None = None,
    max_nodes: int = MAX_DRAWN_NODES,
    title: str | None = None,
) -> Figure:
    """Draw a label tree, one row per level, root(s) at the top.

    Args:
        tree: the tree. With more than ``max_nodes`` nodes the figure is the
            same tree as nested bands, :func:`draw_tree_icicle` (one name per
            node would not be readable); ``highlight`` is then not supported.
        highlight: optional ``{node: colour}``; highlighted nodes and the edges
            between them are drawn in that colour, every other node faded.
        ax: draw into these axes instead of a new figure.
        max_nodes: the largest tree drawn node by node.
        title: optional axes title.

    Raises:
        ValueError: ``highlight`` on a tree of more than ``max_nodes`` nodes.
    """
    if tree.num_nodes > max_nodes:
        if highlight:
            raise ValueError(
                f"draw_tree: the tree has {tree.num_nodes} nodes, more than max_nodes="
                f"{max_nodes}, so it is drawn as nested bands, which cannot highlight "
                "nodes; raise max_nodes to draw it node by node.")
        return draw_tree_icicle(tree, title=title, ax=ax)
    n_leaf = len(tree.leaves)
    rotate = n_leaf > 8  # many leaves: vertical labels; few: wrapped horizontal ones
    width = min(PAGE_WIDTH_IN, (0.3 * n_leaf + 2.0) if rotate else (1.0 * n_leaf + 1.2))
    fig, ax = new_axes(ax, (max(4.5, width), 1.3 * tree.num_levels + (1.6 if rotate else 1.0)))
    pos = tree.layout().numpy()  # (N, 2)
    axes_in = ax.figure.get_size_inches()[0] * ax.get_position().width  # about
    unit_in = axes_in / (n_leaf + 0.6)  # inches per leaf
    wrap = max(6, int(0.9 * unit_in / CHAR_IN))
    room = {}  # inner level -> characters between its neighbouring nodes
    for lv in range(tree.num_levels - 1):
        xs = np.sort(pos[tree.nodes_at(lv).numpy(), 0])
        gap = float(np.diff(xs).min()) if len(xs) > 1 else float(n_leaf)
        room[lv] = int((gap * unit_in - 0.1) / CHAR_IN)
    faded = highlight is not None
    highlight = dict(highlight or {})
    for node, p in enumerate(tree.parent.tolist()):
        if p < 0:
            continue
        on = node in highlight and p in highlight
        ax.plot(
            pos[[p, node], 0], pos[[p, node], 1], "-",
            color=highlight[node] if on else "0.6", lw=2.2 if on else 1.0,
            alpha=1.0 if (on or not faded) else 0.35, zorder=1,
        )
    for node, lv in enumerate(tree.level_of.tolist()):
        color = highlight.get(node, level_color(lv))
        alpha = 1.0 if (node in highlight or not faded) else 0.3
        ax.scatter(*pos[node], s=80, color=color, alpha=alpha, zorder=2,
                   edgecolor="black" if node in highlight else "none")
        is_leaf = lv == tree.num_levels - 1
        label = tree.names[node]
        beside = not is_leaf and len(label) <= room[lv]  # right of the node
        if is_leaf and not rotate:
            label = textwrap.fill(label, wrap, break_long_words=False)
        elif not is_leaf and not beside:  # too long for the gap: wrap, centred
            label = textwrap.fill(label, max(6, room[lv] + 2), break_long_words=False)
        ax.annotate(
            label, pos[node],
            xytext=(0, -8) if is_leaf else ((6, 5) if beside else (0, 6)),
            textcoords="offset points", rotation=90 if (is_leaf and rotate) else 0,
            ha="left" if beside else "center", va="top" if is_leaf else "bottom",
            fontsize=_FONT_PT, alpha=max(alpha, 0.5),
            fontweight="bold" if node in highlight else "normal",
        )
    ax.set_yticks(-np.arange(tree.num_levels), labels=tree.level_names)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_xlim(-0.8, n_leaf - 0.2)
    ax.set_ylim(-(tree.num_levels - 1) - (1.9 if rotate else 0.9), 0.6)
    if title:
        ax.set_title(title)
    return fig


def _text_inches(text: str, size: float) -> tuple[float, float]:
    """The width and height, in inches, of ``text`` set horizontally at ``size`` pt."""
    box = TextPath((0, 0), text, size=size, prop=FontProperties()).get_extents()
    return box.width / 72, size * 1.15 / 72


def draw_tree_icicle(
    tree: LabelTree,
    title: str | None = None,
    ax: Axes | None = None,
    width: float = PAGE_WIDTH_IN,
) -> Figure:
    """Every node of a tree of any size, as nested bands (an icicle diagram).

    Each level is a row, the roots on top. A node is a band under its parent
    that spans the leaves below it, so its width is its number of leaves and
    the bands of one level tile the width. A name is written in its band where
    it fits at 9 points (across the band, else along it); the
    other bands stay unnamed. The rows are as tall as their longest written
    name.

    Args:
        tree: the tree, of any size.
        title: optional axes title.
        ax: draw into these axes instead of a new figure.
        width: the figure's width in inches (ignored with ``ax``).
    """
    n_leaf = len(tree.leaves)
    pos = tree.layout().numpy()  # (N, 2); leaves at x = 0 .. n_leaf - 1
    below = tree.ancestor_matrix()[tree.leaves].numpy()  # (n_leaf, N): leaf k under node j
    leaf_x = pos[tree.leaves.numpy(), 0]  # (n_leaf,)
    lo = np.array([leaf_x[below[:, j]].min() for j in range(tree.num_nodes)])  # (N,)
    hi = np.array([leaf_x[below[:, j]].max() for j in range(tree.num_nodes)]) + 1  # (N,)
    left, right, pad = 1.25, 0.1, 0.06  # inches
    if ax is not None:
        fig = ax.figure
        width = float(fig.get_size_inches()[0] * ax.get_position().width) + left + right
    per_leaf = (width - left - right) / n_leaf  # inches per leaf
    # what each name needs: written across the band, along it, or not at all
    how: list[str | None] = []
    rows = np.full(tree.num_levels, 0.3)  # inches per level row
    for node, lv in enumerate(tree.level_of.tolist()):
        band = (hi[node] - lo[node]) * per_leaf
        w, h = _text_inches(tree.names[node], _FONT_PT)
        if w + pad <= band:
            how.append("across")
            rows[lv] = max(rows[lv], h + 2 * pad)
        elif h + pad <= band:
            how.append("along")
            rows[lv] = max(rows[lv], min(w + 2 * pad, 1.7))
        else:
            how.append(None)
    top = np.concatenate([[0.0], np.cumsum(rows)])  # (L + 1,) inches from the top
    if ax is None:
        fig = plt.figure(figsize=(width, float(top[-1]) + 0.75))
        height = fig.get_size_inches()[1]
        ax = fig.add_axes((left / width, 0.35 / height, 1 - (left + right) / width,
                           float(top[-1]) / height))
    for node, lv in enumerate(tree.level_of.tolist()):
        y0, y1 = -top[lv + 1], -top[lv]
        rank = int((lo[tree.nodes_at(lv).numpy()] < lo[node]).sum())  # place in its row
        shade = 1.0 if rank % 2 == 0 else 0.72  # neighbours told apart
        ax.add_patch(Rectangle((lo[node], y0), hi[node] - lo[node], y1 - y0,
                               facecolor=level_color(lv), alpha=shade, edgecolor="white",
                               linewidth=0.6))
        name = tree.names[node]
        if how[node] == "across":
            ax.text((lo[node] + hi[node]) / 2, (y0 + y1) / 2, name, ha="center",
                    va="center", fontsize=_FONT_PT, clip_on=True)
        elif how[node] == "along":
            fits = (rows[lv] - 2 * pad) / _text_inches(name, _FONT_PT)[0]
            if fits < 1:  # too long for the row: cut, and say so
                keep = max(3, int(len(name) * fits) - 1)
                name = name[:keep] + "…"
            ax.text((lo[node] + hi[node]) / 2, y1 - pad, name, ha="center", va="top",
                    rotation=90, fontsize=_FONT_PT, clip_on=True)
    ax.set_xlim(0, n_leaf)
    ax.set_ylim(-top[-1], 0)
    ax.set_yticks(-(top[:-1] + top[1:]) / 2,
                  labels=[f"{name}\n({size})" for name, size in
                          zip(tree.level_names, tree.level_sizes, strict=True)],
                  fontsize=_FONT_PT)
    ax.set_xticks([])
    ax.set_xlabel(f"band width: the number of leaves below a node ({n_leaf} "
                  f"{tree.level_names[-1]} nodes in all)", fontsize=_FONT_PT)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    if title:
        ax.set_title(title, fontsize=_FONT_PT + 1)
    return fig


def draw_tree_summary(tree: LabelTree, title: str | None = None) -> Figure:
    """A per-level summary of a large tree: nodes per level, and how many children
    the nodes of each level have (the branching factor).

    Args:
        tree: the tree, of any size.
        title: optional figure title (default: the tree's ``repr``).
    """
    fig, (a, b) = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 3.4), layout="constrained")
    colors = [level_color(i) for i in range(tree.num_levels)]
    bars = a.bar(tree.level_names, tree.level_sizes, color=colors)
    a.bar_label(bars, fontsize=_FONT_PT)
    a.set_ylabel("nodes")
    a.set_title("nodes per level")
    counts = torch.bincount(tree.parent[tree.parent >= 0], minlength=tree.num_nodes)  # (N,)
    data = [counts[tree.nodes_at(lv)].numpy() for lv in range(tree.num_levels - 1)]
    if data:
        b.boxplot(data, showmeans=True)
        b.set_xticks(range(1, len(data) + 1), labels=list(tree.level_names[:-1]))
        for lv, d in enumerate(data):
            jitter = np.random.default_rng(lv).uniform(-0.12, 0.12, len(d))
            b.scatter(lv + 1 + jitter, d, s=10, color=colors[lv], alpha=0.6, zorder=3)
    b.set_ylabel("children per node")
    b.set_title("branching")
    fig.suptitle(title or repr(tree), fontsize=_FONT_PT + 1)
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
        rows: optional rows (state indices in ``[0, N]``) to emphasise; the others
            are faded.
        ax: draw into these axes instead of a new figure.
        max_names: name the rows and columns when the tree has at most this many nodes.
    """
    states = tree.legal_states().float().numpy()  # (N + 1, N)
    n = tree.num_nodes
    named = n <= max_names
    cell = 0.17 if named else min(0.17, 4.5 / (n + 1))  # inches per row and column
    longest = max(len(s) for s in tree.names) * 0.075 if named else 0.5  # label room
    fig, ax = new_axes(ax, (min(PAGE_WIDTH_IN, cell * n + longest + 0.9),
                            min(9.0, cell * (n + 1) + longest + 0.6)))
    shade = np.ones(n + 1)
    if rows is not None:
        shade[:] = 0.25
        shade[list(rows)] = 1.0
    ax.imshow(states * shade[:, None], cmap="Greys", vmin=0, vmax=1, aspect="auto",
              interpolation="nearest")
    for lv in range(1, tree.num_levels):
        ax.axvline(tree.offset(lv) - 0.5, color=level_color(lv), lw=1.5)
    if named:
        ax.set_xticks(range(n), labels=tree.names, rotation=90, fontsize=_FONT_PT)
        ax.set_yticks(range(n + 1), labels=["∅ (empty)"] + [f"→ {s}" for s in tree.names],
                      fontsize=_FONT_PT)
    else:
        ax.set_xlabel("node")
        ax.set_ylabel("legal state")
    ax.set_title(f"{n + 1} legal states of a tree with {n} nodes", fontsize=_FONT_PT + 1)
    return fig


def draw_level_sizes(trees: Mapping[str, LabelTree]) -> Figure:
    """Several trees side by side: nodes per level of each.

    Args:
        trees: ``{name: tree}``, one panel each.
    """
    fig, axes = plt.subplots(1, len(trees), figsize=(min(PAGE_WIDTH_IN, 2.5 * len(trees)), 3.2),
                             layout="constrained", squeeze=False)
    for ax, (name, tree) in zip(axes[0], trees.items(), strict=True):
        colors = [level_color(i) for i in range(tree.num_levels)]
        bars = ax.bar(tree.level_names, tree.level_sizes, color=colors)
        ax.bar_label(bars, fontsize=_FONT_PT)
        ax.set_title(f"{name}: {tree.num_nodes} nodes", fontsize=_FONT_PT + 1)
        ax.set_ylim(0, max(tree.level_sizes) * 1.15)
        ax.tick_params(axis="x", labelrotation=30, labelsize=_FONT_PT)
        ax.tick_params(axis="y", labelsize=_FONT_PT)
    axes[0, 0].set_ylabel("nodes per level")
    return fig


def draw_node_view(tree: LabelTree, node: int) -> Figure:
    """One node in its tree: its root path, its subtree, and the legal states in
    which it is true (the states whose probabilities sum to the node's marginal).

    The tree is drawn on top, the legal-state matrix below it, both at the
    page's width.

    Args:
        tree: the tree (drawn node by node, whatever its size).
        node: a node index in ``[0, N)``.

    Raises:
        hmglib.hierarchy.LabelTreeError: ``node`` is not a node of ``tree``.
    """
    path = tree.path(node).tolist()
    below = tree.descendants(node).tolist()
    node = path[-1]
    highlight = {n: "#c44e52" for n in path}
    highlight.update({n: "#4c72b0" for n in below})
    n = tree.num_nodes
    named = n <= 40
    longest = max(len(s) for s in tree.names) * 0.075 if named else 0.5  # label room
    tree_h = 1.3 * tree.num_levels + (1.6 if len(tree.leaves) > 8 else 1.0)
    states_h = min(6.0, 0.17 * (n + 1)) + longest + 0.6
    fig, (a, b) = plt.subplots(2, 1, figsize=(PAGE_WIDTH_IN, tree_h + states_h),
                               layout="constrained", height_ratios=[tree_h, states_h])
    draw_tree(tree, highlight=highlight, ax=a, max_nodes=10**9)
    a.set_title(f"'{tree.names[node]}': path (red) and subtree (blue)",
                fontsize=_FONT_PT + 1)
    true_in = [1 + k for k in [node, *below]]  # rows of the states ending at node or below
    draw_legal_states(tree, rows=true_in, ax=b)
    b.set_title(f"the {len(true_in)} legal states with '{tree.names[node]}' true",
                fontsize=_FONT_PT + 1)
    return fig
