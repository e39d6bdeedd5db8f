"""HRN: the hierarchical residual network of Chen et al. (CVPR 2022).

For a tree of ``L`` levels (coarse to fine) the network is (in the notation of
the book: backbone map ``M``, granularity-specific features ``g_l``, fused
features ``h_l``)

1. a shared **backbone** (ResNet-50 conv1…layer4 in the paper): ``x → M``,
   ``(B, 3, H, W) → (B, C, h, w)``;
2. one **granularity-specific block** (GSB) per level ``l``: two convolutions,
   global average pooling and a two-layer MLP, ``M → g_l`` ``(B, D)`` with
   ``D = 512``, no activation;
3. **hierarchical residual fusion**: the feature of level ``l`` adds the
   pre-activation features of all coarser levels, then a ReLU:
   ``h_l = ReLU(g_1 + … + g_l)`` (the coarsest level is ``l = 1`` in the
   book's notation, index ``0`` in Python);
4. **heads**: per level a linear layer ``D → C_l`` whose sigmoid outputs are the
   "sigmoid nodes" of the label tree (concatenated level-major, they line up
   with the tree's node indices), plus a second linear layer ``D → C_leaf`` on
   the finest level for the softmax/cross-entropy branch.

Ablation switches (Table 1 of the paper): ``gsb=False`` shares one block
between all levels; ``linear_combination=False`` uses ``h_l = ReLU(g_l)``;
``relu=False`` drops the ReLU after the sum.
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
from hmglib.probability import node_energies

__all__ = ["HRN", "HRNOutput", "GranularityBlock"]


@dataclass
class HRNOutput:
    """What an HRN returns; the hierarchical baselines return subclasses of it.

    Attributes:
        level_logits: ``L`` tensors ``(B, C_l)``: the sigmoid-head logits of each
            level, coarse to fine.
        leaf_logits: ``(B, C_leaf)``: the softmax-head logits of the finest level.
        features: ``L`` tensors ``(B, D)``: the fused features ``h_l`` (empty for
            models without per-level features).
    """

    level_logits: list[torch.Tensor]
    leaf_logits: torch.Tensor
    features: list[torch.Tensor]

    #: whether ``node_logits`` are sigmoid-node logits (the tree-marginal rule applies)
    sigmoid_nodes: ClassVar[bool] = True

    @property
    def scores(self) -> torch.Tensor:
        """``(B, N)`` in ``[0, 1]``: one score per node, as the paper scores
        AU(PRC)-bar and picks per-level predictions: the sigmoid of the coarse
        heads and the softmax of the leaf head."""
        coarse = [torch.sigmoid(x) for x in self.level_logits[:-1]]  # (B, C_l) each
        return torch.cat([*coarse, torch.softmax(self.leaf_logits, dim=1)], dim=1)  # (B, N)

    @property
    def node_logits(self) -> torch.Tensor:
        """``(B, N)``: the per-level logits concatenated in node order."""
        return torch.cat(self.level_logits, dim=1)  # (B, N)

    def energies(self, energy_fn: str = "sigmoid") -> torch.Tensor:
        """``(B, N)``: the unary energies of the tree distribution, ``energy_fn``
        (one of :data:`hmglib.probability.ENERGY_FNS`) applied to
        :attr:`node_logits`: ``"sigmoid"`` (the paper and its official code,
        energies in ``(0, 1)``) or ``"identity"`` (the logits). The losses and
        metrics take the same ``energy_fn`` names."""
        return node_energies(self.node_logits, energy_fn)  # (B, N)


def _conv_bn_relu(cin: int, cout: int, k: int, momentum: float) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
            nn.BatchNorm2d(cout, momentum=momentum), nn.ReLU(inplace=True)]


class GranularityBlock(nn.Module):
    """The granularity-specific block: ``(B, C, h, w)`` → ``(B, D)``.

    Conv1x1 C→C/2 + BN + ReLU → Conv3x3 C/2→C + BN + ReLU → global average pool →
    BN1d(C) → Linear C→2D → BN1d → ELU → Linear 2D→D. With ResNet-50 (C = 2048,
    D = 512) these are the paper's 2048→1024→2048 convolutions and 2048→1024→512 MLP.
    The convolutions' BatchNorm momentum is 0.01, as in the official code.

    ``.conv`` is the block's last convolutional stage: the layer a per-level
    Grad-CAM explains.
    """

    def __init__(self, in_channels: int, feature_dim: int = 512, bn_momentum: float = 0.01):
        super().__init__()
        mid = max(1, in_channels // 2)
        hidden = 2 * feature_dim
        self.conv = nn.Sequential(
            *_conv_bn_relu(in_channels, mid, 1, bn_momentum),
            *_conv_bn_relu(mid, in_channels, 3, bn_momentum),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.mlp = nn.Sequential(
            nn.BatchNorm1d(in_channels),
            nn.Linear(in_channels, hidden),
            nn.BatchNorm1d(hidden),
            nn.ELU(inplace=True),
            nn.Linear(hidden, feature_dim),
        )

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` → ``(B, D)`` pre-activation feature ``g_l``."""
        z = self.pool(self.conv(fmap)).flatten(1)  # (B, C)
        return self.mlp(z)  # (B, D)


