"""What a reader sees on a page: numbers from the run, nothing internal, code that
fits the column, and no pointer to a chapter that is not there.

The built pages are checked for internal names by ``check_built_book.py``
(``markdown_numbers.internal_names_in_html``), since the build runs after the tests.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

import markdown_numbers
from conftest import ROOT
from markdown_numbers import internal_names, internal_names_in_html

CHAPTERS = markdown_numbers.chapters()
#: The widest code line a page column shows without a horizontal scroll bar.
CODE_COLUMNS = 80


def _text_files() -> list[Path]:
    """Every source a page or the API page is rendered from."""
    files = [*CHAPTERS, *sorted((ROOT / "book").glob("*.md")), ROOT / "README.md",
             ROOT / "_config.yml", ROOT / "_toc.yml"]
    return files + sorted((ROOT / "hmglib").rglob("*.py")) + sorted((ROOT / "benchmarks").glob("*"))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_numbers_in_markdown_are_listed(path: Path) -> None:
    """Every number typed into a chapter's prose is a year, a citation, a constant of
    an equation, a fixed setting or part of a name, and is listed with its reason;
    computed numbers are glued. ``python tests/markdown_numbers.py`` prints the list."""
    unlisted, other = markdown_numbers.problems(path)
    lines = [f"cell {h.cell}: {h.number!r} in …{h.context}…" for h in unlisted] + other
    assert not lines, (
        f"{path.stem}: numbers typed into markdown cells (glue computed ones; list the rest "
        f"in tests/markdown_numbers/{path.stem}.yaml with a reason):\n" + "\n".join(lines))


def test_markdown_numbers_finds_what_it_should(tmp_path: Path) -> None:
    """The checker counts prose numbers and skips code, roles, chapter references,
    names and list markers."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# 3. Title\n\nWe measured 12.5 % and 1,024 images (see chapter 4 and "
            "chapters 1–2); `x = 7` and {glue:text}`acc:.1f` and {cite:p}`chen2022hrn`.\n\n"
            "1. ResNet-50 on CUB-200-2011 [a](https://x.org/9) in 2022, $k = 10$."),
        nbformat.v4.new_code_cell("y = 99"),
    ]
    path = tmp_path / "99_probe.ipynb"
    nbformat.write(nb, path)
    assert [h.number for h in markdown_numbers.numbers(path)] == ["12.5", "1,024", "2022", "10"]
    unlisted, _ = markdown_numbers.problems(path)
    assert [h.number for h in unlisted] == ["12.5", "1,024", "10"]  # the year needs no entry


def test_allow_lists_name_chapters_that_exist() -> None:
    stems = {p.stem for p in CHAPTERS}
    for path in sorted(markdown_numbers.ALLOW_DIR.glob("*.yaml")):
        assert path.stem in stems, f"{path.name}: no chapter book/{path.stem}.ipynb"


@pytest.mark.parametrize("path", _text_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_internal(path: Path) -> None:
    """No source of a page names the project's internal design or facts files."""
    if path.is_file():
        found = internal_names(path.read_text(encoding="utf-8", errors="replace"))
        assert not found, f"{path.relative_to(ROOT)} names {found}: say what it says instead"


def test_internal_names_are_found_in_html(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text("<p>as <code>PAPERS.md</code> says</p>")
    (tmp_path / "b.html").write_text("<p>a clean page</p>")
    assert internal_names_in_html(tmp_path) == [f"{tmp_path / 'a.html'}: names PAPERS.md"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_code_cells_fit_the_column(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    wide = [f"cell {i}, line {n}: {len(line)} characters"
            for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for n, line in enumerate(cell.source.splitlines(), 1) if len(line) > CODE_COLUMNS]
    assert not wide, (f"{path.stem}: code lines wider than the page column "
                      f"({CODE_COLUMNS}):\n" + "\n".join(wide))


def _chapter_numbers() -> set[str]:
    """The numbers of the chapters that exist: ``01b_data`` → ``1b``."""
    return {re.match(r"0*(\d+[a-z]?)_", p.name).group(1) for p in CHAPTERS}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_point_only_to_chapters_that_exist(path: Path) -> None:
    exists = _chapter_numbers()
    nb = nbformat.read(path, as_version=4)
    missing = []
    for i, cell in enumerate(nb.cells):
        for match in markdown_numbers.CHAPTER_REF.finditer(cell.source):
            refs = re.findall(r"\d+[a-z]?", match.group(1))
            if "–" in match.group(1) or "-" in match.group(1) or " to " in match.group(1):
                lo, hi = int(re.sub(r"\D", "", refs[0])), int(re.sub(r"\D", "", refs[-1]))
                refs += [str(n) for n in range(lo, hi + 1)]
            missing += [f"cell {i}: {match.group(0)!r}" for r in refs if r not in exists]
    assert not missing, f"{path.stem} points to chapters that do not exist:\n" + "\n".join(
        sorted(set(missing)))


REPOSITORY_URL = "https://github.com/hmg-book/hmg-book/blob/main/"
_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
_REPO_PATH = re.compile(r"\b(?:benchmarks|tests)/[\w./-]*")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_repository_files_are_linked_absolutely(path: Path) -> None:
    """A chapter read from a pip install or in Colab has no ``benchmarks/`` or
    ``tests/`` beside it: it names them through absolute links to the repository."""
    nb = nbformat.read(path, as_version=4)
    bad = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        # links to the repository are fine, whatever their text; every other mention is not
        rest = _LINK.sub(lambda m: " " if m.group(2).startswith(REPOSITORY_URL) else m.group(0),
                         cell.source)
        bad += [f"cell {i}: {m!r}; link it as [{m}]({REPOSITORY_URL}{m})"
                for m in _REPO_PATH.findall(rest)]
    assert not bad, f"{path.stem}:\n" + "\n".join(bad)
