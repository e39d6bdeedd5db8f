"""Execute one chapter and watch it: where the time goes, and what a stall looks like.

Used by ``tests/test_chapters.py`` (every chapter once, in the quick profile) and
``tests/soak_chapters.py`` (one chapter many times). A chapter that runs past its
profile's budget (:attr:`hmglib.profile.Profile.time_budget_s`) is reported while
it runs, naming the cell it is in and what the kernel is doing: a kernel busy
computing is a slow chapter, a kernel (and its worker processes) at 0 % CPU while
the client waits is a lost message, which is worth a report of its own.
"""

from __future__ import annotations

import copy
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

# A cell that runs this long with its kernel and the kernel's children below
# IDLE_CPU_PERCENT of one core over the last WATCH_EVERY_S seconds is reported as stalled.
STALL_AFTER_S = 20.0
IDLE_CPU_PERCENT = 2.0
WATCH_EVERY_S = 5.0


@dataclass
class CellTime:
    """One executed code cell: its index in the notebook, first line and seconds.

    ``started_at`` is when the client sent the cell (seconds since the epoch); with
    the kernel's own timestamps in the cell's ``metadata.execution`` it tells a
    request the kernel read late from a reply the client read late.
    """

    index: int
    first_line: str
    seconds: float
    started_at: float = 0.0


@dataclass
class Execution:
    """What one execution of a chapter did.

    Attributes:
        seconds: wall-clock time of the whole execution (kernel start included).
        cells: every code cell that started, in order, with its time.
        error: the failure (traceback text) or ``None``.
        stalls: one line per stall the watchdog saw (a cell idle past
            ``STALL_AFTER_S``); empty for a healthy execution.
        reports: every line the watchdog printed (stalls and budget overruns).
        notebook: the executed notebook (outputs filled in).
    """

    seconds: float
    cells: list[CellTime]
    error: str | None
    stalls: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    notebook: nbformat.NotebookNode | None = None

    def slowest(self, n: int = 3) -> list[CellTime]:
        """The ``n`` slowest cells, slowest first."""
        return sorted(self.cells, key=lambda c: -c.seconds)[:n]

    def summary(self, name: str, budget_s: float, profile: str) -> str:
        """One line: total time against the budget and the slowest cell."""
        slow = self.slowest(1)
        where = f"; slowest cell {slow[0].index} ({slow[0].seconds:.1f} s: " \
                f"{slow[0].first_line!r})" if slow else ""
        verdict = "within" if self.seconds <= budget_s else "PAST"
        return (f"{name}: {self.seconds:.1f} s, {verdict} the {profile} profile's "
                f"{budget_s:.0f}-s budget{where}")


def _first_line(source: str) -> str:
    lines = [ln for ln in source.splitlines() if ln.strip() and not ln.startswith("#")]
    return (lines[0] if lines else source.strip())[:70]


