"""One way to build a model by name: :func:`get_model` and :func:`list_models`.

Torchvision-style: every model of the book is registered under a short name
with the loss it trains with, and built over a label tree with a backbone and
its weights::

    from hmglib.models import get_model, list_models
    from hmglib.losses import get_loss

    list_models()       # ['chmcnn', 'flat', 'hrn', 'linear', 'per-level', 'racnn', 'sarb',
                        #  'ssgrl']
    model = get_model("hrn", tree, backbone="small_cnn", weights="DEFAULT",
                      feature_dim=64)
    loss = get_loss(model_loss("hrn"), tree)
    loss(model(images), targets).total.backward()

``weights`` follows torchvision: ``None`` (random initialisation), a weights
enum member, or its name as a string. For a model registered with weights of
its own (trained end to end), a member or name of that enum loads the whole
model; otherwise the weights are the backbone's (see
:func:`~hmglib.models.backbones.build_backbone`). None of the book's models ships whole
trained weights yet, so today ``weights`` always initialises the backbone.

The classes stay public for subclassing (:class:`~hmglib.models.hrn.HRN`,
:class:`~hmglib.models.baselines.HierarchicalBaseline`, ...); a new model joins
the factory with :func:`register_model`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn
from torchvision.models import WeightsEnum

from hmglib.hierarchy import LabelTree
from hmglib.models.baselines import CHMCNN, FlatClassifier, PerLevelClassifier
from hmglib.models.hrn import HRN
from hmglib.models.racnn import racnn
from hmglib.models.sarb import linear_multilabel, sarb, ssgrl

__all__ = ["ModelEntry", "register_model", "list_models", "get_model", "get_model_weights",
           "model_loss"]

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelEntry:
    """A registered model.

    Attributes:
        name: the name :func:`get_model` takes.
        builder: a class or function called as ``builder(tree, backbone=...,
            weights=..., **config)`` with explicit keyword arguments.
        loss: the name of the loss it trains with, for :func:`hmglib.losses.get_loss`.
        weights: the enum of whole-model weights, or ``None`` when only the
            backbone has pretrained weights.
        hierarchical: whether its output scores every node of the tree (the
            hierarchical metrics and :class:`~hmglib.experiments.HierRun` apply);
            ``False`` for a model of the tree's last level only (RA-CNN, and the
            multi-label models SARB, SSGRL-style and linear, whose tree is the
            one-level :meth:`~hmglib.hierarchy.LabelTree.flat` of their classes).
    """

    name: str
    builder: Callable[..., nn.Module]
    loss: str
    weights: type[WeightsEnum] | None = None
    hierarchical: bool = True

    def options(self) -> list[str]:
        """The keyword arguments the builder takes beyond ``tree``, ``backbone``
        and ``weights``."""
        params = inspect.signature(self.builder).parameters
        return [n for n, p in params.items() if n not in ("tree", "backbone", "weights", "self")
                and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, *, loss: str, weights: type[WeightsEnum] | None = None,
                   hierarchical: bool = True) -> Callable[[Builder], Builder]:
    """A decorator that adds a model class or builder function to the factory.

    Args:
        name: the model's name (unique).
        loss: the name of its loss in :func:`hmglib.losses.get_loss`.
        weights: its whole-model weights enum, if it has one.
        hierarchical: whether its output scores every node of the tree (see
            :class:`ModelEntry`).

    Raises:
        ValueError: the name is taken, or the builder does not take ``tree``,
            ``backbone`` and ``weights``.
    """
    def add(builder: Builder) -> Builder:
        if name in _MODELS:
            raise ValueError(f"register_model: the name '{name}' is taken by "
                             f"{_MODELS[name].builder.__name__}; choose another name.")
        params = inspect.signature(builder).parameters
        missing = [n for n in ("tree", "backbone", "weights") if n not in params]
        if missing:
            raise ValueError(f"register_model: {builder.__name__} must take tree, backbone and "
                             f"weights; it lacks {missing}.")
        _MODELS[name] = ModelEntry(name, builder, loss, weights, hierarchical)
        return builder

    return add


def list_models(*, hierarchical: bool | None = None) -> list[str]:
    """The names :func:`get_model` builds, sorted.

    Args:
        hierarchical: ``True`` for the models whose output scores every node of
            the tree (HRN and its baselines), ``False`` for the others (RA-CNN, SARB,
            SSGRL-style, linear),
            ``None`` for all.
    """
    return sorted(n for n, e in _MODELS.items()
                  if hierarchical is None or e.hierarchical == hierarchical)


def _entry(name: str) -> ModelEntry:
    if name not in _MODELS:
        raise ValueError(f"unknown model '{name}'; choose one of {list_models()}.")
    return _MODELS[name]


def get_model_weights(name: str) -> type[WeightsEnum] | None:
    """The whole-model weights enum of model ``name``, or ``None`` when only its
    backbone has pretrained weights (today: every model of the book).

    Raises:
        ValueError: an unknown model name.
    """
    return _entry(name).weights


def model_loss(name: str) -> str:
    """The name of the loss model ``name`` trains with (for
    :func:`hmglib.losses.get_loss`).

    Raises:
        ValueError: an unknown model name.
    """
    return _entry(name).loss


def _model_weights(entry: ModelEntry, weights: Any) -> WeightsEnum | None:
    """``weights`` as a member of the model's own enum, or ``None`` when they are
    not whole-model weights (then they are the backbone's)."""
    enum = entry.weights
    if enum is None or weights is None:
        return None
    if isinstance(weights, enum):
        return weights
    if isinstance(weights, str) and weights in enum.__members__:
        return enum[weights]
    return None


def get_model(name: str, tree: LabelTree, *, backbone: str | nn.Module = "small_cnn",
              weights: WeightsEnum | str | None = None, **config: Any) -> nn.Module:
    """Build model ``name`` over ``tree``.

    Args:
        name: one of :func:`list_models` (``"hrn"``, ``"flat"``, ``"per-level"``,
            ``"chmcnn"``, ``"racnn"``).
        tree: the label tree the model predicts.
        backbone: a backbone name for :func:`~hmglib.models.backbones.build_backbone`
            (``"small_cnn"``, the default, runs on a laptop CPU; ``"resnet50"``
            is the paper's) or a module with ``.out_channels``.
        weights: ``None`` (random initialisation), whole-model weights where the
            model has them (:func:`get_model_weights`), or the backbone's weights
            (a member of its weights enum or a name such as ``"DEFAULT"``,
            ``"IMAGENET1K_V1"``). Must be ``None`` for a backbone module.
        **config: the model's own keyword arguments (for HRN ``feature_dim``,
            ``gsb``, ``linear_combination``, ``relu``, ``bn_momentum``; for RA-CNN
            ``num_scales``, ``input_sizes``, ``crop``, ... of
            :func:`~hmglib.models.racnn.racnn`; see the class's documentation).

    Returns:
        The model, in train mode; with whole-model weights, holding them.

    Raises:
        ValueError: an unknown name, weights that are neither the model's nor its
            backbone's, or an option the model does not take (the message lists
            the ones it does).
    """
    entry = _entry(name)
    unknown = sorted(set(config) - set(entry.options()))
    if unknown:
        raise ValueError(f"get_model('{name}'): unknown option(s) {unknown}; "
                         f"{entry.builder.__name__} takes {entry.options()}.")
    whole = _model_weights(entry, weights)
    if whole is None:
        return entry.builder(tree, backbone=backbone, weights=weights, **config)
    meta = whole.meta
    built = {**meta.get("config", {}), **config}
    model = entry.builder(tree, backbone=meta.get("backbone", backbone), weights=None, **built)
    model.load_state_dict(whole.get_state_dict())
    return model


register_model("hrn", loss="hrn")(HRN)
register_model("flat", loss="leaf-ce")(FlatClassifier)
register_model("per-level", loss="per-level-ce")(PerLevelClassifier)
register_model("chmcnn", loss="max-constraint")(CHMCNN)
register_model("racnn", loss="racnn", hierarchical=False)(racnn)
register_model("sarb", loss="sarb", hierarchical=False)(sarb)
register_model("ssgrl", loss="partial-bce", hierarchical=False)(ssgrl)
register_model("linear", loss="partial-bce", hierarchical=False)(linear_multilabel)
