"""The ``hmg`` command: train, evaluate and explain the book's models from a shell.

    hmg train hrn --dataset hiershapes --relabel 0.7 --epochs 8 --out runs/hrn70
    hmg eval runs/hrn70
    hmg cam runs/hrn70 --out runs/hrn70/cams
    hmg train hrn --dataset cub200 --root ~/data --relabel 0.3 --weights DEFAULT --out runs/cub30
    hmg train sarb --dataset multishapes --known 0.1 --out runs/sarb10

Two kinds of models, each with its datasets: the **hierarchical** models
(``hrn`` and its baselines ``flat``, ``per-level``, ``chmcnn``) on HierShapes,
CUB-200-2011, FGVC-Aircraft and Stanford Cars, with labels coarsened by
``--relabel``; and the **multi-label** models (``sarb``, ``ssgrl``, ``linear``)
on MultiShapes, PASCAL VOC 2007 and MS-COCO 2014, with partial labels.
``--dataset`` defaults to the synthetic world of the model's kind; a model and
a dataset of different kinds are refused. Sizes default to the run profile
(:mod:`hmglib.profile`).

**Hierarchical runs.** The recipe follows the official code
(:func:`hmglib.recipes.hrn_recipe_name`): ``--relabel 0.9`` selects its second
branch (``paper-90``, or ``paper-90-cars`` on Stanford Cars), every other ratio
``paper``; on HierShapes the CPU analogs ``synthetic-90`` and ``synthetic``.
``--recipe`` overrides the choice; ``config.json`` records it. ``hmg train``
writes ``config.json``, checkpoints (``last.pt``, ``best.pt`` when a
validation split exists), ``history.json`` and the test metrics
``metrics.json`` into ``--out`` and prints the per-level table; ``hmg eval``
rebuilds the run from its ``config.json`` and evaluates its checkpoint on the
test split.

**Multi-label runs** (SARB, Pu et al., AAAI 2022, and its baselines). ``sarb``
learns one feature per class and image (semantic decoupling), classifies them
through a gated graph over the classes, and blends features at the instance and
the prototype level; ``ssgrl`` is the same model without blending, ``linear``
a backbone, an average pool and one linear layer. Every (image, class) entry of
the training split stays known with probability ``--known`` (default 0.1,
:func:`hmglib.data.drop_labels`), the rest become unknown; the label graph's
adjacency is the conditional co-occurrence of those partial labels
(:func:`hmglib.data.empirical_cooccurrence`); the test split keeps its complete
labels::

    # MultiShapes, the synthetic multi-label world (CPU, nothing to download)
    hmg train sarb --dataset multishapes --known 0.1 --out runs/sarb10
    hmg train linear --dataset multishapes --known 0.1 --out runs/linear10
    hmg eval runs/sarb10

    # PASCAL VOC 2007 (trainval -> test) with the paper's recipe, on a GPU
    hmg train sarb --dataset voc2007 --root ~/data --known 0.1 --out runs/voc-sarb10

    # MS-COCO 2014 (train -> val), the SSGRL-style baseline, GloVe from a given file
    hmg train ssgrl --dataset coco2014 --root ~/data/coco2014 --known 0.1 \\
        --glove ~/data/glove/glove.6B.300d.txt --out runs/coco-ssgrl10

*Defaults.* On MultiShapes: the ``"synthetic"`` recipe (the CPU analog of the
paper's), the small CNN with its shipped weights (its first two blocks frozen),
fixed one-hot word embeddings of the class names
(:func:`~hmglib.data.embeddings.onehot_word_embeddings`), and the sizes of the
run profile (:attr:`hmglib.profile.Profile.blend`: images, canvas, epochs,
blending start, prototype schedule, ``K``, feature and attention widths). On
VOC 2007 and COCO 2014: **the paper's recipe**, ``SARB_RECIPES["paper"]``
(:data:`hmglib.recipes.SARB_RECIPES`): ResNet-101 with ImageNet weights, conv1 …
layer3 frozen; Adam at 1e-5, weight decay 5e-4, divided by 10 every 10 epochs;
20 epochs of batch 8; blending from epoch 5 with the ``K = 10`` prototypes per
class recomputed then and every 5 epochs; contrastive weight 0.05; training
images resized to 512, cropped at a random side in {512, 448, 384, 320, 256},
resized to 448 and flipped, test images resized to 448
(:func:`~hmglib.recipes.sarb_transforms`). ``--image-size`` scales that
pipeline (448 to the given side, the resize and the crops in proportion:
:func:`scaled_recipe`); ``--epochs``, ``--batch-size`` and ``--lr`` replace the
recipe's values; ``config.json`` records the resolved recipe.

*GloVe.* On the real datasets the class embeddings are the paper's 300-d GloVe
vectors of the class names (a name of several words gets the mean of its
words' vectors): ``glove.6B.300d.txt`` from ``glove.6B.zip`` (Stanford NLP,
https://nlp.stanford.edu/data/glove.6B.zip, 822 MB), unpacked by hand into
``<--root>/glove/`` or given with ``--glove FILE``; nothing is downloaded
(:mod:`hmglib.data.embeddings`). The vectors of a dataset's names are cached in
``<--root>/glove/cache/``. ``--embeddings words`` (one-hot word vectors) and
``--embeddings learned`` need no file.

*The run folder.* ``config.json`` (everything needed to rebuild the run: the
recipe's name and resolved fields, the known share, the embeddings choice and
width, the model's widths), ``last.pt`` (``{"epoch", "model"}``: the state
dict, which holds the class embeddings, the graph's adjacency and SARB's
prototypes), ``history.json`` (:class:`~hmglib.blending.SARBFit`'s per-epoch
rows, the prototype epochs, every step's loss) and ``metrics.json``
(:func:`~hmglib.metrics.multilabel_report` on the test split: mAP, OP, OR, OF1,
CP, CR, CF1 in %, and the share of known training entries); ``hmg train``
prints the report as a one-row table. ``hmg eval RUN`` rebuilds the model from
``config.json`` (``--root`` overrides the dataset folder), loads ``last.pt`` and
recomputes the same report.

**Class activation maps.** ``hmg cam RUN --out DIR`` rebuilds a run's model as
``hmg eval`` does (:func:`load_hierarchical_run`, :func:`load_multilabel_run`)
and explains the first ``--images`` (default 8) images of its test split with
Grad-CAM (:mod:`hmglib.cam`; ``--method gradcam++`` or ``scorecam`` for the
others). A hierarchical run gets one map per image and level (``--level``:
names or indices, default every level) of the image's true class at that level
(``--classes true``, the default: its label lifted to the level; an image
labelled coarser than a level is left out there, and the command says so) or of
the level head's top class (``--classes predicted``). A multi-label run gets one
map per image and class present in its labels, or predicted present
(probability at least 0.5; the top class when none is). ``DIR`` receives:

* one PNG per map, ``<index>_<level>.png`` (multi-label: ``<index>_<class>.png``,
  the index zero-padded to 3 digits): the image as the model saw it (resized and
  cropped by the test pipeline, its normalisation undone) under its map;
* ``maps.npz``: ``maps`` ``(M, H, W)`` float32 in ``[0, 1]`` with, per map,
  ``index``, ``level``, ``class`` (within the level) and ``name``;
* ``scores.csv`` where the dataset knows where the evidence is: per map the
  pointing game and the energy in the box (:func:`hmglib.cam.localisation_scores`)
  against the ``object`` and ``part`` boxes: HierShapes' body and marking,
  CUB-200-2011's bird box and the squares around its visible parts
  (:meth:`hmglib.data.cub.CUB200.part_boxes`), the aircraft's and the car's box,
  and MultiShapes' objects of the explained class. Boxes are moved onto the
  model's input by the test pipeline's own resize and crop
  (:func:`hmglib.data.boxes.transform_boxes`).

The command prints the scores per level in %, beside those of a centre prior and
of a random map on the same boxes (:func:`cam_summary`); on VOC 2007 and COCO
2014 it writes the maps and says there is nothing to score them against::

    hmg cam runs/hrn70 --out runs/hrn70/cams
    hmg cam runs/cub30 --level species --method gradcam++ --images 16 --out runs/cub30/cams
    hmg cam runs/sarb10 --classes predicted --out runs/sarb10/cams
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from hmglib import atomic, blending, cam, engine, metrics, profile
from hmglib.data import (
    COCO2014,
    VOC2007,
    CoarsenedDataset,
    DatasetNotFoundError,
    HierShapes,
    MultiShapes,
    PartialLabelDataset,
    coarsen_labels,
    drop_labels,
    empirical_cooccurrence,
)
from hmglib.data.boxes import pad_boxes, pipeline_steps, transform_boxes
from hmglib.data.coco import CATEGORIES as COCO_CATEGORIES
from hmglib.data.embeddings import glove_class_embeddings, onehot_word_embeddings
from hmglib.data.voc import CLASSES as VOC_CLASSES
from hmglib.hierarchy import LabelTree
from hmglib.losses import get_loss
from hmglib.models import get_model, list_models, model_loss
from hmglib.probability import ENERGY_FNS
from hmglib.recipes import (
    HRN_RECIPES,
    SARB_RECIPES,
    SARBRecipe,
    hrn_optimizer,
    hrn_recipe_name,
    hrn_transforms,
    sarb_transforms,
)

__all__ = ["main", "parser", "build_datasets", "DATASETS", "MULTILABEL_MODELS",
           "MULTILABEL_DATASETS", "EMBEDDINGS", "multilabel_config", "multilabel_recipe",
           "scaled_recipe", "build_multilabel_datasets", "build_multilabel_model",
           "class_embeddings", "evaluate_multilabel_run", "multilabel_table",
           "read_run_config", "load_hierarchical_run", "load_multilabel_run", "CAM_CLASSES",
           "CAM_METHODS", "CamMaps", "explain_run", "cam_scores",
           "cam_summary", "cam_file_names", "write_cams"]

#: The datasets of the hierarchical models (``hmg train --dataset``).
DATASETS = ("hiershapes", "cub200", "aircraft", "cars")
#: The multi-label models ``hmg train`` takes.
MULTILABEL_MODELS = ("linear", "sarb", "ssgrl")
#: The datasets of the multi-label models (``hmg train --dataset``).
MULTILABEL_DATASETS = ("multishapes", "voc2007", "coco2014")
#: The class embeddings of ``hmg train --embeddings`` (multi-label models).
EMBEDDINGS = ("glove", "words", "learned")

#: (training split, test split) of the real multi-label datasets.
_SPLITS = {"voc2007": ("trainval", "test"), "coco2014": ("train", "val")}
#: The MultiShapes world of the book's blending chapter (its class structure).
_MULTISHAPES_WORLD = {"num_classes": 12, "group_size": 3, "cohesion": 0.8}
#: SARB's widths in the paper: feature ``D`` and attention ``H``; learned embeddings' ``E``.
_PAPER_WIDTHS = {"feature_dim": 1024, "hidden": 512, "embed_dim": 300}


# ------------------------------------------------------------------ hierarchical runs
def build_datasets(cfg: dict) -> tuple[Dataset, Dataset | None, Dataset, LabelTree]:
    """``(train, val or None, test, tree)`` for a run configuration; the train
    labels are coarsened (and degraded) as ``cfg`` says."""
    name = cfg["dataset"]
    if name == "hiershapes":
        kw = dict(samples_per_class=cfg["samples_per_class"], image_size=cfg["image_size"],
                  seed=cfg["seed"])
        n = kw.pop("samples_per_class")
        train = HierShapes("train", samples_per_class=n, **kw)
        val = HierShapes("val", samples_per_class=max(2, n // 4), **kw)
        test = HierShapes("test", samples_per_class=max(2, n // 2), **kw)
        to_model = None
    elif name in ("cub200", "aircraft", "cars"):
        from torchvision.transforms import v2

        from hmglib import data

        cls = {"cub200": data.CUB200, "aircraft": data.FGVCAircraft3, "cars": data.StanfordCars}
        to_tensor = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
        train = cls[name](cfg["root"], split="trainval" if name == "aircraft" else "train",
                          transform=to_tensor)
        test = cls[name](cfg["root"], split="test",
                         transform=v2.Compose([to_tensor, hrn_transforms(False)]))
        val = None  # no official validation split: the last epoch is the result
        to_model = hrn_transforms(True)
    else:
        raise ValueError(f"unknown dataset '{name}'; choose one of {list(DATASETS)}.")
    tree = train.tree
    targets = coarsen_labels(train.targets, tree, cfg["relabel"], rule=cfg["rule"],
                             seed=cfg["seed"])
    train = CoarsenedDataset(train, targets, tree, degrade=cfg["degrade"], transform=to_model)
    return train, val, test, tree


def _loss(cfg: dict, tree: LabelTree) -> torch.nn.Module:
    """The loss of the run's model (:func:`hmglib.models.model_loss`) with its options."""
    name = model_loss(cfg["method"])
    options = ({"energy_fn": cfg["energy_fn"], "ce_reduction": cfg["ce_reduction"]}
               if name == "hrn" else {})
    return get_loss(name, tree, **options)