def _tree_cpu_seconds(proc: psutil.Process) -> float:
    """CPU seconds used so far by ``proc`` and its live descendants."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:  # a worker that ended between listing and reading
            pass
    return total


class _Watchdog(threading.Thread):
    """Reports, while a chapter runs, a budget overrun and any stalled cell."""

    def __init__(self, name: str, budget_s: float, profile: str,
                 say: Callable[[str], None], stall_after_s: float = STALL_AFTER_S,
                 every_s: float = WATCH_EVERY_S) -> None:
        super().__init__(daemon=True)
        self.stall_after_s = stall_after_s
        self.every_s = every_s
        self.name_ = name
        self.budget_s = budget_s
        self.profile = profile
        self.say = say
        self.start_time = time.perf_counter()
        self.cell: tuple[int, str, float] | None = None  # index, first line, start
        self.kernel: psutil.Process | None = None
        self.stalls: list[str] = []
        self.reports: list[str] = []
        self.done = threading.Event()

    def _report(self, line: str) -> None:
        self.reports.append(line)
        self.say(line)

    def run(self) -> None:
        over_budget_said = False
        last_cpu: float | None = None
        stalled_cell: int | None = None
        while not self.done.wait(self.every_s):
            now = time.perf_counter()
            cell = self.cell
            if cell is None or self.kernel is None:
                continue
            index, line, started = cell
            try:
                cpu = _tree_cpu_seconds(self.kernel)
            except psutil.Error:
                if self.cell is not None:  # gone while a cell ran, not shut down after the last
                    self._report(f"{self.name_}: the kernel process is gone (in cell {index})")
                return
            busy = None if last_cpu is None else 100 * (cpu - last_cpu) / self.every_s
            last_cpu = cpu
            in_cell = now - started
            if not over_budget_said and now - self.start_time > self.budget_s:
                over_budget_said = True
                self._report(
                    f"{self.name_}: past the {self.profile} profile's {self.budget_s:.0f}-s "
                    f"budget, in cell {index} ({line!r}) for {in_cell:.0f} s, "
                    f"kernel and workers at {busy if busy is not None else 0:.0f} % CPU")
            if (busy is not None and busy < IDLE_CPU_PERCENT and in_cell > self.stall_after_s
                    and stalled_cell != index):
                stalled_cell = index
                line_ = (f"{self.name_}: cell {index} ({line!r}) has waited {in_cell:.0f} s "
                         f"with the kernel and its workers idle ({busy:.1f} % CPU): "
                         f"a reply the client is waiting for has not come")
                self.stalls.append(line_)
                self._report(line_)


def execute_chapter(path: Path, *, timeout_s: float, budget_s: float, profile: str,
                    say: Callable[[str], None] | None = None,
                    stall_after_s: float = STALL_AFTER_S,
                    watch_every_s: float = WATCH_EVERY_S) -> Execution:
    """Execute the notebook at ``path`` in a fresh kernel, watched.

    Args:
        path: the chapter's ``.ipynb``; it runs with its own folder as working directory.
        timeout_s: the per-cell timeout (a cell past it fails the execution).
        budget_s: the chapter's budget in its profile; running past it is reported,
            not failed.
        profile: the profile's name, for the reports.
        say: where reports go while the chapter runs (default: standard error).
        stall_after_s: a cell idle (kernel and workers below ``IDLE_CPU_PERCENT``
            of a core) for a whole watch interval after this long is a stall.
        watch_every_s: how often the watchdog looks.

    Returns:
        An :class:`Execution`; ``error`` holds the traceback when a cell failed.
    """
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    nb = nbformat.read(path, as_version=4)
    watch = _Watchdog(path.stem, budget_s, profile, say, stall_after_s, watch_every_s)
    cells: list[CellTime] = []
    starts: dict[int, float] = {}
    sent: dict[int, float] = {}

    def on_start(cell, cell_index: int) -> None:
        if cell.cell_type != "code" or not cell.source.strip():
            watch.cell = None  # nbclient calls this hook for cells it then skips
            return
        if watch.kernel is None and client.km is not None:
            pid = client.km.provisioner.process.pid  # the kernel's own process
            watch.kernel = psutil.Process(pid)
        starts[cell_index] = time.perf_counter()
        sent[cell_index] = time.time()
        watch.cell = (cell_index, _first_line(cell.source), starts[cell_index])

    def on_executed(cell, cell_index: int, execute_reply) -> None:
        watch.cell = None  # between cells (and at shut-down) there is nothing to watch
        cells.append(CellTime(cell_index, _first_line(cell.source),
                              time.perf_counter() - starts[cell_index], sent[cell_index]))

    client = NotebookClient(nb, timeout=int(timeout_s), allow_errors=False, record_timing=True,
                            resources={"metadata": {"path": str(path.parent)}},
                            on_cell_start=on_start, on_cell_executed=on_executed)
    error = None
    watch.start()
    t0 = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        error = str(exc)
        if watch.cell is not None and watch.cell[0] not in {c.index for c in cells}:
            index, line, started = watch.cell
            cells.append(CellTime(index, line, time.perf_counter() - started, sent[index]))
    finally:
        watch.done.set()
        watch.join()
    return Execution(seconds=time.perf_counter() - t0, cells=cells, error=error,
                     stalls=watch.stalls, reports=watch.reports, notebook=nb)


def execute_into_cache(path: Path, cache_dir: Path, *, timeout_s: float,
                       say: Callable[[str], None] | None = None) -> Execution:
    """Execute the chapter at ``path`` in the current profile, watched, and store the
    executed notebook in the jupyter-cache at ``cache_dir``, where ``jupyter-book
    build`` finds it instead of executing the chapter again. A failed execution is
    not stored. The summary line (time against the budget) goes to ``say``."""
    from jupyter_cache import get_cache
    from jupyter_cache.cache.main import CacheBundleIn

    from hmglib.profile import current

    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    profile = current()
    run = execute_chapter(path, timeout_s=timeout_s, budget_s=profile.time_budget_s,
                          profile=profile.name, say=say)
    say(run.summary(path.stem, profile.time_budget_s, profile.name))
    if run.error is None:
        nb = copy.deepcopy(run.notebook)
        for cell in nb.cells:  # the cache hashes cell metadata: keep only what the file has
            cell.metadata.pop("execution", None)
        cells = [[c.index, round(c.seconds, 3), c.first_line] for c in run.cells]
        get_cache(str(cache_dir)).cache_notebook_bundle(
            CacheBundleIn(nb, str(path), data={"execution_seconds": run.seconds,
                                                "cell_seconds": cells}),
            check_validity=False, overwrite=True)
    return run


def main(argv: list[str] | None = None) -> int:
    """``python tests/chapter_execution.py --cache DIR --timeout S CHAPTER...``: execute
    each chapter not yet in the cache (``make book`` runs this before the build)."""
    import argparse

    from jupyter_cache import get_cache

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("chapters", nargs="+", type=Path)
    parser.add_argument("--cache", type=Path, required=True, help="the build's jupyter-cache")
    parser.add_argument("--timeout", type=float, required=True, help="per-cell timeout (s)")
    args = parser.parse_args(argv)
    cache = get_cache(str(args.cache))
    failed = []
    for path in args.chapters:
        try:
            cache.match_cache_file(str(path))
            continue  # executed already, and its code has not changed since
        except KeyError:
            pass
        run = execute_into_cache(path.resolve(), args.cache, timeout_s=args.timeout)
        if run.error is not None:
            print(f"{path}: failed\n{run.error}", file=sys.stderr)
            failed.append(path)
        elif run.stalls:
            failed.append(path)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
