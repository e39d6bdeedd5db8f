"""Label trees drawn: the tree itself, a summary of a large one, its legal states,
the sizes of its levels, and one node in its tree.

The tree is the only data of these figures, so it comes first. Node positions
come from :meth:`.LabelTree.layout`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hmglib.hierarchy import LabelTree
from hmglib.viz._axes import new_axes
from hmglib.viz.colors import level_color

__all__ = [
    "draw_tree",
    "draw_tree_summary",
    "draw_legal_states",
    "draw_level_sizes",
    "draw_node_view",
]

#: Trees with more nodes than this are drawn as a per-level summary.
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
    fig, ax = new_axes(ax, (max(6.0, width), 1.4 * tree.num_levels + 1.2))
    pos = tree.layout().numpy()  # (N, 2)
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
    the nodes of each level have (the branching factor).

    Args:
        tree: the tree, of any size.
        title: optional figure title (default: the tree's ``repr``).
    """
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    colors = [level_color(i) for i in range(tree.num_levels)]
    bars = a.bar(tree.level_names, tree.level_sizes, color=colors)
    a.bar_label(bars)
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
        rows: optional rows (state indices in ``[0, N]``) to emphasise; the others
            are faded.
        ax: draw into these axes instead of a new figure.
        max_names: name the rows and columns when the tree has at most this many nodes.
    """
    states = tree.legal_states().float().numpy()  # (N + 1, N)
    n = tree.num_nodes
    fig, ax = new_axes(ax, (min(12.0, 2 + 0.28 * n), min(12.0, 2 + 0.28 * (n + 1))))
    shade = np.ones(n + 1)
    if rows is not None:
        shade[:] = 0.25
        shade[list(rows)] = 1.0
    ax.imshow(states * shade[:, None], cmap="Greys", vmin=0, vmax=1, aspect="auto",
              interpolation="nearest")
    for lv in range(1, tree.num_levels):
        ax.axvline(tree.offset(lv) - 0.5, color=level_color(lv), lw=1.5)
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
    """Several trees side by side: nodes per level of each.

    Args:
        trees: ``{name: tree}``, one panel each.
    """
    fig, axes = plt.subplots(1, len(trees), figsize=(3.6 * len(trees), 3.4),
                             layout="constrained", squeeze=False)
    for ax, (name, tree) in zip(axes[0], trees.items(), strict=True):
        colors = [level_color(i) for i in range(tree.num_levels)]
        bars = ax.bar(tree.level_names, tree.level_sizes, color=colors)
        ax.bar_label(bars)
        ax.set_title(f"{name}: {tree.num_nodes} nodes")
        ax.set_ylim(0, max(tree.level_sizes) * 1.15)
        ax.tick_params(axis="x", labelrotation=20)
    axes[0, 0].set_ylabel("nodes per level")
    return fig


def draw_node_view(tree: LabelTree, node: int) -> Figure:
    """One node in its tree: its root path, its subtree, and the legal states in
    which it is true (the states whose probabilities sum to the node's marginal).

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
    fig, (a, b) = plt.subplots(
        1, 2, figsize=(13, 4.6), layout="constrained", width_ratios=[1.5, 1]
    )
    draw_tree(tree, highlight=highlight, ax=a, max_nodes=10**9)
    a.set_title(f"'{tree.names[node]}': path (red) and subtree (blue)")
    true_in = [1 + n for n in [node, *below]]  # rows of the states ending at node or below
    draw_legal_states(tree, rows=true_in, ax=b)
    b.set_title(f"the {len(true_in)} legal states with '{tree.names[node]}' true")
    return fig
