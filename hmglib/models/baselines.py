"""Baselines that HRN is compared with (chapter 4).

Every baseline shares HRN's backbone and one granularity-specific block of the
same size, so the comparison isolates what HRN adds (per-level blocks, residual
fusion, the probabilistic loss). Each returns a subclass of
:class:`~hmglib.models.hrn.HRNOutput`, so the same metrics and engine apply.

* :class:`FlatClassifier` — one softmax over the leaves, trained with
  cross-entropy on the leaf-labelled samples only (coarse labels are wasted);
  a coarse level's probability is the sum of its leaves'.
* :class:`PerLevelClassifier` — an independent softmax head per level, trained
  with cross-entropy per level on the samples labelled at or below that level.
* :class:`CHMCNN` — C-HMCNN (Giunchiglia and Lukasiewicz, NeurIPS 2020), one of
  the published baselines of the HRN paper: a sigmoid per node, the *max
  constraint module* (a node's score is the largest score in its subtree, so
  predictions respect the hierarchy) and the *max constraint loss*.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torchvision.models import WeightsEnum

from hmglib.checks import check_images
from hmglib.hierarchy import LabelTree
from hmglib.models.backbones import input_channels, resolve_backbone
from hmglib.models.hrn import GranularityBlock, HRNOutput

__all__ = ["HierarchicalBaseline", "FlatClassifier", "PerLevelClassifier", "CHMCNN",
           "SoftmaxLevelsOutput", "CHMCNNOutput"]


@dataclass
class SoftmaxLevelsOutput(HRNOutput):
    """Output of a model with one softmax per level: ``level_logits[l]`` are
    that level's logits (or log-probabilities); scores are the per-level softmax."""

    sigmoid_nodes: ClassVar[bool] = False

    @property
    def scores(self) -> torch.Tensor:
        """``(B, N)``: the softmax of each level, concatenated in node order."""
        return torch.cat([torch.softmax(x, dim=1) for x in self.level_logits], dim=1)


@dataclass
class CHMCNNOutput(HRNOutput):
    """C-HMCNN's output: raw node logits (``level_logits``) and the max-constrained
    node scores ``constrained`` ``(B, N)`` in ``[0, 1]`` that it predicts with."""

    constrained: torch.Tensor = None  # type: ignore[assignment]

    #: C-HMCNN predicts with its own constrained scores, not with tree marginals
    sigmoid_nodes: ClassVar[bool] = False

    @property
    def scores(self) -> torch.Tensor:
        """``(B, N)``: the max-constrained scores."""
        return self.constrained


class _Trunk(nn.Module):
    """Backbone + one granularity-specific block + ReLU: ``(B, 3, H, W)`` → ``(B, D)``.

    ``backbone`` and ``weights`` as :func:`~hmglib.models.backbones.resolve_backbone`
    takes them; ``feature_dim`` is ``D``.
    """

    def __init__(self, backbone: str | nn.Module, feature_dim: int,
                 weights: WeightsEnum | str | None = None, bn_momentum: float = 0.01) -> None:
        super().__init__()
        self.backbone, channels = resolve_backbone(backbone, weights)
        self.block = GranularityBlock(channels, feature_dim, bn_momentum)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images("the baseline", images, input_channels(self.backbone))
        return torch.relu(self.block(self.backbone(images)))  # (B, D)


class HierarchicalBaseline(nn.Module):
    """What every baseline shares: a tree and a trunk (backbone + one
    granularity-specific block of width ``feature_dim`` + ReLU). Subclass it to
    add a baseline (define :meth:`add_heads` and ``forward``); build the book's by
    name with :func:`~hmglib.models.registry.get_model`.

    Args:
        tree: the label tree.
        backbone: a name for :func:`~hmglib.models.backbones.build_backbone` or a module
            with ``.out_channels`` (as :class:`~hmglib.models.hrn.HRN` takes it; required).
        weights: pretrained weights for a named backbone: ``None`` (random), a
            weights enum member or its name such as ``"DEFAULT"``.
        feature_dim: ``D``, the trunk's feature width.
        bn_momentum: momentum of the block's convolutional BatchNorms.
    """

    def __init__(self, tree: LabelTree, *, backbone: str | nn.Module,
                 weights: WeightsEnum | str | None = None, feature_dim: int = 512,
                 bn_momentum: float = 0.01) -> None:
        super().__init__()
        self.tree = tree
        self.trunk = _Trunk(backbone, feature_dim, weights, bn_momentum)
        self.feature_dim = feature_dim
        self.add_heads()

    def add_heads(self) -> None:
        """Create the baseline's heads on ``self.feature_dim`` features (a subclass
        defines it; called once at the end of ``__init__``)."""
        raise NotImplementedError(f"{type(self).__name__} must define add_heads().")