def _report_table(report: dict[str, float], tree: LabelTree) -> pd.DataFrame:
    rows = []
    for level in tree.level_names:
        row = {"level": level, "OA (paper rule)": report[f"OA/{level}"]}
        if f"OA-marginal/{level}" in report:
            row["OA (marginal rule)"] = report[f"OA-marginal/{level}"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("level").round(2)


def _evaluate(model: torch.nn.Module, data: Dataset, tree: LabelTree, energy_fn: str,
              device: str | None) -> dict[str, float]:
    """Every hierarchical metric of ``model`` on ``data`` (leaf-labelled)."""
    report = functools.partial(metrics.hierarchical_report, tree=tree, energy_fn=energy_fn)
    return engine.evaluate(model, data, report, device=device)


def _print_report(report: dict[str, float], tree: LabelTree) -> None:
    print(_report_table(report, tree).to_string())
    extra = {k: round(v, 2) for k, v in report.items() if not k.startswith("OA")}
    print("  ".join(f"{k}: {v}" for k, v in extra.items()))


#: The defaults of the options that only the hierarchical runs take.
_HIERARCHICAL_DEFAULTS = {"relabel": 0.0, "rule": "ordered", "energy_fn": "sigmoid",
                          "ce_reduction": "labelled"}
#: The options that only the multi-label runs take (attribute → option).
_MULTILABEL_OPTIONS = {"known": "--known", "embeddings": "--embeddings", "glove": "--glove",
                       "num_images": "--num-images"}


def _check_hierarchical(args: argparse.Namespace) -> None:
    """Fill the hierarchical options' defaults; refuse the multi-label ones and bad values."""
    given = [opt for attr, opt in _MULTILABEL_OPTIONS.items() if getattr(args, attr) is not None]
    if given:
        raise SystemExit(f"hmg train: {', '.join(given)} appl{'y' if len(given) > 1 else 'ies'} "
                         f"to the multi-label models {list(MULTILABEL_MODELS)}, not to "
                         f"{args.method}; leave {'them' if len(given) > 1 else 'it'} out.")
    for attr, default in _HIERARCHICAL_DEFAULTS.items():
        if getattr(args, attr) is None:
            setattr(args, attr, default)
    if not 0.0 <= args.relabel <= 1.0:
        raise SystemExit(f"hmg train: --relabel {args.relabel} must be in [0, 1].")
    if args.recipe is not None and args.recipe not in HRN_RECIPES:
        raise SystemExit(f"hmg train: --recipe {args.recipe} is not an HRN recipe; choose one "
                         f"of {sorted(HRN_RECIPES)}.")


def _check_kinds(args: argparse.Namespace) -> bool:
    """Whether the run is multi-label; refuse a model and a dataset of different kinds
    (the message lists the valid pairs). ``--dataset`` defaults to the synthetic world
    of the model's kind."""
    multilabel = args.method in MULTILABEL_MODELS
    if args.dataset is None:
        args.dataset = "multishapes" if multilabel else "hiershapes"
    if multilabel != (args.dataset in MULTILABEL_DATASETS):
        kinds = ("multi-label", "hierarchical") if multilabel else ("hierarchical",
                                                                   "multi-label")
        hierarchical = list_models(hierarchical=True)
        raise SystemExit(
            f"hmg train: {args.method} is a {kinds[0]} model and --dataset {args.dataset} a "
            f"{kinds[1]} dataset. Valid pairs: the hierarchical models {hierarchical} with "
            f"--dataset {'|'.join(DATASETS)}; the multi-label models "
            f"{list(MULTILABEL_MODELS)} with --dataset {'|'.join(MULTILABEL_DATASETS)}.")
    return multilabel


def _train(args: argparse.Namespace) -> int:
    prof = profile.current()
    synthetic = args.dataset == "hiershapes"
    if not synthetic and not args.root:
        raise SystemExit(f"hmg train: --dataset {args.dataset} needs --root (the folder of "
                         "the downloaded dataset).")
    name = args.recipe or hrn_recipe_name(args.relabel, args.dataset, synthetic)
    recipe = HRN_RECIPES[name]
    backbone = args.backbone or ("small_cnn" if synthetic else "resnet50")
    weights = args.weights or ("DEFAULT" if backbone == "small_cnn" else None)
    cfg = {
        "method": args.method, "dataset": args.dataset, "root": args.root,
        "relabel": args.relabel, "rule": args.rule, "degrade": args.degrade,
        "energy_fn": args.energy_fn, "ce_reduction": args.ce_reduction, "recipe": name,
        "backbone": backbone, "weights": None if weights == "none" else weights,
        "epochs": args.epochs or (max(1, min(prof.epochs, recipe.epochs)) if synthetic
                                  else recipe.epochs),
        "batch_size": args.batch_size or recipe.batch_size,
        "lr": args.lr, "seed": args.seed, "profile": prof.name,
        "samples_per_class": args.samples_per_class or prof.samples_per_class,
        "image_size": args.image_size or min(prof.image_size, 64),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / "config.json", cfg)
    train, val, test, tree = build_datasets(cfg)
    engine.seed_everything(cfg["seed"])
    model = get_model(cfg["method"], tree, backbone=cfg["backbone"], weights=cfg["weights"])
    if cfg["lr"] is not None:
        recipe = dataclasses.replace(recipe, backbone_lr=cfg["lr"], head_lr=cfg["lr"])
    opt, sched = hrn_optimizer(model, recipe, epochs=cfg["epochs"])
    leaf = tree.level_names[-1]
    result = engine.fit(
        model, _loss(cfg, tree), train,
        epochs=cfg["epochs"], optimizer=opt, scheduler=sched, batch_size=cfg["batch_size"],
        val_data=val, out_dir=out, resume=args.resume, seed=cfg["seed"], device=args.device,
        evaluate=((lambda m, d: _evaluate(m, d, tree, cfg["energy_fn"], args.device))
                  if val else None),
        select=(f"OA/{leaf}", "max") if val else None, num_workers=args.workers,
        progress=not args.quiet,
    )
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 reports
        return 0
    best = out / "best.pt"
    if best.is_file():
        model.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["model"])
    report = _evaluate(model, test, tree, cfg["energy_fn"], args.device)
    atomic.write_json(out / "metrics.json", {"best_epoch": result.best_epoch, "test": report})
    print(f"{cfg['method']} on {cfg['dataset']} (relabel {cfg['relabel']:.0%}, recipe "
          f"{cfg['recipe']}), epoch {result.best_epoch} of {cfg['epochs']}, test split:")
    _print_report(report, tree)
    return 0


