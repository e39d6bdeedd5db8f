"""The watched chapter execution: a stall and a budget overrun are reported while
they happen, a busy cell is not a stall, a failing cell is an error."""

from __future__ import annotations

from pathlib import Path

import nbformat

from chapter_execution import execute_chapter


def _notebook(tmp_path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(s) for s in sources],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}})
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)
    return path


def test_an_idle_wait_is_a_stall_and_a_busy_cell_is_not(tmp_path: Path) -> None:
    path = _notebook(
        tmp_path,
        "import time",
        "time.sleep(3)  # idle: the kernel waits, as it would for a lost message",
        "t = time.time()\nwhile time.time() < t + 3:\n    pass  # busy",
    )
    said: list[str] = []
    run = execute_chapter(path, timeout_s=60, budget_s=1.0, profile="quick", say=said.append,
                          stall_after_s=1.0, watch_every_s=0.5)
    assert run.error is None
    assert len(run.stalls) == 1 and "cell 1 ('time.sleep(3)" in run.stalls[0], run.stalls
    overruns = [line for line in said if "past the quick profile's 1-s budget" in line]
    assert len(overruns) == 1, said  # reported once, naming the cell it was in
    assert "in cell 1" in overruns[0] or "in cell 2" in overruns[0]
    assert [c.index for c in run.cells] == [0, 1, 2]
    assert run.slowest(1)[0].seconds >= 3
    assert "PAST the quick profile's 1-s budget" in run.summary("chapter", 1.0, "quick")


def test_a_failing_cell_is_an_error_naming_it(tmp_path: Path) -> None:
    path = _notebook(tmp_path, "x = 1", "raise ValueError('the cell failed here')")
    run = execute_chapter(path, timeout_s=60, budget_s=60, profile="quick",
                          say=lambda line: None)
    assert run.error is not None and "the cell failed here" in run.error
    assert not run.stalls
