"""Results of training runs drawn: metrics against the share of relabelled
labels, per-epoch training curves, grouped bars of a results table, and
accuracy against chance.

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

__all__ = [
    "draw_relabel_curves",
    "draw_training_curves",
    "draw_grouped_bars",
    "draw_accuracy_vs_chance",
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
    fig, ax = new_axes(ax, (1.6 + 1.5 * len(levels) * max(1, len(runs)) ** 0.5, 3.4))
    width = 0.8 / max(1, len(runs))
    for r, run in enumerate(runs):
        values = [accuracy[run].get(level, np.nan) for level in levels]
        xs = np.arange(len(levels)) + (r - (len(runs) - 1) / 2) * width
        bars = ax.bar(xs, values, width, label=run, color=level_color(r))
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
    fig, axes = plt.subplots(1, len(panels), figsize=(max(5.0, 1.2 * len(xs) * len(panels)
                                                          + 0.5 * len(hues) + 2), 3.6),
                             layout="constrained", squeeze=False, sharey=True)
    width = 0.8 / len(hues)
    for ax, p in zip(axes[0], panels, strict=True):
        sub = df if p is None else df[df[panel] == p]
        for k, h in enumerate(hues):
            vals = [sub[(sub[x] == v) & (sub[hue] == h)][value].mean() for v in xs]
            bars = ax.bar(np.arange(len(xs)) + (k - (len(hues) - 1) / 2) * width, vals, width,
                          label=str(h), color=level_color(k))
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
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(0.6 + 3.3 * n, 3.5), layout="constrained",
                             squeeze=False)
    for ax, (name, series) in zip(axes[0], panels.items(), strict=True):
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
                    color=level_color(k))
        ax.set_title((titles or {}).get(key, key), fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
    axes[0, 0].set_ylabel("training loss (mean per epoch)")
    axes[0, -1].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return fig
