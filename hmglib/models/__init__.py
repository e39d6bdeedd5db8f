"""Models of the book: one file per architecture, one factory that builds them
by name (:func:`~hmglib.models.registry.get_model`,
:func:`~hmglib.models.registry.list_models`), a builder for backbones and
the pretrained weights of the small CPU backbone."""

from hmglib.models.backbones import SmallCNN, SmallCNN_Weights, build_backbone, small_cnn
from hmglib.models.baselines import (
    CHMCNN,
    CHMCNNOutput,
    FlatClassifier,
    HierarchicalBaseline,
    PerLevelClassifier,
    SoftmaxLevelsOutput,
)
from hmglib.models.hrn import HRN, GranularityBlock, HRNOutput
from hmglib.models.racnn import APN, RACNN, BoxBounds, RACNNOutput, attention_crop
from hmglib.models.registry import (
    ModelEntry,
    get_model,
    get_model_weights,
    list_models,
    model_loss,
    register_model,
)
from hmglib.models.sarb import SARB, LinearMultiLabel, MultiLabelOutput

__all__ = [
    "get_model", "list_models", "get_model_weights", "model_loss", "register_model",
    "ModelEntry",
    "HRN", "HRNOutput", "GranularityBlock",
    "RACNN", "RACNNOutput", "APN", "BoxBounds", "attention_crop",
    "SARB", "LinearMultiLabel", "MultiLabelOutput",
    "HierarchicalBaseline", "FlatClassifier", "PerLevelClassifier", "CHMCNN",
    "SoftmaxLevelsOutput", "CHMCNNOutput",
    "SmallCNN", "SmallCNN_Weights", "build_backbone", "small_cnn",
]
