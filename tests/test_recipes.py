"""Training recipes: optimiser groups, schedules, the official image pipeline."""

from __future__ import annotations

import pytest
import torch

from hmglib import LabelTree
from hmglib.models import HRN
from hmglib.models.backbones import SmallCNN
from hmglib.models.baselines import FlatClassifier
from hmglib.recipes import HRN_RECIPES, HRNRecipe, hrn_optimizer, hrn_transforms

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


def test_official_transforms_shapes_and_range() -> None:
    image = torch.rand(3, 300, 400)
    train = hrn_transforms(True, size=64, resize=80)(image)
    test = hrn_transforms(False, size=64, resize=80)(image)
    assert train.shape == test.shape == (3, 64, 64)
    assert test.min() >= -1 and test.max() <= 1
