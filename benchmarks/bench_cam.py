"""The cost of a class activation map, and of the adapter around the package.

On the CPU, for an HRN at the cpu profile's Grad-CAM sizes (the small CNN of
width 16 on 64-px HierShapes canvases, D = 64) and, with ``--resnet``, a
ResNet-50 HRN at 224 px (random weights: the cost, not the map, is measured):

* **per method** (Grad-CAM, Grad-CAM++, Score-CAM): milliseconds per map of one
  level, batch 32, and the ratio to a plain forward of the batch (Score-CAM runs
  one forward per channel of the target layer);
* **the adapter**: :func:`hmglib.cam.level_cam` against the package called
  directly with the same wrapped model and targets (the checks, the mode and
  gradient bookkeeping and the hook release), and
  :func:`hmglib.cam.hand_grad_cam` (two hooks, no package);
* **the scores**: :func:`~hmglib.cam.pointing_game` and
  :func:`~hmglib.cam.energy_in_box` on 10,000 maps of 64 x 64.

    .venv/bin/python benchmarks/bench_cam.py [--threads 1] [--resnet]

Times are the best of several repeats (``benchmarks/_timing.py``); run it on a
quiet machine.
"""

from __future__ import annotations

import argparse
import platform

import torch
from _timing import timed
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from hmglib import cam
from hmglib.data import hier_shapes_tree
from hmglib.models import build_backbone, get_model


def _model(backbone: str, side: int) -> tuple[torch.nn.Module, torch.Tensor]:
    tree = hier_shapes_tree()
    if backbone == "small_cnn":
        net = build_backbone("small_cnn", weights="DEFAULT", width=16)
        model = get_model("hrn", tree, backbone=net, feature_dim=64)
    else:
        model = get_model("hrn", tree, backbone="resnet50", weights=None)
    images = torch.rand(32, 3, side, side, generator=torch.Generator().manual_seed(0))
    return model.eval(), images


def bench_methods(backbone: str, side: int, repeat: int) -> None:
    model, x = _model(backbone, side)
    with torch.no_grad():
        forward = timed(lambda: model(x), repeat)
    classes = torch.zeros(len(x), dtype=torch.long)
    print(f"{backbone} HRN at {side} px, batch {len(x)}: forward {forward * 1e3:.1f} ms")
    for method in cam.METHODS:
        t = timed(lambda m=method: cam.level_cam(model, x, "species", classes, m),
                  1 if method == "scorecam" else repeat)
        print(f"  {method:<10} {t / len(x) * 1e3:8.2f} ms per map   {t / forward:7.1f}x a "
              "forward of the batch")
    net = cam.LevelLogits(model, "species")
    layer = model.blocks[-1].conv
    targets = [ClassifierOutputTarget(0) for _ in range(len(x))]

    def package() -> None:
        grad = GradCAM(model=net, target_layers=[layer])
        try:
            grad(x.clone().requires_grad_(True), targets)
        finally:
            grad.activations_and_grads.release()

    direct = timed(package, repeat)
    ours = timed(lambda: cam.level_cam(model, x, "species", classes), repeat)
    hand = timed(lambda: cam.hand_grad_cam(net, x, layer, classes), repeat)
    diff = float((cam.hand_grad_cam(net, x, layer, classes)
                  - cam.level_cam(model, x, "species", classes)).abs().max())
    print(f"  adapter: level_cam {ours * 1e3:.1f} ms, package called directly "
          f"{direct * 1e3:.1f} ms (overhead {ours / direct - 1:+.0%}); by hand "
          f"{hand * 1e3:.1f} ms, max |hand - package| {diff:.1e}")


def bench_scores(repeat: int) -> None:
    gen = torch.Generator().manual_seed(0)
    maps = torch.rand(10_000, 64, 64, generator=gen)  # (N, 64, 64)
    corner = torch.rand(10_000, 2, generator=gen) * 40  # (N, 2)
    boxes = torch.cat([corner, corner + 20], 1)  # (N, 4)
    point = timed(lambda: cam.pointing_game(maps, boxes), repeat)
    energy = timed(lambda: cam.energy_in_box(maps, boxes), repeat)
    print(f"scores on 10,000 maps of 64 x 64: pointing game {point * 1e3:.1f} ms, "
          f"energy in box {energy * 1e3:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--resnet", action="store_true", help="also ResNet-50 at 224 px")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s)")
    bench_methods("small_cnn", 64, args.repeat)
    if args.resnet:
        bench_methods("resnet50", 224, 1)
    bench_scores(args.repeat)


if __name__ == "__main__":
    main()