def read_run_config(run: str | Path, root: str | None = None,
                    command: str = "hmg eval") -> dict:
    """The ``config.json`` of a run folder written by ``hmg train --out``, with ``root``
    (when given) replacing the dataset folder it recorded.

    Raises:
        SystemExit: the folder has no ``config.json``; the message names ``command``.
    """
    run = Path(run)
    if not (run / "config.json").is_file():
        raise SystemExit(f"{command}: '{run}' has no config.json; give a folder written by "
                         "`hmg train --out`.")
    cfg = json.loads((run / "config.json").read_text())
    if root:
        cfg["root"] = root
    return cfg


def load_hierarchical_run(run: str | Path, cfg: dict, command: str = "hmg eval",
                          ) -> tuple[nn.Module, Dataset, LabelTree, Path]:
    """Rebuild a hierarchical run: ``(model, test split, tree, checkpoint)``.

    The model is built from ``cfg`` (its ``config.json``) and loads ``best.pt`` (or
    ``last.pt`` when the run had no validation split), on the CPU; the test split is
    the one :func:`build_datasets` makes (leaf labels, the test transform).

    Raises:
        SystemExit: the folder has no checkpoint; the message names ``command``.
    """
    run = Path(run)
    _, _, test, tree = build_datasets(cfg)
    # the small CNN's weights fix its width (torchvision's never change the architecture,
    # and would need a download); the checkpoint then overwrites every tensor
    shape_from = cfg.get("weights") if cfg["backbone"] == "small_cnn" else None
    model = get_model(cfg["method"], tree, backbone=cfg["backbone"], weights=shape_from)
    ckpt = next((p for p in (run / "best.pt", run / "last.pt") if p.is_file()), None)
    if ckpt is None:
        raise SystemExit(f"{command}: '{run}' has no checkpoint (best.pt or last.pt).")
    model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True)["model"])
    return model, test, tree, ckpt


def _eval(args: argparse.Namespace) -> int:
    run = Path(args.run)
    cfg = read_run_config(run, args.root, "hmg eval")
    if cfg.get("kind") == "multilabel":
        return _eval_multilabel(run, cfg, args.device)
    model, test, tree, ckpt = load_hierarchical_run(run, cfg, "hmg eval")
    # runs written before the energy function had its name recorded "energies": "logits"
    energy_fn = cfg.get("energy_fn") or {"logits": "identity"}.get(cfg.get("energies", ""),
                                                                  "sigmoid")
    report = _evaluate(model, test, tree, energy_fn, args.device)
    print(f"{cfg['method']} on {cfg['dataset']} (relabel {cfg['relabel']:.0%}), {ckpt.name}, "
          "test split:")
    _print_report(report, tree)
    return 0


# ------------------------------------------------------------------ multi-label runs
def _fail(message: str) -> SystemExit:
    return SystemExit(f"hmg train: {message}")


