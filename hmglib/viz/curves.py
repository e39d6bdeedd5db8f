"""Results of training runs drawn: metrics against the share of relabelled
labels, per-epoch training curves, grouped bars of a results table, bars over
seeds, and accuracy against chance.

Runs and methods are coloured in order by :func:`hmglib.viz.colors.level_color`
unless told otherwise.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hmglib.viz._axes import as_numpy, new_axes
from hmglib.viz.colors import level_color
from hmglib.viz.page import PAGE_WIDTH_IN

__all__ = [
    "draw_relabel_curves",
    "draw_training_curves",
    "draw_grouped_bars",
    "draw_accuracy_vs_chance",
    "draw_seed_bars",
]


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
    fig, ax = new_axes(ax, (min(PAGE_WIDTH_IN, 1.6 + 1.5 * len(levels) * max(1, len(runs)) ** 0.5),
                            3.4))
    width = 0.8 / max(1, len(runs))
    for r, run in enumerate(runs):
        values = [accuracy[run].get(level, np.nan) for level in levels]
        xs = np.arange(len(levels)) + (r - (len(runs) - 1) / 2) * width
        bars = ax.bar(xs, values, width, label=run, color=level_color(r))
        ax.bar_label(bars, fmt="%.1f", fontsize=9)
    for i, level in enumerate(levels):
        ax.hlines(chance[level], i - 0.45, i + 0.45, colors="black", linestyles="--", lw=1,
                  label="chance" if i == 0 else None)
    ax.set_xticks(range(len(levels)), labels=levels)
    ax.set_ylabel("accuracy (%)", fontsize=9)
    ax.tick_params(labelsize=9)
    ax.set_ylim(0, 109)
    ax.legend(fontsize=9, loc="lower left")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


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
            the columns ``x``, ``hue``, ``value`` (and ``panel``); the mean of the
            rows that share ``x``, ``hue`` (and ``panel``) is drawn.
        x: the column whose values make the groups, in order of appearance.
        hue: the column whose values make the bars of a group.
        value: the column of the bar heights.
        panel: optional column whose values make one panel each.
        ylabel: the value axis label (default: ``value``).
        title: optional figure title.
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
    fig_width = min(PAGE_WIDTH_IN, max(5.0, 1.2 * len(xs) * len(panels) + 0.5 * len(hues) + 2))
    fig, axes = plt.subplots(1, len(panels), figsize=(fig_width, 3.6),
                             layout="constrained", squeeze=False, sharey=True)
    width = 0.8 / len(hues)
    for ax, p in zip(axes[0], panels, strict=True):
        sub = df if p is None else df[df[panel] == p]
        for k, h in enumerate(hues):
            vals = [sub[(sub[x] == v) & (sub[hue] == h)][value].mean() for v in xs]
            bars = ax.bar(np.arange(len(xs)) + (k - (len(hues) - 1) / 2) * width, vals, width,
                          label=str(h), color=level_color(k))
            if not log:
                ax.bar_label(bars, fmt=fmt, fontsize=9)
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
        ax.tick_params(labelsize=9)
        if p is not None:
            ax.set_title(f"{panel} = {p}", fontsize=10)
    axes[0, 0].set_ylabel(ylabel or value, fontsize=9)
    axes[0, -1].legend(fontsize=9, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _series(fn: str, what: str, values, n: int) -> np.ndarray:
    """``values`` as a float64 ``(n,)`` array, one per relabel ratio, or a ValueError."""
    v = as_numpy(list(values))
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
    ncols: int | None = None,
    xlabel: str | None = None,
) -> Figure:
    """Metrics against the share of relabelled training images: one panel per
    metric (e.g. OA per level, AU(PRC)), one line per method, optionally with a
    band of plus or minus the spread over seeds.

    The figure is at most as wide as the page's column
    (:data:`~hmglib.viz.page.PAGE_WIDTH_IN`), every text at 9 pt or more, with one
    legend below all panels; four panels make a 2 x 2 grid.

    Args:
        ratios: the ``R`` relabel ratios in ``[0, 1]`` (drawn as %).
        panels: ``{panel title: {method: R values}}``; ``nan`` values are skipped.
            Every panel draws the methods in the order of the first panel, each in
            the same colour.
        ylabel: label of the value axis of the panels of the first column.
        title: optional figure title.
        emphasis: a method drawn thicker (e.g. ``"HRN"``).
        ylims: optional ``{panel title: (low, high)}`` value-axis limits.
        colors: optional ``{method: colour}`` (default: one colour per method), e.g.
            one colour for two variants of a method.
        dashed: methods drawn with dashed lines (e.g. the variants).
        spreads: optional ``{panel title: {method: R spreads}}`` (e.g. the standard
            deviation over seeds), drawn as a band of the line's colour.
        ncols: panels per row (default: 2 for four panels, else up to 3).
        xlabel: the x-axis label of every panel (default ``"relabelled to the parent
            (%)"``), e.g. ``"known labels (%)"`` for the share of labels kept.

    Raises:
        ValueError: no panel, a panel without methods, a series (or spread)
            whose length is not ``R``, or ``ncols`` below 1.
    """
    fn = "draw_relabel_curves"
    x = 100 * as_numpy(list(ratios))  # (R,) in %
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{fn}: ratios must be a non-empty list of relabel ratios.")
    if not panels:
        raise ValueError(f"{fn}: panels is empty; give {{panel title: {{method: values}}}}.")
    methods: list[str] = []
    for name, series in panels.items():
        if not series:
            raise ValueError(f"{fn}: panel '{name}' has no methods.")
        methods += [m for m in series if m not in methods]
    colors = {m: level_color(k) for k, m in enumerate(methods)} | dict(
        colors or {})
    markers = dict(zip(methods, itertools.cycle("osD^vP"), strict=False))
    styles = {m: "--" if m in set(dashed) else "-" for m in methods}
    fig, axes = _panel_grid(fn, len(panels), ncols, row_height=2.5)
    for ax, (name, series) in zip(axes, panels.items(), strict=True):
        for method, values in series.items():
            y = _series(fn, f"panel '{name}', method '{method}'", values, x.size)
            ok = np.isfinite(y)
            strong = method == emphasis
            ax.plot(x[ok], y[ok], marker=markers[method], ms=5 if strong else 4,
                    lw=2.6 if strong else 1.4, color=colors[method], ls=styles[method],
                    label=method, zorder=3 if strong else 2)
            if spreads and method in spreads.get(name, {}):
                sd = _series(fn, f"spread of '{method}' in '{name}'",
                                   spreads[name][method], x.size)
                band = ok & np.isfinite(sd)
                ax.fill_between(x[band], (y - sd)[band], (y + sd)[band], color=colors[method],
                                alpha=0.15, lw=0, zorder=1)
        ax.set_title(name, fontsize=10)
        ax.set_xticks(x, labels=[f"{v:.0f}" for v in x])
        ax.tick_params(labelsize=9)
        ax.set_xlabel("relabelled to the parent (%)" if xlabel is None else xlabel, fontsize=9)
        ax.grid(True, alpha=0.3)
        if ylims and name in ylims:
            ax.set_ylim(*ylims[name])
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(ylabel, fontsize=9)
    handles = [plt.Line2D([], [], color=colors[m], marker=markers[m], ls=styles[m],
                          lw=2.6 if m == emphasis else 1.4) for m in methods]
    per_row = max(1, int(fig.get_figwidth() // 1.8))  # legend entries that fit a row
    fig.legend(handles, methods, loc="outside lower center",
               ncols=min(len(methods), per_row), fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _panel_grid(fn: str, n: int, ncols: int | None, row_height: float) -> tuple[Figure, list[Axes]]:
    """A figure of ``n`` panels, ``ncols`` per row (default: 2 for four panels,
    else up to 3), at most the page's width (:data:`~hmglib.viz.page.PAGE_WIDTH_IN`)
    wide; the unused cells of the last row are removed. Returns the figure and its
    ``n`` axes in reading order."""
    if ncols is None:
        ncols = 2 if n == 4 else min(n, 3)
    if int(ncols) != ncols or ncols < 1:
        raise ValueError(f"{fn}: ncols={ncols} must be a whole number >= 1 (panels per row).")
    ncols = min(int(ncols), n)
    nrows = -(-n // ncols)
    width = min(PAGE_WIDTH_IN, 0.9 + 3.2 * ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(width, 0.7 + row_height * nrows),
                             layout="constrained", squeeze=False)
    cells = list(grid.flat)
    for ax in cells[n:]:
        ax.remove()
    return fig, cells[:n]


def draw_training_curves(
    histories: Mapping[str, Iterable[Mapping[str, float]]],
    keys: Iterable[str] = ("loss", "hier", "ce"),
    titles: Mapping[str, str] | None = None,
    title: str | None = None,
    ylabel: str | Mapping[str, str] = "training loss (mean per epoch)",
    ncols: int | None = None,
    ylims: Mapping[str, tuple[float, float]] | None = None,
) -> Figure:
    """Per-epoch training curves: one panel per logged quantity, one line per run.

    The figure is at most as wide as the page's column
    (:data:`~hmglib.viz.page.PAGE_WIDTH_IN`), every text at 9 pt or more, with one
    legend below all panels.

    Args:
        histories: ``{run: history}``, a history being one dict per epoch as
            :func:`hmglib.engine.fit` logs it (``epoch`` 0-based, the loss parts, ...),
            or any per-epoch dicts (e.g. with each level's accuracy).
        keys: the quantities to draw, one panel each.
        titles: optional ``{key: panel title}``.
        title: optional figure title.
        ylabel: the value-axis label of the first column's panels, or ``{key:
            label}`` for a label on every panel (e.g. a loss and accuracies).
        ncols: panels per row (default: 2 for four panels, else up to 3).
        ylims: optional ``{key: (low, high)}`` value-axis limits (e.g. ``(0, 100)``
            for an accuracy).

    Raises:
        ValueError: no run, an empty history, a key a history does not log
            (the message lists the keys it has), or ``ncols`` below 1.
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
    fig, axes = _panel_grid(fn, len(keys), ncols, row_height=2.4)
    every_epoch: set[int] = set()
    for ax, key in zip(axes, keys, strict=True):
        for k, (name, h) in enumerate(runs.items()):
            epochs = [int(row.get("epoch", i)) + 1 for i, row in enumerate(h)]
            every_epoch.update(epochs)
            ax.plot(epochs, [float(row[key]) for row in h], marker="o", ms=3, label=name,
                    color=level_color(k))
        ax.set_title((titles or {}).get(key, key), fontsize=10)
        ax.set_xlabel("epoch", fontsize=9)
        ax.tick_params(labelsize=9)
        if len(every_epoch) <= 12:  # a short run: a tick per epoch
            ax.set_xticks(sorted(every_epoch))
        else:
            ax.xaxis.get_major_locator().set_params(integer=True)
        if ylims and key in ylims:
            ax.set_ylim(*ylims[key])
        ax.grid(True, alpha=0.3)
        if isinstance(ylabel, Mapping):
            if key in ylabel:
                ax.set_ylabel(ylabel[key], fontsize=9)
        elif ax.get_subplotspec().is_first_col():
            ax.set_ylabel(ylabel, fontsize=9)
    handles = [plt.Line2D([], [], color=level_color(k), marker="o", ms=3)
               for k in range(len(runs))]
    fig.legend(handles, list(runs), loc="outside lower center", ncols=min(len(runs), 2),
               fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def draw_seed_bars(
    values: Mapping[str, Mapping[str, Iterable[float]]],
    ylabel: str = "%",
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """Grouped bars over seeds: one group per column (e.g. a level), one bar per
    method at the mean over seeds, an error bar of plus or minus the spread (the
    sample standard deviation, as :func:`hmglib.results.over_seeds` computes it)
    and one dot per seed.

    Args:
        values: ``{method: {group: per-seed values}}``, e.g. ``{"HRN": {"order":
            [97.1, 96.0, 98.2], ...}, ...}``; the groups in the order of the first
            method; a missing group or an empty list leaves its bar out.
        ylabel: the value-axis label.
        title: optional axes title.
        colors: optional ``{method: colour}`` (default: one colour per method).
        ylim: optional value-axis limits.

    Returns:
        A Figure 7 in wide (within the page's column), every text at 9 pt or more.

    Raises:
        ValueError: no method, or a method without groups.
    """
    fn = "draw_seed_bars"
    if not values:
        raise ValueError(f"{fn}: values is empty; give {{method: {{group: per-seed values}}}}.")
    groups: list[str] = []
    for method, per_group in values.items():
        if not per_group:
            raise ValueError(f"{fn}: method '{method}' has no groups.")
        groups += [g for g in per_group if g not in groups]
    methods = list(values)
    colors = {m: level_color(k) for k, m in enumerate(methods)} | dict(colors or {})
    fig, ax = plt.subplots(figsize=(7.0, 3.3), layout="constrained")
    width = 0.8 / len(methods)
    for k, method in enumerate(methods):
        labelled = False
        for i, group in enumerate(groups):
            seeds = as_numpy(list(values[method].get(group, [])))
            seeds = seeds[np.isfinite(seeds)]
            if seeds.size == 0:
                continue
            xc = i + (k - (len(methods) - 1) / 2) * width
            mean = float(seeds.mean())
            sd = float(seeds.std(ddof=1)) if seeds.size > 1 else 0.0
            ax.bar(xc, mean, width * 0.92, color=colors[method], alpha=0.85,
                   label=None if labelled else method)
            labelled = True
            ax.errorbar(xc, mean, yerr=sd, color="black", capsize=3, lw=1)
            spread_x = np.linspace(-0.25, 0.25, seeds.size) * width if seeds.size > 1 else [0.0]
            ax.plot(xc + np.asarray(spread_x), seeds, "o", ms=4, mfc="white", mec="black",
                    mew=0.8)
    ax.set_xticks(range(len(groups)), labels=groups, fontsize=9)
    ax.tick_params(labelsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    if ylim is not None:
        ax.set_ylim(*ylim)
    fig.legend(loc="outside lower center", ncols=min(len(methods), 4), fontsize=9,
               frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return fig
