"""SARB's costs: the multi-label metrics at test-set scale, and a training step.

Two measurements, on the CPU:

* **Average precision.** :func:`hmglib.metrics.average_precision` (every class
  at once: one sort per class column, ties grouped) against scikit-learn's
  ``average_precision_score`` called once per class, on random scores with the
  shapes of the VOC 2007 test set (4,952 x 20) and the COCO 2014 validation set
  (40,504 x 80). Prints both times, their ratio and the largest difference.
* **A training step** (forward, partial BCE / SARB loss, backward, Adam) at the
  cpu profile's sizes (batch 32, the small CNN's last block on 16 x 16 maps,
  12 classes, D = 64, H = 16, pool) for the linear baseline, the SSGRL-style
  model, SARB without blending, and SARB with ILRB and PLRB switched on: the
  cost of the category features, and what the two blends add (each blended batch
  goes through the graph and the output layer again).

    .venv/bin/python benchmarks/bench_sarb.py [--quick] [--threads 1]

Times are the best of several repeats (``benchmarks/_timing.py``); run it on a
quiet machine.
"""

from __future__ import annotations

import argparse
import platform

import numpy as np
import torch
from _timing import timed
from sklearn.metrics import average_precision_score

from hmglib.losses import PartialBCELoss, SARBLoss
from hmglib.metrics import average_precision
from hmglib.models import build_backbone
from hmglib.models.sarb import SARB, LinearMultiLabel, compute_prototypes


def bench_ap(n: int, c: int, repeat: int) -> None:
    gen = torch.Generator().manual_seed(0)
    targets = (torch.rand(n, c, generator=gen) < 0.1).long()  # (N, C)
    scores = torch.rand(n, c, generator=gen) + targets * 0.3  # (N, C)
    ours = timed(lambda: average_precision(scores, targets), repeat)
    y, s = targets.numpy(), scores.numpy()
    ref = timed(lambda: [average_precision_score(y[:, k], s[:, k]) for k in range(c)], repeat)
    diff = np.max(np.abs(average_precision(scores, targets).numpy()
                         - 100 * np.array([average_precision_score(y[:, k], s[:, k])
                                           for k in range(c)])))
    print(f"AP  {n:>6} x {c:<3}  ours {ours * 1e3:8.1f} ms   scikit-learn per class "
          f"{ref * 1e3:8.1f} ms   ratio {ref / ours:5.1f}x   max |diff| {diff:.1e} points")


def _step(model: torch.nn.Module, loss: torch.nn.Module, x: torch.Tensor,
          y: torch.Tensor, opt: torch.optim.Optimizer) -> None:
    opt.zero_grad()
    loss(model(x, y), y).total.backward()
    opt.step()


def bench_step(repeat: int) -> None:
    torch.manual_seed(0)
    cnn = build_backbone("small_cnn", "DEFAULT")
    x = torch.rand(32, 32, 16, 16)  # (B, c, h, w): the frozen blocks' output at 64 px
    y = torch.randint(-1, 2, (32, 12))  # (B, C) partial labels
    emb = torch.eye(12)
    rows = {}
    for name in ("linear", "ssgrl", "sarb, no blend", "sarb, ILRB + PLRB"):
        last = torch.nn.Sequential(*list(cnn.features)[8:])
        last.out_channels = 64
        if name == "linear":
            model, loss = LinearMultiLabel(12, backbone=last), PartialBCELoss()
        else:
            blends = name.endswith("PLRB")
            model = SARB(12, backbone=last, embeddings=emb, adjacency=torch.rand(12, 12),
                         feature_dim=64, hidden=16, ilrb=blends, plrb=blends, num_prototypes=4)
            loss = PartialBCELoss() if name == "ssgrl" else SARBLoss()
            if blends:
                with torch.no_grad():
                    feats, _ = model.category_features(x)  # (B, C, D)
                model.set_prototypes(*compute_prototypes(feats, y, 4)).set_blending(True)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        _step(model, loss, x, y, opt)  # warm-up
        rows[name] = timed(lambda m=model, fn=loss, o=opt: _step(m, fn, x, y, o), repeat)
    base = rows["linear"]
    for name, sec in rows.items():
        print(f"step  {name:<18} {sec * 1e3:7.1f} ms   x{sec / base:4.1f} the linear baseline")
    extra = rows["sarb, ILRB + PLRB"] / rows["sarb, no blend"] - 1
    print(f"the two blends add {100 * extra:.0f} % to SARB's step")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="skip the COCO-sized AP")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s)")
    bench_ap(4952, 20, 5)
    if not args.quick:
        bench_ap(40504, 80, 3)
    bench_step(10)


if __name__ == "__main__":
    main()
