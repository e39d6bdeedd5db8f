"""The label trees of the real datasets, from versioned CSV tables.

The tables live in ``data/hierarchies/`` of the repository (one row per leaf,
in the dataset's class-id order, a header of level names, ``#`` comments
citing the sources). Wheels carry them inside the package as
``hmglib/_hierarchies/``, so a non-editable install finds them too.

>>> from hmglib import hierarchies
>>> hierarchies.load("aircraft")
LabelTree(manufacturer=30, family=70, variant=100; 200 nodes, 201 legal states)
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from hmglib.hierarchy import LabelTree

__all__ = ["NAMES", "load", "path_of", "describe"]

#: The shipped hierarchies: name → what it is.
NAMES: dict[str, str] = {
    "cub200": "CUB-200-2011 birds: order → family → species",
    "aircraft": "FGVC-Aircraft: manufacturer → family → variant",
    "cars": "Stanford Cars: body type → model",
}


def _table_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent
    # installed wheel first, then the source tree of an editable install
    return [here / "_hierarchies", here.parent / "data" / "hierarchies"]


def path_of(name: str) -> Path:
    """The CSV file behind hierarchy ``name``.

    Raises:
        KeyError: ``name`` is not one of :data:`NAMES`.
        FileNotFoundError: the package was installed without its tables.
    """
    if name not in NAMES:
        raise KeyError(
            f"unknown hierarchy '{name}'; shipped ones are {sorted(NAMES)}. For your own "
            "table use LabelTree.from_csv(path)."
        )
    for folder in _table_dirs():
        candidate = folder / f"{name}.csv"
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(d) for d in _table_dirs())
    raise FileNotFoundError(
        f"hierarchy table '{name}.csv' not found (looked in {looked}); reinstall hmglib "
        "from a complete checkout or wheel."
    )


@cache
def _load(name: str) -> LabelTree:
    return LabelTree.from_csv(path_of(name))


def load(name: str) -> LabelTree:
    """The label tree of a real dataset: ``"cub200"``, ``"aircraft"`` or ``"cars"``.

    Leaves are in the dataset's class-id order, so leaf ``k`` (node
    ``tree.offset(-1) + k``) is the dataset's class ``k`` (0-based).
    Returns a fresh object each call (the parsed table is cached).
    """
    tree = _load(name)
    return LabelTree(tree.level_names, tree.names, tree.parent.tolist(), tree.level_sizes)


def describe(name: str) -> list[str]:
    """The ``#`` comment lines at the top of a hierarchy table (sources, version)."""
    lines = path_of(name).read_text(encoding="utf-8-sig").splitlines()
    out = []
    for line in lines:
        if not line.startswith("#"):
            break
        out.append(line.lstrip("#").strip())
    return out
