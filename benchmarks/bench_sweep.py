"""What one experiment run costs, and what the parallel sweep buys.

Prints the seconds of one cpu-profile run of each method (one thread, the
run's own training + evaluation time), and the wall time of a small sweep run
by :func:`hmglib.experiments.run_many` with 1 worker (in this process, at
torch's default thread count) and with one single-thread worker process per
core, with their ratio. Caches go to a fresh temporary folder, so every run
trains. Run it on a quiet machine:

    .venv/bin/python benchmarks/bench_sweep.py
"""

from __future__ import annotations

import os
import platform
import tempfile
import time

import torch

from hmglib.experiments import HierRun, run_many


def main() -> None:
    os.environ.pop("HMG_QUICK", None)
    os.environ["HMG_PROFILE"] = "cpu"
    from hmglib.experiments import profile_run

    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          f"{os.cpu_count()} cpus visible")
    base = profile_run()
    print(f"cpu-profile run: {base.samples_per_class} images per species x 27 species, "
          f"{base.image_size} px, {base.epochs} epochs, batch {base.batch_size}")
    runs: list[HierRun] = [profile_run(method=m, relabel=r, seed=s)
                           for m in ("hrn", "flat", "per-level", "chmcnn")
                           for r in (0.0, 0.9) for s in (0, 1)]
    walls = {}
    for workers in sorted({1, os.cpu_count() or 1}):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["HMG_CACHE_DIR"] = cache
            t0 = time.perf_counter()
            results = run_many(runs, workers=workers)
            walls[workers] = time.perf_counter() - t0
        if workers == 1:
            per = {}
            for run, res in zip(runs, results, strict=True):
                per.setdefault(run.method, []).append(res["seconds"])
            for method, secs in per.items():
                mean = sum(secs) / len(secs)
                print(f"  one {method:>9} run: {mean:5.2f} s (mean of {len(secs)})")
    for workers, wall in walls.items():
        print(f"{len(runs)} runs with {workers} worker(s): {wall:6.1f} s wall, "
              f"{wall / len(runs):.2f} s per run")
    if len(walls) > 1:
        w = max(walls)
        print(f"speed-up with {w} workers: {walls[1] / walls[w]:.2f}x")


if __name__ == "__main__":
    main()
