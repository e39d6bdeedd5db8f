"""Results of runs (hmglib.viz.curves): relabel curves, training curves, grouped bars,
accuracy against chance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from hmglib import viz

RATIOS = [0.0, 0.3, 0.5, 0.7, 0.9]


def _lines(ax) -> dict[str, np.ndarray]:
    return {line.get_label(): np.column_stack(line.get_data()) for line in ax.get_lines()}


def test_relabel_curves_one_panel_per_metric_one_line_per_method() -> None:
    panels = {
        "species OA": {"HRN": [80, 70, 60, 50, 40], "flat": [85, 60, 45, 30, 15]},
        "AU(PRC)": {"HRN": [90, 85, 80, 75, 70], "flat": [88, 70, 60, 50, 40]},
    }
    fig = viz.draw_relabel_curves(RATIOS, panels, emphasis="HRN", title="t")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    lines = _lines(fig.axes[0])
    assert set(lines) == {"HRN", "flat"}
    # x in percent, y the values given
    assert lines["flat"][:, 0].tolist() == [0, 30, 50, 70, 90]
    assert lines["flat"][:, 1].tolist() == [85, 60, 45, 30, 15]
    widths = {line.get_label(): line.get_linewidth() for line in fig.axes[0].get_lines()}
    assert widths["HRN"] > widths["flat"]
    # a method keeps its colour across panels
    colours = [{line.get_label(): line.get_color() for line in ax.get_lines()} for ax in fig.axes]
    assert colours[0] == colours[1]
    assert [ax.get_title() for ax in fig.axes] == ["species OA", "AU(PRC)"]


def test_relabel_curves_skip_missing_runs_and_apply_limits() -> None:
    fig = viz.draw_relabel_curves(RATIOS, {"OA": {"a": [1, math.nan, 3, 4, 5]}},
                                  ylims={"OA": (0, 100)})
    xy = _lines(fig.axes[0])["a"]
    assert xy[:, 0].tolist() == [0, 50, 70, 90]
    assert fig.axes[0].get_ylim() == (0, 100)


def test_relabel_curves_shared_colour_and_dashed_variant() -> None:
    panels = {"OA": {"HRN": [1, 2, 3, 4, 5], "HRN, degraded": [1, 1, 2, 2, 3], "flat": [5] * 5}}
    fig = viz.draw_relabel_curves(RATIOS, panels, colors={"HRN, degraded": "#4c72b0",
                                                         "HRN": "#4c72b0"},
                                  dashed=["HRN, degraded"])
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert lines["HRN"].get_color() == lines["HRN, degraded"].get_color() == "#4c72b0"
    assert lines["HRN"].get_linestyle() == "-" and lines["HRN, degraded"].get_linestyle() == "--"
    assert lines["flat"].get_color() != "#4c72b0"


def test_relabel_curves_draw_the_spread_as_a_band() -> None:
    from matplotlib.collections import PolyCollection

    panels = {"OA": {"HRN": [10, 20, 30, 40, 50], "flat": [5] * 5}}
    fig = viz.draw_relabel_curves(RATIOS, panels, spreads={"OA": {"HRN": [1, 2, 3, 4, 5]}})
    bands = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]
    assert len(bands) == 1  # only HRN has a spread
    ys = bands[0].get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(9) and ys.max() == pytest.approx(55)
    with pytest.raises(ValueError, match="spread of 'HRN' in 'OA' has 2 values"):
        viz.draw_relabel_curves(RATIOS, panels, spreads={"OA": {"HRN": [1, 2]}})


def test_relabel_curves_bad_input() -> None:
    with pytest.raises(ValueError, match="panel 'OA', method 'a' has 2 values, expected 5"):
        viz.draw_relabel_curves(RATIOS, {"OA": {"a": [1, 2]}})
    with pytest.raises(ValueError, match="panels is empty"):
        viz.draw_relabel_curves(RATIOS, {})
    with pytest.raises(ValueError, match="panel 'OA' has no methods"):
        viz.draw_relabel_curves(RATIOS, {"OA": {}})
    with pytest.raises(ValueError, match="non-empty list of relabel ratios"):
        viz.draw_relabel_curves([], {"OA": {"a": []}})


HISTORY = [{"epoch": e, "loss": 3.0 - e, "hier": 2.0 - e / 2, "ce": 1.0 - e / 2} for e in range(3)]


def test_training_curves_panels_and_epochs() -> None:
    short = HISTORY[:2]
    fig = viz.draw_training_curves({"0 %": HISTORY, "90 %": short}, titles={"ce": "CE"})
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["loss", "hier", "CE"]
    lines = _lines(fig.axes[2])
    assert lines["0 %"][:, 0].tolist() == [1, 2, 3]  # epochs drawn 1-based
    assert lines["0 %"][:, 1].tolist() == [1.0, 0.5, 0.0]
    assert lines["90 %"][:, 0].tolist() == [1, 2]


def test_training_curves_bad_input() -> None:
    with pytest.raises(ValueError, match="has no 'hier' at epoch 0; it logs"):
        viz.draw_training_curves({"flat": [{"epoch": 0, "loss": 1.0}]})
    with pytest.raises(ValueError, match="history of 'x' is empty"):
        viz.draw_training_curves({"x": []})
    with pytest.raises(ValueError, match="at least one run and one key"):
        viz.draw_training_curves({})


def test_grouped_bars() -> None:
    rows = [{"level": lv, "config": c, "ratio": r, "value": v}
            for r in (0, 0.7) for c, v in (("HRN", 80), ("no LC", 60)) for lv in ("a", "b")]
    fig = viz.draw_grouped_bars(rows, x="level", hue="config", panel="ratio",
                                chance={"a": 33.3})
    assert len(fig.axes) == 2
    heights = sorted(p.get_height() for p in fig.axes[0].patches)
    assert heights == [60, 60, 80, 80]


def test_grouped_bars_mark_a_level_on_single_bars() -> None:
    table = [{"k": k, "start": st, "value": v} for k, st, v in
             [(1, "a", 30.0), (1, "b", 8.0), (2, "a", 40.0), (2, "b", 11.0)]]
    fig = viz.draw_grouped_bars(table, x="k", hue="start", marks={(1, "a"): 15.0, (2, "b"): 5.0},
                                marks_label="family / 3")
    dotted = [line for line in fig.axes[0].lines if line.get_linestyle() == ":"]
    assert sorted(float(line.get_ydata()[0]) for line in dotted) == [5.0, 15.0]
    assert [line.get_label() for line in dotted].count("family / 3") == 1  # one legend entry


def test_accuracy_vs_chance_bars_and_chance_lines() -> None:
    fig = viz.draw_accuracy_vs_chance({"a": {"order": 90.0, "species": 40.0},
                                       "b": {"order": 80.0}}, {"order": 33.3, "species": 3.7})
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights[:2] == [90.0, 40.0] and heights[2] == 80.0 and math.isnan(heights[3])
    chance = [c for c in fig.axes[0].collections if c.get_label() == "chance"]
    assert len(chance) == 1  # one legend entry for the chance lines
    levels = sorted(float(seg[0, 1]) for c in fig.axes[0].collections for seg in c.get_segments())
    assert levels == [3.7, 33.3]


def test_relabel_curves_four_panels_make_a_readable_grid() -> None:
    panels = {name: {"HRN": [1, 2, 3, 4, 5], "flat": [5, 4, 3, 2, 1], "per-level": [3] * 5,
                     "C-HMCNN": [2] * 5} for name in ("order", "family", "species", "AU(PRC)")}
    fig = viz.draw_relabel_curves(RATIOS, panels, title="t")
    assert len(fig.axes) == 4
    rows = sorted({ax.get_subplotspec().rowspan.start for ax in fig.axes})
    assert rows == [0, 1]  # 2 x 2
    assert fig.get_figwidth() <= viz.PAGE_WIDTH_IN
    assert len(fig.legends) == 1 and len(fig.legends[0].get_texts()) == 4  # one shared legend
    assert not viz.unreadable_text(fig, min_pt=9)  # 9 pt as shown on the page
    assert fig.axes[0].get_ylabel() == "%" and fig.axes[1].get_ylabel() == ""
    three = viz.draw_relabel_curves(RATIOS, {k: panels[k] for k in list(panels)[:3]}, ncols=2)
    assert len(three.axes) == 3  # the empty cell of the grid is removed
    with pytest.raises(ValueError, match="ncols=0 must be a whole number >= 1"):
        viz.draw_relabel_curves(RATIOS, panels, ncols=0)


def test_training_curves_take_a_label_per_panel_and_wrap() -> None:
    history = [{"epoch": e, "loss": 2.0 - e, "species": 50.0 + e} for e in range(3)]
    fig = viz.draw_training_curves({"run": history}, keys=("loss", "species"),
                                   ylabel={"loss": "loss", "species": "test OA (%)"},
                                   ylims={"species": (0, 100)})
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "test OA (%)"]
    assert fig.axes[1].get_ylim() == (0, 100)
    assert list(fig.axes[0].get_xticks()) == [1, 2, 3]  # a tick per epoch of a short run
    assert fig.get_figwidth() <= viz.PAGE_WIDTH_IN
    grid = viz.draw_training_curves({"run": history}, keys=("loss", "species") * 2)
    assert len(grid.axes) == 4 and grid.get_figwidth() <= viz.PAGE_WIDTH_IN
    assert not viz.unreadable_text(grid, min_pt=9)
    assert [ax.get_ylabel() for ax in grid.axes] == ["training loss (mean per epoch)", "",
                                                     "training loss (mean per epoch)", ""]


def test_seed_bars_draw_the_mean_the_spread_and_every_seed() -> None:
    values = {"HRN": {"order": [90.0, 92.0, 94.0], "species": [50.0, 60.0, 70.0]},
              "flat": {"order": [80.0, 80.0, 80.0], "species": []}}
    fig = viz.draw_seed_bars(values, ylim=(0, 100), title="r = 90 %")
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([92.0, 60.0, 80.0])  # the empty group has no bar
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert sorted(len(d.get_ydata()) for d in dots) == [3, 3, 3]
    caps = [c for c in ax.collections if c.get_segments()]
    spans = sorted(float(s[1, 1] - s[0, 1]) for c in caps for s in c.get_segments())
    assert spans == pytest.approx([0.0, 4.0, 20.0])  # 2 x the sample std of each bar
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["HRN", "flat"]
    assert not viz.unreadable_text(fig, min_pt=9)
    with pytest.raises(ValueError, match="values is empty"):
        viz.draw_seed_bars({})
    with pytest.raises(ValueError, match="method 'x' has no groups"):
        viz.draw_seed_bars({"x": {}})


def test_relabel_explorer_reads_finished_runs_and_follows_its_slider() -> None:
    import ipywidgets as w
    import pandas as pd

    from hmglib.widgets import relabel_explorer

    table = pd.DataFrame([{"relabel": r, "method": m, "level": lv, "seed": s,
                           "value": 50.0 + 10 * r + s + (5 if m == "HRN" else 0)}
                          for r in (0.0, 0.9) for m in ("HRN", "flat")
                          for lv in ("order", "species") for s in (0, 1, 2)])
    box = relabel_explorer(table, samples_per_class=10)
    pick, image = box.children
    assert isinstance(image, w.Image) and bytes(image.value).startswith(b"\x89PNG")
    assert pick.value == 0.9  # the largest ratio first
    before = bytes(image.value)
    pick.value = 0.0
    assert bytes(image.value) != before
    with pytest.raises(ValueError, match=r"lacks \['seed'\]"):
        relabel_explorer(table.drop(columns="seed"), samples_per_class=10)
    with pytest.raises(ValueError, match="ratio=0.5 is not one of the table's ratios"):
        relabel_explorer(table, samples_per_class=10, ratio=0.5)
