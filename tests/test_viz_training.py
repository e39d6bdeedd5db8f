"""Results of runs (hmglib.viz.curves): relabel curves, training curves, grouped bars,
accuracy against chance."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from hmglib import viz

RATIOS = [0.0, 0.3, 0.5, 0.7, 0.9]


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


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
