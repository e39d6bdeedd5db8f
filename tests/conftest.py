"""Shared test set-up: the quick profile, headless figures, the repository root."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")  # this process only: chapter kernels keep the inline backend

ROOT = Path(__file__).resolve().parents[1]

# Tests always run in the quick profile (chapters executed here inherit it).
os.environ["HMG_QUICK"] = "1"
os.environ.setdefault("HMG_RESULTS_DIR", str(ROOT / "_build" / "quick" / "results"))


# Every figure a figure test draws must stay readable at the page's width
# (hmglib.viz.page): the check runs after each test of a module named test_viz*,
# on every Figure the test created, closed or not; then every figure is closed.
@pytest.fixture(autouse=True)
def _figures_readable_on_the_page(request, monkeypatch):
    if not request.module.__name__.split(".")[-1].startswith("test_viz"):
        yield
        return
    from matplotlib.figure import Figure

    from hmglib.viz.page import MIN_FONT_PT, PAGE_WIDTH_IN, unreadable_text

    made: list[Figure] = []
    init = Figure.__init__

    def record(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Figure, "__init__", record)
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
    problems = [f"a {fig.get_figwidth():.1f}-in figure: {line}"
                for fig in made for line in unreadable_text(fig)[:3]]
    assert not problems, (
        f"text below {MIN_FONT_PT} pt when shown in the page's {PAGE_WIDTH_IN}-in column "
        "(make the figure narrower or its fonts larger):\n" + "\n".join(problems))


@pytest.fixture
def quick_run_cache(monkeypatch, tmp_path) -> Path:
    """The quick profile, whatever ``HMG_PROFILE`` says, and an empty run cache of this
    test's own (returned): experiment runs train afresh and leave no trace elsewhere."""
    monkeypatch.setenv("HMG_QUICK", "1")
    monkeypatch.delenv("HMG_PROFILE", raising=False)
    monkeypatch.setenv("HMG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"
