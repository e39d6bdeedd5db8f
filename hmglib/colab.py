"""The install cell every chapter starts with, defined in one place.

Colab opens a notebook straight from GitHub without the rest of the
repository, so the first cell installs ``hmglib`` from :data:`INSTALL_SOURCE`
when (and only when) it runs in Colab. Chapters carry a copy of
:func:`install_cell`; a test checks each copy, and ``python -m hmglib.colab
book/`` rewrites them after a change here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hmglib import atomic

__all__ = ["REPOSITORY", "INSTALL_SOURCE", "install_cell", "colab_url", "sync"]

#: The public repository of the book.
REPOSITORY = "hmg-book/hmg-book"
#: What ``pip install`` gets in Colab: the library and what a chapter needs to run
#: (the ``colab`` extra: widgets), not the book builder.
INSTALL_SOURCE = f"hmglib[colab] @ git+https://github.com/{REPOSITORY}.git"


def install_cell() -> str:
    """The source of the first code cell of every chapter.

    It chooses the run profile (``HMG_PROFILE``, unless the environment already
    sets it; see :mod:`hmglib.profile`) and, in Colab only, installs the library.
    """
    return (
        "# Run profile: \"cpu\" runs in minutes anywhere; for paper scale, pick a\n"
        "# GPU runtime (Colab: Runtime > Change runtime type) and set \"gpu\".\n"
        "import os\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'os.environ.setdefault("HMG_PROFILE", "cpu")\n'
        "\n"
        "# Colab: install hmglib (a no-op everywhere else).\n"
        'if "google.colab" in sys.modules:\n'
        "    subprocess.run(\n"
        '        [sys.executable, "-m", "pip", "install", "-q",\n'
        f'         "{INSTALL_SOURCE}"],\n'
        "        check=True,\n"
        "    )"
    )


def colab_url(notebook: str) -> str:
    """The Colab address of a chapter, e.g. ``colab_url("book/01_label_trees.ipynb")``."""
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/{notebook}"


def sync(folder: str | Path) -> list[Path]:
    """Rewrite the first code cell of every notebook in ``folder`` to :func:`install_cell`.

    Returns the notebooks that changed.
    """
    changed = []
    for nb_path in sorted(Path(folder).glob("*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        if not code:
            continue
        if "".join(code[0]["source"]) != install_cell():
            code[0]["source"] = install_cell().splitlines(keepends=True)
            atomic.write_text(nb_path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            changed.append(nb_path)
    return changed


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    for p in sync(sys.argv[1] if len(sys.argv) > 1 else "book"):
        print(f"updated {p}")