def _check_multilabel(args: argparse.Namespace) -> None:
    """Refuse the options a multi-label run cannot take, naming the option and the fix.

    Raises:
        SystemExit: ``--known`` outside ``(0, 1]``, a real dataset without ``--root``
            or with ``--num-images``, ``--glove`` with other embeddings, an option of the
            hierarchical runs, ``--resume``, or a size that is not positive.
    """
    known = 0.1 if args.known is None else args.known
    if not 0.0 < known <= 1.0:
        raise _fail(f"--known {known} must be in (0, 1]: the share of training labels kept "
                    "(e.g. --known 0.1).")
    if args.dataset != "multishapes" and not args.root:
        raise _fail(f"--dataset {args.dataset} needs --root (the folder of the downloaded "
                    "dataset).")
    if args.num_images is not None and args.dataset != "multishapes":
        raise _fail(f"--num-images applies to --dataset multishapes, not {args.dataset} "
                    "(a real dataset has its images); leave it out.")
    if args.glove and args.embeddings not in (None, "glove"):
        raise _fail(f"--glove applies to --embeddings glove, not --embeddings "
                    f"{args.embeddings}; drop one of them.")
    hierarchical = {"--relabel": args.relabel, "--rule": args.rule, "--energy-fn":
                    args.energy_fn, "--ce-reduction": args.ce_reduction,
                    "--samples-per-class": args.samples_per_class}
    given = [name for name, value in hierarchical.items() if value is not None]
    given += ["--degrade"] * args.degrade + ["--resume"] * args.resume
    if given:
        raise _fail(f"{', '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to the "
                    f"hierarchical models, not to {args.method}; leave "
                    f"{'them' if len(given) > 1 else 'it'} out.")
    sizes = {"--epochs": args.epochs, "--batch-size": args.batch_size,
             "--num-images": args.num_images, "--image-size": args.image_size}
    for name, value in sizes.items():
        if value is not None and value < 1:
            raise _fail(f"{name} {value} must be a positive integer.")
    if args.lr is not None and not args.lr > 0:
        raise _fail(f"--lr {args.lr} must be positive.")


def scaled_recipe(recipe: SARBRecipe, image_size: int) -> SARBRecipe:
    """``recipe`` with its image pipeline scaled to ``image_size``: the resize and the
    crop sides in proportion (a crop never larger than the resize)."""
    factor = image_size / recipe.image_size
    resize = max(image_size, round(recipe.resize * factor))
    crops = tuple(dict.fromkeys(min(resize, max(1, round(c * factor)))
                                for c in recipe.crop_sizes))
    return dataclasses.replace(recipe, image_size=image_size, resize=resize, crop_sizes=crops)


def _sarb_recipe_name(args: argparse.Namespace, synthetic: bool) -> str:
    name = args.recipe or ("synthetic" if synthetic else "paper")
    if name not in SARB_RECIPES:
        raise _fail(f"--recipe {name} is not a SARB recipe; choose one of "
                    f"{sorted(SARB_RECIPES)}.")
    return name


def _sarb_recipe(args: argparse.Namespace, name: str, synthetic: bool) -> SARBRecipe:
    """The recipe with the profile's schedule (MultiShapes' synthetic recipe) and the
    command line's overrides."""
    recipe = SARB_RECIPES[name]
    sizes = profile.current().blend
    if synthetic and name == "synthetic":
        recipe = dataclasses.replace(recipe, epochs=sizes.epochs, blend_start=sizes.blend_start,
                                     prototype_every=sizes.prototype_every,
                                     num_prototypes=sizes.num_prototypes)
    side = args.image_size or (sizes.image_size if synthetic else recipe.image_size)
    recipe = scaled_recipe(recipe, side)
    overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr}
    return dataclasses.replace(recipe, **{k: v for k, v in overrides.items() if v is not None})


def _model_options(args: argparse.Namespace, synthetic: bool) -> dict:
    """The embeddings choice and SARB's widths (``None`` for the linear baseline)."""
    if args.method == "linear":
        return {"embeddings": None, "glove": None, "feature_dim": None, "hidden": None}
    sizes = profile.current().blend
    widths = ({"feature_dim": sizes.feature_dim, "hidden": sizes.hidden} if synthetic
              else {k: _PAPER_WIDTHS[k] for k in ("feature_dim", "hidden")})
    default = "glove" if args.glove or not synthetic else "words"
    glove = str(Path(args.glove).expanduser()) if args.glove else None
    return {"embeddings": args.embeddings or default, "glove": glove, **widths}


def multilabel_config(args: argparse.Namespace) -> dict:
    """The configuration of a multi-label run from the ``hmg train`` arguments
    (checked first): every value resolved, so that the run can be
    rebuilt from it alone (``embed_dim`` is added once the embeddings are known)."""
    synthetic = args.dataset == "multishapes"
    name = _sarb_recipe_name(args, synthetic)
    recipe = _sarb_recipe(args, name, synthetic)
    sizes = profile.current().blend
    backbone = args.backbone or ("small_cnn" if synthetic else "resnet101")
    weights = args.weights or ("DEFAULT" if backbone == "small_cnn" else "IMAGENET1K_V1")
    cfg = {
        "kind": "multilabel", "method": args.method, "dataset": args.dataset,
        "root": args.root, "known": 0.1 if args.known is None else args.known,
        "seed": args.seed, "profile": profile.current().name,
        "recipe": name, "recipe_fields": dataclasses.asdict(recipe),
        "backbone": backbone, "weights": None if weights.lower() == "none" else weights,
        "epochs": recipe.epochs, "batch_size": recipe.batch_size, "lr": recipe.lr,
        "image_size": recipe.image_size, "num_prototypes": recipe.num_prototypes,
        **_model_options(args, synthetic),
    }
    if synthetic:
        cfg.update(num_images=args.num_images or sizes.num_images,
                   test_images=sizes.test_images, **_MULTISHAPES_WORLD)
    return cfg


def multilabel_recipe(cfg: dict) -> SARBRecipe:
    """The :class:`~hmglib.recipes.SARBRecipe` a run configuration recorded."""
    fields = dict(cfg["recipe_fields"])
    for key in ("betas", "crop_sizes"):
        fields[key] = tuple(fields[key])
    return SARBRecipe(**fields)


def build_multilabel_datasets(cfg: dict, train: bool = True,
                              ) -> tuple[Dataset | None, Dataset, list[str]]:
    """``(train or None, test, class names)`` of a multi-label run configuration
    (:func:`multilabel_config`): both yield complete ``(C,)`` targets in {0, 1} (the
    training labels are made partial when the run trains) and images ``(3, S, S)``
    float in ``[0, 1]``; ``train=False`` skips the training split."""
    name = cfg["dataset"]
    if name == "multishapes":
        world = {k: cfg[k] for k in (*_MULTISHAPES_WORLD, "image_size", "seed")}
        test = MultiShapes("test", num_images=cfg["test_images"], **world)
        base = MultiShapes("train", num_images=cfg["num_images"], **world) if train else None
        return base, test, list(test.class_names)
    if name not in _SPLITS:
        raise ValueError(f"unknown multi-label dataset '{name}'; choose one of "
                         f"{list(MULTILABEL_DATASETS)}.")
    cls = VOC2007 if name == "voc2007" else COCO2014
    recipe = multilabel_recipe(cfg)
    train_split, test_split = _SPLITS[name]
    test = cls(cfg["root"], split=test_split, transform=sarb_transforms(False, recipe))
    base = (cls(cfg["root"], split=train_split, transform=sarb_transforms(True, recipe))
            if train else None)
    return base, test, list(test.classes)