class FlatClassifier(HierarchicalBaseline):
    """A leaf classifier: ``(B, 3, H, W)`` → :class:`SoftmaxLevelsOutput` whose
    coarse ``level_logits`` are log-probabilities summed over each node's leaves.

    Arguments as :class:`HierarchicalBaseline`'s."""

    def add_heads(self) -> None:
        """One linear head ``D → C_leaf``."""
        self.leaf_head = nn.Linear(self.feature_dim, self.tree.level_sizes[-1])

    def forward(self, images: torch.Tensor) -> SoftmaxLevelsOutput:
        """``(B, 3, H, W)`` → per-level log-probabilities and the leaf logits."""
        h = self.trunk(images)  # (B, D)
        leaf_logits = self.leaf_head(h)  # (B, C_leaf)
        probs = torch.zeros(len(h), self.tree.num_nodes, device=h.device, dtype=h.dtype)
        probs[:, self.tree.offset(-1):] = torch.softmax(leaf_logits, dim=1)  # leaves
        probs = self.tree.subtree_reduce(probs, "sum")  # (B, N): every node's probability
        logp = torch.log(probs.clamp_min(torch.finfo(probs.dtype).tiny))  # (B, N)
        levels = [logp[:, self.tree.nodes_at(lv)] for lv in range(self.tree.num_levels - 1)]
        return SoftmaxLevelsOutput([*levels, leaf_logits], leaf_logits, [h])


class PerLevelClassifier(HierarchicalBaseline):
    """Independent softmax heads per level on a shared trunk:
    ``(B, 3, H, W)`` → :class:`SoftmaxLevelsOutput`.

    Arguments as :class:`HierarchicalBaseline`'s."""

    def add_heads(self) -> None:
        """One linear head ``D → C_l`` per level."""
        self.heads = nn.ModuleList(nn.Linear(self.feature_dim, c) for c in self.tree.level_sizes)

    def forward(self, images: torch.Tensor) -> SoftmaxLevelsOutput:
        """``(B, 3, H, W)`` → per-level logits ``(B, C_l)``; leaf logits = the last."""
        h = self.trunk(images)  # (B, D)
        logits = [head(h) for head in self.heads]  # L x (B, C_l)
        return SoftmaxLevelsOutput(logits, logits[-1], [h])


class CHMCNN(HierarchicalBaseline):
    """C-HMCNN: one sigmoid per node and the max constraint module.

    ``(B, 3, H, W)`` → :class:`CHMCNNOutput` with raw node logits split by level
    and ``constrained = max over each node's subtree of sigmoid(logits)``.
    Arguments as :class:`HierarchicalBaseline`'s.
    """

    def add_heads(self) -> None:
        """One linear head ``D → N``: a logit per node."""
        self.head = nn.Linear(self.feature_dim, self.tree.num_nodes)

    def forward(self, images: torch.Tensor) -> CHMCNNOutput:
        """``(B, 3, H, W)`` → raw node logits and max-constrained scores."""
        h = self.trunk(images)  # (B, D)
        logits = self.head(h)  # (B, N)
        levels = [logits[:, self.tree.nodes_at(lv)] for lv in range(self.tree.num_levels)]
        constrained = self.tree.subtree_reduce(torch.sigmoid(logits), "amax")  # (B, N)
        return CHMCNNOutput(levels, levels[-1], [h], constrained)
