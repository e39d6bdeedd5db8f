"""Training recipes: optimiser groups, schedules, the official image pipeline."""

from __future__ import annotations

import pytest
import torch

from hmglib import LabelTree
from hmglib.models import HRN
from hmglib.models.backbones import SmallCNN
from hmglib.models.baselines import FlatClassifier
from hmglib.recipes import HRN_RECIPES, HRNRecipe, hrn_optimizer, hrn_recipe_name, hrn_transforms

TREE = LabelTree.from_paths([("a", "x"), ("a", "y"), ("b", "z")], ["top", "leaf"])


def test_paper_recipe_splits_backbone_and_new_layers() -> None:
    model = HRN(TREE, backbone=SmallCNN(width=4), feature_dim=8)
    opt, sched = hrn_optimizer(model, "paper")
    assert isinstance(opt, torch.optim.SGD)
    backbone, new = opt.param_groups
    assert backbone["lr"] == 2e-4 and new["lr"] == 2e-3
    assert {id(p) for p in backbone["params"]} == {id(p) for p in model.backbone.parameters()}
    assert len(backbone["params"]) + len(new["params"]) == len(list(model.parameters()))
    assert opt.defaults["momentum"] == 0.9 and opt.defaults["weight_decay"] == 5e-4
    assert sched.T_max == HRN_RECIPES["paper"].epochs == 200


def test_the_90_percent_branch_is_the_official_one() -> None:
    model = HRN(TREE, backbone=SmallCNN(width=4), feature_dim=8)
    opt, sched = hrn_optimizer(model, "paper-90")
    assert isinstance(opt, torch.optim.SGD) and [g["lr"] for g in opt.param_groups] == [1e-4] * 2
    assert isinstance(sched, torch.optim.lr_scheduler.StepLR)
    assert sched.step_size == 60 and sched.gamma == 0.1
    assert HRN_RECIPES["paper-90"].epochs == 100 and HRN_RECIPES["paper-90"].batch_size == 8
    cars = HRN_RECIPES["paper-90-cars"]
    assert (cars.backbone_lr, cars.head_lr, cars.batch_size) == (1e-3, 1e-3, 32)
    opt.step()  # (no gradients: nothing moves) keeps the scheduler's order check quiet
    for _ in range(59):
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4)
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-5)


def test_the_cpu_analog_steps_at_a_share_of_the_run() -> None:
    model = HRN(TREE, backbone=SmallCNN(width=4), feature_dim=8)
    _, sched = hrn_optimizer(model, "synthetic-90", epochs=10)
    assert isinstance(sched, torch.optim.lr_scheduler.StepLR) and sched.step_size == 6


@pytest.mark.parametrize(("relabel", "dataset", "synthetic", "name"), [
    (0.0, "cub200", False, "paper"), (0.7, "aircraft", False, "paper"),
    (0.9, "cub200", False, "paper-90"), (0.9, "aircraft", False, "paper-90"),
    (0.9, "cars", False, "paper-90-cars"), (0.5, "cars", False, "paper"),
    (0.9, "hiershapes", True, "synthetic-90"), (0.3, "hiershapes", True, "synthetic"),
])
def test_recipe_follows_the_relabel_ratio(relabel, dataset, synthetic, name) -> None:
    assert hrn_recipe_name(relabel, dataset, synthetic) == name


def test_synthetic_recipe_is_adam_and_finds_a_baseline_backbone() -> None:
    model = FlatClassifier(TREE, backbone=SmallCNN(width=4), feature_dim=8)
    opt, sched = hrn_optimizer(model, "synthetic", epochs=3)
    assert isinstance(opt, torch.optim.Adam) and sched.T_max == 3


def test_bad_recipes() -> None:
    with pytest.raises(ValueError, match="has no `.backbone`"):
        hrn_optimizer(torch.nn.Linear(2, 2), "paper")
    bad = HRNRecipe("lbfgs", 1e-3, 1e-3, 0.9, 0.0, 8, 1)
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        hrn_optimizer(HRN(TREE, backbone=SmallCNN(width=4), feature_dim=8), bad)
    odd = HRNRecipe("sgd", 1e-3, 1e-3, 0.9, 0.0, 8, 1, schedule="linear")
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        hrn_optimizer(HRN(TREE, backbone=SmallCNN(width=4), feature_dim=8), odd)
    with pytest.raises(ValueError, match=r"relabel=1.5 must be in \[0, 1\]"):
        hrn_recipe_name(1.5)


def test_official_transforms_shapes_and_range() -> None:
    image = torch.rand(3, 300, 400)
    train = hrn_transforms(True, size=64, resize=80)(image)
    test = hrn_transforms(False, size=64, resize=80)(image)
    assert train.shape == test.shape == (3, 64, 64)
    assert test.min() >= -1 and test.max() <= 1