def class_embeddings(cfg: dict, class_names: list[str]) -> torch.Tensor | None:
    """The fixed ``(C, E)`` class embeddings of the run, or ``None`` (learned, or the
    linear baseline).

    Raises:
        SystemExit: ``--embeddings glove`` and no GloVe file; the message names the
            file and the ways out.
    """
    choice = cfg["embeddings"]
    if choice == "words":
        return onehot_word_embeddings(class_names)
    if choice != "glove":
        return None
    try:
        return glove_class_embeddings(class_names, cfg["dataset"], path=cfg["glove"],
                                      root=cfg["root"])
    except DatasetNotFoundError as err:
        raise _fail(f"--embeddings glove: {err} Alternatively give the file with --glove FILE, "
                    "or train without it: --embeddings learned (or words).") from err


def build_multilabel_model(cfg: dict, class_names: list[str], *,
                           embeddings: torch.Tensor | None = None,
                           adjacency: torch.Tensor | None = None,
                           pretrained: bool = True) -> nn.Module:
    """The run's model over ``class_names``.

    Args:
        cfg: the run configuration (:func:`multilabel_config`, with ``embed_dim``).
        class_names: the ``C`` classes.
        embeddings: ``(C, E)`` fixed class embeddings; ``None`` with ``cfg["embeddings"]``
            ``"learned"``, or to rebuild a fixed-embedding model whose checkpoint holds
            them (zeros stand in until the state dict is loaded).
        adjacency: ``(C, C)`` in ``[0, 1]``, or ``None`` (the checkpoint holds it).
        pretrained: load the backbone's weights; ``False`` builds the architecture only
            (the small CNN's width still follows its weights), to load a checkpoint.
    """
    weights = cfg["weights"]
    if not pretrained and cfg["backbone"] != "small_cnn":
        weights = None  # torchvision's weights never change the architecture
    tree = LabelTree.flat(class_names)
    options = {"backbone": cfg["backbone"], "weights": weights}
    if cfg["method"] == "linear":
        return get_model("linear", tree, **options)
    if embeddings is None and cfg["embeddings"] != "learned":
        embeddings = torch.zeros(len(class_names), cfg["embed_dim"])
    options.update(embeddings=embeddings, embed_dim=cfg["embed_dim"], adjacency=adjacency,
                   feature_dim=cfg["feature_dim"], hidden=cfg["hidden"])
    if cfg["method"] == "sarb":
        options["num_prototypes"] = cfg["num_prototypes"]
    return get_model(cfg["method"], tree, **options)


class _Probabilities(nn.Module):
    """A multi-label model returning only its ``(B, C)`` probabilities."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images).probabilities()


def _evaluate_multilabel(model: nn.Module, test: Dataset, batch_size: int = 32,
                         device: str | None = None) -> dict[str, float]:
    """:func:`~hmglib.metrics.multilabel_report` of ``model`` on ``test`` (complete labels)."""
    return engine.evaluate(_Probabilities(model), test, metrics.multilabel_report,
                           batch_size=batch_size, device=device)


def multilabel_table(report: dict[str, float], method: str) -> pd.DataFrame:
    """The report as a one-row table (mAP, OP, OR, OF1, CP, CR, CF1 in %)."""
    columns = ["mAP", "OP", "OR", "OF1", "CP", "CR", "CF1"]
    return pd.DataFrame([{k: report[k] for k in columns}], index=[method]).round(2)


def _print_multilabel_report(report: dict[str, float], cfg: dict, classes: int) -> None:
    print(multilabel_table(report, cfg["method"]).to_string())
    print(f"classes with a positive test label: {int(report['classes_scored'])} of {classes}")


def _partial_training_set(cfg: dict, base: Dataset) -> tuple[Dataset, torch.Tensor]:
    labels = drop_labels(base.targets, cfg["known"], seed=cfg["seed"])  # (N, C) in {1, 0, -1}
    return PartialLabelDataset(base, labels), labels


def _fit_multilabel(cfg: dict, model: nn.Module, train_data: Dataset,
                    args: argparse.Namespace) -> blending.SARBFit:
    recipe = multilabel_recipe(cfg)
    options = {"lam": recipe.lam} if cfg["method"] == "sarb" else {}
    loss = get_loss(model_loss(cfg["method"]), None, **options)
    return blending.fit_sarb(model, train_data, recipe, loss=loss, seed=cfg["seed"],
                             device=args.device, progress=not args.quiet,
                             num_workers=args.workers)


def _train_multilabel(args: argparse.Namespace) -> int:
    """``hmg train`` for a multi-label model (see the module's documentation)."""
    _check_multilabel(args)
    cfg = multilabel_config(args)
    base, test, names = build_multilabel_datasets(cfg)
    train_data, labels = _partial_training_set(cfg, base)
    embeddings = class_embeddings(cfg, names) if cfg["method"] != "linear" else None
    if cfg["method"] != "linear":
        cfg["embed_dim"] = (int(embeddings.shape[1]) if embeddings is not None else
                            len(names) if cfg["dataset"] == "multishapes"
                            else _PAPER_WIDTHS["embed_dim"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / "config.json", cfg)
    engine.seed_everything(cfg["seed"])
    model = build_multilabel_model(cfg, names, embeddings=embeddings,
                                   adjacency=empirical_cooccurrence(labels).float())
    fitted = _fit_multilabel(cfg, model, train_data, args)
    atomic.torch_save({"epoch": cfg["epochs"] - 1, "model": model.state_dict()}, out / "last.pt")
    atomic.write_json(out / "history.json", {
        "history": fitted.history, "prototype_epochs": fitted.prototype_epochs,
        "seconds": fitted.seconds, "step_losses": [row["loss"] for row in fitted.steps]})
    report = _evaluate_multilabel(model, test, max(cfg["batch_size"], 32), args.device)
    known_share = float((labels != 0).float().mean())
    atomic.write_json(out / "metrics.json", {"epoch": cfg["epochs"] - 1,
                                             "known_share": known_share, "test": report})
    epochs = f"{cfg['epochs']} epoch{'s' if cfg['epochs'] != 1 else ''}"
    print(f"{cfg['method']} on {cfg['dataset']} (known {cfg['known']:.0%}, recipe "
          f"{cfg['recipe']}), {epochs}, test split:")
    _print_multilabel_report(report, cfg, _num_classes(cfg))
    return 0


def load_multilabel_run(run: str | Path, cfg: dict, command: str = "hmg eval",
                        ) -> tuple[nn.Module, Dataset, list[str]]:
    """Rebuild a multi-label run: ``(model, test split, class names)``; the model is
    built from ``cfg`` (its ``config.json``) and loads ``last.pt``, on the CPU.

    Raises:
        SystemExit: the folder has no ``last.pt``; the message names ``command``.
    """
    ckpt = Path(run) / "last.pt"
    if not ckpt.is_file():
        raise SystemExit(f"{command}: '{run}' has no checkpoint (last.pt).")
    _, test, names = build_multilabel_datasets(cfg, train=False)
    model = build_multilabel_model(cfg, names, pretrained=False)
    model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True)["model"])
    return model, test, names


def evaluate_multilabel_run(run: str | Path, cfg: dict, device: str | None = None,
                            ) -> dict[str, float]:
    """Rebuild the multi-label run in folder ``run`` from ``cfg`` (its ``config.json``,
    perhaps with another ``root``), load ``last.pt`` and return its test report.

    Raises:
        SystemExit: the folder has no ``last.pt``.
    """
    model, test, _ = load_multilabel_run(run, cfg, "hmg eval")
    return _evaluate_multilabel(model, test, max(cfg["batch_size"], 32), device)


