"""Probabilities on a tree drawn: node marginals and legal-state probabilities,
the push of a label on every energy, what bounded energies allow, and what the
marginals cost as the tree grows.

Argument order: the data first (marginals, a gradient), then the tree, then
the options.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from hmglib.hierarchy import LabelTree
from hmglib.viz._axes import as_numpy, check_per_node, check_tree, style_tree_axes, tree_edges
from hmglib.viz.colors import RELATION_COLORS, level_color
from hmglib.viz.page import CHAR_IN, PAGE_WIDTH_IN
from hmglib.viz.page import FONT_PT as _FONT_PT  # these figures fit the page: as shown

__all__ = [
    "draw_marginals",
    "draw_energy_scenarios",
    "draw_label_gradient",
    "draw_scaling",
    "draw_sigmoid_ceiling",
]


def _wrap(name: str, width_in: float) -> str:
    """``name`` wrapped to lines of about ``width_in`` inches of 9-point text."""
    chars = max(6, int(width_in / CHAR_IN))
    return textwrap.fill(name, chars, break_long_words=False)


def _tree_panel_width(tree: LabelTree) -> float:
    """Inches per leaf of a tree panel that spans the page (less its colour bar)."""
    return (PAGE_WIDTH_IN - 2.2) / (len(tree.leaves) + 1.6)


def draw_marginals(
    marginals,
    tree: LabelTree,
    state_probs=None,
    energies=None,
    title: str | None = None,
) -> Figure:
    """The marginal probability of every node of a small tree, and (optionally)
    the distribution over its legal states, in a panel below the tree.

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
    tree_h = 1.25 * tree.num_levels + 0.9
    longest = max(len(n) for n in tree.names) * CHAR_IN + 0.4  # bar labels
    states_h = 1.6 + longest
    if q is None:
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH_IN, tree_h), layout="constrained")
    else:
        fig, (ax, b) = plt.subplots(2, 1, figsize=(PAGE_WIDTH_IN, tree_h + states_h),
                                    layout="constrained", height_ratios=[tree_h, states_h])
    per_leaf = _tree_panel_width(tree)
    tree_edges(ax, tree, pos)
    dots = ax.scatter(pos[:, 0], pos[:, 1], s=380, c=p, cmap="Blues", vmin=0, vmax=1,
                      edgecolor="0.3", zorder=2)
    for node in range(tree.num_nodes):
        ax.annotate(_wrap(tree.names[node], per_leaf), pos[node], xytext=(0, 11),
                    textcoords="offset points", ha="center", va="bottom",
                    fontsize=_FONT_PT)
        text = f"{p[node]:.2f}"
        if f is not None:
            text += f"\nf={f[node]:+.1f}"
        ax.annotate(text, pos[node], xytext=(0, -11), textcoords="offset points",
                    ha="center", va="top", fontsize=_FONT_PT)
    style_tree_axes(ax, tree, pos)
    fig.colorbar(dots, ax=ax, shrink=0.8, label="P(y_i = 1)")
    ax.set_title("marginals: P(node is true)", fontsize=_FONT_PT + 1)
    if q is not None:
        labels = ["∅"] + [f"→ {n}" for n in tree.names]
        colors = ["0.5"] + [level_color(lv) for lv in tree.level_of.tolist()]
        b.bar(np.arange(len(q)), q, color=colors)
        b.set_xticks(np.arange(len(q)), labels=labels, rotation=90, fontsize=_FONT_PT)
        b.set_xlim(-0.6, len(q) - 0.4)
        b.set_ylim(0, max(0.05, float(q.max()) * 1.15))
        b.set_ylabel("P(state)")
        b.set_title(f"the {len(q)} legal states: the empty one, then the path to each "
                    "node", fontsize=_FONT_PT + 1)
    if title:
        fig.suptitle(title, fontsize=_FONT_PT + 2)
    return fig


