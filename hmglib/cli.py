"""The ``hmg`` command: train and evaluate the book's hierarchical models from a shell.

    hmg train hrn --dataset hiershapes --relabel 0.7 --epochs 8 --out runs/hrn70
    hmg eval runs/hrn70
    hmg train hrn --dataset cub200 --root ~/data --relabel 0.3 --weights DEFAULT --out runs/cub30

The recipe follows the official code (:func:`hmglib.recipes.hrn_recipe_name`):
``--relabel 0.9`` selects its second branch (``paper-90``, or
``paper-90-cars`` on Stanford Cars), every other ratio ``paper``; on
HierShapes the CPU analogs ``synthetic-90`` and ``synthetic``. ``--recipe``
overrides the choice; ``config.json`` records it.

``hmg train`` writes ``config.json``, checkpoints (``last.pt``, ``best.pt`` when
a validation split exists), ``history.json`` and the test metrics
``metrics.json`` into ``--out`` and prints the per-level table; ``hmg eval``
rebuilds the run from its ``config.json`` and evaluates its checkpoint on the
test split. Sizes default to the run profile (:mod:`hmglib.profile`).
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

import pandas as pd
import torch
from torch.utils.data import Dataset

from hmglib import atomic, engine, metrics, profile
from hmglib.data import CoarsenedDataset, HierShapes, coarsen_labels
from hmglib.hierarchy import LabelTree
from hmglib.losses import get_loss
from hmglib.models import get_model, list_models, model_loss
from hmglib.probability import ENERGY_FNS
from hmglib.recipes import HRN_RECIPES, hrn_optimizer, hrn_recipe_name, hrn_transforms

__all__ = ["main", "parser", "build_datasets", "DATASETS"]

#: The datasets ``hmg train --dataset`` takes.
DATASETS = ("hiershapes", "cub200", "aircraft", "cars")


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


def _eval(args: argparse.Namespace) -> int:
    run = Path(args.run)
    if not (run / "config.json").is_file():
        raise SystemExit(f"hmg eval: '{run}' has no config.json; give a folder written by "
                         "`hmg train --out`.")
    cfg = json.loads((run / "config.json").read_text())
    if args.root:
        cfg["root"] = args.root
    _, _, test, tree = build_datasets(cfg)
    # the small CNN's weights fix its width (torchvision's never change the architecture,
    # and would need a download); the checkpoint then overwrites every tensor
    shape_from = cfg.get("weights") if cfg["backbone"] == "small_cnn" else None
    model = get_model(cfg["method"], tree, backbone=cfg["backbone"], weights=shape_from)
    ckpt = next((p for p in (run / "best.pt", run / "last.pt") if p.is_file()), None)
    if ckpt is None:
        raise SystemExit(f"hmg eval: '{run}' has no checkpoint (best.pt or last.pt).")
    model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True)["model"])
    # runs written before the energy function had its name recorded "energies": "logits"
    energy_fn = cfg.get("energy_fn") or {"logits": "identity"}.get(cfg.get("energies", ""),
                                                                  "sigmoid")
    report = _evaluate(model, test, tree, energy_fn, args.device)
    print(f"{cfg['method']} on {cfg['dataset']} (relabel {cfg['relabel']:.0%}), {ckpt.name}, "
          "test split:")
    _print_report(report, tree)
    return 0


def parser() -> argparse.ArgumentParser:
    """The ``hmg`` argument parser."""
    p = argparse.ArgumentParser(prog="hmg", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a hierarchical model")
    t.add_argument("method", choices=list_models(hierarchical=True))
    t.add_argument("--dataset", choices=DATASETS, default="hiershapes")
    t.add_argument("--root", help="folder of a downloaded real dataset")
    t.add_argument("--relabel", type=float, default=0.0,
                   help="share of each leaf class relabelled to its parent (0..1)")
    t.add_argument("--rule", choices=("ordered", "random"), default="ordered",
                   help="which samples are relabelled: the official order, or seeded random")
    t.add_argument("--degrade", action="store_true",
                   help="downsample the relabelled images x0.25 (HRN's image-quality protocol)")
    t.add_argument("--energy-fn", choices=ENERGY_FNS, default="sigmoid",
                   help="how HRN's node logits become energies: sigmoid (paper) or identity")
    t.add_argument("--ce-reduction", choices=("labelled", "batch"), default="labelled",
                   help="the leaf CE over the leaf-labelled samples (paper) or over the batch")
    t.add_argument("--recipe", choices=sorted(HRN_RECIPES),
                   help="default: the official choice for the ratio (paper-90 at 90%%)")
    t.add_argument("--backbone", help="default: small_cnn (synthetic) or resnet50 (real)")
    t.add_argument("--weights", help="backbone weights: DEFAULT, IMAGENET1K_V1 (downloads once), "
                   "HIERSHAPES_V1 or none; default: the shipped small-CNN weights for small_cnn, "
                   "none otherwise")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float, help="one learning rate for every layer")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--samples-per-class", type=int, help="synthetic worlds only")
    t.add_argument("--image-size", type=int, help="synthetic worlds only")
    t.add_argument("--workers", type=int, default=0)
    t.add_argument("--device")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.add_argument("--out", required=True, help="run folder")
    e = sub.add_parser("eval", help="evaluate a trained run on its test split")
    e.add_argument("run", help="a folder written by `hmg train --out`")
    e.add_argument("--root", help="override the dataset folder of the run")
    e.add_argument("--device")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hmg`` console script and ``python -m hmglib``."""
    args = parser().parse_args(argv)
    if args.command == "train":
        if not 0.0 <= args.relabel <= 1.0:
            raise SystemExit(f"hmg train: --relabel {args.relabel} must be in [0, 1].")
        return _train(args)
    return _eval(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
