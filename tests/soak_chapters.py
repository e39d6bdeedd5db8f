"""Execute a chapter K times and report every stall (not part of ``make test``).

    .venv/bin/python tests/soak_chapters.py book/01_label_trees.ipynb -k 20

Each execution starts a fresh kernel, with an empty run cache and results folder
(so a chapter's sweeps train every time, as on a fresh clone), in the profile the
environment selects (quick unless ``--profile`` says otherwise). A stall is a cell
that waited past ``STALL_AFTER_S`` with the kernel and its workers idle, or a cell
timeout. For every stalled or slow cell the script prints, from the kernel's own
timestamps, whether the kernel read the request late (the request sat unread) or
the client read the reply late (the reply sat unread). Exit status 1 when any
execution stalled or failed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chapter_execution import STALL_AFTER_S, Execution, execute_chapter  # noqa: E402


def _epoch(stamp: str | None) -> float | None:
    """Seconds since the epoch of a kernel message timestamp (ISO 8601, UTC)."""
    if not stamp:
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def where_the_time_went(run: Execution, index: int) -> str:
    """For cell ``index`` of ``run``: when the kernel started it, replied, and the
    client got the reply, each counted from when the client sent it."""
    cell_time = next(c for c in run.cells if c.index == index)
    meta = run.notebook.cells[index].metadata.get("execution", {}) if run.notebook else {}
    busy = _epoch(meta.get("iopub.status.busy"))
    reply = _epoch(meta.get("shell.execute_reply"))
    sent = cell_time.started_at
    parts = [f"cell {index} ({cell_time.first_line!r}): {cell_time.seconds:.1f} s"]
    if busy is None:
        parts.append("the kernel never reported it busy (the request was not read)")
    else:
        parts.append(f"kernel busy at +{busy - sent:.2f} s")
    if reply is not None:
        parts.append(f"kernel replied at +{reply - sent:.2f} s, client read the reply at "
                     f"+{cell_time.seconds:.2f} s")
        late_read = cell_time.seconds - (reply - sent)
        if busy is not None and busy - sent > STALL_AFTER_S:
            parts.append("=> the request sat unread in the kernel")
        elif late_read > STALL_AFTER_S:
            parts.append("=> the reply sat unread in the client")
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapter", type=Path, help="the notebook to execute")
    parser.add_argument("-k", type=int, default=20, help="executions (default 20)")
    parser.add_argument("--profile", default="quick", choices=["quick", "cpu"],
                        help="the run profile (default quick)")
    parser.add_argument("--timeout", type=float, default=180, help="cell timeout in seconds")
    parser.add_argument("--keep-cache", action="store_true",
                        help="share one run cache over the executions (runs train once)")
    args = parser.parse_args(argv)
    if not args.chapter.is_file():
        parser.error(f"{args.chapter}: no such notebook; give a path such as "
                     "book/01_label_trees.ipynb")
    if args.k < 1:
        parser.error(f"-k {args.k}: give at least one execution")
    if args.profile == "quick":
        os.environ["HMG_QUICK"] = "1"
    else:
        os.environ.pop("HMG_QUICK", None)
        os.environ["HMG_PROFILE"] = args.profile
    from hmglib.profile import current

    profile = current()
    shared = tempfile.mkdtemp(prefix="hmg-soak-")
    times, stalled, failed = [], 0, 0
    for i in range(1, args.k + 1):
        scratch = shared if args.keep_cache else tempfile.mkdtemp(prefix="hmg-soak-")
        os.environ["HMG_RESULTS_DIR"] = str(Path(scratch) / "results")
        os.environ["HMG_CACHE_DIR"] = str(Path(scratch) / "cache")
        run = execute_chapter(args.chapter.resolve(), timeout_s=args.timeout,
                              budget_s=profile.time_budget_s, profile=profile.name,
                              say=lambda line: print(f"    {line}", flush=True))
        times.append(run.seconds)
        verdict = "ok"
        if run.error is not None:
            failed += 1
            verdict = "FAILED: " + run.error.strip().splitlines()[-1][:200]
        if run.stalls:
            stalled += 1
            verdict = "STALLED" if run.error is None else verdict + " (stalled)"
        summary = run.summary(args.chapter.stem, profile.time_budget_s, profile.name)
        print(f"{i:3d}/{args.k}: {summary} [{verdict}]", flush=True)
        for cell in run.cells:
            if cell.seconds > STALL_AFTER_S:
                print(f"      {where_the_time_went(run, cell.index)}", flush=True)
    print(f"\n{args.chapter.name}, {args.k} executions in the {profile.name} profile: "
          f"{stalled} stalled, {failed} failed; {statistics.mean(times):.1f} s mean, "
          f"{min(times):.1f}-{max(times):.1f} s range")
    return 1 if stalled or failed else 0


if __name__ == "__main__":
    sys.exit(main())