def draw_label_gradient(grad, tree: LabelTree, node: int, title: str | None = None) -> Figure:
    """Which way a label at ``node`` pushes every node's energy: the tree, and
    below it one bar per node coloured by its relation to the label.

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
    tree_h = 1.25 * tree.num_levels + 0.6
    bars_h = 1.9 + max(len(n) for n in tree.names) * CHAR_IN
    fig, (a, b) = plt.subplots(2, 1, figsize=(PAGE_WIDTH_IN, tree_h + bars_h),
                               layout="constrained", height_ratios=[tree_h, bars_h])
    lim = max(float(np.abs(step).max()), 1e-12)
    per_leaf = _tree_panel_width(tree)
    tree_edges(a, tree, pos)
    dots = a.scatter(pos[:, 0], pos[:, 1], s=380, c=step, cmap="RdBu", vmin=-lim, vmax=lim,
                     edgecolor=["black" if r == "label" else "0.4" for r in relation],
                     linewidths=[2.5 if r == "label" else 0.8 for r in relation], zorder=2)
    for j in range(tree.num_nodes):
        a.annotate(_wrap(tree.names[j], per_leaf), pos[j], xytext=(0, 11),
                   textcoords="offset points", ha="center", va="bottom", fontsize=_FONT_PT,
                   fontweight="bold" if relation[j] == "label" else "normal")
    style_tree_axes(a, tree, pos)
    fig.colorbar(dots, ax=a, shrink=0.8, label="−∂L/∂f\n(blue: raise, red: lower)")
    a.set_title(f"label '{tree.names[node]}': the update of each energy",
                fontsize=_FONT_PT + 1)
    b.bar(np.arange(tree.num_nodes), step, color=[RELATION_COLORS[r] for r in relation])
    b.axhline(0, color="black", lw=0.8)
    b.set_xticks(np.arange(tree.num_nodes), labels=tree.names, rotation=90,
                 fontsize=_FONT_PT)
    b.set_ylabel("−∂L/∂f")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in RELATION_COLORS.values()]
    b.legend(handles, list(RELATION_COLORS), fontsize=_FONT_PT, loc="center left",
             bbox_to_anchor=(1.0, 0.5), frameon=False)
    b.set_title("by relation to the label", fontsize=_FONT_PT + 1)
    if title:
        fig.suptitle(title, fontsize=_FONT_PT + 2)
    return fig


#: The most scenarios :func:`draw_energy_scenarios` sets side by side.
MAX_SCENARIOS = 5


def _change(delta: np.ndarray, tree: LabelTree) -> str:
    """A short caption of ``delta`` (``(N,)``, the change of each energy)."""
    moved = np.flatnonzero(np.abs(delta) > 1e-9)
    if len(moved) == 0:
        return "(no change)"
    if len(moved) == tree.num_nodes and np.allclose(delta, delta[0]):
        return f"every f {delta[0]:+.1f}"
    parts = [f"{tree.names[j]} {delta[j]:+.1f}" for j in moved[:2]]
    more = f" (+{len(moved) - 2} more)" if len(moved) > 2 else ""
    return "\n".join(parts) + more


def draw_energy_scenarios(energies: Mapping[str, object], tree: LabelTree,
                          title: str | None = None) -> Figure:
    """Several energy scenarios of one small tree side by side (small multiples).

    One panel per scenario; each has a row for the empty state and one per node
    in depth-first order (a node's subtree right under it, indented on the
    left), with a bar for the probability: ``P(∅)`` for the empty state,
    ``P(y_i = 1)`` for a node. The first scenario is the reference: a node whose
    energy differs from it is hatched, and each panel's caption says how the
    energies changed.

    Args:
        energies: scenario name → ``(N,)`` finite energies ``f`` of the tree's
            nodes (tensor, array or list), at most ``MAX_SCENARIOS`` (5).
        tree: a small tree.
        title: optional figure title.

    Raises:
        TypeError: ``tree`` is not a LabelTree (e.g. the arguments swapped), or
            ``energies`` is not a mapping.
        ValueError: no scenario, more than ``MAX_SCENARIOS`` (5), or a scenario
            that is not ``N`` finite energies.
    """
    from hmglib import probability  # computes the marginals the panels show

    fn, order = "draw_energy_scenarios", "energies, tree, title=None"
    tree = check_tree(fn, tree, order)
    if not isinstance(energies, Mapping):
        raise TypeError(f"{fn}: energies must be a mapping from scenario name to (N,) "
                        f"energies, got {type(energies).__name__}; e.g. "
                        "{'start': f, 'a species raised': f2}.")
    if not 1 <= len(energies) <= MAX_SCENARIOS:
        raise ValueError(f"{fn}: got {len(energies)} scenarios; give 1 to {MAX_SCENARIOS} "
                         "(more do not fit the page's width).")
    f = {name: check_per_node(fn, f"energies[{name!r}]", e, tree, order)
         for name, e in energies.items()}  # name -> (N,)
    for name, e in f.items():
        if not np.isfinite(e).all():
            raise ValueError(f"{fn}: energies[{name!r}] is not finite; give finite energies.")
    table = torch.tensor(np.stack(list(f.values())), dtype=torch.float64)  # (K, N)
    marg = probability.log_marginals(table, tree).exp().numpy()  # (K, N)
    empty = (-probability.log_partition(table, tree)).exp().numpy()  # (K,)
    anc = tree.ancestor_table().T.tolist()  # (N, L): each node's path, -1 padded
    order_df = sorted(range(tree.num_nodes), key=lambda n: anc[n])  # depth-first
    level = tree.level_of.tolist()
    rows = len(order_df) + 1
    k = len(f)
    name_in = 0.35 + max(0.15 * level[n] + len(tree.names[n]) * CHAR_IN
                         for n in range(tree.num_nodes))
    panel_in = (PAGE_WIDTH_IN - name_in) / k
    fig, axes = plt.subplots(
        1, k + 1, figsize=(PAGE_WIDTH_IN, 0.24 * rows + 1.5), sharey=True,
        width_ratios=[name_in] + [panel_in] * k, layout="constrained", squeeze=False)
    names_ax, panels = axes[0, 0], axes[0, 1:]
    y = np.arange(rows)
    names_ax.text(0.0, 0, "∅ (empty state)", va="center", fontsize=_FONT_PT)
    for r, n in enumerate(order_df, start=1):
        names_ax.text(0.15 * level[n] / name_in, r, tree.names[n], va="center",
                      fontsize=_FONT_PT, color=level_color(level[n]))
    names_ax.set_axis_off()
    names_ax.set_ylim(rows - 0.5, -0.5)
    reference = next(iter(f.values()))
    colors = ["0.5"] + [level_color(level[n]) for n in order_df]
    for ax, (name, e), p, p0 in zip(panels, f.items(), marg, empty, strict=True):
        values = np.concatenate([[p0], p[order_df]])  # (N + 1,)
        changed = [False] + [abs(e[n] - reference[n]) > 1e-9 for n in order_df]
        bars = ax.barh(y, values, color=colors, height=0.75)
        for bar, hit in zip(bars, changed, strict=True):
            if hit:
                bar.set_hatch("///")
                bar.set_edgecolor("black")
        for r, v in enumerate(values):
            inside = v > 0.6
            ax.text(v - 0.03 if inside else v + 0.03, r, f"{v:.2f}", va="center",
                    ha="right" if inside else "left", fontsize=_FONT_PT,
                    color="white" if inside else "black")
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.5, 1], labels=["0", ".5", "1"], fontsize=_FONT_PT)
        ax.tick_params(axis="y", length=0)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        caption = "" if e is reference else "\n" + _change(e - reference, tree)
        ax.set_title(_wrap(name, panel_in) + caption, fontsize=_FONT_PT, loc="left")
        ax.axhline(0.5, color="0.8", lw=0.8)
    panels[0].set_ylim(rows - 0.5, -0.5)
    fig.supxlabel("probability: P(∅) in the top row, P(y_i = 1) below", fontsize=_FONT_PT)
    if title:
        fig.suptitle(title, fontsize=_FONT_PT + 2)
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
    ax.legend(fontsize=_FONT_PT)
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
    fig, (a, b) = plt.subplots(1, 2, figsize=(PAGE_WIDTH_IN, 3.6), layout="constrained")
    names = list(best)
    for k, name in enumerate(names):
        v = as_numpy(list(best[name]))
        jitter = np.random.default_rng(k).uniform(-0.18, 0.18, len(v))
        a.scatter(k + jitter, v, s=9, alpha=0.5, color=level_color(k))
        a.plot([k - 0.3, k + 0.3], [v.mean()] * 2, color="black", lw=2)
        a.annotate(f"mean\n{v.mean():.3f}", (k, v.max()), xytext=(0, 4),
                   textcoords="offset points", ha="center", va="bottom", fontsize=_FONT_PT)
    a.set_xticks(range(len(names)), labels=names, fontsize=_FONT_PT)
    a.set_xlim(-0.5, len(names) - 0.5)
    a.set_ylim(0, a.get_ylim()[1] * 1.3)
    a.set_ylabel("best P(leaf), energies in [0, 1]")
    a.set_title("sigmoid energies: each leaf's ceiling", fontsize=_FONT_PT + 1)
    h = as_numpy(list(bounds))
    for k, (name, values) in enumerate(curves.items()):
        b.plot(h, as_numpy(list(values)), marker="o", ms=3, label=name, color=level_color(k))
    b.axvline(1.0, color="0.5", ls=":", lw=1)
    b.annotate("sigmoid (h = 1)", (1.0, 0.5), xytext=(4, 0), textcoords="offset points",
               fontsize=_FONT_PT, rotation=90, va="center")
    b.set_xlabel("energies bounded to [0, h]")
    b.set_ylabel("mean best P(leaf)")
    b.set_ylim(0, 1.02)
    b.legend(fontsize=_FONT_PT)
    b.set_title("a wider range lifts the ceiling", fontsize=_FONT_PT + 1)
    return fig
