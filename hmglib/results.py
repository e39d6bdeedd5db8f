"""Reproduction records: what a run measured, beside what the paper reports.

Every experiment of the book ends with :func:`record`, which writes
``<name>.json`` and returns the table the chapter shows. A record is::

    {"name", "chapter", "profile", "measured": [row], "paper": [row], "notes"}

and a row is a flat object with string keys and a numeric ``value``, e.g.
``{"method": "HRN", "relabel": 0.9, "level": "species", "metric": "OA",
"value": 71.2}``. Paper rows also carry a ``source`` (where the number is
printed: table, page, or repository).

Records go to ``$HMG_RESULTS_DIR`` if set, else ``_build/results/`` of the
book (the nearest folder above the working directory that holds ``_toc.yml``),
else ``_build/results/`` under the working directory.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hmglib import atomic, profile

__all__ = ["results_dir", "record", "load", "table", "over_seeds", "paired_gain", "glue"]

Row = Mapping[str, object]


def results_dir() -> Path:
    """The folder reproduction records are written to (see the module docstring)."""
    env = os.environ.get("HMG_RESULTS_DIR", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file():
            return folder / "_build" / "results"
    return here / "_build" / "results"


def _check_rows(rows: Sequence[Row], what: str, need_source: bool) -> list[dict]:
    if isinstance(rows, Mapping) or isinstance(rows, str):
        raise TypeError(f"record: `{what}` must be a list of rows (dicts), got one {type(rows)}.")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"record: {what}[{i}] must be a dict, got {type(row).__name__}.")
        bad_keys = [k for k in row if not isinstance(k, str)]
        if bad_keys:
            raise TypeError(f"record: {what}[{i}] has non-string keys {bad_keys}.")
        if "value" not in row:
            raise ValueError(f"record: {what}[{i}] {dict(row)} has no 'value'.")
        value = row["value"]
        if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(float(value)):
            raise ValueError(
                f"record: {what}[{i}] has value {value!r}; it must be a finite or infinite "
                "number (convert tensors with float())."
            )
        nested = [k for k, v in row.items() if isinstance(v, (Mapping, list, tuple, set))]
        if nested:
            raise ValueError(f"record: {what}[{i}] must be flat; keys {nested} hold containers.")
        odd = {k: type(v).__name__ for k, v in row.items()
               if k != "value" and v is not None and not isinstance(v, (str, int, float))}
        if odd:
            raise ValueError(
                f"record: {what}[{i}] holds {odd}; a row's fields must be str, int, float, bool "
                "or None (convert tensors and NumPy numbers with float() or int())."
            )
        if need_source and not row.get("source"):
            raise ValueError(
                f"record: {what}[{i}] {dict(row)} has no 'source'; say where the paper prints "
                "it (e.g. 'Table 2' or 'official repository README')."
            )
        out.append({k: (float(v) if k == "value" else v) for k, v in row.items()})
    return out


def record(
    name: str,
    measured: Sequence[Row],
    paper: Sequence[Row] = (),
    notes: str = "",
    chapter: str | None = None,
) -> pd.DataFrame:
    """Write a reproduction record and return it as one table.

    The file is written atomically: a crash, or a reader in parallel, never meets
    half a record, and a failed write leaves the previous record as it was.

    Args:
        name: file-safe record name (``[A-Za-z0-9_.-]+``), e.g. ``"hrn_relabel"``.
        measured: rows this run computed.
        paper: rows the paper reports, each with a ``source``.
        notes: why the two differ (scale, data, protocol), in a sentence or two.
        chapter: the chapter that ran the experiment (e.g. ``"03_residual"``), or None.

    Returns:
        A DataFrame with every row, a ``source`` column (``"this run (<profile>)"``
        for measured rows) and the value last.

    Raises:
        ValueError, TypeError: a malformed name, row, note or chapter (the message
            names it).
    """
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_.-" for c in name):
        raise ValueError(f"record: name {name!r} must be non-empty and use only letters, "
                         "digits, '_', '.', '-'.")
    if not isinstance(notes, str):
        raise TypeError(f"record: notes must be a string, got {type(notes).__name__}.")
    if chapter is not None and not isinstance(chapter, str):
        raise TypeError(f"record: chapter must be a string such as '03' or None, got "
                        f"{type(chapter).__name__}.")
    prof = profile.current().name
    rec = {
        "name": name,
        "chapter": chapter,
        "profile": prof,
        "measured": _check_rows(measured, "measured", need_source=False),
        "paper": _check_rows(paper, "paper", need_source=True),
        "notes": notes,
    }
    atomic.write_json(results_dir() / f"{name}.json", rec, indent=1)
    return table(rec)


def load(name: str) -> dict:
    """Read back the record ``name`` from :func:`results_dir`.

    Raises:
        FileNotFoundError: no such record (the message names the folder).
    """
    path = results_dir() / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no reproduction record '{name}' in {path.parent}; run the "
                                "chapter that writes it first.")
    return json.loads(path.read_text(encoding="utf-8"))


def table(rec: Mapping) -> pd.DataFrame:
    """A record as one DataFrame: measured rows, then paper rows, ``value`` last."""
    rows = [{**r, "source": f"this run ({rec['profile']})"} for r in rec["measured"]]
    rows += [dict(r) for r in rec["paper"]]
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    cols = [c for c in df.columns if c not in ("source", "value")] + ["source", "value"]
    return df[cols]


# ------------------------------------------------------------------ seeds and claims
def over_seeds(frame: pd.DataFrame, by: Sequence[str], value: str = "value") -> pd.DataFrame:
    """Mean and spread over seeds: one row per group of ``by``.

    Args:
        frame: one row per (group, seed) with a numeric column ``value``.
        by: the columns that name a group (everything but the seed).

    Returns:
        A DataFrame indexed by ``by`` with ``mean``, ``spread`` (the sample standard
        deviation over seeds, ``ddof=1``; NaN for a single seed) and ``n`` (seeds).

    Raises:
        KeyError: a column of ``by`` or ``value`` is missing.
    """
    missing = [c for c in [*by, value] if c not in frame.columns]
    if missing:
        raise KeyError(f"over_seeds: the frame has no column(s) {missing}; it has "
                       f"{list(frame.columns)}.")
    groups = frame.groupby(list(by), sort=False, dropna=False)[value]
    return pd.DataFrame({"mean": groups.mean(), "spread": groups.std(ddof=1),
                         "n": groups.count()})


def paired_gain(treated: Mapping[int, float], control: Mapping[int, float]) -> dict[str, float]:
    """The gain of ``treated`` over ``control``, paired by seed, and whether it holds.

    Runs with one seed see the same images and labels, so the per-seed difference
    removes what the seed does to both. A claim *holds* only when the mean gain
    exceeds its spread (the sample standard deviation of the per-seed gains).

    Args:
        treated, control: seed -> value (e.g. species OA in %), at least two seeds
            in common.

    Returns:
        ``{"mean", "spread", "n", "holds"}`` (``holds`` is 1.0 or 0.0).

    Raises:
        ValueError: fewer than two seeds in common (the message names both sets), or a
            gain that is not finite (the message names its seeds).
    """
    seeds = sorted(set(treated) & set(control))
    if len(seeds) < 2:
        raise ValueError(f"paired_gain: needs at least 2 seeds in common, got treated seeds "
                         f"{sorted(treated)} and control seeds {sorted(control)}.")
    gains = [float(treated[s]) - float(control[s]) for s in seeds]
    undefined = [s for s, g in zip(seeds, gains, strict=True) if not math.isfinite(g)]
    if undefined:
        raise ValueError(f"paired_gain: the gain is not a number (NaN or inf) at seeds "
                         f"{undefined}; leave those seeds out of both mappings, and say so.")
    mean, spread = statistics.fmean(gains), statistics.stdev(gains)
    return {"mean": mean, "spread": spread, "n": float(len(seeds)),
            "holds": float(mean > spread)}


def glue(name: str, value: object) -> None:
    """Give a computed value a name that the chapter's prose shows.

    In the built book the prose cites it with myst-nb's roles, e.g.
    ``{glue:text}`best_gain:.1f``` , so every number a chapter states comes from
    its run. Where myst-nb is not installed (a chapter run in Colab with the
    slim ``colab`` extra) nothing renders the roles, so the value is printed
    instead, as ``name = value``.

    Args:
        name: the key the prose uses; letters, digits, ``_`` and ``-``.
        value: a number, string or anything with a plain-text form. NumPy
            scalars and one-element tensors are glued as the Python number
            they hold, so that a format such as ``:.1f`` applies to them.

    Raises:
        ValueError: ``name`` is empty or has other characters.
    """
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"glue: name {name!r} must be a non-empty string of letters, digits, "
                         "'_' and '-' (it is cited as {glue:text}`name`).")
    if isinstance(value, np.generic) or (isinstance(value, torch.Tensor) and value.numel() == 1):
        value = value.item()  # np.float64(0.5) -> 0.5, tensor([3]) -> 3
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        print(f"{name} = {value}")
        return
    myst_glue(name, value, display=False)

