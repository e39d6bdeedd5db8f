"""The pretrained small backbone: the shipped file, its metadata, the world it was
trained on (disjoint from the book's), the script that makes it, and the API."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import pytest
import torch

from hmglib import LabelTree
from hmglib.data import HierShapes
from hmglib.models import HRN, SmallCNN_Weights, build_backbone, small_cnn
from hmglib.models import backbones as bb
from hmglib.models.backbones import SMALL_CNN_WEIGHTS_FILE, SmallCNN, resolve_backbone
from hmglib.pretraining import PRETRAIN_WORLD, main

W = SmallCNN_Weights.DEFAULT
REQUIRED = ["data", "categories", "width", "epochs", "accuracy", "num_params", "recipe",
            "sha256"]
TREE = LabelTree.from_paths([("a", "x"), ("a", "y"), ("b", "z")], ["top", "leaf"])


def shipped_bytes() -> bytes:
    return resources.files("hmglib.models").joinpath("weights", SMALL_CNN_WEIGHTS_FILE).read_bytes()


def species(tree: LabelTree) -> list[str]:
    return [tree.names[n] for n in tree.leaves]


def cues(name: str) -> tuple[str, str, str]:
    """``"<colour> <silhouette> + <marking>"`` → (colour, silhouette, marking)."""
    family, marking = name.split(" + ")
    colour, silhouette = family.split(" ")
    return colour, silhouette, marking


# ------------------------------------------------------------------ the shipped weights
def test_enum_is_torchvision_style() -> None:
    assert SmallCNN_Weights.DEFAULT is SmallCNN_Weights.HIERSHAPES_V1
    assert SmallCNN_Weights.verify("HIERSHAPES_V1") is W
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    out = W.transforms()(image)  # (3, 32, 32) float32 in [0, 1]
    assert out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1


def test_shipped_file_matches_its_metadata() -> None:
    data = shipped_bytes()
    assert len(data) <= 1_000_000
    assert hashlib.sha256(data).hexdigest() == W.meta["sha256"]
    assert all(key in W.meta for key in REQUIRED), sorted(set(REQUIRED) - set(W.meta))
    assert 80 <= W.meta["accuracy"] <= 100 and W.meta["width"] == 16  # 108 classes
    stale = "the world changed: re-run `python -m hmglib.pretraining`"
    assert {k: W.meta["data"][k] for k in PRETRAIN_WORLD} == PRETRAIN_WORLD, stale
    assert W.meta["data"]["cues"] == "pretraining" and "quick" not in W.meta
    state = W.get_state_dict()
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    model = SmallCNN(width=W.meta["width"])
    model.load_state_dict(state)
    assert W.meta["num_params"] == sum(p.numel() for p in model.parameters())


def test_pretrained_features_tell_the_species_apart() -> None:
    """Nearest class mean on pooled features: the weights classify, random ones do not."""
    def features(model: torch.nn.Module, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        ds = HierShapes(split, samples_per_class=3, cues="pretraining", **PRETRAIN_WORLD)
        x = torch.stack([ds[i][0] for i in range(len(ds))])  # (324, 3, S, S)
        with torch.no_grad():
            return model.eval()(x).mean((2, 3)), ds.tree.to_level_index(ds.targets)  # (324, 64)

    def accuracy(model: torch.nn.Module) -> float:
        f_train, y_train = features(model, "train")
        f_test, y_test = features(model, "test")
        means = torch.stack([f_train[y_train == c].mean(0) for c in range(108)])  # (108, 64)
        return float((torch.cdist(f_test, means).argmin(1) == y_test).float().mean())

    pretrained = small_cnn(weights="DEFAULT")
    assert pretrained.out_channels == 64
    f, _ = features(pretrained, "val")
    assert f.std(0).min() > 0  # not all equal
    assert accuracy(pretrained) >= 0.6  # 108 classes, 3 images each; chance 0.009
    torch.manual_seed(0)
    assert accuracy(SmallCNN(width=16)) < 0.3


def test_models_hold_exactly_the_shipped_tensors() -> None:
    state = W.get_state_dict()
    models = [HRN(TREE, backbone="small_cnn", weights="DEFAULT", feature_dim=8).backbone,
              build_backbone("small_cnn", SmallCNN_Weights.HIERSHAPES_V1),
              small_cnn(weights="SmallCNN_Weights.HIERSHAPES_V1", width=16)]
    for model in models:
        got = model.state_dict()
        assert list(got) == list(state)
        assert all(torch.equal(got[k], v) for k, v in state.items())
    assert build_backbone("small_cnn").out_channels == 128  # without weights: random, width 32
    assert small_cnn(width=8).out_channels == 32


def test_a_corrupted_file_fails_the_sha_check(tmp_path, monkeypatch) -> None:
    data = bytearray(shipped_bytes())
    data[-100] ^= 0xFF
    (tmp_path / SMALL_CNN_WEIGHTS_FILE).write_bytes(bytes(data))
    monkeypatch.setattr(bb, "_weights_dir", lambda: tmp_path)
    with pytest.raises(RuntimeError, match=rf"{SMALL_CNN_WEIGHTS_FILE} has sha256 .*"
                                           r"python -m hmglib.pretraining"):
        W.get_state_dict()
    with pytest.raises(RuntimeError, match="sha256"):
        HRN(TREE, backbone="small_cnn", weights="DEFAULT")
    (tmp_path / SMALL_CNN_WEIGHTS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r"is missing.*python -m hmglib.pretraining"):
        small_cnn(weights="DEFAULT")


# ------------------------------------------------------------------ the pretraining world
def test_pretraining_classes_are_disjoint_from_the_book_classes() -> None:
    book = species(HierShapes(samples_per_class=1).tree)
    world = {k: v for k, v in PRETRAIN_WORLD.items() if k == "branching"}
    pre = species(HierShapes(samples_per_class=1, cues="pretraining", **world).tree)
    assert len(pre) == 108 and W.meta["categories"] == pre
    assert not set(book) & set(pre)  # no class in common
    book_cues, pre_cues = list(zip(*map(cues, book), strict=True)), list(
        zip(*map(cues, pre), strict=True))
    # no body (order) in common; colours and markings, the low-level cues, are shared
    assert not set(book_cues[1]) & set(pre_cues[1])
    assert set(book_cues[0]) < set(pre_cues[0]) and set(book_cues[2]) < set(pre_cues[2])
    # the first design shares nothing at all
    strict = species(HierShapes(samples_per_class=1, cues="pretraining-disjoint").tree)
    for b, p in zip(book_cues, zip(*map(cues, strict), strict=True), strict=True):
        assert not set(b) & set(p)


# ------------------------------------------------------------------ the script
def test_the_quick_script_writes_a_loadable_reproducible_file(tmp_path, capsys) -> None:
    threads = torch.get_num_threads()
    for out in ("a", "b"):
        assert main(["--quick", "--out", str(tmp_path / out), "--seed", "1"]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert torch.get_num_threads() == threads  # restored
    data = (tmp_path / "a" / SMALL_CNN_WEIGHTS_FILE).read_bytes()
    assert data == (tmp_path / "b" / SMALL_CNN_WEIGHTS_FILE).read_bytes()  # bit-identical
    meta = json.loads((tmp_path / "a" / SMALL_CNN_WEIGHTS_FILE).with_suffix(".json").read_text())
    assert meta["sha256"] == hashlib.sha256(data).hexdigest() and meta["quick"]
    assert all(key in meta for key in REQUIRED) and meta["data"]["seed"] == 1
    state = torch.load(tmp_path / "a" / SMALL_CNN_WEIGHTS_FILE, weights_only=True,
                       map_location="cpu")
    SmallCNN(width=meta["width"]).load_state_dict(state)  # the backbone only, no head


# ------------------------------------------------------------------ bad inputs
def test_bad_weights() -> None:
    with pytest.raises(ValueError, match=r"unknown weights 'IMAGENET1K_V1' for backbone "
                                         r"'small_cnn'.*'HIERSHAPES_V1', 'DEFAULT'"):
        build_backbone("small_cnn", "IMAGENET1K_V1")
    with pytest.raises(ValueError, match=r"unknown weights 'HIERSHAPES_V1'.*'IMAGENET1K_V1'"):
        build_backbone("resnet18", weights="HIERSHAPES_V1")
    with pytest.raises(ValueError, match="not weights of backbone 'resnet18'"):
        build_backbone("resnet18", weights=W)
    with pytest.raises(ValueError, match="by name, not by a flag"):
        build_backbone("small_cnn", True)  # the former `pretrained` flag
    with pytest.raises(ValueError, match="load them into the module yourself"):
        resolve_backbone(SmallCNN(width=4), weights="DEFAULT")
    with pytest.raises(ValueError, match="load them into the module yourself"):
        HRN(TREE, backbone=SmallCNN(width=4), weights=W)
    with pytest.raises(ValueError, match="width=32 contradicts .* width=16"):
        small_cnn(weights="DEFAULT", width=32)
