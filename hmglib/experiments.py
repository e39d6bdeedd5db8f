"""The book's hierarchical experiments on HierShapes, as small cached runs.

A :class:`HierRun` names everything one run depends on (method, relabel ratio,
loss variant, ablation switches, sizes, seed). :func:`run_hier` trains it with
:func:`hmglib.engine.fit`, evaluates it on the test split with
:func:`hmglib.metrics.hierarchical_report`, and caches the result as JSON,
keyed on the run *and on the source of hmglib*: a rebuild of the book with
nothing changed does not retrain, and any change to the library retrains.

Chapters 3 and 4 build their tables from these runs; :func:`profile_run` gives
the sizes of the current run profile.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

from hmglib import engine, losses, metrics, profile
from hmglib.data import CoarsenedDataset, HierShapes, coarsen_labels
from hmglib.models import HRN
from hmglib.models.backbones import SmallCNN
from hmglib.models.baselines import CHMCNN, FlatClassifier, PerLevelClassifier
from hmglib.recipes import HRNRecipe, hrn_optimizer

__all__ = ["HierRun", "profile_run", "run_hier", "cache_dir"]

METHODS = ("hrn", "flat", "per-level", "chmcnn")
HRN_LOSSES = ("composite", "hier", "ce")


@dataclass(frozen=True)
class HierRun:
    """One training run on HierShapes.

    Attributes:
        method: ``hrn``, ``flat``, ``per-level`` or ``chmcnn``.
        relabel: share of each species' training images relabelled to the family.
        rule: ``ordered`` (official) or ``random`` relabelling.
        degrade: downsample the relabelled images (HRN's image-quality protocol).
        loss: HRN only: ``composite`` (L_Hier + CE), ``hier`` (L_Hier only) or
            ``ce`` (the leaf cross-entropy only).
        energies: HRN only: ``sigmoid`` (the paper) or ``logits``.
        gsb, linear_combination, relu: HRN's ablation switches.
        bn_momentum: the blocks' BatchNorm momentum (0.1 here: the official 0.01 is
            made for 200 epochs, and its running statistics have not settled after
            the few hundred steps of a CPU run).
        epochs, samples_per_class, image_size, batch_size: sizes.
        optimizer, lr: ``adam`` (the CPU recipe) or ``sgd`` (momentum 0.9, weight
            decay 5e-4), one learning rate for every layer.
        width: channels of the small CNN's first layer (C = 4 x width).
        feature_dim: D, the per-level feature width.
        object_scale, clutter: the world (see :class:`~hmglib.data.HierShapes`).
        seed: seeds the world, the relabelling, the initialisation and the data order.
    """

    method: str = "hrn"
    relabel: float = 0.0
    rule: str = "ordered"
    degrade: bool = False
    loss: str = "composite"
    energies: str = "sigmoid"
    gsb: bool = True
    linear_combination: bool = True
    relu: bool = True
    bn_momentum: float = 0.1
    epochs: int = 10
    samples_per_class: int = 50
    image_size: int = 32
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 3e-3
    width: int = 16
    feature_dim: int = 64
    object_scale: float = 0.6
    clutter: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"HierRun: method '{self.method}' is not one of {METHODS}.")
        if self.loss not in HRN_LOSSES:
            raise ValueError(f"HierRun: loss '{self.loss}' is not one of {HRN_LOSSES}.")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"HierRun: optimizer '{self.optimizer}' is not 'adam' or 'sgd'.")
        if not 0.0 <= self.relabel <= 1.0:
            raise ValueError(f"HierRun: relabel={self.relabel} must be in [0, 1].")


def profile_run(**overrides) -> HierRun:
    """A :class:`HierRun` sized for the current profile, with ``overrides``."""
    sizes = {
        "quick": dict(epochs=1, samples_per_class=6, image_size=32, batch_size=16),
        "cpu": dict(epochs=10, samples_per_class=40, image_size=32, batch_size=32),
        "gpu": dict(epochs=30, samples_per_class=400, image_size=64, batch_size=128),
    }[profile.current().name]
    return HierRun(**{**sizes, **overrides})


@cache
def _source_digest() -> str:
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """Where run results are cached: ``$HMG_CACHE_DIR``, else ``_build/cache/experiments``
    next to the results records."""
    env = os.environ.get("HMG_CACHE_DIR", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    from hmglib.results import results_dir

    return results_dir().parent / "cache" / "experiments"


def _model(run: HierRun, tree) -> torch.nn.Module:
    backbone = SmallCNN(width=run.width)
    if run.method == "hrn":
        return HRN(tree, backbone=backbone, feature_dim=run.feature_dim, gsb=run.gsb,
                   linear_combination=run.linear_combination, relu=run.relu,
                   bn_momentum=run.bn_momentum)
    cls = {"flat": FlatClassifier, "per-level": PerLevelClassifier, "chmcnn": CHMCNN}
    return cls[run.method](tree, backbone=backbone, feature_dim=run.feature_dim,
                           bn_momentum=run.bn_momentum)


def _loss(run: HierRun, tree):
    if run.method == "hrn":
        hrn = losses.HRNLoss(tree, energies=run.energies)

        def loss(out, y):
            parts = hrn(out.node_logits, out.leaf_logits, y)
            if run.loss == "hier":
                return parts._replace(total=parts.hier)
            if run.loss == "ce":
                return parts._replace(total=parts.ce)
            return parts

        return loss
    if run.method == "flat":
        return lambda out, y: losses.leaf_cross_entropy(out.leaf_logits, y, tree)
    if run.method == "per-level":
        return lambda out, y: losses.per_level_cross_entropy(out.level_logits, y, tree)
    return lambda out, y: losses.max_constraint_loss(out.node_logits, y, tree)


def run_hier(run: HierRun, use_cache: bool = True) -> dict:
    """Train and test one run (or read it from the cache).

    Returns:
        A dict with keys ``run`` (the run's fields), ``test`` (the
        :func:`~hmglib.metrics.hierarchical_report` on HierShapes' test split,
        never used for selection: the last epoch is evaluated), ``history``,
        ``seconds`` and ``cached``.
    """
    key = hashlib.sha256(json.dumps({"run": dataclasses.asdict(run), "src": _source_digest()},
                                    sort_keys=True).encode()).hexdigest()[:20]
    path = cache_dir() / f"{key}.json"
    if use_cache and path.is_file():
        return {**json.loads(path.read_text()), "cached": True}
    t0 = time.perf_counter()
    world = dict(image_size=run.image_size, object_scale=run.object_scale, clutter=run.clutter,
                 seed=run.seed)
    train = HierShapes("train", samples_per_class=run.samples_per_class, **world)
    test = HierShapes("test", samples_per_class=max(4, run.samples_per_class // 2), **world)
    tree = train.tree
    targets = coarsen_labels(train.targets, tree, run.relabel, rule=run.rule, seed=run.seed)
    train = CoarsenedDataset(train, targets, tree, degrade=run.degrade)
    engine.seed_everything(run.seed)
    model = _model(run, tree)
    decay = 5e-4 if run.optimizer == "sgd" else 0.0
    recipe = HRNRecipe(run.optimizer, run.lr, run.lr, 0.9, decay, run.batch_size, run.epochs)
    opt, sched = hrn_optimizer(model, recipe)
    fitted = engine.fit(model, _loss(run, tree), train, epochs=run.epochs, optimizer=opt,
                        scheduler=sched, batch_size=run.batch_size, seed=run.seed,
                        progress=False)
    out, y = engine.predict(model, test)
    report = metrics.hierarchical_report(out, y, tree, energies=run.energies)
    result = {"run": dataclasses.asdict(run), "test": report, "history": fitted.history,
              "seconds": time.perf_counter() - t0}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    return {**result, "cached": False}
