"""Check a built book: every chapter page shows its figures and no error output,
the API page has an entry for every public name, no page names an internal
design file, and say how long each
chapter's execution took against its profile's budget.

    python tests/check_built_book.py _build/html

Run by `make book` and `make test` after the build (a built page is not
something pytest can see, since the build runs after the tests). A chapter that
ran past its budget is reported with its slowest cells; that is a warning, not a
failure (a loaded machine is slow, not broken).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def problems(html_dir: Path) -> list[str]:
    """What is wrong with the built book in ``html_dir`` (empty when nothing is)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    found = []
    for f in files:
        if not (ROOT / f"{f}.ipynb").exists():
            continue
        page = html_dir / f"{f}.html"
        if not page.is_file():
            found.append(f"{page}: missing")
            continue
        text = page.read_text(encoding="utf-8")
        figures = re.findall(r'<img[^>]+src="[^"]*_images/[^"]+\.png"', text)
        if not figures:
            found.append(f"{page}: no figure (is a chapter kernel running without inline plots?)")
        for marker in ("Traceback (most recent call last)", 'class="output traceback"'):
            if marker in text:
                found.append(f"{page}: shows an error ({marker})")
    return found + api_page_problems(html_dir) + internal_name_problems(html_dir)


def internal_name_problems(html_dir: Path) -> list[str]:
    """Built pages that name an internal design file (see ``markdown_numbers``)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from markdown_numbers import internal_names_in_html

    return internal_names_in_html(html_dir)


def api_page_problems(html_dir: Path) -> list[str]:
    """Public names without an anchor on the built API page (see ``test_api_page``)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_api_page import built_page_problems

    return built_page_problems(html_dir)


def execution_times(html_dir: Path) -> list[str]:
    """One line per executed chapter: its time against its profile's budget, and,
    past the budget, its three slowest cells. Read from the build's jupyter-cache."""
    from jupyter_cache import get_cache

    from hmglib.profile import PROFILES

    cache_dir = html_dir.parent / ".jupyter_cache"
    if not cache_dir.is_dir():
        return [f"{cache_dir}: no execution cache, so no execution times"]
    cache = get_cache(str(cache_dir))
    latest = {}
    for record in cache.list_cache_records():
        if record.uri not in latest or record.created > latest[record.uri].created:
            latest[record.uri] = record
    lines = []
    for uri, record in sorted(latest.items()):
        nb = cache.get_cache_bundle(record.pk).nb
        params = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        printed = "".join(o.get("text", "") for c in params for o in c.get("outputs", []))
        match = re.search(r"profile: (\w+)", printed)
        if match is None or match.group(1) not in PROFILES:
            lines.append(f"{Path(uri).name}: no profile printed by its parameters cell")
            continue
        profile = PROFILES[match.group(1)]
        cells = [tuple(c) for c in (record.data or {}).get("cell_seconds", [])]
        seconds = (record.data or {}).get("execution_seconds") or sum(c[1] for c in cells)
        verdict = "within" if seconds <= profile.time_budget_s else "PAST"
        lines.append(f"{Path(uri).name}: {seconds:.0f} s, {verdict} the {profile.name} "
                     f"profile's {profile.time_budget_s:.0f}-s budget")
        if seconds > profile.time_budget_s:
            if not cells:
                lines.append("    (executed by the build itself: no cell times recorded)")
            for index, secs, first in sorted(cells, key=lambda c: -c[1])[:3]:
                lines.append(f"    cell {index}: {secs:.0f} s ({first!r})")
    return lines


if __name__ == "__main__":
    html = Path(sys.argv[1] if len(sys.argv) > 1 else "_build/html")
    for line in execution_times(html):
        print(line)
    bad = problems(html)
    for line in bad:
        print(line, file=sys.stderr)
    if bad:
        sys.exit(1)
    print(f"{html}: every chapter page shows figures and no errors, the API page has an "
          "entry for every public name, and no page names an internal file")
