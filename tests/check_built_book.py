"""Check a built book: every chapter page shows its figures and no error output.

    python tests/check_built_book.py _build/html

Run by `make book` and `make test` after the build (a built page is not
something pytest can see, since the build runs after the tests).
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
    return found


if __name__ == "__main__":
    html = Path(sys.argv[1] if len(sys.argv) > 1 else "_build/html")
    bad = problems(html)
    for line in bad:
        print(line, file=sys.stderr)
    if bad:
        sys.exit(1)
    print(f"{html}: every chapter page shows figures and no errors")