def _eval_multilabel(run: str | Path, cfg: dict, device: str | None = None) -> int:
    """``hmg eval`` for a multi-label run: re-evaluate ``last.pt`` and print the report."""
    report = evaluate_multilabel_run(run, cfg, device)
    print(f"{cfg['method']} on {cfg['dataset']} (known {cfg['known']:.0%}), last.pt, "
          "test split:")
    _print_multilabel_report(report, cfg, _num_classes(cfg))
    return 0


def _num_classes(cfg: dict) -> int:
    if cfg["dataset"] == "multishapes":
        return int(cfg["num_classes"])
    return len(VOC_CLASSES) if cfg["dataset"] == "voc2007" else len(COCO_CATEGORIES)


# ------------------------------------------------------------------ class activation maps
#: Which class ``hmg cam`` explains: each image's true class(es), or the model's prediction.
CAM_CLASSES = ("true", "predicted")
#: ``hmg cam --method``: the keys of :data:`hmglib.cam.METHODS`.
CAM_METHODS = tuple(cam.METHODS)
#: The kinds of box a map is scored against, in the tables' order.
_BOX_KINDS = ("object", "part")
#: The smallest side of a written overlay (smaller canvases are enlarged, nearest pixel).
_MIN_PNG_SIDE = 128


@dataclasses.dataclass
class CamMaps:
    """The maps :func:`explain_run` computed: one row per (image, level) of a
    hierarchical run, per (image, class) of a multi-label run.

    Attributes:
        images: ``(N, 3, H, W)`` float in ``[0, 1]``: the explained test images as
            the model saw them (resized, cropped), its normalisation undone.
        maps: ``(M, H, W)`` float32 in ``[0, 1]``.
        index: ``M`` ints: the test-split index of each map's image (``0..N-1``).
        level: ``M`` level names (a multi-label run: its one level, ``"class"``).
        classes: ``M`` ints: the explained class within the level.
        names: ``M`` class names.
        boxes: ``M`` dicts kind (``"object"``, ``"part"``) → ``(K, 4)`` float pixel
            ``xyxy`` on the model's input (all-NaN rows: padding); empty dicts when the
            dataset has no boxes.
        multilabel: whether the run is multi-label (one map per class, not per level).
        notes: lines for the reader (images left out, and why).
    """

    images: torch.Tensor
    maps: torch.Tensor
    multilabel: bool = False
    index: list[int] = dataclasses.field(default_factory=list)
    level: list[str] = dataclasses.field(default_factory=list)
    classes: list[int] = dataclasses.field(default_factory=list)
    names: list[str] = dataclasses.field(default_factory=list)
    boxes: list[dict[str, torch.Tensor]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def add(self, index: int, level: str, cls: int, name: str,
            boxes: dict[str, torch.Tensor]) -> None:
        """Append the description of one map (its tensor goes into ``maps``)."""
        self.index.append(index)
        self.level.append(level)
        self.classes.append(cls)
        self.names.append(name)
        self.boxes.append(boxes)

    @property
    def has_boxes(self) -> bool:
        """Whether any map has a box to be scored against."""
        return any(self.boxes)


def _cam_levels(levels: Sequence[str | int] | None, tree: LabelTree) -> list[int]:
    """``--level`` values (names or indices) as level indices ``0..L-1``, in the given
    order without repeats; every level when ``None``."""
    names = list(tree.level_names)
    if not levels:
        return list(range(len(names)))
    out: list[int] = []
    for value in levels:
        text = str(value)
        if text in names:
            lv = names.index(text)
        elif text.lstrip("-").isdigit() and -len(names) <= int(text) < len(names):
            lv = int(text) % len(names)
        else:
            raise SystemExit(f"hmg cam: --level {text} is not a level of the run's tree "
                             f"{names}; give a level name or an index 0..{len(names) - 1}.")
        if lv not in out:
            out.append(lv)
    return out


def _display_images(images: torch.Tensor, transform: object) -> torch.Tensor:
    """``(N, 3, H, W)`` model inputs as pictures in ``[0, 1]``: every ``Normalize`` step
    of the dataset's ``transform`` undone, last first."""
    from torchvision.transforms import Normalize as NormalizeV1
    from torchvision.transforms import v2

    steps = pipeline_steps(transform) if transform is not None else []
    out = images.detach().float().cpu().clone()
    for step in reversed(steps):
        if isinstance(step, (v2.Normalize, NormalizeV1)):
            mean = torch.tensor(step.mean, dtype=torch.float32)[:, None, None]  # (3, 1, 1)
            std = torch.tensor(step.std, dtype=torch.float32)[:, None, None]  # (3, 1, 1)
            out = out * std + mean
    return out.clamp_(0.0, 1.0)


def _evidence_boxes(test: Dataset, index: int) -> dict[str, torch.Tensor]:
    """Kind → ``(K, 4)`` boxes of hierarchical test image ``index`` on the model's input:
    HierShapes' object and part, CUB's bird and parts, Aircraft's and Cars' object box;
    ``{}`` for a dataset without boxes."""
    transform = getattr(test, "transform", None)
    if hasattr(test, "evidence_boxes"):  # CUB-200-2011: the bird and its parts
        return test.evidence_boxes(index)
    if isinstance(test, HierShapes):
        b, size = test.boxes(index), (test.image_size, test.image_size)
        return {"object": transform_boxes(b.object[None], transform, size),
                "part": transform_boxes(b.part[None], transform, size)}
    if hasattr(test, "box") and hasattr(test, "image"):  # Aircraft, Cars: the object
        width, height = test.image(index).size
        return {"object": transform_boxes(test.box(index)[None], transform, (height, width))}
    return {}


def _class_boxes(test: Dataset, index: int, cls: int) -> dict[str, torch.Tensor]:
    """``{"object": (K, 4)}``: the boxes of MultiShapes image ``index``'s objects of class
    ``cls`` (``{}`` for a dataset without boxes, or no such object)."""
    if not isinstance(test, MultiShapes):
        return {}
    objects = test.boxes(index)
    mine = objects.boxes[objects.labels == cls]  # (K, 4)
    return {"object": mine} if len(mine) else {}


def _test_batch(test: Dataset, n: int) -> tuple[torch.Tensor, list]:
    """The first ``n`` samples of ``test``: ``(n, 3, H, W)`` images and ``n`` targets."""
    samples = [test[i] for i in range(n)]
    return torch.stack([torch.as_tensor(x) for x, _ in samples]), [t for _, t in samples]


def _hierarchical_cams(model: nn.Module, test: Dataset, tree: LabelTree,
                       levels: list[int], n: int, method: str, classes: str,
                       device: torch.device) -> CamMaps:
    images, targets = _test_batch(test, n)  # (n, 3, H, W)
    targets = torch.tensor([int(t) for t in targets], dtype=torch.long)  # (n,)
    model.to(device).eval()
    if classes == "predicted":
        with torch.no_grad():
            logits = model(images.to(device)).level_logits
        chosen = [x.argmax(1).cpu() for x in logits]  # L x (n,)
    else:
        chosen = [cam.level_classes(targets, tree, lv) for lv in range(tree.num_levels)]
    boxes = [_evidence_boxes(test, i) for i in range(n)]
    rows = CamMaps(_display_images(images, getattr(test, "transform", None)),
                   torch.empty(0, *images.shape[-2:]))
    maps = []
    for lv in levels:
        name, cls = tree.level_names[lv], chosen[lv]  # (n,)
        keep = (cls >= 0).nonzero().flatten()  # (n_kept,)
        if len(keep) < n:
            skipped = sorted(set(range(n)) - set(keep.tolist()))
            rows.notes.append(f"level {name}: images {skipped} have a coarser label (no {name} "
                              "class to explain): left out at this level.")
        if len(keep) == 0:
            continue
        maps.append(cam.level_cam(model, images[keep], lv, cls[keep], method))  # (n_kept,H,W)
        for i in keep.tolist():
            c = int(cls[i])
            rows.add(i, name, c, tree.names[tree.offset(lv) + c], boxes[i])
    if maps:
        rows.maps = torch.cat(maps)  # (M, H, W)
    return rows


def _multilabel_cams(model: nn.Module, test: Dataset, names: list[str],
                     n: int, method: str, classes: str, device: torch.device) -> CamMaps:
    images, targets = _test_batch(test, n)  # (n, 3, H, W)
    model.to(device).eval()
    if classes == "predicted":
        with torch.no_grad():
            probs = model(images.to(device)).probabilities().cpu()  # (n, C)
        present = probs >= 0.5  # (n, C)
        none = ~present.any(1)  # (n,)
        present[none, probs[none].argmax(1)] = True  # nothing predicted: the top class
    else:
        present = torch.stack([torch.as_tensor(t) for t in targets]) == 1  # (n, C)
    rows = CamMaps(_display_images(images, getattr(test, "transform", None)),
                   torch.empty(0, *images.shape[-2:]), multilabel=True)
    empty = (~present.any(1)).nonzero().flatten().tolist()
    if empty:
        rows.notes.append(f"images {empty} have no positive label: left out.")
    idx, cls = present.nonzero(as_tuple=True)  # (M,) each
    if len(idx):
        rows.maps = cam.class_cam(model, images[idx], cls, method)  # (M, H, W)
    for i, c in zip(idx.tolist(), cls.tolist(), strict=True):
        rows.add(i, "class", c, names[c], _class_boxes(test, i, c))
    return rows


def explain_run(run: str | Path, levels: Sequence[str | int] | None = None,
                method: str = "gradcam", images: int = 8, classes: str = "true",
                root: str | None = None, device: str | None = None) -> CamMaps:
    """Class activation maps of a trained run (a folder of ``hmg train --out``) on the
    first ``images`` images of its test split.

    A hierarchical run (``hrn``, ``flat``, ``per-level``, ``chmcnn``) gets one map per
    image and level (:func:`hmglib.cam.level_cam`) for the image's true class at the
    level (its label lifted to the level; an image labelled coarser than the level is
    left out there) or the level head's top class. A multi-label run (``sarb``,
    ``ssgrl``, ``linear``) gets one map per image and class
    (:func:`hmglib.cam.class_cam`): every class present in the image's labels, or
    every class predicted present (probability at least 0.5; the top class when none is).

    Args:
        run: the run folder.
        levels: hierarchical runs: level names or indices (default every level).
        method: a key of :data:`hmglib.cam.METHODS`.
        images: how many test images, from the first (at least 1).
        classes: ``"true"`` or ``"predicted"``.
        root: replaces the dataset folder the run recorded.
        device: default cuda, then mps, then cpu.

    Returns:
        A :class:`CamMaps`; its boxes are on the model's input (the test transform's
        resize and crop applied).

    Raises:
        SystemExit: not a run folder, no checkpoint, an unknown level, ``--level``
            given for a multi-label run, ``images`` below 1, an unknown method or class
            choice; the message names the argument and the fix.
    """
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise SystemExit(f"hmg cam: --images {images} must be a positive integer (how many "
                         "test images to explain, from the first; e.g. --images 8).")
    if method not in cam.METHODS:
        raise SystemExit(f"hmg cam: --method {method} is not one of {list(cam.METHODS)}.")
    if classes not in CAM_CLASSES:
        raise SystemExit(f"hmg cam: --classes {classes} is not one of {list(CAM_CLASSES)}.")
    cfg = read_run_config(run, root, "hmg cam")
    target = engine.pick_device(device)
    if cfg.get("kind") == "multilabel":
        if levels:
            raise SystemExit("hmg cam: --level applies to hierarchical runs; a multi-label run "
                             "has one map per image and class. Leave --level out.")
        model, test, names = load_multilabel_run(run, cfg, "hmg cam")
        return _multilabel_cams(model, test, names, min(images, len(test)), method,
                                classes, target)
    model, test, tree, _ = load_hierarchical_run(run, cfg, "hmg cam")
    chosen = _cam_levels(levels, tree)
    return _hierarchical_cams(model, test, tree, chosen, min(images, len(test)), method,
                              classes, target)


def _scores(maps: torch.Tensor, boxes: list[dict[str, torch.Tensor]],
            ) -> dict[str, np.ndarray]:
    """``"pointing/<kind>"`` and ``"energy/<kind>"`` → ``(M,)`` of each map against its
    boxes of each kind; NaN for a map without a box of the kind (or without mass)."""
    out: dict[str, np.ndarray] = {}
    kinds = [k for k in _BOX_KINDS if any(k in b for b in boxes)]
    kinds += sorted({k for b in boxes for k in b} - set(kinds))
    none = torch.zeros(0, 4)
    for kind in kinds:
        padded = pad_boxes([b.get(kind, none) for b in boxes])  # (M, K, 4)
        got = cam.localisation_scores(maps, {kind: padded})
        for key, values in got.items():
            out[key] = values.numpy().astype(np.float64)
    return out


def cam_scores(cams: CamMaps) -> pd.DataFrame:
    """One row per map: ``index``, ``level``, ``class``, ``name`` and, per kind of box,
    ``pointing/<kind>`` (1 when the map's maximum is in a box, else 0) and
    ``energy/<kind>`` (the share of the map's mass in the boxes, in ``[0, 1]``); NaN
    where the image has no box of the kind or the map has no mass."""
    table = pd.DataFrame({"index": cams.index, "level": cams.level, "class": cams.classes,
                          "name": cams.names})
    for key, values in _scores(cams.maps, cams.boxes).items():
        table[key] = values
    return table


def cam_summary(cams: CamMaps, seed: int = 0) -> pd.DataFrame:
    """The scores per level in % (the pointing game's hit rate, the mean energy in
    the boxes), over the maps with a box of the kind, and the same scores of two
    maps that ignore the image, scored against the same boxes: ``(centre prior)``
    (:func:`hmglib.cam.centre_prior`) and ``(random map)``
    (:func:`hmglib.cam.random_maps` with ``seed``)."""

    table = cam_scores(cams)
    columns = [c for c in table.columns if c.startswith(("pointing/", "energy/"))]
    rows = []
    for level in dict.fromkeys(cams.level):
        part = table[table["level"] == level]
        rows.append({"level": level, "maps": len(part),
                     **{c: 100.0 * part[c].mean() for c in columns}})
    size = (len(cams.index), *cams.maps.shape[-2:])
    references = (("centre", "(centre prior)"), ("random", "(random map)")) if columns else ()
    for kind, label in references:
        scores = _scores(cam.reference_maps(kind, *size, seed=seed), cams.boxes)
        rows.append({"level": label, "maps": len(cams.index),
                     **{c: 100.0 * float(np.nanmean(scores[c])) for c in columns}})
    return pd.DataFrame(rows).set_index("level").round(1)


def _slug(text: str) -> str:
    """``text`` as a file-name piece: letters, digits, ``.``, ``_`` and ``-``."""
    return "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in text)


def cam_file_names(cams: CamMaps) -> list[str]:
    """The PNG name of each map: ``<index>_<level>.png`` (hierarchical runs) or
    ``<index>_<class name>.png`` (multi-label runs), the index zero-padded to 3 digits."""
    return [f"{i:03d}_{_slug(name if cams.multilabel else level)}.png"
            for i, level, name in zip(cams.index, cams.level, cams.names, strict=True)]


def write_cams(cams: CamMaps, out: str | Path) -> list[Path]:
    """Write the maps into folder ``out``: one PNG per map (the image with its map laid
    over it, :func:`hmglib.viz.cams.overlay`; a side under 128 px enlarged to it,
    nearest pixel), ``maps.npz`` (``maps`` ``(M, H, W)`` float32 in ``[0, 1]``,
    ``index``, ``level``, ``class``, ``name``), and ``scores.csv``
    (:func:`cam_scores`) when the dataset has boxes. Returns the PNG paths."""
    from matplotlib import image as mpimg

    from hmglib.viz.cams import overlay

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for m, name in enumerate(cam_file_names(cams)):
        rgb = overlay(cams.images[cams.index[m]], cams.maps[m])  # (H, W, 3)
        k = max(1, -(-_MIN_PNG_SIDE // min(rgb.shape[:2])))
        big = rgb.repeat(k, axis=0).repeat(k, axis=1)  # (kH, kW, 3)
        mpimg.imsave(out / name, np.clip(big, 0.0, 1.0))
        paths.append(out / name)
    np.savez_compressed(out / "maps.npz", maps=cams.maps.numpy().astype(np.float32),
                        index=np.asarray(cams.index, dtype=np.int64),
                        level=np.asarray(cams.level, dtype=str),
                        **{"class": np.asarray(cams.classes, dtype=np.int64)},
                        name=np.asarray(cams.names, dtype=str))
    if cams.has_boxes:
        cam_scores(cams).to_csv(out / "scores.csv", index=False)
    return paths


def _cam(args: argparse.Namespace) -> int:
    """``hmg cam`` (see the module's documentation)."""
    try:
        cams = explain_run(args.run, args.level, args.method, args.images, args.classes,
                           args.root, args.device)
    except ImportError as err:  # the grad-cam package is missing: the message says how
        raise SystemExit(f"hmg cam: {err}") from err
    cfg = read_run_config(args.run, args.root, "hmg cam")
    paths = write_cams(cams, args.out)
    shown = len(cams.images)
    print(f"hmg cam: {cfg['method']} on {cfg['dataset']}, {shown} test image"
          f"{'s' if shown != 1 else ''}, {args.method}, {args.classes} classes: {len(paths)} "
          f"maps written to {args.out}")
    for note in cams.notes:
        print(f"  {note}")
    if not cams.has_boxes:
        print(f"no scores: --dataset {cfg['dataset']} has no boxes to score maps against "
              "(boxes are known on hiershapes, cub200, aircraft, cars and multishapes).")
        return 0
    print("localisation (%): pointing = maps whose maximum is in a box, energy = mean share "
          "of a map's mass in the boxes; per map in scores.csv")
    print(cam_summary(cams).to_string())
    return 0


# ------------------------------------------------------------------ the command
def parser() -> argparse.ArgumentParser:
    """The ``hmg`` argument parser."""
    p = argparse.ArgumentParser(prog="hmg", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a hierarchical or a multi-label model")
    t.add_argument("method", choices=[*list_models(hierarchical=True), *MULTILABEL_MODELS])
    t.add_argument("--dataset", choices=[*DATASETS, *MULTILABEL_DATASETS],
                   help="default: hiershapes (hierarchical models) or multishapes "
                   "(multi-label models)")
    t.add_argument("--root", help="folder of a downloaded real dataset")
    t.add_argument("--relabel", type=float,
                   help="hierarchical: share of each leaf class relabelled to its parent "
                   "(0..1, default 0)")
    t.add_argument("--rule", choices=("ordered", "random"),
                   help="hierarchical: which samples are relabelled: the official order "
                   "(default), or seeded random")
    t.add_argument("--degrade", action="store_true",
                   help="hierarchical: downsample the relabelled images x0.25 (HRN's "
                   "image-quality protocol)")
    t.add_argument("--energy-fn", choices=ENERGY_FNS,
                   help="how HRN's node logits become energies: sigmoid (paper, default) or "
                   "identity")
    t.add_argument("--ce-reduction", choices=("labelled", "batch"),
                   help="HRN: the leaf CE over the leaf-labelled samples (paper, default) or "
                   "over the batch")
    t.add_argument("--known", type=float,
                   help="multi-label: the share of training label entries kept, in "
                   "(0, 1] (default 0.1)")
    t.add_argument("--embeddings", choices=EMBEDDINGS,
                   help="multi-label: the class embeddings; default glove (VOC, COCO) or "
                   "words (MultiShapes)")
    t.add_argument("--glove", help="multi-label: the GloVe text file (default "
                   "<--root>/glove/glove.6B.300d.txt)")
    t.add_argument("--num-images", type=int, help="MultiShapes: training images")
    t.add_argument("--recipe", choices=sorted({*HRN_RECIPES, *SARB_RECIPES}),
                   help="hierarchical: default the official choice for the ratio (paper-90 at "
                   "90%%); multi-label: synthetic (MultiShapes) or paper (VOC, COCO)")
    t.add_argument("--backbone", help="default: small_cnn (synthetic), resnet50 (hierarchical, "
                   "real) or resnet101 (multi-label, real)")
    t.add_argument("--weights", help="backbone weights: DEFAULT, IMAGENET1K_V1 (downloads once), "
                   "HIERSHAPES_V1 or none; default: the shipped small-CNN weights for small_cnn; "
                   "otherwise none (hierarchical) or IMAGENET1K_V1 (multi-label, as the paper)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float, help="one learning rate for every layer")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--samples-per-class", type=int, help="HierShapes only")
    t.add_argument("--image-size", type=int, help="the synthetic canvas; multi-label real "
                   "datasets: the side the paper's 448-px pipeline is scaled to")
    t.add_argument("--workers", type=int, default=0)
    t.add_argument("--device")
    t.add_argument("--resume", action="store_true",
                   help="hierarchical: continue the run in --out")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("--out", required=True, help="run folder")
    e = sub.add_parser("eval", help="evaluate a trained run on its test split")
    e.add_argument("run", help="a folder written by `hmg train --out`")
    e.add_argument("--root", help="override the dataset folder of the run")
    e.add_argument("--device")
    c = sub.add_parser("cam", help="Grad-CAM maps of a trained run on its first test images, "
                       "scored against the boxes where the dataset has them")
    c.add_argument("run", help="a folder written by `hmg train --out`")
    c.add_argument("--level", nargs="+", action="extend",
                   help="hierarchical runs: the levels to explain, names or indices (0 the "
                   "coarsest); default every level")
    c.add_argument("--method", choices=CAM_METHODS, default="gradcam")
    c.add_argument("--images", type=int, default=8,
                   help="how many test images, from the first (default 8)")
    c.add_argument("--classes", choices=CAM_CLASSES, default="true",
                   help="explain each image's true class (default) or the predicted one")
    c.add_argument("--root", help="override the dataset folder of the run")
    c.add_argument("--device")
    c.add_argument("--out", required=True, help="folder for the PNGs, maps.npz and scores.csv")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hmg`` console script and ``python -m hmglib``."""
    args = parser().parse_args(argv)
    if args.command == "train":
        if _check_kinds(args):
            return _train_multilabel(args)
        _check_hierarchical(args)
        return _train(args)
    if args.command == "cam":
        return _cam(args)
    return _eval(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
