"""Backbones: convolutional feature extractors shared by every model of the book.

:func:`build_backbone` returns a module mapping images ``(B, 3, H, W)`` to a
feature map ``(B, C, h, w)`` and records ``C`` as ``.out_channels``. The
torchvision networks are cut before their pooling and classifier:

==============  =========  ========================================  ===========
name            C          stride (h = H / stride)                   used by
==============  =========  ========================================  ===========
``resnet50``    2048       32 (14 x 14 at 448 px)                    HRN
``resnet101``   2048       32 (SARB adds a 2 x 2 average pool)       SARB
``resnet18``    512        32                                        quick GPU runs
``vgg19``       512        16 (conv5_4, 28 x 28 at 448 px)           RA-CNN
``small_cnn``   128        8                                         the CPU profile
==============  =========  ========================================  ===========

Pretrained ImageNet weights are opt-in (``pretrained=True``): torchvision
downloads them once into its cache (``torch.hub.get_dir()``); without network
and without a cached copy, the call fails with an error that says so.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.error import URLError

import torch
import torchvision
from torch import nn

__all__ = ["BACKBONES", "build_backbone", "resolve_backbone", "SmallCNN"]


class SmallCNN(nn.Module):
    """Three conv blocks (conv-BN-ReLU-maxpool), for the CPU profile.

    ``(B, 3, H, W)`` → ``(B, 128, H/8, W/8)``; about 0.1 M parameters.
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        chans = [3, width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.out_channels = chans[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` → ``(B, 128, H/8, W/8)``."""
        return self.features(x)


def _resnet(ctor: Callable, weights) -> nn.Module:
    net = ctor(weights=weights)
    body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool,
                         net.layer1, net.layer2, net.layer3, net.layer4)
    body.out_channels = net.fc.in_features
    return body


def _vgg19(weights) -> nn.Module:
    net = torchvision.models.vgg19(weights=weights)
    body = net.features[:-1]  # up to conv5_4 + ReLU, without pool5
    body.out_channels = 512
    return body


BACKBONES: dict[str, tuple[Callable[[object], nn.Module], object]] = {
    "resnet50": (lambda w: _resnet(torchvision.models.resnet50, w),
                 torchvision.models.ResNet50_Weights.IMAGENET1K_V1),
    "resnet101": (lambda w: _resnet(torchvision.models.resnet101, w),
                  torchvision.models.ResNet101_Weights.IMAGENET1K_V1),
    "resnet18": (lambda w: _resnet(torchvision.models.resnet18, w),
                 torchvision.models.ResNet18_Weights.IMAGENET1K_V1),
    "vgg19": (_vgg19, torchvision.models.VGG19_Weights.IMAGENET1K_V1),
    "small_cnn": (lambda w: SmallCNN(), None),
}


def build_backbone(name: str, pretrained: bool = False) -> nn.Module:
    """A feature extractor ``(B, 3, H, W)`` → ``(B, C, h, w)`` with ``.out_channels = C``.

    Args:
        name: one of ``resnet50``, ``resnet101``, ``resnet18``, ``vgg19``, ``small_cnn``.
        pretrained: load torchvision's ImageNet weights (the original ones:
            ``IMAGENET1K_V1``, as the papers used). Needs network once, or a cached copy.

    Raises:
        ValueError: unknown name, or ``pretrained=True`` for ``small_cnn``.
        RuntimeError: weights asked for but neither cached nor downloadable.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone '{name}'; choose one of {sorted(BACKBONES)}.")
    make, weights = BACKBONES[name]
    if pretrained and weights is None:
        raise ValueError(f"backbone '{name}' has no pretrained weights; use pretrained=False.")
    try:
        return make(weights if pretrained else None)
    except (URLError, OSError, ConnectionError) as err:
        raise RuntimeError(
            f"pretrained weights for '{name}' ({weights}) are not in torchvision's cache "
            f"({torch.hub.get_dir()}/checkpoints) and could not be downloaded ({err}). "
            "Run once with network access (e.g. in Colab), copy the file into that folder, "
            "or use pretrained=False."
        ) from err


def resolve_backbone(backbone: str | nn.Module, pretrained: bool = False) -> tuple[nn.Module, int]:
    """``(module, C)`` for a backbone name or module (which must set ``.out_channels``).

    Raises:
        ValueError: a module without an int ``.out_channels`` (or see :func:`build_backbone`).
    """
    module = build_backbone(backbone, pretrained) if isinstance(backbone, str) else backbone
    channels = getattr(module, "out_channels", None)
    if not isinstance(channels, int):
        raise ValueError("a backbone module must say its feature channels in `.out_channels`.")
    return module, channels
