"""One way in: the model factory, the losses that take model outputs, and the
engine's evaluate/predict on the same data structures as fit."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset
from torchvision.models import Weights, WeightsEnum

from hmglib import LabelTree, engine, losses, metrics
from hmglib.models import (
    HRN,
    SmallCNN,
    get_model,
    get_model_weights,
    list_models,
    model_loss,
    register_model,
    registry,
    small_cnn,
)
from hmglib.models.sarb import compute_prototypes

TREE = LabelTree.from_paths(
    [["a", "x", "1"], ["a", "x", "2"], ["a", "y", "3"], ["b", "z", "4"], ["b", "z", "5"]],
    ["order", "family", "species"],
)
TARGETS = torch.tensor([0, 3, 5, 7, 9, 2])  # an order, a family, species


def images(batch: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


HIERARCHICAL = list_models(hierarchical=True)


@pytest.mark.parametrize("name", HIERARCHICAL)
def test_every_hierarchical_model_trains_with_its_loss(name: str) -> None:
    torch.manual_seed(0)
    model = get_model(name, TREE, backbone=SmallCNN(width=4), feature_dim=8)
    loss = losses.get_loss(model_loss(name), TREE)
    result = loss(model(images()), TARGETS)
    assert isinstance(result, tuple) and hasattr(result, "total")
    assert result.total.dim() == 0 and torch.isfinite(result.total)
    result.total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    # the model's output scores every node, so the hierarchical metrics apply
    with torch.no_grad():
        out = model.eval()(images(4, seed=1))
    report = metrics.hierarchical_report(out, torch.tensor([5, 6, 7, 9]), TREE)
    assert set(report) >= {f"OA/{level}" for level in TREE.level_names}


def test_racnn_trains_with_its_loss_over_the_species() -> None:
    torch.manual_seed(0)
    model = get_model("racnn", TREE, backbone=SmallCNN(width=4), num_scales=2,
                      input_sizes=(16, 16), apn_hidden=8)
    assert model.num_classes == TREE.level_sizes[-1]
    loss = losses.get_loss(model_loss("racnn"), TREE)
    leaves = TREE.leaves[: len(TARGETS)]
    result = loss(model(images(len(leaves))), leaves)
    assert torch.isfinite(result.total)
    result.total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.apns.parameters())


def test_the_book_models_are_registered() -> None:
    assert list_models() == ["chmcnn", "flat", "hrn", "linear", "per-level", "racnn", "sarb",
                             "ssgrl"]
    assert list_models(hierarchical=True) == ["chmcnn", "flat", "hrn", "per-level"]
    assert list_models(hierarchical=False) == ["linear", "racnn", "sarb", "ssgrl"]
    assert {n: model_loss(n) for n in list_models()} == {
        "chmcnn": "max-constraint", "flat": "leaf-ce", "hrn": "hrn", "per-level": "per-level-ce",
        "racnn": "racnn", "sarb": "sarb", "ssgrl": "partial-bce", "linear": "partial-bce"}
    assert all(get_model_weights(n) is None for n in list_models())
    assert losses.list_losses() == ["hrn", "leaf-ce", "max-constraint", "partial-bce",
                                    "per-level-ce", "racnn", "sarb"]


@pytest.mark.parametrize("name", ["sarb", "ssgrl", "linear"])
def test_multilabel_models_train_with_their_loss(name: str) -> None:
    """The multi-label models take the one-level tree of their classes and partial labels
    in {1, 0, -1}; every one is called as model(images, targets) in training."""
    classes = LabelTree.flat(["cat", "dog", "car", "tree"])
    targets = torch.tensor([[1, 0, -1, 0], [0, 1, 1, -1], [-1, 0, 1, 1], [1, 1, 0, 0],
                            [0, -1, 1, 0], [1, 0, 0, -1]])
    torch.manual_seed(0)
    options = {} if name == "linear" else {"feature_dim": 8, "hidden": 4, "embed_dim": 3}
    model = get_model(name, classes, backbone=SmallCNN(width=4), **options)
    assert model(images()).logits.shape == (6, 4)
    if name == "sarb":
        with torch.no_grad():
            features, _ = model.eval().category_features(images())  # (6, 4, 8)
        model.set_prototypes(*compute_prototypes(features, targets, k=10)).set_blending(True)
    loss = losses.get_loss(model_loss(name), None)
    result = loss(model.train()(images(), targets), targets)
    assert torch.isfinite(result.total)
    if name == "sarb":
        assert result.instance > 0  # ILRB blends in training
    else:
        torch.testing.assert_close(result.total, result.cls)
    result.total.backward()
    assert all(p.grad is not None for p in model.parameters() if p.dim() > 1)  # every matrix
    with torch.no_grad():
        out = model.eval()(images(4, seed=1))
    report = metrics.multilabel_report(out.probabilities(), torch.tensor(
        [[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1]]))
    assert 0 <= report["mAP"] <= 100


def test_get_model_passes_backbone_weights_and_options() -> None:
    model = get_model("hrn", TREE, weights="DEFAULT", feature_dim=8, gsb=False)
    assert isinstance(model, HRN) and len(model.blocks) == 1
    reference = small_cnn(weights="DEFAULT").state_dict()
    for key, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, reference[key])
    random = get_model("hrn", TREE, feature_dim=8)  # weights=None: random, as in torchvision
    assert not torch.equal(next(iter(random.backbone.state_dict().values())),
                           next(iter(reference.values())))


def test_get_model_bad_input() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'resnet'.*\['chmcnn', 'flat', 'hrn'"):
        get_model("resnet", TREE)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['gsb'\].*takes \['feature_dim'"):
        get_model("flat", TREE, gsb=False)  # an HRN switch on a baseline
    with pytest.raises(ValueError, match="weights"):
        get_model("hrn", TREE, backbone=SmallCNN(width=4), weights="DEFAULT")
    with pytest.raises(TypeError, match="backbone"):
        HRN(TREE)  # no silent default architecture
    with pytest.raises(ValueError, match="unknown model"):
        model_loss("resnet")


def test_register_model_refuses_taken_names_and_incomplete_builders() -> None:
    with pytest.raises(ValueError, match="the name 'hrn' is taken by HRN"):
        register_model("hrn", loss="hrn")(HRN)

    def no_weights(tree: LabelTree, *, backbone: str) -> nn.Module:
        return nn.Identity()

    with pytest.raises(ValueError, match=r"must take tree, backbone and weights.*\['weights'\]"):
        register_model("no-weights", loss="hrn")(no_weights)
    assert "no-weights" not in list_models()


@pytest.fixture
def whole_model_weights():
    """A model registered with whole-model weights held in memory."""
    state = get_model("hrn", TREE, backbone="small_cnn", weights=None, feature_dim=8).state_dict()
    state = {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}

    class TinyWeights(WeightsEnum):
        TOY_V1 = Weights(url="memory://toy", transforms=lambda: None,
                         meta={"backbone": "small_cnn", "config": {"feature_dim": 8}})
        DEFAULT = TOY_V1

        def get_state_dict(self, *args, **kwargs):
            return state

    register_model("toy-hrn", loss="hrn", weights=TinyWeights)(HRN)
    yield TinyWeights, state
    registry._MODELS.pop("toy-hrn")


def test_whole_model_weights_load_the_whole_model(whole_model_weights) -> None:
    enum, state = whole_model_weights
    assert get_model_weights("toy-hrn") is enum
    for weights in (enum.TOY_V1, "TOY_V1", "DEFAULT"):
        model = get_model("toy-hrn", TREE, weights=weights)
        for key, value in model.state_dict().items():
            torch.testing.assert_close(value, state[key])
    # other names are still the backbone's
    model = get_model("toy-hrn", TREE, weights="HIERSHAPES_V1", feature_dim=8)
    assert not torch.equal(model.heads[0].weight, state["heads.0.weight"])


# ------------------------------------------------------------------ losses
def test_loss_classes_agree_with_their_functional_forms() -> None:
    torch.manual_seed(1)
    for name, fn in (("flat", lambda o: losses.leaf_cross_entropy(o.leaf_logits, TARGETS, TREE)),
                     ("chmcnn", lambda o: losses.max_constraint_loss(o.node_logits, TARGETS,
                                                                    TREE)),
                     ("per-level", lambda o: losses.per_level_cross_entropy(
                         [*o.level_logits[:-1], o.leaf_logits], TARGETS, TREE))):
        out = get_model(name, TREE, backbone=SmallCNN(width=4), feature_dim=8)(images())
        result = losses.get_loss(model_loss(name), TREE)(out, TARGETS)
        torch.testing.assert_close(result.total, fn(out))
    out = get_model("per-level", TREE, backbone=SmallCNN(width=4), feature_dim=8)(images())
    per_level = losses.PerLevelCrossEntropyLoss(TREE)(out, TARGETS)
    assert per_level.levels.shape == (3,)
    torch.testing.assert_close(per_level.levels.sum(), per_level.total)
    # a level no sample is labelled at or below contributes 0
    coarse_only = losses.PerLevelCrossEntropyLoss(TREE)(out, torch.tensor([0, 1, 0, 1, 0, 1]))
    assert coarse_only.levels.detach()[1:].tolist() == [0.0, 0.0]


def test_loss_classes_refuse_tensors_and_unknown_options() -> None:
    logits = torch.zeros(6, TREE.num_nodes)
    for cls in (losses.HRNLoss, losses.LeafCrossEntropyLoss, losses.PerLevelCrossEntropyLoss,
                losses.MaxConstraintLoss):
        with pytest.raises(TypeError, match=rf"{cls.__name__} takes the model's output"):
            cls(TREE)(logits, TARGETS)
    with pytest.raises(ValueError, match=r"unknown loss 'bce'.*'hrn'"):
        losses.get_loss("bce", TREE)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['energy_fn'\].*no options"):
        losses.get_loss("leaf-ce", TREE, energy_fn="sigmoid")
    hrn = losses.get_loss("hrn", TREE, energy_fn="identity", terms=("hier",))
    assert hrn.energy_fn == "identity" and hrn.terms == ("hier",)


# ------------------------------------------------------------------ engine
@dataclass
class Pair:
    """A structured model output."""

    logits: torch.Tensor
    doubled: torch.Tensor


class DictData(Dataset):
    """Inputs as dicts, targets as (label, weight) tuples."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, i: int):
        x = torch.full((2,), float(i))
        return {"x": x, "offset": torch.tensor(1.0)}, (i % 3, torch.tensor(float(i)))


class DictModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 3)

    def forward(self, batch: dict) -> Pair:
        z = batch["x"] + batch["offset"][:, None]  # (B, 2)
        return Pair(self.lin(z), 2 * z)


def test_predict_and_evaluate_take_the_structures_fit_takes() -> None:
    torch.manual_seed(0)
    model, data = DictModel(), DictData()
    out, (labels, weights) = engine.predict(model, data, batch_size=4)
    assert isinstance(out, Pair) and out.logits.shape == (10, 3)
    torch.testing.assert_close(out.doubled[:, 0], 2 * (torch.arange(10.0) + 1))
    assert labels.tolist() == [i % 3 for i in range(10)]
    assert weights.tolist() == [float(i) for i in range(10)]
    # fit trains on the same data
    result = engine.fit(
        model, lambda o, y: nn.functional.cross_entropy(o.logits, y[0]), data, epochs=1,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), batch_size=5, progress=False)
    assert len(result.history) == 1

    def accuracy(o: Pair, y) -> dict[str, float]:
        return {"acc": float((o.logits.argmax(1) == y[0]).float().mean()), "n": len(y[0])}

    report = engine.evaluate(model, data, accuracy, batch_size=3)
    assert report["n"] == 10.0 and 0.0 <= report["acc"] <= 1.0
    with pytest.raises(TypeError, match="metrics must return a mapping"):
        engine.evaluate(model, data, lambda o, y: 0.5)


def test_evaluate_gives_the_hierarchical_report() -> None:
    class Pairs(Dataset):
        def __len__(self) -> int:
            return 6

        def __getitem__(self, i: int):
            return images(6)[i], int(TREE.leaves[i % 5])

    model = get_model("hrn", TREE, backbone=SmallCNN(width=4), feature_dim=8)
    report = functools.partial(metrics.hierarchical_report, tree=TREE)
    got = engine.evaluate(model, Pairs(), report)
    out, y = engine.predict(model, Pairs())
    assert got == pytest.approx(metrics.hierarchical_report(out, y, TREE))
    with pytest.raises(ValueError, match="the dataset is empty"):
        engine.predict(model, torch.utils.data.TensorDataset(torch.zeros(0, 3, 16, 16),
                                                             torch.zeros(0)))