class HRN(nn.Module):
    """Hierarchical residual network over a label tree.

    Build one by name with :func:`~hmglib.models.registry.get_model` (``get_model("hrn",
    tree, backbone=..., weights=...)``), or subclass it.

    Args:
        tree: the label tree (``L >= 2`` levels).
        backbone: a name for :func:`~hmglib.models.backbones.build_backbone` (``"resnet50"``
            in the paper, ``"small_cnn"`` on a CPU) or a module mapping
            ``(B, 3, H, W)`` to ``(B, C, h, w)`` with ``.out_channels``. Required:
            there is no silent default architecture.
        feature_dim: ``D``, the width of every level's feature (512 in the paper).
        weights: pretrained weights for a named backbone (see
            :func:`~hmglib.models.backbones.build_backbone`): ``None`` (random, the default),
            a weights enum member or its name, e.g. ``"IMAGENET1K_V1"`` for the
            torchvision backbones (needs network once, or a cached copy) or
            ``"DEFAULT"`` for ``small_cnn`` (shipped in the package). Must be
            ``None`` for a backbone given as a module.
        gsb: one granularity-specific block per level (False: one shared block).
        linear_combination: residual fusion of coarser levels' features.
        relu: ReLU after the fusion.
        bn_momentum: momentum of the blocks' convolutional BatchNorms (0.01 in the
            official code, made for 200 epochs; short runs need a larger one so the
            running statistics settle).

    Shapes: ``forward((B, 3, H, W) float)`` → :class:`HRNOutput` with
    ``level_logits[l]`` ``(B, C_l)`` and ``leaf_logits`` ``(B, C_leaf)``.
    """

    def __init__(
        self,
        tree: LabelTree,
        *,
        backbone: str | nn.Module,
        weights: WeightsEnum | str | None = None,
        feature_dim: int = 512,
        gsb: bool = True,
        linear_combination: bool = True,
        relu: bool = True,
        bn_momentum: float = 0.01,
    ) -> None:
        super().__init__()
        if tree.num_levels < 2:
            raise ValueError(f"HRN needs a tree of at least 2 levels, got {tree!r}.")
        self.tree = tree
        self.backbone, channels = resolve_backbone(backbone, weights)
        #: the image channels the backbone takes (checked in :meth:`forward`)
        self.in_channels = input_channels(self.backbone)
        self.gsb, self.linear_combination, self.relu = gsb, linear_combination, relu
        n_blocks = tree.num_levels if gsb else 1
        self.blocks = nn.ModuleList(GranularityBlock(channels, feature_dim, bn_momentum)
                                    for _ in range(n_blocks))
        self.heads = nn.ModuleList(nn.Linear(feature_dim, c) for c in tree.level_sizes)
        self.leaf_head = nn.Linear(feature_dim, tree.level_sizes[-1])

    def level_features(self, fmap: torch.Tensor) -> list[torch.Tensor]:
        """The fused features ``h_l`` ``(B, D)`` of every level from a backbone map."""
        if self.gsb:
            f = [block(fmap) for block in self.blocks]  # L x (B, D)
        else:
            f = [self.blocks[0](fmap)] * self.tree.num_levels  # one shared feature
        if self.linear_combination:
            f = list(torch.cumsum(torch.stack(f), dim=0).unbind(0))  # g_1 + … + g_l
        return [torch.relu(h) for h in f] if self.relu else f

    def forward(self, images: torch.Tensor) -> HRNOutput:
        """``(B, 3, H, W)`` float → :class:`HRNOutput`.

        Raises:
            ValueError: ``images`` is not ``(B, 3, H, W)`` (the message says how to
                reshape it).
            TypeError: ``images`` is not a float tensor (e.g. ``uint8``).
        """
        check_images("HRN", images, self.in_channels)
        fmap = self.backbone(images)  # (B, C, h, w)
        h = self.level_features(fmap)  # L x (B, D)
        level_logits = [head(x) for head, x in zip(self.heads, h, strict=True)]  # L x (B, C_l)
        return HRNOutput(level_logits, self.leaf_head(h[-1]), h)
