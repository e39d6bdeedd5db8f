"""The book's hierarchical experiments on HierShapes: seeded, cached, parallel runs.

A :class:`HierRun` names everything one run depends on (method, relabel ratio,
loss variant, ablation switches, recipe, pretrained weights, sizes, seed).
:func:`run_hier` trains it with :func:`hmglib.engine.fit`, evaluates it on the
test split with :func:`hmglib.metrics.hierarchical_report` (and, when labels
were coarsened, on the relabelled training images with their full labels), and
caches the result as JSON. :func:`run_many` runs a sweep: cached runs are read
back, the others train in parallel worker processes (one per core, one thread
each).

The cache key is the run *and the code of what a run executes* (its syntax,
without docstrings and comments): the modules
of :data:`RUN_DEPENDENCIES`, the shipped pretrained weights, the functions of
this module that build and train a run, and the version of PyTorch. A rebuild
with nothing changed does not retrain; an edit to a figure, a chapter or this
module's sweep helpers does not retrain either; an edit to a loss, a model, the
world or the engine does.

Chapters 3 and 4 build their tables from these runs; :func:`profile_run` gives
the sizes of the current run profile and :func:`profile_seeds` its seeds. The
RA-CNN runs of chapter 5 (:class:`ZoomRun`) and the SARB runs of chapter 6
(:class:`BlendRun`) are cached alike.

Every training run also caches its trained weights beside its result
(:func:`model_path`); :func:`trained_model` reads the network back (training it
first when it is missing). A :class:`CamRun` (chapter 7) explains one trained
network with class activation maps (:mod:`hmglib.cam`) on its first test images
and scores them against the worlds' ground-truth boxes; its cache key holds the
key of the run it explains and the code of :mod:`hmglib.cam`.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import hashlib
import inspect
import json
import os
import random
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from hmglib import alternation, atomic, blending, cam, engine, metrics, profile
from hmglib.checks import check_int
from hmglib.data import (
    CoarsenedDataset,
    HierShapes,
    MultiShapes,
    coarsen_labels,
    drop_labels,
    empirical_cooccurrence,
    hier_shapes_tree,
)
from hmglib.data.boxes import pad_boxes
from hmglib.data.embeddings import onehot_word_embeddings
from hmglib.hierarchy import LabelTree
from hmglib.losses import get_loss
from hmglib.models import SmallCNN, build_backbone, get_model, list_models, model_loss
from hmglib.models.racnn import attention_crop, square_around
from hmglib.probability import ENERGY_FNS
from hmglib.recipes import (
    HRN_RECIPES,
    RACNN_RECIPES,
    SARB_RECIPES,
    hrn_optimizer,
    hrn_recipe_name,
)

__all__ = ["HierRun", "ZoomRun", "ZOOM_METHODS", "BlendRun", "BLEND_METHODS", "profile_run",
           "profile_zoom", "profile_blend", "profile_seeds", "run_hier", "run_zoom", "run_blend",
           "run_many", "run_key", "blend_model", "blend_sweep", "CamRun", "CAM_FAMILIES",
           "profile_cams", "run_cam", "cam_subjects", "cam_frame", "trained_model", "model_path",
           "cache_dir", "results_frame", "gradient_norms", "RUN_DEPENDENCIES", "PROFILE_SIZES",
           "PROFILE_SEEDS", "HRN_LOSSES"]

#: The loss variants of an HRN run (:attr:`HierRun.loss`).
HRN_LOSSES = ("composite", "hier", "ce", "per-level")

#: The modules whose source a run executes (their files key the cache).
RUN_DEPENDENCIES: tuple[str, ...] = (
    "hmglib.hierarchy", "hmglib.precision", "hmglib.probability", "hmglib.losses",
    "hmglib.metrics", "hmglib.engine", "hmglib.recipes", "hmglib.models.backbones",
    "hmglib.models.hrn", "hmglib.models.baselines", "hmglib.models.registry",
    "hmglib.checks", "hmglib.data.protocols", "hmglib.data.synthetic.render",
    "hmglib.data.synthetic.hier_shapes", "hmglib.models.racnn", "hmglib.alternation",
    "hmglib.data.synthetic.multi_shapes", "hmglib.data.embeddings", "hmglib.models.sarb",
    "hmglib.blending",
)


@dataclass(frozen=True)
class HierRun:
    """One training run on HierShapes.

    Attributes:
        method: a hierarchical model of :func:`~hmglib.models.registry.list_models`:
            ``hrn``, ``flat``, ``per-level`` or ``chmcnn``.
        relabel: share of each species' training images relabelled to the family.
        rule: ``ordered`` (official) or ``random`` relabelling.
        degrade: downsample the relabelled images (HRN's image-quality protocol).
        loss: HRN only: ``composite`` (L_Hier + CE, the paper), ``hier`` (L_Hier
            only), ``ce`` (the leaf cross-entropy only) or ``per-level`` (a
            traditional hierarchical loss: a cross-entropy per level, each on the
            samples labelled at or below it; the species level on the softmax head).
        energy_fn: HRN only: how node logits become energies, ``sigmoid`` (the
            paper) or ``identity`` (the logits themselves).
        ce_reduction: HRN only: ``labelled`` (the paper: the CE is a mean over the
            leaf-labelled samples) or ``batch`` (not in the paper: their sum over
            the batch size); see :class:`~hmglib.losses.HRNLoss`.
        gsb, linear_combination, relu: HRN's ablation switches.
        bn_momentum: the blocks' BatchNorm momentum (0.1 here: the official 0.01 is
            made for 200 epochs, and its running statistics have not settled after
            the few hundred steps of a CPU run).
        recipe: a name in :data:`hmglib.recipes.HRN_RECIPES`, or ``"auto"``: the
            CPU analog of the official choice (``synthetic-90`` at 90 % relabelled,
            else ``synthetic``) for pretrained weights, ``synthetic-scratch`` without.
        weights: the small CNN's pretrained weights (``"DEFAULT"``, see
            :class:`~hmglib.models.backbones.SmallCNN_Weights`), or ``None`` to
            train from scratch.
        epochs, samples_per_class, image_size, batch_size: sizes.
        width: channels of the small CNN's first layer (C = 4 x width); must match
            the pretrained weights.
        feature_dim: D, the per-level feature width.
        object_scale, clutter: the world (see
            :class:`~hmglib.data.synthetic.hier_shapes.HierShapes`).
        seed: seeds the world, the relabelling, the new layers' initialisation and
            the data order; runs of different methods with one seed see the same
            images, so their difference is paired.
    """

    method: str = "hrn"
    relabel: float = 0.0
    rule: str = "ordered"
    degrade: bool = False
    loss: str = "composite"
    energy_fn: str = "sigmoid"
    ce_reduction: str = "labelled"
    gsb: bool = True
    linear_combination: bool = True
    relu: bool = True
    bn_momentum: float = 0.1
    recipe: str = "auto"
    weights: str | None = "DEFAULT"
    epochs: int = 5
    samples_per_class: int = 30
    image_size: int = 32
    batch_size: int = 32
    width: int = 16
    feature_dim: int = 64
    object_scale: float = 0.6
    clutter: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        methods = list_models(hierarchical=True)
        if self.method not in methods:
            raise ValueError(f"HierRun: method '{self.method}' is not one of {methods}.")
        if self.energy_fn not in ENERGY_FNS:
            raise ValueError(f"HierRun: energy_fn '{self.energy_fn}' is not one of "
                             f"{list(ENERGY_FNS)}.")
        if self.loss not in HRN_LOSSES:
            raise ValueError(f"HierRun: loss '{self.loss}' is not one of {HRN_LOSSES}.")
        if self.recipe != "auto" and self.recipe not in HRN_RECIPES:
            raise ValueError(f"HierRun: recipe '{self.recipe}' is not 'auto' or one of "
                             f"{sorted(HRN_RECIPES)}.")
        if not 0.0 <= self.relabel <= 1.0:
            raise ValueError(f"HierRun: relabel={self.relabel} must be in [0, 1].")

    @property
    def recipe_name(self) -> str:
        """The recipe this run trains with (``"auto"`` resolved)."""
        if self.recipe != "auto":
            return self.recipe
        if self.weights is None:
            return "synthetic-scratch"
        return hrn_recipe_name(self.relabel, "hiershapes", synthetic=True)


#: The sizes of a run in each profile, read from :attr:`hmglib.profile.Profile.run`
#: (the one place that defines them; :func:`profile_run` starts from them).
PROFILE_SIZES: dict[str, dict[str, int]] = {
    name: dataclasses.asdict(prof.run) for name, prof in profile.PROFILES.items()}
#: The seeds every claim runs over, in each profile, read from
#: :attr:`hmglib.profile.Profile.seeds` (:func:`profile_seeds`).
PROFILE_SEEDS: dict[str, tuple[int, ...]] = {
    name: prof.seeds for name, prof in profile.PROFILES.items()}


def profile_run(**overrides) -> HierRun:
    """A :class:`HierRun` sized for the current profile
    (:attr:`hmglib.profile.Profile.run` of :func:`hmglib.profile.current`), with
    ``overrides``."""
    return HierRun(**{**dataclasses.asdict(profile.current().run), **overrides})


def profile_seeds() -> tuple[int, ...]:
    """The seeds every claim of the current profile runs over
    (:attr:`hmglib.profile.Profile.seeds`: at least 3 in the cpu and gpu
    profiles; 2 in the quick profile, which only tests the code)."""
    return profile.current().seeds


#: The methods of a :class:`ZoomRun`: RA-CNN with its full schedule, RA-CNN
#: whose APNs never train on the ranking loss (fixed after their
#: initialisation), and two single-scale references on a fixed crop.
ZOOM_METHODS = ("racnn", "racnn-no-rank", "centre", "oracle")


@dataclass(frozen=True)
class ZoomRun:
    """One RA-CNN run (or one of its references) on small objects in clutter.

    Attributes:
        method: one of :data:`ZOOM_METHODS`: ``"racnn"`` (the paper's schedule,
            :func:`hmglib.alternation.fit_racnn`), ``"racnn-no-rank"`` (the same
            with the ranking phases removed: the control that tells what the
            ranking loss adds), ``"centre"`` (one network on the centre square of
            half the canvas's side) and ``"oracle"`` (one network on the square
            around the true object box: the crop a perfect APN would choose).
            The "whole image" reference is RA-CNN's own scale 1: a network that
            only ever sees the whole canvas and learns from its own loss only.
        crop: ``"grid"`` or ``"mask"`` (:func:`~hmglib.models.racnn.attention_crop`).
        recipe: a name in :data:`~hmglib.recipes.RACNN_RECIPES`.
        apn_lr: the APNs' rate in the ranking phases, or ``None`` for the
            recipe's (a larger one shows what an unstable ranking phase does).
        canvas, input_sizes, samples_per_class, scale_epochs, cls_epochs,
            apn_epochs, rounds, apn_hidden: sizes (:class:`~hmglib.profile.ZoomSizes`);
            the references train ``scale_epochs + rounds * cls_epochs`` epochs, as
            RA-CNN's scale 1 does.
        object_scale, clutter: the world (small objects in clutter).
        width: the small CNN's width (16, its pretrained weights').
        weights: the small CNN's weights, or ``None`` for a random start.
        seed: seeds the world, the initialisation and the data order.
    """

    method: str = "racnn"
    crop: str = "grid"
    recipe: str = "synthetic"
    apn_lr: float | None = None
    canvas: int = 64
    input_sizes: tuple[int, int, int] = (32, 32, 32)
    samples_per_class: int = 40
    scale_epochs: int = 4
    cls_epochs: int = 3
    apn_epochs: int = 2
    rounds: int = 2
    apn_hidden: int = 128
    object_scale: float = 0.3
    clutter: int = 2
    width: int = 16
    weights: str | None = "DEFAULT"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ZOOM_METHODS:
            raise ValueError(f"ZoomRun: method '{self.method}' is not one of {ZOOM_METHODS}.")
        if self.recipe not in RACNN_RECIPES:
            raise ValueError(f"ZoomRun: recipe '{self.recipe}' is not one of "
                             f"{sorted(RACNN_RECIPES)}.")
        object.__setattr__(self, "input_sizes", tuple(self.input_sizes))


def profile_zoom(**overrides) -> ZoomRun:
    """A :class:`ZoomRun` sized for the current profile
    (:attr:`hmglib.profile.Profile.zoom`), with ``overrides``."""
    return ZoomRun(**{**dataclasses.asdict(profile.current().zoom), **overrides})


#: The methods of a :class:`BlendRun`: SARB with both blends, with ILRB or PLRB
#: alone, SARB's loss without any blend (the control that separates the blends
#: from the contrastive term), the SSGRL-style baseline (the same CSRL and graph,
#: no blend, the partial BCE only), the linear baseline with the partial BCE, and
#: the linear baseline that calls every unknown label negative.
BLEND_METHODS = ("sarb", "ilrb", "plrb", "sarb-no-blend", "ssgrl", "linear",
                 "linear-negative")


@dataclass(frozen=True)
class BlendRun:
    """One multi-label run with partial labels on MultiShapes.

    The small CNN pretrained on the synthetic pretraining world is the backbone;
    its first ``frozen`` layers stay fixed (the paper freezes ResNet-101 up to
    layer3), so their output is computed once per run and the run trains the
    rest: the last block and the method's head. With no augmentation in the
    synthetic recipe this is the same as running the frozen layers every step.

    Attributes:
        method: one of :data:`BLEND_METHODS`.
        known: the share of training labels kept (each entry independently,
            :func:`~hmglib.data.drop_labels`); 1.0 is the fully labelled reference.
        recipe: a name in :data:`~hmglib.recipes.SARB_RECIPES`.
        num_images, test_images: MultiShapes training and test images (the test
            labels are complete).
        image_size, num_classes, group_size, cohesion: the world.
        epochs, blend_start, prototype_every, num_prototypes: the schedule.
        feature_dim, hidden: SARB's ``D`` and attention width ``H``.
        embeddings: ``"words"`` (fixed one-hot word embeddings of the class names:
            :func:`~hmglib.data.embeddings.onehot_word_embeddings`) or ``"learned"``.
        frozen: leading layers of the small CNN kept fixed (8: its first two
            blocks, each conv, BatchNorm, ReLU, pool).
        width, weights: the small CNN's width and weights (``None``: random).
        seed: seeds the world, the hidden labels, the initialisation and the
            data order.
    """

    method: str = "sarb"
    known: float = 0.1
    recipe: str = "synthetic"
    num_images: int = 384
    test_images: int = 400
    image_size: int = 64
    num_classes: int = 12
    group_size: int = 3
    cohesion: float = 0.8
    epochs: int = 12
    blend_start: int = 3
    prototype_every: int = 3
    num_prototypes: int = 4
    feature_dim: int = 64
    hidden: int = 16
    embeddings: str = "words"
    frozen: int = 8
    width: int = 16
    weights: str | None = "DEFAULT"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in BLEND_METHODS:
            raise ValueError(f"BlendRun: method '{self.method}' is not one of {BLEND_METHODS}.")
        if self.recipe not in SARB_RECIPES:
            raise ValueError(f"BlendRun: recipe '{self.recipe}' is not one of "
                             f"{sorted(SARB_RECIPES)}.")
        if self.embeddings not in ("words", "learned"):
            raise ValueError(f"BlendRun: embeddings '{self.embeddings}' must be 'words' or "
                             "'learned'.")
        if not 0.0 < float(self.known) <= 1.0:
            raise ValueError(f"BlendRun: known={self.known} must be in (0, 1].")


def profile_blend(**overrides) -> BlendRun:
    """A :class:`BlendRun` sized for the current profile
    (:attr:`hmglib.profile.Profile.blend`, without its ``known`` shares), with
    ``overrides``."""
    sizes = dataclasses.asdict(profile.current().blend)
    sizes.pop("known")
    return BlendRun(**{**sizes, **overrides})


def blend_sweep(known: Sequence[float] | None = None,
                seeds: Sequence[int] | None = None) -> list[BlendRun]:
    """The representation-blending chapter's runs, sized for the current profile.

    For every seed: SARB, the SSGRL-style and the linear baseline, and the linear
    baseline with unknowns called negative, at every known share; the SSGRL-style
    and linear baselines with every label known (1.0); and at the smallest known
    share the ablations ILRB only, PLRB only and no blend. Seed-major, so parallel
    workers share each seed's frozen inputs.

    Args:
        known: the known shares (default: the profile's :attr:`BlendSizes.known`).
        seeds: default :func:`profile_seeds`.
    """
    known = tuple(profile.current().blend.known if known is None else known)
    runs = []
    for seed in (profile_seeds() if seeds is None else seeds):
        for share in known:
            runs += [profile_blend(method=m, known=share, seed=seed)
                     for m in ("sarb", "ssgrl", "linear", "linear-negative")]
        runs += [profile_blend(method=m, known=1.0, seed=seed) for m in ("ssgrl", "linear")]
        runs += [profile_blend(method=m, known=min(known), seed=seed)
                 for m in ("ilrb", "plrb", "sarb-no-blend")]
    return runs


# ------------------------------------------------------------------ the cache
def _dependency_files() -> list[Path]:
    files = [Path(inspect.getfile(import_module(name))) for name in RUN_DEPENDENCIES]
    weights = Path(inspect.getfile(SmallCNN)).parent / "weights"
    return files + sorted(weights.glob("*.pt"))  # the tensors; their JSON only describes them


def _code_of(source: str) -> str:
    """What Python executes of ``source``: its syntax tree without docstrings
    (comments and layout are not in the tree), so that editing documentation
    never invalidates a cached run."""
    tree = ast.parse(textwrap.dedent(source))
    scopes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for node in ast.walk(tree):
        if isinstance(node, scopes) and node.body and _is_docstring(node.body[0]):
            node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree)


def _is_docstring(statement: ast.stmt) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


@cache
def _source_digest() -> str:
    h = hashlib.sha256(torch.__version__.encode())  # another torch may give other numbers
    h.update(repr(_INPUT_FIELDS).encode())  # which fields key the shared frozen inputs
    for path in _dependency_files():
        h.update(path.name.encode())
        h.update(_code_of(path.read_text("utf-8")).encode() if path.suffix == ".py"
                 else path.read_bytes())
    for fn in (_Rendered, _hier_world, _world, _model, _loss, _train_and_test,  # this module's part
               _zoom_world, _object_boxes, _reference_view, _zoom_model, _train_and_test_zoom,
               _save_model,
               _Features, _blend_family, _blend_world, _frozen_inputs, _blend_inputs,
               blend_model, _scores,
               _train_and_test_blend):
        h.update(_code_of(inspect.getsource(fn)).encode())
    return h.hexdigest()[:16]


@cache
def _cam_digest() -> str:
    """The digest of what a :class:`CamRun` executes beyond training: :mod:`hmglib.cam`,
    the ``grad-cam`` package's version and this module's part."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        h = hashlib.sha256(version("grad-cam").encode())
    except PackageNotFoundError as err:
        raise ImportError("CamRun explains networks with the grad-cam package, which is not "
                          "installed: pip install 'grad-cam>=1.5'.") from err
    h.update(_code_of(Path(inspect.getfile(cam)).read_text("utf-8")).encode())
    for fn in (cam_subjects, _cam_units, _train_and_test_cam, trained_model):
        h.update(_code_of(inspect.getsource(fn)).encode())
    return h.hexdigest()[:16]


def run_key(run: HierRun | ZoomRun | BlendRun | CamRun) -> str:
    """The cache key of ``run``: its kind, its fields and the digest of what it executes
    (a :class:`CamRun`'s also the key of the run it explains)."""
    fields = dataclasses.asdict(run)
    src = _source_digest()
    if isinstance(run, CamRun):
        fields["kind"] = "cam"
        fields["trained"] = run_key(run.run)
        src += _cam_digest()
    elif isinstance(run, ZoomRun):
        fields["kind"] = "zoom"
    elif isinstance(run, BlendRun):
        fields["kind"] = "blend"
    blob = json.dumps({"run": fields, "src": src}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cache_dir() -> Path:
    """Where run results are cached: ``$HMG_CACHE_DIR``, else ``_build/cache/experiments``
    next to the results records."""
    env = os.environ.get("HMG_CACHE_DIR", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    from hmglib.results import results_dir

    return results_dir().parent / "cache" / "experiments"


# ------------------------------------------------------------------ one run
class _Rendered(Dataset):
    """A HierShapes split rendered once and kept in memory (``(N, 3, S, S)`` float32):
    the same items, without re-rendering them every epoch (a fifth of a CPU run)."""

    def __init__(self, world: HierShapes) -> None:
        self.tree, self.targets = world.tree, world.targets
        self.images = torch.stack([world[i][0] for i in range(len(world))])  # (N, 3, S, S)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.targets[index])


def _hier_world(run: HierRun, split: str) -> HierShapes:
    """The run's HierShapes ``split``: ``samples_per_class`` training images per species,
    half as many (at least 4) test images."""
    n = run.samples_per_class if split == "train" else max(4, run.samples_per_class // 2)
    return HierShapes(split, samples_per_class=n, image_size=run.image_size,
                      object_scale=run.object_scale, clutter=run.clutter, seed=run.seed)


def _world(run: HierRun) -> tuple[CoarsenedDataset, _Rendered, _Rendered]:
    """``(training set with the protocol's labels, raw training set, test set)``."""
    raw, test = _Rendered(_hier_world(run, "train")), _Rendered(_hier_world(run, "test"))
    targets = coarsen_labels(raw.targets, raw.tree, run.relabel, rule=run.rule, seed=run.seed)
    return CoarsenedDataset(raw, targets, raw.tree, degrade=run.degrade), raw, test


def _model(run: HierRun, tree) -> torch.nn.Module:
    """The run's model, from the one factory (:func:`hmglib.models.get_model`)."""
    backbone = build_backbone("small_cnn", weights=run.weights, width=run.width)
    switches = (dict(gsb=run.gsb, linear_combination=run.linear_combination, relu=run.relu)
                if run.method == "hrn" else {})
    return get_model(run.method, tree, backbone=backbone, feature_dim=run.feature_dim,
                     bn_momentum=run.bn_momentum, **switches)


def _loss(run: HierRun, tree) -> torch.nn.Module:
    """The run's loss, from :func:`hmglib.losses.get_loss`."""
    if run.method != "hrn":
        return get_loss(model_loss(run.method), tree)
    # HierRun.loss -> (the loss's name, its options); inside this function, whose
    # source keys the cache
    variants = {
        "composite": ("hrn", {}),
        "hier": ("hrn", {"terms": ("hier",)}),
        "ce": ("hrn", {"terms": ("ce",)}),
        "per-level": ("per-level-ce", {}),
    }
    name, options = variants[run.loss]
    if name == "hrn":
        options = {**options, "energy_fn": run.energy_fn, "ce_reduction": run.ce_reduction}
    return get_loss(name, tree, **options)


def _train_and_test(run: HierRun) -> dict:
    train, raw, test = _world(run)
    tree = raw.tree
    engine.seed_everything(run.seed)
    model = _model(run, tree)
    recipe = dataclasses.replace(HRN_RECIPES[run.recipe_name], batch_size=run.batch_size)
    opt, sched = hrn_optimizer(model, recipe, epochs=run.epochs)
    fitted = engine.fit(model, _loss(run, tree), train, epochs=run.epochs, optimizer=opt,
                        scheduler=sched, batch_size=run.batch_size, seed=run.seed,
                        progress=False)
    _save_model(run, model)
    result = {}
    coarse = train.coarse.nonzero().flatten().tolist()
    # the test split; every training image; the relabelled ones (all with full labels)
    for name, data in (("test", test), ("train", raw),
                       ("train_relabelled", Subset(raw, coarse) if coarse else None)):
        if data is not None:
            report = functools.partial(metrics.hierarchical_report, tree=tree,
                                       energy_fn=run.energy_fn)
            result[name] = engine.evaluate(model, data, report)
    return {**result, "history": fitted.history}


# ------------------------------------------------------------------ one zoom run
def _zoom_world(run: ZoomRun) -> tuple[HierShapes, HierShapes]:
    """The run's ``(training, test)`` worlds: small objects in clutter."""
    world = dict(image_size=run.canvas, object_scale=run.object_scale, clutter=run.clutter,
                 seed=run.seed)
    return (HierShapes("train", samples_per_class=run.samples_per_class, **world),
            HierShapes("test", samples_per_class=max(4, run.samples_per_class // 3), **world))


def _object_boxes(world: HierShapes) -> dict[str, torch.Tensor]:
    """``{"object", "part"}``: the ``(N, 4)`` ground-truth boxes of every image."""
    boxes = [world.boxes(i) for i in range(len(world))]
    return {"object": torch.stack([b.object for b in boxes]),  # (N, 4)
            "part": torch.stack([b.part for b in boxes])}  # (N, 4)


def _reference_view(data: _Rendered, world: HierShapes, run: ZoomRun) -> torch.Tensor:
    """Replace ``data``'s canvases by a reference's fixed crop and return its boxes
    ``(N, 3)``: the centre square of half the side, or the square around the
    object box (the oracle)."""
    n, size = len(data), run.canvas
    if run.method == "centre":
        boxes = torch.tensor([[0.5, 0.5, 0.25]]).expand(n, 3)  # (N, 3)
    else:
        boxes = square_around(_object_boxes(world)["object"], size, size)  # (N, 3)
    data.images = torch.cat([attention_crop(data.images[i:i + 256], boxes[i:i + 256],
                                            run.input_sizes[0])
                             for i in range(0, n, 256)])  # (N, 3, s, s)
    return boxes


def _zoom_model(run: ZoomRun, tree: LabelTree) -> torch.nn.Module:
    """The run's RA-CNN (one scale for the fixed-crop references)."""
    sizes = run.input_sizes[:1] if run.method in ("centre", "oracle") else run.input_sizes
    backbone = build_backbone("small_cnn", weights=run.weights, width=run.width)
    return get_model("racnn", tree, backbone=backbone, num_scales=len(sizes),
                     input_sizes=sizes, apn_hidden=run.apn_hidden, crop=run.crop)


def _train_and_test_zoom(run: ZoomRun) -> dict:
    train_world, test_world = _zoom_world(run)
    train, test = _Rendered(train_world), _Rendered(test_world)
    tree = train.tree
    recipe = dataclasses.replace(RACNN_RECIPES[run.recipe], scale_epochs=run.scale_epochs,
                                 cls_epochs=run.cls_epochs, apn_epochs=run.apn_epochs,
                                 rounds=run.rounds)
    if run.apn_lr is not None:
        recipe = dataclasses.replace(recipe, apn_lr=run.apn_lr)
    reference = run.method in ("centre", "oracle")
    if reference:  # one scale on a fixed crop, trained as long as RA-CNN's scale 1
        _reference_view(train, train_world, run)
        test_regions = _reference_view(test, test_world, run)
        recipe = dataclasses.replace(
            recipe, scale_epochs=run.scale_epochs + run.rounds * run.cls_epochs, rounds=0)
    elif run.method == "racnn-no-rank":
        recipe = dataclasses.replace(recipe, apn_epochs=0)
    engine.seed_everything(run.seed)
    model = _zoom_model(run, tree)
    fitted = alternation.fit_racnn(model, train, recipe, tree=tree, seed=run.seed)
    _save_model(run, model)
    outputs, targets = engine.predict(model, test)
    if reference:  # the region its one scale saw; its fused layer never trained
        outputs.regions, outputs.fused_logits = test_regions[:, None].clone(), None  # (N, 1, 3)
    report = metrics.attention_report(outputs, targets, tree, boxes=_object_boxes(test_world),
                                      image_size=(run.canvas, run.canvas))
    return {"test": report, "history": fitted.history, "rounds": fitted.rounds,
            "regions": outputs.regions[:8].tolist()}


def run_zoom(run: ZoomRun, use_cache: bool = True) -> dict:
    """Train and test one :class:`ZoomRun` (or read it from the cache).

    Returns:
        A dict with keys ``run`` (its fields), ``test``
        (:func:`~hmglib.metrics.attention_report` on the test split, with the
        object and part boxes; a reference reports its one scale as ``scale 1``),
        ``history`` (:class:`~hmglib.alternation.RACNNFit`'s rows), ``rounds``,
        ``regions`` (the regions of the first 8 test images, ``(8, S, 3)`` as
        lists), ``seconds``, ``key`` and ``cached``.
    """
    return _cached(run, _train_and_test_zoom, use_cache)


# ------------------------------------------------------------------ one blend run
class _Features(Dataset):
    """Pre-computed inputs with partial labels: ``(x[i], labels[i])``."""

    def __init__(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        self.x, self.labels = x, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.labels[index]


def _blend_family(method: str) -> str:
    """The registered model a :data:`BLEND_METHODS` entry builds."""
    return {"ilrb": "sarb", "plrb": "sarb", "sarb-no-blend": "sarb",
            "linear-negative": "linear"}.get(method, method)


def _blend_world(run: BlendRun) -> tuple[MultiShapes, MultiShapes]:
    world = dict(num_classes=run.num_classes, group_size=run.group_size,
                 cohesion=run.cohesion, image_size=run.image_size, seed=run.seed)
    return (MultiShapes("train", num_images=run.num_images, **world),
            MultiShapes("test", num_images=run.test_images, **world))


def _frozen_inputs(run: BlendRun, world: MultiShapes, cnn: SmallCNN) -> torch.Tensor:
    """``(N, c, h, w)``: the frozen layers' output of every image of ``world``."""
    images = torch.stack([world[i][0] for i in range(len(world))])  # (N, 3, S, S)
    with torch.no_grad():
        return torch.cat([cnn.features[:run.frozen](images[i:i + 256])
                          for i in range(0, len(images), 256)])  # (N, c, h, w)


#: The fields of a :class:`BlendRun` that its frozen inputs depend on.
_INPUT_FIELDS = ("num_images", "test_images", "image_size", "num_classes", "group_size",
                 "cohesion", "frozen", "width", "weights", "seed")


@functools.lru_cache(maxsize=4)
def _blend_inputs(run: BlendRun) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen layers' outputs of the training and test images, cached in this
    process for runs that differ only in fields outside :data:`_INPUT_FIELDS`
    (``run`` carries those fields and defaults elsewhere)."""
    train_world, test_world = _blend_world(run)
    with torch.random.fork_rng():  # the network blend_model builds after seeding
        torch.manual_seed(run.seed)
        cnn = build_backbone("small_cnn", weights=run.weights, width=run.width).eval()
    return _frozen_inputs(run, train_world, cnn), _frozen_inputs(run, test_world, cnn)


def blend_model(run: BlendRun, labels: torch.Tensor,
                class_names: Sequence[str]) -> tuple[torch.nn.Module, SmallCNN]:
    """``(model, cnn)``: the run's model over the small CNN's trainable layers, and the
    pretrained small CNN whose first ``run.frozen`` layers feed it.

    Args:
        run: the run.
        labels: ``(N, C)`` partial training labels (the graph's adjacency).
        class_names: the ``C`` class names (the word embeddings).
    """
    cnn = build_backbone("small_cnn", weights=run.weights, width=run.width).eval()
    trainable = torch.nn.Sequential(*list(cnn.features)[run.frozen:])
    trainable.out_channels = cnn.out_channels
    tree = LabelTree.flat(class_names)
    name = _blend_family(run.method)
    if name == "linear":
        return get_model(name, tree, backbone=trainable), cnn
    options = dict(embeddings=(onehot_word_embeddings(class_names)
                               if run.embeddings == "words" else None),
                   embed_dim=run.num_classes, adjacency=empirical_cooccurrence(labels),
                   feature_dim=run.feature_dim, hidden=run.hidden)
    if name == "sarb":
        options.update(ilrb=run.method in ("sarb", "ilrb"), plrb=run.method in ("sarb", "plrb"),
                       num_prototypes=run.num_prototypes)
    return get_model(name, tree, backbone=trainable, **options), cnn


def _scores(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    outputs, _ = engine.predict(model, _Features(x, torch.zeros(len(x), 1)))
    return outputs.probabilities()  # (N, C)


def _train_and_test_blend(run: BlendRun) -> dict:
    train_world, test_world = _blend_world(run)
    labels = drop_labels(train_world.targets, run.known, seed=run.seed)  # (N, C)
    # before the seed: whether this process has them cached must not matter
    x_train, x_test = _blend_inputs(BlendRun(**{f: getattr(run, f) for f in _INPUT_FIELDS}))
    engine.seed_everything(run.seed)
    model, _ = blend_model(run, labels, train_world.class_names)
    recipe = dataclasses.replace(SARB_RECIPES[run.recipe], epochs=run.epochs, frozen=0,
                                 blend_start=run.blend_start,
                                 prototype_every=run.prototype_every,
                                 num_prototypes=run.num_prototypes)
    family = _blend_family(run.method)
    options = ({"unknown": "negative"} if run.method == "linear-negative" else
               {"lam": recipe.lam} if family == "sarb" else {})
    loss = get_loss(model_loss(family), None, **options)
    fitted = blending.fit_sarb(model, _Features(x_train, labels), recipe, loss=loss,
                               seed=run.seed)
    _save_model(run, model)
    result = {"test": metrics.multilabel_report(_scores(model, x_test), test_world.targets),
              "train": metrics.multilabel_report(_scores(model, x_train), train_world.targets),
              "history": fitted.history,
              "steps": [round(row["loss"], 5) for row in fitted.steps],
              "steps_cls": [round(row["cls"], 5) for row in fitted.steps],
              "prototype_epochs": fitted.prototype_epochs,
              "known_share": float((labels != 0).float().mean())}
    if hasattr(model, "prototypes"):
        model.eval()
        with torch.no_grad():
            feats, att = model.category_features(x_test[:64])  # (64, C, D), (64, C, h, w)
        result["attention"] = att[:6].tolist()
        present = test_world.targets[:64].nonzero()  # (M, 2): image, class
        result["features"] = feats[present[:, 0], present[:, 1]].tolist()  # (M, D)
        result["feature_classes"] = present[:, 1].tolist()
        result["prototypes"] = model.prototypes.tolist()
        result["prototype_counts"] = model.prototype_counts.tolist()
    return result


def run_blend(run: BlendRun, use_cache: bool = True) -> dict:
    """Train and test one :class:`BlendRun` (or read it from the cache).

    Returns:
        A dict with keys ``run`` (its fields), ``test`` and ``train``
        (:func:`~hmglib.metrics.multilabel_report` on the test images and on the
        training images, both against their complete labels), ``history`` and
        ``steps`` (:class:`~hmglib.blending.SARBFit`'s per-epoch rows and per-step
        total losses), ``steps_cls`` (each step's partial BCE of the original
        features' scores), ``prototype_epochs``, ``known_share`` (the share of known
        training entries), for the CSRL models ``attention`` (the first 6 test
        images' maps, ``(6, C, h, w)``), ``features`` and ``feature_classes`` (the
        category features of the classes present in the first 64 test images),
        ``prototypes`` and ``prototype_counts``; and ``seconds``, ``key``, ``cached``.
    """
    return _cached(run, _train_and_test_blend, use_cache)


def _from_cache(run: HierRun | ZoomRun | BlendRun) -> dict | None:
    """The cached result of ``run`` (marked ``cached``), or ``None``."""
    path = cache_dir() / f"{run_key(run)}.json"
    return {**json.loads(path.read_text()), "cached": True} if path.is_file() else None


def _cached(run: HierRun | ZoomRun | BlendRun, train_and_test, use_cache: bool,
            **extra) -> dict:
    """``run``'s result read from the cache, or ``train_and_test(run)`` with the run's
    fields, ``extra``, its key and its seconds, written to the cache (atomically: a
    parallel reader never sees half a file)."""
    cached = _from_cache(run) if use_cache else None
    if cached is not None:
        return cached
    key = run_key(run)
    t0 = time.perf_counter()
    result = {"run": dataclasses.asdict(run), **extra, "key": key, **train_and_test(run),
              "seconds": time.perf_counter() - t0}
    atomic.write_json(cache_dir() / f"{key}.json", result)
    return {**result, "cached": False}


def run_hier(run: HierRun, use_cache: bool = True) -> dict:
    """Train and test one run (or read it from the cache).

    Returns:
        A dict with keys ``run`` (the run's fields), ``recipe`` (its resolved
        name), ``test`` (the :func:`~hmglib.metrics.hierarchical_report` on
        HierShapes' test split, never used for selection: the last epoch is
        evaluated), ``train`` and ``train_relabelled`` (the same report on every
        training image, and on the relabelled ones only, against their full
        labels; the latter only when some were relabelled), ``history``,
        ``seconds``, ``key`` and ``cached``.
    """
    return _cached(run, _train_and_test, use_cache, recipe=run.recipe_name)


# ------------------------------------------------------------------ trained models
def model_path(run: HierRun | ZoomRun | BlendRun) -> Path:
    """Where the trained weights of ``run`` are cached: beside its result, as
    ``<key>.pt`` (a state dict)."""
    return cache_dir() / f"{run_key(run)}.pt"


def _save_model(run: HierRun | ZoomRun | BlendRun, model: torch.nn.Module) -> None:
    atomic.torch_save({k: v.detach().cpu() for k, v in model.state_dict().items()},
                      model_path(run))


@contextlib.contextmanager
def _kept_rng() -> Iterator[None]:
    """Leave Python's, NumPy's and torch's global generators as they were."""
    py, npy = random.getstate(), np.random.get_state()  # noqa: NPY002
    with torch.random.fork_rng():
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)  # noqa: NPY002


def trained_model(run: HierRun | ZoomRun | BlendRun) -> torch.nn.Module:
    """The trained network of ``run``, in eval mode on the CPU: read from the cache,
    or trained now (which also caches its result, as :func:`run_many` would).

    A :class:`BlendRun`'s network is returned over whole images: its frozen layers
    (computed once per run in training) are put back in front of its backbone, so
    ``model(images)`` takes ``(B, 3, S, S)`` canvases and ``model.backbone`` is the
    whole feature extractor (the layer a class map explains).

    Raises:
        TypeError: ``run`` is not a training run.
    """
    if not isinstance(run, (HierRun, ZoomRun, BlendRun)):
        raise TypeError(f"trained_model: run must be a HierRun, ZoomRun or BlendRun, got "
                        f"{type(run).__name__}.")
    path = model_path(run)
    if not path.is_file():
        with _kept_rng():  # training seeds every generator; the caller's stay as they were
            _run_uncached(run)
    state = torch.load(path, map_location="cpu", weights_only=True)
    with torch.random.fork_rng():  # the weights are replaced; the draws must not leak
        torch.manual_seed(run.seed)
        if isinstance(run, HierRun):
            model = _model(run, hier_shapes_tree())
        elif isinstance(run, ZoomRun):
            model = _zoom_model(run, hier_shapes_tree())
        else:
            names = MultiShapes("test", num_images=1, num_classes=run.num_classes,
                                group_size=run.group_size, image_size=16).class_names
            model, cnn = blend_model(run, torch.zeros(1, run.num_classes), names)
    model.load_state_dict(state)
    if isinstance(run, BlendRun):
        frozen = list(cnn.features)[:run.frozen]
        backbone = torch.nn.Sequential(*frozen, *model.backbone)
        backbone.out_channels = model.backbone.out_channels
        model.backbone = backbone
    return model.eval()


# ------------------------------------------------------------------ Grad-CAM runs
#: The trained networks a :class:`CamRun` explains.
CAM_FAMILIES = ("hrn", "racnn", "sarb")


@dataclass(frozen=True)
class CamRun:
    """Where one trained network looks: its class activation maps on test images,
    scored against the ground-truth boxes of the synthetic worlds.

    Attributes:
        run: the trained run explained: a :class:`HierRun` (HRN, one map per level),
            a :class:`ZoomRun` (RA-CNN, one map per scale) or a :class:`BlendRun`
            (SARB, one map per present class).
        methods: CAM methods (keys of :data:`hmglib.cam.METHODS`).
        images: test images explained (the first ones of the test split).
    """

    run: HierRun | ZoomRun | BlendRun
    methods: tuple[str, ...] = ("gradcam", "gradcam++", "scorecam")
    images: int = 48

    def __post_init__(self) -> None:
        if not isinstance(self.run, (HierRun, ZoomRun, BlendRun)):
            raise ValueError(f"CamRun: run must be a HierRun, ZoomRun or BlendRun, got "
                             f"{type(self.run).__name__}.")
        if isinstance(self.run, HierRun) and self.run.method != "hrn":
            raise ValueError(f"CamRun: explains HRN among the hierarchical runs, got method "
                             f"'{self.run.method}'.")
        if isinstance(self.run, ZoomRun) and self.run.method not in ("racnn", "racnn-no-rank"):
            raise ValueError(f"CamRun: explains RA-CNN runs, got method '{self.run.method}'.")
        if isinstance(self.run, BlendRun) and _blend_family(self.run.method) == "linear":
            raise ValueError("CamRun: explains the CSRL models (sarb, ssgrl and the ablations), "
                             f"got method '{self.run.method}'.")
        if isinstance(self.methods, str):
            raise ValueError(f"CamRun: methods must be a tuple of names, got the string "
                             f"{self.methods!r}; write ({self.methods!r},).")
        methods = tuple(self.methods)
        for m in methods:
            if m not in cam.METHODS:
                raise ValueError(f"CamRun: method '{m}' is not one of {list(cam.METHODS)}.")
        object.__setattr__(self, "methods", methods)
        object.__setattr__(self, "images", check_int("CamRun", "images", self.images, 1))

    @property
    def family(self) -> str:
        """``"hrn"``, ``"racnn"`` or ``"sarb"``."""
        kinds = (HierRun, ZoomRun, BlendRun)  # in the order of CAM_FAMILIES
        return next(f for f, k in zip(CAM_FAMILIES, kinds, strict=True)
                    if isinstance(self.run, k))


def profile_cams(seeds: Sequence[int] | None = None) -> list[CamRun]:
    """The Grad-CAM chapter's runs, sized for the current profile
    (:attr:`hmglib.profile.Profile.cam`): for every seed, HRN on HierShapes at
    the profile's canvas, RA-CNN as the attention chapter trains it, and SARB at
    the profile's known share."""
    sizes = profile.current().cam
    runs = []
    for seed in (profile_seeds() if seeds is None else seeds):
        for trained in (profile_run(image_size=sizes.image_size, seed=seed),
                        profile_zoom(seed=seed),
                        profile_blend(method="sarb", known=sizes.known, seed=seed)):
            runs.append(CamRun(trained, methods=sizes.methods, images=sizes.images))
    return runs


def cam_subjects(run: CamRun) -> dict:
    """What a :class:`CamRun` explains: ``{"images": (B, 3, S, S), "boxes": {kind:
    (B, K, 4)}, "targets": ..., "names": ...}`` for its first test images.

    * HRN and RA-CNN: HierShapes test canvases, ``targets`` the ``(B,)`` leaf
      nodes, boxes ``object`` and ``part`` (``(B, 1, 4)``).
    * SARB: one entry per (image, present class) of the first MultiShapes test
      images: ``images`` repeats each image for each of its classes,
      ``targets`` the ``(B,)`` classes, ``boxes["object"]`` the boxes of that
      class's objects (NaN rows pad), ``image_index`` the ``(B,)`` test image.
    """
    if isinstance(run.run, BlendRun):
        _, test = _blend_world(run.run)
        n = min(run.images, len(test))
        rows, classes, boxes = [], [], []
        for i in range(n):
            objects = test.boxes(i)
            for c in objects.labels.unique().tolist():
                rows.append(i)
                classes.append(c)
                boxes.append(objects.boxes[objects.labels == c])  # (k, 4)
        padded = pad_boxes(boxes)  # (B, K, 4)
        images = torch.stack([test[i][0] for i in range(n)])  # (n, 3, S, S)
        index = torch.tensor(rows)
        return {"images": images[index], "boxes": {"object": padded},
                "targets": torch.tensor(classes), "image_index": index,
                "names": test.class_names}
    world = (_zoom_world(run.run)[1] if isinstance(run.run, ZoomRun) else
             _hier_world(run.run, "test"))
    # the first images: HierShapes cycles through the species (image i is species
    # i mod C), so the first C images hold every species once
    picks = torch.arange(min(run.images, len(world)))
    boxes = [world.boxes(int(i)) for i in picks]
    return {"images": torch.stack([world[int(i)][0] for i in picks]),  # (B, 3, S, S)
            "boxes": {"object": torch.stack([b.object for b in boxes])[:, None],  # (B, 1, 4)
                      "part": torch.stack([b.part for b in boxes])[:, None]},
            "targets": world.targets[picks], "names": world.tree.names}


def _cam_units(run: CamRun, model: torch.nn.Module, subjects: dict, method: str):
    """``(unit, maps, net, net_images, net_maps, classes)`` for each level (HRN),
    scale (RA-CNN) or for the present classes (SARB): ``maps`` ``(B, S, S)`` on the
    canvas; ``net`` the logits :func:`hmglib.cam.confidence_change` scores,
    ``net_images`` and ``net_maps`` what it scores on (the zoomed inputs and their
    maps for a scale of RA-CNN)."""
    x, targets = subjects["images"], subjects["targets"]
    if run.family == "sarb":
        maps = cam.class_cam(model, x, targets, method)  # (B, S, S)
        yield "class", maps, cam.ClassLogits(model), x, maps, targets
        return
    tree = model.tree if run.family == "hrn" else hier_shapes_tree()
    if run.family == "hrn":
        for lv, name in enumerate(tree.level_names):
            classes = cam.level_classes(targets, tree, lv)  # (B,) in the level
            maps = cam.level_cam(model, x, lv, classes, method)  # (B, S, S)
            yield name, maps, cam.LevelLogits(model, lv), x, maps, classes
        return
    classes = targets - int(tree.nodes_at(tree.num_levels - 1)[0])  # (B,) species
    for s in range(model.num_scales):
        got = cam.scale_cam(model, x, s, classes, method)
        yield f"scale {s + 1}", got.maps, cam.ScaleNet(model, s), got.crops, got.crop_maps, classes


def _train_and_test_cam(run: CamRun) -> dict:
    model = trained_model(run.run)
    subjects = cam_subjects(run)
    b, side = subjects["images"].shape[0], subjects["images"].shape[-1]
    rows, faithful = [], []

    def score(unit: str, method: str, maps: torch.Tensor) -> None:
        for key, values in cam.localisation_scores(maps, subjects["boxes"]).items():
            metric, box = key.split("/")
            defined = values[~torch.isnan(values)]
            rows.append({"unit": unit, "method": method, "box": box, "metric": metric,
                         "value": float(defined.mean()) if len(defined) else float("nan"),
                         "images": int(len(defined))})

    def faithfulness(unit: str, method: str, net, images, maps, classes) -> None:
        change = cam.confidence_change(net, images, maps, classes)  # (B,)
        faithful.append({"unit": unit, "method": method, "metric": "confidence change",
                         "value": float(change.mean())})

    references = {kind: cam.reference_maps(kind, b, side, side, seed=run.run.seed)
                  for kind in cam.REFERENCES}
    for method in run.methods:
        for unit, maps, net, images, net_maps, classes in _cam_units(run, model, subjects,
                                                                      method):
            score(unit, method, maps)
            faithfulness(unit, method, net, images, net_maps, classes)
            if method == run.methods[0]:  # the references, once per unit
                # the image dimmed uniformly to the first method's mean brightness: what
                # the confidence change gives for the dimming alone
                dim = net_maps.mean((1, 2), keepdim=True).expand_as(net_maps).contiguous()
                faithfulness(unit, "uniform dim", net, images, dim, classes)
                for kind, ref in references.items():
                    score(unit, kind, ref)
                    size = images.shape[-1]
                    faithfulness(unit, kind, net, images,
                                 cam.reference_maps(kind, b, size, size, seed=run.run.seed),
                                 classes)
    return {"family": run.family, "rows": rows, "faithfulness": faithful, "subjects": b}


def run_cam(run: CamRun, use_cache: bool = True) -> dict:
    """Explain and score one :class:`CamRun` (or read it from the cache); trains
    the network it explains first when that is not cached (:func:`trained_model`).

    Returns:
        A dict with keys ``run`` (its fields), ``family``, ``subjects`` (the maps per
        unit and method), ``rows`` (one per unit (level, scale or ``"class"``),
        method (CAM methods and the ``"random"`` and ``"centre"`` reference maps),
        box kind and metric (``"pointing"``, ``"energy"``): ``value`` the mean over
        the maps that have one, ``images`` their count), ``faithfulness`` (one per
        unit and method: the mean ``"confidence change"`` of
        :func:`hmglib.cam.confidence_change`; method ``"uniform dim"`` multiplies the
        image by a constant map of the first method's mean value, the dimming without
        the map's shape), ``seconds``, ``key``, ``cached``.
    """
    return _cached(run, _train_and_test_cam, use_cache)


def cam_frame(results: Sequence[dict], what: str = "rows"):
    """Cam runs as one long table: ``family``, ``seed``, ``unit``, ``method``, ``box``,
    ``metric``, ``value`` (``what="rows"``), or the faithfulness rows
    (``what="faithfulness"``)."""
    import pandas as pd

    return pd.DataFrame([{"family": r["family"], "seed": r["run"]["run"]["seed"], **row}
                         for r in results for row in r[what]])


def _default_workers() -> int:
    """``$HMG_WORKERS``, else one per core; one (this process) when a GPU is present,
    where runs take turns on the device and a forked process could not use it."""
    env = int(os.environ.get("HMG_WORKERS", "0") or 0)
    if env:
        return env
    return 1 if torch.cuda.is_available() else (os.cpu_count() or 1)


def _one_thread() -> None:
    torch.set_num_threads(1)


def _run_uncached(run: HierRun | ZoomRun | BlendRun | CamRun) -> dict:
    if isinstance(run, CamRun):
        return run_cam(run, use_cache=False)
    if isinstance(run, ZoomRun):
        return run_zoom(run, use_cache=False)
    if isinstance(run, BlendRun):
        return run_blend(run, use_cache=False)
    return run_hier(run, use_cache=False)


def run_many(runs: Sequence[HierRun | ZoomRun | BlendRun | CamRun], workers: int | None = None,
             use_cache: bool = True) -> list[dict]:
    """Run a sweep: the results of ``runs``, in order.

    Cached runs are read back; the others train in ``workers`` worker processes
    with one thread each (default: ``$HMG_WORKERS``, else one per core on a CPU
    machine and one on a machine with a GPU, where runs take turns), or in
    this process, at its own thread count, when one worker is enough. Workers
    are forked on Linux and spawned elsewhere (where a script calling this
    needs the usual ``if __name__ == "__main__":`` guard). Every run is cached as
    it finishes, so an interrupted sweep resumes where it stopped. Results are identical to
    :func:`run_hier`'s (:func:`run_zoom`'s, :func:`run_blend`'s) for each run (each
    run seeds everything it draws). Runs of every kind may be mixed.

    Raises:
        ValueError: ``workers`` below 1, or a run that is not a :class:`HierRun`, a
            :class:`ZoomRun` or a :class:`BlendRun`.
    """
    for i, run in enumerate(runs):
        if not isinstance(run, (HierRun, ZoomRun, BlendRun, CamRun)):
            raise ValueError(f"run_many: runs[{i}] is a {type(run).__name__}, not a HierRun, "
                             "a ZoomRun, a BlendRun or a CamRun.")
    if workers is None:
        workers = _default_workers()
    if workers < 1:
        raise ValueError(f"run_many: workers={workers} must be at least 1.")
    unique = list(dict.fromkeys(runs))
    cached = {run: _from_cache(run) if use_cache else None for run in unique}
    done = {run: res for run, res in cached.items() if res is not None}
    todo = [run for run in unique if run not in done]
    workers = min(workers, len(todo))
    if workers <= 1:
        done.update({run: _run_uncached(run) for run in todo})
    elif todo:
        import multiprocessing

        # fork on Linux (fast, and safe here: each worker sets one thread before any work, as
        # torch's own DataLoader workers do); spawn elsewhere, where fork is not safe
        ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_one_thread) as pool:
            done.update(zip(todo, pool.map(_run_uncached, todo), strict=True))
    return [done[run] for run in runs]


def results_frame(results: Sequence[dict], split: str = "test"):
    """Runs as one long table: one row per (run, metric), with every field of the
    run (``seed`` included), its ``recipe``, ``metric``, ``level`` (``"all"`` for
    metrics over every level) and ``value``.

    Args:
        results: what :func:`run_hier` or :func:`run_many` returned.
        split: ``"test"``, ``"train"`` or ``"train_relabelled"`` (runs without it
            are skipped).

    Returns:
        A :class:`pandas.DataFrame`; non-finite values are dropped.
    """
    import math

    import pandas as pd

    rows = []
    for res in results:
        for key, value in res.get(split, {}).items():
            metric, _, level = key.partition("/")
            if math.isfinite(value):
                rows.append({**res["run"], "recipe": res["recipe"], "metric": metric,
                             "level": level or "all", "value": value})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ diagnosis
def gradient_norms(run: HierRun, batches: int = 4) -> dict[str, float]:
    """The gradient norm a run's loss, and each part of HRN's composite loss, sends
    to the backbone at initialisation.

    Builds ``run``'s untrained model and training set, and on the first
    ``batches`` training batches back-propagates the run's loss (``"total"``)
    and, for HRN, ``L_Hier`` and the leaf cross-entropy separately.

    Returns:
        The mean L2 norms over the batches of the gradients on the backbone's
        parameters (float >= 0): ``"total"``, and for HRN ``"hier"``, ``"ce"`` and
        ``"ratio"`` (ce / hier); and ``"leaf_labelled"``, the mean share of
        leaf-labelled samples per batch.
    """
    train, raw, _ = _world(run)
    tree = raw.tree
    engine.seed_everything(run.seed)
    model = _model(run, tree).train()
    loss_fn = _loss(run, tree)
    holder = model.trunk if hasattr(model, "trunk") else model
    params = list(holder.backbone.parameters())
    loader = DataLoader(train, batch_size=run.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(run.seed))
    sums: dict[str, float] = {}
    n = 0
    for images, targets in loader:
        value = loss_fn(model(images), targets)
        parts = {"total": value.total}
        if hasattr(value, "hier"):  # HRN's composite loss: each part separately
            parts.update(hier=value.hier, ce=value.ce)
        for name, part in parts.items():
            grads = torch.autograd.grad(part, params, retain_graph=True, allow_unused=True)
            norm = torch.sqrt(sum((g * g).sum() for g in grads if g is not None))
            sums[name] = sums.get(name, 0.0) + float(norm)
        leaf = (tree.level_of[targets] == tree.num_levels - 1).float().mean()
        sums["leaf_labelled"] = sums.get("leaf_labelled", 0.0) + float(leaf)
        n += 1
        if n == batches:
            break
    means = {k: v / n for k, v in sums.items()}
    if "hier" in means:
        means["ratio"] = means["ce"] / max(means["hier"], 1e-12)
    return means
