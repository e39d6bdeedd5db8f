"""RA-CNN's attention crop against the scale-1 network it feeds.

The book's budget: the attention crop costs at most 5 % of a scale-1 forward.
This script times, on the CPU, both crop methods of
:func:`hmglib.models.racnn.attention_crop` (``"grid"``: affine grid and
bilinear sampling; ``"mask"``: the paper's boxcar mask times the image, then the
same sampling) and the scale-1 forward of an :class:`~hmglib.models.racnn.RACNN`
(resize to the scale's input if needed, backbone, pooling, classifier), in two
settings:

* ``paper``: VGG-19 (``build_backbone("vgg19", weights=None)``, nothing is
  downloaded) on 448-px images, crops zoomed to 224 px, batch 2: RA-CNN's own
  setting. Slow on a CPU (seconds per forward); ``--quick`` skips it.
* ``cpu``: the book's CPU profile, ``small_cnn(width=16)`` on 64-px canvases
  with a 32-px scale-1 input, crops to 32 px, batch 64.

Each thing is timed forward only (``torch.no_grad``, the network in eval mode)
and forward + backward (the network in train mode, a fixed random upstream
gradient; the crop's backward reaches the boxes, as in training). The things
compared are timed in turn, round after round (their order reversed every
other round), and each gets the median over the rounds of its mean time per
call within a round; fast things are called enough times per round to make a
round last at least ``--block`` seconds. Prints a table, the crop's share of
the scale-1 pass, and the mask's cost relative to the grid's.

    .venv/bin/python benchmarks/bench_crop.py [--quick] [--rounds 7] [--threads 1]

One thread by default (``--threads`` to change it): on a machine shared with
other busy processes, threads that wait for a busy core make small operations
much slower.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

from hmglib.models import build_backbone
from hmglib.models.racnn import RACNN, BoxBounds, attention_crop

BUDGET = 0.05  # the crop's share of a scale-1 forward (the book's budget)
METHODS = ("grid", "mask")


def measure(steps: dict[str, Callable[[], None]], rounds: int, block: float
            ) -> dict[str, float]:
    """The median seconds per call of each step, timed in turn round after round.

    Each step runs once to warm up, then ``n`` times per round, with ``n`` chosen
    so that a round of it lasts at least ``block`` seconds."""
    calls = {}
    for name, step in steps.items():
        step()  # warm-up: allocator, caches, lazy initialisation
        t0 = time.perf_counter()
        step()
        once = time.perf_counter() - t0
        calls[name] = max(1, math.ceil(block / max(once, 1e-9)))
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            step, n = steps[name], calls[name]
            t0 = time.perf_counter()
            for _ in range(n):
                step()
            times[name].append((time.perf_counter() - t0) / n)
    return {name: statistics.median(t) for name, t in times.items()}


def run_setting(backbone: torch.nn.Module, canvas: int, scale1: int, crop: int,
                batch: int, rounds: int, block: float) -> dict[str, dict[str, float]]:
    """``{"forward": {thing: s}, "forward+backward": {thing: s}}`` for one setting."""
    g = torch.Generator().manual_seed(0)
    model = RACNN(10, 1, backbone=backbone, input_sizes=(scale1,))
    images = torch.rand(batch, 3, canvas, canvas, generator=g)
    boxes = BoxBounds().from_unit(torch.rand(batch, 3, generator=g))  # (B, 3) inside the image
    up_logits = torch.randn(batch, 1, 10, generator=g)  # upstream gradients
    up_crop = torch.randn(batch, 3, crop, crop, generator=g)
    grad_boxes = boxes.clone().requires_grad_()

    def scale1_forward() -> None:
        with torch.no_grad():
            model(images)

    def scale1_train() -> None:
        model.zero_grad(set_to_none=True)
        model(images).scale_logits.backward(up_logits)

    def crop_forward(method: str) -> Callable[[], None]:
        def step() -> None:
            with torch.no_grad():
                attention_crop(images, boxes, crop, method=method)
        return step

    def crop_train(method: str) -> Callable[[], None]:
        def step() -> None:
            grad_boxes.grad = None
            attention_crop(images, grad_boxes, crop, method=method).backward(up_crop)
        return step

    out = {}
    model.eval()
    out["forward"] = measure({"scale 1": scale1_forward,
                              **{f"crop {m}": crop_forward(m) for m in METHODS}}, rounds, block)
    model.train()
    out["forward+backward"] = measure({"scale 1": scale1_train,
                                       **{f"crop {m}": crop_train(m) for m in METHODS}},
                                      rounds, block)
    return out


def report(label: str, times: dict[str, dict[str, float]]) -> None:
    fwd, both = times["forward"], times["forward+backward"]
    for thing in fwd:
        row = f"{label:<38} {thing:<10} {fwd[thing] * 1e3:11.3f} {both[thing] * 1e3:15.3f}"
        if thing.startswith("crop"):
            s_f, s_b = fwd[thing] / fwd["scale 1"], both[thing] / both["scale 1"]
            verdict = "ok" if s_f <= BUDGET else "OVER"
            row += f" {100 * s_f:9.2f} % {100 * s_b:9.2f} %  {verdict}"
        print(row)
        label = ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="skip the VGG-19 setting (seconds per forward on a CPU)")
    parser.add_argument("--rounds", type=int, default=7,
                        help="timing rounds of the cpu setting (the median is reported)")
    parser.add_argument("--vgg-rounds", type=int, default=3,
                        help="timing rounds of the VGG-19 setting")
    parser.add_argument("--block", type=float, default=0.05,
                        help="the least seconds one thing runs per round")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          f"{os.cpu_count()} cpus visible, {torch.get_num_threads()} thread(s), "
          f"median of {args.rounds} rounds ({args.vgg_rounds} for VGG-19)")
    print(f"budget: the crop <= {100 * BUDGET:.0f} % of a scale-1 forward; "
          "the verdict reads the forward share\n")
    header = (f"{'setting':<38} {'thing':<10} {'forward ms':>11} {'fwd+bwd ms':>15} "
              f"{'share fwd':>11} {'share f+b':>11}")
    print(header)
    print("-" * (len(header) + 6))
    settings = []
    if not args.quick:
        settings.append(("paper: vgg19 448 px -> 224, B=2",
                         lambda: build_backbone("vgg19", weights=None), 448, 448, 224, 2,
                         args.vgg_rounds, 0.0))
    settings.append(("cpu: small_cnn(16) 64 -> 32/32, B=64",
                     lambda: build_backbone("small_cnn", width=16), 64, 32, 32, 64,
                     args.rounds, args.block))
    results = {}
    for label, make, canvas, scale1, crop, batch, rounds, block in settings:
        times = run_setting(make(), canvas, scale1, crop, batch, rounds, block)
        report(label, times)
        results[label] = times
    print("\nthe mask's cost relative to the grid's (mask / grid):")
    for label, times in results.items():
        ratios = [times[p]["crop mask"] / times[p]["crop grid"] for p in times]
        print(f"  {label:<38} forward {ratios[0]:5.2f}x, forward+backward {ratios[1]:5.2f}x")


if __name__ == "__main__":
    main()
