"""Pretraining of the small CPU backbone: the book's analog of ImageNet weights.

The papers of the book fine-tune backbones pretrained on ImageNet, whose classes
are not the ones they are evaluated on, but whose features know colours,
textures and parts of every kind. The CPU analog: a
:class:`~hmglib.models.backbones.SmallCNN` trained to tell apart the 108 species of
the ``"pretraining"`` :class:`~hmglib.data.synthetic.hier_shapes.HierShapes` world: the three
silhouettes the book never uses (rectangle, plus, hexagon) in all six colours
with all six markings. No class, and no order, is one of the book's (every
book class has an ellipse, triangle or diamond body), while colours and
markings, the low-level cues, are shared, as ImageNet shares them with birds.
The world is rendered exactly as the book's (:data:`PRETRAIN_WORLD`).

Why not disjoint colours and markings too (``cues="pretraining-disjoint"``, 27
classes)? Measured on HierShapes (one seed, flat classifier, 6 epochs): those
features transferred poorly (61.5 % species OA with every label, 14.4 % with 4
labelled images per species, against 90.9 % and 59.1 % with these), because
the small CNN had never had to tell red from green or a ring from a spot.

The recipe: ``SmallCNN(width=16)`` + global average pool + ``Linear(64, 108)``,
cross-entropy over all 108 species, :data:`SAMPLES_PER_CLASS` images per species,
:data:`EPOCHS` epochs of Adam (lr :data:`LR` annealed to 0 along a cosine, one
step per epoch; batch :data:`BATCH_SIZE`), trained with :func:`hmglib.engine.fit`
on the cpu; the species accuracy is measured on the held-out ``"test"`` split.
Only the backbone is kept. (At a constant learning rate the held-out accuracy
swings by a few points from epoch to epoch; the annealing lets it settle.)

The run is exactly reproducible: one thread, every generator seeded,
deterministic algorithms, and the state dict is serialised in memory (so the
archive does not carry the file's name) in the module's fixed order; re-running
with the same seed and the same PyTorch re-creates a file with the same sha256.

Run it as::

    python -m hmglib.pretraining            # writes into hmglib/models/weights/
    python -m hmglib.pretraining --out DIR  # elsewhere
    python -m hmglib.pretraining --quick    # a few seconds, for tests

It writes :data:`~hmglib.models.backbones.SMALL_CNN_WEIGHTS_FILE` (the state dict
of the backbone, float32) and the JSON of the same stem beside it, which
:class:`~hmglib.models.backbones.SmallCNN_Weights` reads as its ``meta``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from hmglib import atomic
from hmglib.data import HierShapes
from hmglib.engine import fit, predict, seed_everything
from hmglib.models.backbones import SMALL_CNN_WEIGHTS_FILE, SmallCNN

__all__ = [
    "PRETRAIN_WORLD",
    "CUES",
    "WIDTH",
    "SAMPLES_PER_CLASS",
    "TEST_SAMPLES_PER_CLASS",
    "EPOCHS",
    "LR",
    "BATCH_SIZE",
    "SEED",
    "QUICK",
    "META_FILE",
    "PretrainResult",
    "pretrain",
    "save_weights",
    "main",
]

#: The rendering parameters of the pretraining world, the same as the book world's
#: (every number of the weights' metadata derives from these).
PRETRAIN_WORLD: dict[str, Any] = dict(image_size=32, object_scale=0.6, clutter=2,
                                      branching=[3, 6, 6])
#: The cue set of the pretraining world (see :data:`hmglib.data.synthetic.hier_shapes.CUE_SETS`).
CUES = "pretraining"
#: Channels of the first block of the :class:`~hmglib.models.backbones.SmallCNN` (its features
#: have ``4 * WIDTH``).
WIDTH = 16
#: Training images per species (108 species).
SAMPLES_PER_CLASS = 100
#: Held-out (``"test"`` split) images per species for the reported accuracy.
TEST_SAMPLES_PER_CLASS = 100
#: Epochs of training.
EPOCHS = 12
#: Adam's initial learning rate (cosine-annealed to 0 over the epochs).
LR = 3e-3
#: Images per batch.
BATCH_SIZE = 64
#: The seed of the world, of the initialisation and of the data order.
SEED = 0
#: The short form (``--quick``), a few seconds for tests; not a usable backbone.
QUICK: dict[str, int] = dict(samples_per_class=4, test_samples_per_class=2, epochs=1,
                             batch_size=32)
#: The metadata JSON written beside the weights: the same stem, ``.json`` (the name
#: :class:`~hmglib.models.backbones.SmallCNN_Weights` reads its ``meta`` from).
META_FILE = Path(SMALL_CNN_WEIGHTS_FILE).with_suffix(".json").name
#: Where the shipped weights live: ``hmglib/models/weights/``.
DEFAULT_OUT = Path(__file__).resolve().parent / "models" / "weights"


@dataclass
class PretrainResult:
    """What :func:`pretrain` returns.

    Attributes:
        backbone: the trained :class:`~hmglib.models.backbones.SmallCNN`
            ``(B, 3, H, W)`` → ``(B, 4 * width, H/8, W/8)``, in eval mode, on the cpu.
        accuracy: held-out species accuracy in % (``0..100``).
        seconds: wall-clock seconds of rendering, training and evaluation.
        meta: the metadata of the weights (everything but the file's ``sha256``
            and size, which :func:`save_weights` adds).
    """

    backbone: SmallCNN
    accuracy: float
    seconds: float
    meta: dict[str, Any]


def _render(split: str, samples_per_class: int, seed: int) -> tuple[TensorDataset, HierShapes]:
    """The pretraining world's ``split`` as tensors: images ``(N, 3, S, S)`` float32 in
    ``[0, 1]`` and species indices ``(N,)`` int64 in ``0..107``."""
    world = HierShapes(split, samples_per_class=samples_per_class, cues=CUES, seed=seed,
                       **PRETRAIN_WORLD)
    images = torch.stack([world[i][0] for i in range(len(world))])  # (N, 3, S, S)
    species = world.tree.to_level_index(world.targets)  # (N,) in 0..107
    return TensorDataset(images, species), world


def _classifier(width: int, num_classes: int) -> nn.Sequential:
    """``SmallCNN(width)`` + global average pool + linear head:
    ``(B, 3, S, S)`` → ``(B, num_classes)`` logits."""
    backbone = SmallCNN(width=width)
    return nn.Sequential(backbone, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(backbone.out_channels, num_classes))


def pretrain(
    *,
    samples_per_class: int = SAMPLES_PER_CLASS,
    test_samples_per_class: int = TEST_SAMPLES_PER_CLASS,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    lr: float = LR,
    width: int = WIDTH,
    seed: int = SEED,
) -> PretrainResult:
    """Train the backbone on the pretraining world and measure it on held-out images.

    Runs on the cpu with one thread and deterministic algorithms (both restored
    afterwards), so the same arguments give bit-identical weights.

    Args:
        samples_per_class: training images per species (``>= 1``).
        test_samples_per_class: held-out images per species (``>= 1``).
        epochs: epochs of training (``>= 1``).
        batch_size: images per batch (``<= 108 * samples_per_class``).
        lr: Adam's initial learning rate (``> 0``), cosine-annealed to 0.
        width: the :class:`~hmglib.models.backbones.SmallCNN` width (its features have
            ``4 * width`` channels).
        seed: the world's seed, the initialisation's and the data order's (``>= 0``).

    Returns:
        :class:`PretrainResult` with the backbone, the accuracy (%) and the metadata.
    """
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        t0 = time.perf_counter()
        train, world = _render("train", samples_per_class, seed)
        test, _ = _render("test", test_samples_per_class, seed)
        categories = [world.tree.names[n] for n in world.tree.leaves]
        seed_everything(seed)
        model = _classifier(width, len(categories))
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        fit(model, nn.CrossEntropyLoss(), train, epochs=epochs, optimizer=optimizer,
            scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs),
            batch_size=batch_size, seed=seed, device="cpu", progress=False)
        logits, species = predict(model, test, device="cpu")  # (N, 108), (N,)
        accuracy = 100.0 * float((logits.argmax(1) == species).float().mean())
        seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    backbone: SmallCNN = model[0].eval()
    meta = {
        "data": {
            "world": "HierShapes",
            "cues": CUES,
            **PRETRAIN_WORLD,
            "branching": list(world.branching),
            "samples_per_class": samples_per_class,
            "seed": seed,
            "train_split": "train",
            "eval_split": "test",
            "eval_samples_per_class": test_samples_per_class,
        },
        "categories": categories,
        "width": width,
        "out_channels": backbone.out_channels,
        "epochs": epochs,
        "accuracy": round(accuracy, 2),
        "num_params": sum(p.numel() for p in backbone.parameters()),
        "min_size": [8, 8],
        "recipe": {
            "model": f"SmallCNN(width={width}) + global average pool + "
                     f"Linear({backbone.out_channels}, {len(categories)}); the head is dropped",
            "loss": f"cross-entropy over the {len(categories)} species",
            "optimizer": "Adam",
            "lr": lr,
            "lr_schedule": "cosine annealing to 0 over the epochs, stepped once per epoch",
            "batch_size": batch_size,
            "epochs": epochs,
            "seed": seed,
            "device": "cpu, 1 thread, deterministic algorithms",
            "trainer": "hmglib.engine.fit",
            "command": "python -m hmglib.pretraining",
            "torch": torch.__version__,
        },
        "seconds": round(seconds, 1),
        "_docs": "SmallCNN pretrained on the 'pretraining' HierShapes world, whose species "
                 "have bodies none of the book's classes has (colours and markings are "
                 "shared); the accuracy is the species accuracy on its held-out test split.",
    }
    return PretrainResult(backbone, accuracy, seconds, meta)


def _state_bytes(backbone: nn.Module) -> bytes:
    """The backbone's state dict serialised by ``torch.save`` into memory: cpu tensors
    (floating ones float32), each in a storage of its own, in the module's order.
    In memory, the archive's inner folder is always ``archive/`` (written to a path,
    ``torch.save`` names it after the file), so equal tensors give equal bytes."""
    source = backbone.state_dict()
    state: OrderedDict[str, torch.Tensor] = OrderedDict(
        (k, (v.detach().to("cpu", torch.float32) if v.is_floating_point() else v.detach().cpu())
         .contiguous().clone())
        for k, v in source.items())
    state._metadata = source._metadata  # type: ignore[attr-defined] - modules' versions
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def save_weights(result: PretrainResult, out: str | Path | None = None,
                 quick: bool = False) -> tuple[Path, dict[str, Any]]:
    """Write the backbone's state dict and its metadata JSON (with the file's sha256).

    Args:
        result: what :func:`pretrain` returned.
        out: the folder (created if missing) for the file
            :data:`~hmglib.models.backbones.SMALL_CNN_WEIGHTS_FILE` and its JSON;
            default the package's ``hmglib/models/weights/``, where
            :class:`~hmglib.models.backbones.SmallCNN_Weights` reads them.
        quick: mark the metadata as a short run (``"quick": true``).

    Returns:
        ``(path of the weight file, the metadata written)``.
    """
    out = DEFAULT_OUT if out is None else Path(out)
    data = _state_bytes(result.backbone)
    meta = {"file": SMALL_CNN_WEIGHTS_FILE, "sha256": hashlib.sha256(data).hexdigest(),
            "file_size": len(data), **result.meta}
    if quick:
        meta["quick"] = True
    path = atomic.write_bytes(out / SMALL_CNN_WEIGHTS_FILE, data)
    atomic.write_json(out / META_FILE, meta, indent=1)
    return path, meta


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hmglib.pretraining [--out DIR] [--quick] [--seed N]``: pretrain,
    print the accuracy and seconds, write the weights and their JSON. Returns 0."""
    parser = argparse.ArgumentParser(
        prog="python -m hmglib.pretraining",
        description="Pretrain the small CPU backbone on the 'pretraining' HierShapes world "
                    "and write its weights and their metadata.")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default: the package's, {DEFAULT_OUT})")
    parser.add_argument("--quick", action="store_true",
                        help="a short run of a few seconds (for tests; not a usable backbone)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"seed (default {SEED})")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}.")
    result = pretrain(seed=args.seed, **(QUICK if args.quick else {}))
    path, meta = save_weights(result, args.out, quick=args.quick)
    print(f"held-out species accuracy {result.accuracy:.2f} % in {result.seconds:.1f} s; "
          f"wrote {path} ({meta['file_size']} bytes, sha256 {meta['sha256']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
