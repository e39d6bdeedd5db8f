"""Probabilities on a tree drawn: node marginals and legal-state probabilities,
the push of a label on every energy, what bounded energies allow, and what the
marginals cost as the tree grows.

Argument order: the data first (marginals, a gradient), then the tree, then
the options.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from hmglib.hierarchy import LabelTree
from hmglib.viz._axes import as_numpy, check_per_node, check_tree, style_tree_axes, tree_edges
from hmglib.viz.colors import RELATION_COLORS, level_color

__all__ = [
    "draw_marginals",
    "draw_label_gradient",
    "draw_scaling",
    "draw_sigmoid_ceiling",
]


def draw_marginals(
    marginals,
    tree: LabelTree,
    state_probs=None,
    energies=None,
    title: str | None = None,
) -> Figure:
    """The marginal probability of every node of a small tree, and (optionally)
    the distribution over its legal states.

    Args:
        marginals: ``(N,)`` floats in ``[0, 1]``, ``P(y_i = 1)`` (tensor or array).
        tree: a small tree (drawn node by node).
        state_probs: optional ``(N + 1,)`` floats summing to 1: the legal states in
            :meth:`.LabelTree.legal_states` order (empty state first); adds a panel.
        energies: optional ``(N,)`` energies, written under each node.
        title: optional figure title.

    Raises:
        TypeError: ``tree`` is not a LabelTree (e.g. the arguments swapped).
        ValueError: ``marginals`` or ``energies`` is not one value per node, or
            ``state_probs`` not one per legal state.
    """
    fn, order = "draw_marginals", "marginals, tree, state_probs=None, energies=None, title=None"
    tree = check_tree(fn, tree, order)
    p = check_per_node(fn, "marginals", marginals, tree, order)  # (N,)
    f = None if energies is None else check_per_node(fn, "energies", energies, tree, order)
    q = None if state_probs is None else as_numpy(state_probs)  # (N + 1,)
    if q is not None and q.shape != (tree.num_nodes + 1,):
        raise ValueError(f"{fn}: state_probs has shape {q.shape}; give one probability per "
                         f"legal state, shape ({tree.num_nodes + 1},), empty state first.")
    pos = tree.layout().numpy()  # (N, 2)
    panels = 2 if q is not None else 1
    width = max(6.0, 0.75 * len(tree.leaves) + 2)
    fig, axes = plt.subplots(1, panels, figsize=(width + 5.5 * (panels - 1), 3.9),
                             layout="constrained", squeeze=False,
                             width_ratios=[width, 5.5][:panels])
    ax = axes[0, 0]
    tree_edges(ax, tree, pos)
    dots = ax.scatter(pos[:, 0], pos[:, 1], s=420, c=p, cmap="Blues", vmin=0, vmax=1,
                      edgecolor="0.3", zorder=2)
    for node in range(tree.num_nodes):
        ax.annotate(tree.names[node], pos[node], xytext=(0, 13), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8)
        text = f"{p[node]:.2f}"
        if f is not None:
            text += f"\nf={f[node]:+.1f}"
        ax.annotate(text, pos[node], xytext=(0, -13), textcoords="offset points",
                    ha="center", va="top", fontsize=7.5)
    style_tree_axes(ax, tree, pos)
    fig.colorbar(dots, ax=ax, shrink=0.8, label="P(y_i = 1)")
    ax.set_title("marginals: P(node is true)")
    if q is not None:
        b = axes[0, 1]
        labels = ["∅"] + [f"→ {n}" for n in tree.names]
        colors = ["0.5"] + [level_color(lv) for lv in tree.level_of.tolist()]
        b.barh(np.arange(len(q)), q, color=colors)
        b.set_yticks(np.arange(len(q)), labels=labels, fontsize=7.5)
        b.invert_yaxis()
        b.set_xlim(0, max(0.05, float(q.max()) * 1.15))
        b.set_xlabel("P(state)")
        b.set_title(f"the {len(q)} legal states")
    if title:
        fig.suptitle(title)
    return fig


def draw_label_gradient(grad, tree: LabelTree, node: int, title: str | None = None) -> Figure:
    """Which way a label at ``node`` pushes every node's energy.

    Args:
        grad: ``(N,)`` the gradient of the loss ``-log P(y_node = 1)`` with respect
            to the energies; the figure shows ``-grad``, the direction gradient
            descent moves each energy (up: raise it).
        tree: a small tree.
        node: the labelled node, in ``[0, N)``.
        title: optional figure title.

    Raises:
        TypeError: ``tree`` is not a LabelTree (e.g. the arguments swapped).
        ValueError: ``grad`` is not one value per node.
        hmglib.hierarchy.LabelTreeError: ``node`` is not a node of ``tree``.
    """
    fn, order = "draw_label_gradient", "grad, tree, node, title=None"
    tree = check_tree(fn, tree, order)
    step = -check_per_node(fn, "grad", grad, tree, order)  # (N,)
    relation = tree.relations(node)
    node = relation.index("label")
    pos = tree.layout().numpy()  # (N, 2)
    width = max(6.0, 0.75 * len(tree.leaves) + 2)
    fig, (a, b) = plt.subplots(1, 2, figsize=(width + 6, 3.9), layout="constrained",
                               width_ratios=[width, 6])
    lim = max(float(np.abs(step).max()), 1e-12)
    tree_edges(a, tree, pos)
    dots = a.scatter(pos[:, 0], pos[:, 1], s=420, c=step, cmap="RdBu", vmin=-lim, vmax=lim,
                     edgecolor=["black" if r == "label" else "0.4" for r in relation],
                     linewidths=[2.5 if r == "label" else 0.8 for r in relation], zorder=2)
    for j in range(tree.num_nodes):
        a.annotate(tree.names[j], pos[j], xytext=(0, 13), textcoords="offset points",
                   ha="center", va="bottom", fontsize=8,
                   fontweight="bold" if relation[j] == "label" else "normal")
    style_tree_axes(a, tree, pos)
    fig.colorbar(dots, ax=a, shrink=0.8, label="−∂L/∂f (blue: raise, red: lower)")
    a.set_title(f"label '{tree.names[node]}': the update of each energy")
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
        nodes: the ``S`` tree sizes ``N``.
        seconds: formulation → ``S`` times, one per size (``nan`` where it was not run).
        title: optional axes title.
        linear: the formulation a dotted ``∝ N`` guide passes through (at its
            largest size); default the last formulation.
        quadratic: the formulation a dashed ``∝ N²`` guide passes through (at its
            largest size); default none.
    """
    n = as_numpy(list(nodes))  # (S,)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    markers = itertools.cycle("osD^v")
    for k, (name, values) in enumerate(seconds.items()):
        t = as_numpy(list(values))
        ok = np.isfinite(t)
        ax.loglog(n[ok], t[ok], marker=next(markers), label=name, color=level_color(k))
    grid = np.geomspace(n.min(), n.max(), 20)
    guides = [(linear if linear is not None else list(seconds)[-1], 1, ":", "∝ N")]
    if quadratic is not None:
        guides.append((quadratic, 2, "--", "∝ N²"))
    for name, slope, style, label in guides:
        ref = as_numpy(list(seconds[name]))
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
        bounds: the ``H`` upper bounds ``h`` of the energy range ``[0, h]``.
        curves: tree name → ``H`` values: the mean best leaf probability for each bound.
    """
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.9), layout="constrained")
    names = list(best)
    for k, name in enumerate(names):
        v = as_numpy(list(best[name]))
        jitter = np.random.default_rng(k).uniform(-0.18, 0.18, len(v))
        a.scatter(k + jitter, v, s=9, alpha=0.5, color=level_color(k))
        a.plot([k - 0.3, k + 0.3], [v.mean()] * 2, color="black", lw=2)
        a.annotate(f"mean {v.mean():.3f}", (k + 0.32, v.mean()), va="center", fontsize=8)
    a.set_xticks(range(len(names)), labels=names)
    a.set_xlim(-0.5, len(names) - 0.1)
    a.set_ylabel("best P(leaf) with energies in [0, 1]")
    a.set_title("sigmoid energies: the ceiling of every leaf")
    h = as_numpy(list(bounds))
    for k, (name, values) in enumerate(curves.items()):
        b.plot(h, as_numpy(list(values)), marker="o", ms=3, label=name, color=level_color(k))
    b.axvline(1.0, color="0.5", ls=":", lw=1)
    b.annotate("sigmoid (h = 1)", (1.0, 0.5), xytext=(4, 0), textcoords="offset points",
               fontsize=8, rotation=90, va="center")
    b.set_xlabel("energies bounded to [0, h]")
    b.set_ylabel("mean best P(leaf)")
    b.set_ylim(0, 1.02)
    b.legend(fontsize=8)
    b.set_title("a wider energy range lifts the ceiling")
    return fig
