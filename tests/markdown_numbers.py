"""The numbers typed into the prose of each chapter, listed for review.

    python tests/markdown_numbers.py [book/01_label_trees.ipynb ...]

A number a chapter computes belongs in its prose only through the run: glued
(``{glue:text}`name``` after ``hmglib.results.glue``) or printed. What is left
typed in markdown cells must be something no run computes: a year, a number a
paper reports (with its citation), a constant of an equation, or a fixed
setting of the library or a paper's protocol. Each chapter lists those in its
allow-list, ``tests/markdown_numbers/<chapter>.yaml``: a mapping from the number
as written (``"77.8"``, ``"0.6"``, without ``%``) to a reason that starts with
``year:``, ``citation:``, ``equation:``, ``setting:`` or ``name:`` (a number
that is part of a proper name, such as *Cessna 172*).

Not counted: inline and fenced code, glue and citation roles, link targets,
chapter references ("chapter 3", "chapters 1–4"), the number of the chapter's
title, numbered-list markers, digits inside names (ResNet-50, CUB-200-2011) and
the generated ``library-names`` cell.

:func:`internal_names` finds what no page may say: the names of the project's
internal design and facts files (``check_built_book.py`` looks for them on the
built pages).

The report prints every number with its context and its reason, or
``UNLISTED``; it exits 1 when a number is unlisted, when an allow-list entry is
no longer used, or when a reason has no valid kind.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
ALLOW_DIR = ROOT / "tests" / "markdown_numbers"
KINDS = ("year", "citation", "equation", "setting", "name")
SKIP_TAG = "library-names"

#: A reference to chapters: "chapter 3", "Chapters 1–4", "chapters 3 and 4",
#: "chapter 1b"; group 1 holds the numbers.
CHAPTER_REF = re.compile(
    r"\b[Cc]hapters?\s+(\d+[a-z]?(?:\s*(?:–|-|,|and|or|to)\s*\d+[a-z]?)*)")

# Removed before numbers are looked for (replaced by a space, so context stays).
_STRIP = [
    re.compile(r"```.*?```", re.S),  # fenced code
    re.compile(r"`[^`\n]*`"),  # inline code, and the argument of every role
    re.compile(r"\{(?:glue|cite)[:\w]*\}"),  # role names whose argument went above
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"<!--.*?-->", re.S),  # comments
    re.compile(r"https?://\S+"),  # bare addresses
    re.compile(r"^:[\w-]+:.*$", re.M),  # directive options (:class: tip)
    re.compile(r"^\s*(?:\d+|[a-z])[.)]\s", re.M),  # numbered-list markers
    re.compile(r"^#\s+\d+[a-z]?\.", re.M),  # the chapter's number in its title
    CHAPTER_REF,
]
# A number: not part of a name (a letter, digit, '-' or '_' before it), optional
# thousands separators and decimals.
_NUMBER = re.compile(r"(?<![\w.\-])(\d+(?:,\d{3})*(?:\.\d+)?)(?![\w])")
_YEAR = re.compile(r"(19|20)\d\d")

#: Words that belong to how the project is made, not to the book: the design and
#: facts files of the project, and the phrase that quotes them.
INTERNAL = re.compile(r"DESIGN\.md|PAPERS\.md|\bour facts\b|shared/seeds", re.I)


def internal_names(text: str) -> list[str]:
    """The internal names that ``text`` mentions."""
    return sorted({m.group(0) for m in INTERNAL.finditer(text)})


def internal_names_in_html(html_dir: Path) -> list[str]:
    """One line per built page that names an internal file or speaks of "our facts"."""
    return [f"{page}: names {', '.join(found)}"
            for page in sorted(html_dir.rglob("*.html"))
            if (found := internal_names(re.sub(r"<[^>]+>", " ", page.read_text("utf-8"))))]


@dataclass(frozen=True)
class Hit:
    """One number in the prose of a chapter."""

    chapter: str
    cell: int
    number: str
    context: str


def _prose(source: str) -> str:
    for pattern in _STRIP:
        source = pattern.sub(lambda m: " " * len(m.group(0)), source)
    return source


def numbers(path: Path) -> list[Hit]:
    """Every number in the markdown cells of the notebook at ``path``."""
    nb = nbformat.read(path, as_version=4)
    hits = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown" or SKIP_TAG in cell.metadata.get("tags", []):
            continue
        text = _prose(cell.source)
        for match in _NUMBER.finditer(text):
            start, end = match.span(1)
            context = " ".join(cell.source[max(0, start - 40): end + 30].split())
            hits.append(Hit(path.stem, index, match.group(1), context))
    return hits


def allow_list(chapter: str) -> dict[str, str]:
    """The chapter's allow-list: number → reason (empty when it has none)."""
    path = ALLOW_DIR / f"{chapter}.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping from number to reason, got {type(data)}")
    return {str(k): str(v) for k, v in data.items()}


def problems(path: Path) -> tuple[list[Hit], list[str]]:
    """``(unlisted hits, other problems)`` of the chapter at ``path``.

    A 4-digit year (1900–2099) needs no entry."""
    hits = numbers(path)
    allowed = allow_list(path.stem)
    unlisted = [h for h in hits if h.number not in allowed and not _YEAR.fullmatch(h.number)]
    used = {h.number for h in hits}
    other = [f"{path.stem}: allow-list entry {n!r} is not in the prose any more"
             for n in allowed if n not in used]
    other += [f"{path.stem}: the reason of {n!r} must start with one of {', '.join(KINDS)}: "
              f"{reason!r}" for n, reason in allowed.items()
              if reason.split(":", 1)[0].strip() not in KINDS]
    return unlisted, other


def chapters() -> list[Path]:
    """Every notebook chapter of the book."""
    return sorted((ROOT / "book").glob("*.ipynb"))


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or chapters()
    failed = False
    for path in paths:
        allowed = allow_list(path.stem)
        unlisted, other = problems(path)
        print(f"== {path.stem}")
        for hit in numbers(path):
            reason = allowed.get(hit.number) or ("year" if _YEAR.fullmatch(hit.number)
                                                 else "UNLISTED")
            print(f"  [{hit.cell:>2}] {hit.number:>8}  {reason[:40]:<40}  …{hit.context}…")
        for line in other:
            print(f"  {line}")
        failed |= bool(unlisted or other)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
