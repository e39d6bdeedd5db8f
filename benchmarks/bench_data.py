"""How fast the synthetic worlds render, on one core.

Prints images/s of ``HierShapes`` and ``MultiShapes`` (``ds[i]``: parameters,
pixels and the tensor, no DataLoader) for a few settings, single-threaded.
The budget is 3,000 images/s at 64 x 64 per core, so rendering is never the
bottleneck of CPU training. The label protocols are timed too.

    .venv/bin/python benchmarks/bench_data.py
"""

from __future__ import annotations

import os
import platform

import torch
from _timing import timed

from hmglib.data import HierShapes, MultiShapes, coarsen_labels, degrade_resolution, drop_labels

BUDGET = 3000.0  # images/s at 64 x 64 on one core


def images_per_second(ds, n: int = 3000, repeat: int = 3) -> float:
    """Best of ``repeat`` passes over ``n`` items (indices cycle through the dataset)."""
    for i in range(50):  # warm-up: caches, first allocations
        ds[i % len(ds)]

    def one_pass() -> None:
        for i in range(n):
            ds[i % len(ds)]

    return n / timed(one_pass, repeat)


def main() -> None:
    torch.set_num_threads(1)
    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          f"{os.cpu_count()} cpus visible, 1 thread")
    print(f"{'world':>12} {'setting':>42} {'images/s':>9} {'budget':>7}")
    cases = [
        ("HierShapes", "64 px, scale 0.6, clutter 2 (default)", HierShapes(samples_per_class=200)),
        ("HierShapes", "64 px, scale 0.3, clutter 4",
         HierShapes(samples_per_class=200, object_scale=0.3, clutter=4)),
        ("HierShapes", "32 px, scale 0.6, clutter 2", HierShapes(samples_per_class=200,
                                                                  image_size=32)),
        ("HierShapes", "128 px, scale 0.6, clutter 2", HierShapes(samples_per_class=200,
                                                                   image_size=128)),
        ("MultiShapes", "64 px, 12 classes, 1-4 objects (default)", MultiShapes(num_images=5000)),
        ("MultiShapes", "128 px, 12 classes, 1-4 objects",
         MultiShapes(num_images=5000, image_size=128)),
    ]
    for world, setting, ds in cases:
        rate = images_per_second(ds)
        verdict = ("ok" if rate >= BUDGET else "SLOW") if ds.image_size == 64 else "-"
        print(f"{world:>12} {setting:>42} {rate:9.0f} {verdict:>7}")

    ds = HierShapes(samples_per_class=2000)
    t = ds.targets
    print(f"\ncoarsen_labels, {len(t):,} labels: ordered "
          f"{timed(lambda: coarsen_labels(t, ds.tree, 0.7, rule='ordered')) * 1e3:.1f} ms, random "
          f"{timed(lambda: coarsen_labels(t, ds.tree, 0.7, rule='random')) * 1e3:.1f} ms")
    y = (torch.rand(100_000, 80, generator=torch.Generator().manual_seed(0)) < 0.05).float()
    print(f"drop_labels, 100,000 x 80: entry {timed(lambda: drop_labels(y, 0.1)) * 1e3:.1f} ms, "
          f"per_image {timed(lambda: drop_labels(y, 0.1, rule='per_image')) * 1e3:.1f} ms")
    x = torch.rand(256, 3, 64, 64)
    print(f"degrade_resolution, 256 x 3 x 64 x 64: "
          f"{timed(lambda: degrade_resolution(x)) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
