"""Every chapter of the book executes in the quick profile.

Executed notebooks go into the jupyter-cache of the quick book build
(``_build/quick/_build/.jupyter_cache``, where ``jupyter-book build
--path-output _build/quick`` looks), so ``make test`` executes each chapter
once: here, where a failure names the chapter, and not again in the build.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from chapter_execution import execute_into_cache
from conftest import ROOT

QUICK_CACHE = ROOT / "_build" / "quick" / "_build" / ".jupyter_cache"
# The slowest quick-profile cell takes 11 s on a quiet 2-core machine (chapter 4): 180 s
# leaves a loaded machine 16x, and bounds what a lost kernel message would cost.
CELL_TIMEOUT_S = 180


def toc_files() -> list[str]:
    """Every file named in _toc.yml, in book order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
            files += [s["file"] for s in chapter.get("sections", [])]
    return files


def chapters() -> list[Path]:
    return [ROOT / f"{f}.ipynb" for f in toc_files() if (ROOT / f"{f}.ipynb").exists()]


def test_toc_names_existing_files_and_every_chapter() -> None:
    for f in toc_files():
        assert (ROOT / f"{f}.ipynb").exists() or (ROOT / f"{f}.md").exists(), f
    listed = {p.name for p in chapters()}
    on_disk = {p.name for p in (ROOT / "book").glob("*.ipynb")}
    assert on_disk == listed, f"notebooks missing from _toc.yml: {on_disk - listed}"
    assert listed, "the book has no chapters"


@pytest.mark.chapter
@pytest.mark.parametrize("path", chapters(), ids=lambda p: p.stem)
def test_chapter_executes_in_quick_profile(path: Path, capsys) -> None:
    assert os.environ.get("HMG_QUICK") == "1"
    # The watchdog's reports (a budget overrun, a stalled cell) go straight to the terminal
    # while the chapter runs, and so does the summary line after it.
    with capsys.disabled():
        run = execute_into_cache(path, QUICK_CACHE, timeout_s=CELL_TIMEOUT_S,
                                 say=lambda line: print(f"\n  {line}"))
    if run.error is not None:
        pytest.fail(f"{path.name} failed in the quick profile:\n{run.error}")
    assert not run.stalls, f"{path.name} stalled: {run.stalls}"
    # canary: the hidden parameters cell reports the profile the kernel saw
    params = [c for c in run.notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    printed = "".join(o.get("text", "") for o in params[0].outputs if o.output_type == "stream")
    assert "profile: quick" in printed, f"{path.name} did not run in the quick profile: {printed!r}"
