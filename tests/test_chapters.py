"""Every chapter of the book executes in the quick profile.

Executed notebooks go into the jupyter-cache of the quick book build
(``_build/quick/_build/.jupyter_cache``, where ``jupyter-book build
--path-output _build/quick`` looks), so ``make test`` executes each chapter
once: here, where a failure names the chapter, and not again in the build.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
import yaml
from jupyter_cache import get_cache
from jupyter_cache.cache.main import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution

from conftest import ROOT

QUICK_CACHE = ROOT / "_build" / "quick" / "_build" / ".jupyter_cache"


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
def test_chapter_executes_in_quick_profile(path: Path) -> None:
    assert os.environ.get("HMG_QUICK") == "1"
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    # A quick-profile cell takes seconds. The client sometimes waits for a kernel message
    # that never comes, with both sides idle (seen with ipykernel 6.31 and 7.x), and then
    # goes on after the timeout: 180 s bounds what that costs.
    result = single_nb_execution(nb, cwd=str(path.parent), timeout=180, allow_errors=False)
    seconds = time.perf_counter() - start
    if result.err is not None:
        pytest.fail(f"{path.name} failed in the quick profile:\n{result.exc_string}")
    # canary: the hidden parameters cell reports the profile the kernel saw
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    printed = "".join(o.get("text", "") for o in params[0].outputs if o.output_type == "stream")
    assert "profile: quick" in printed, f"{path.name} did not run in the quick profile: {printed!r}"
    print(f"{path.name}: {seconds:.1f} s in the quick profile")
    cache = get_cache(str(QUICK_CACHE))
    cache.cache_notebook_bundle(
        CacheBundleIn(nb, str(path), data={"execution_seconds": seconds}),
        check_validity=False,
        overwrite=True,
    )
