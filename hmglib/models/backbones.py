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
``small_cnn``   128 or 64  8                                         the CPU profile
==============  =========  ========================================  ===========

``small_cnn`` has 128 channels when randomly initialised (``width=32``) and 64
with its pretrained weights, which were trained at ``width=16``
(``build_backbone("small_cnn", width=16)`` builds that width without them).

Pretrained weights are opt-in and chosen torchvision-style, with
``weights=``: ``None`` (random initialisation, the default), a member of the
backbone's weights enum, or its name as a string (``"DEFAULT"``,
``"IMAGENET1K_V1"``, ``"HIERSHAPES_V1"``, ...):

* the torchvision backbones take torchvision's ImageNet weights
  (``ResNet50_Weights`` and so on; the papers used ``"IMAGENET1K_V1"``, while
  torchvision's ``"DEFAULT"`` is its newest set). torchvision downloads them
  once into its cache (``torch.hub.get_dir()``); without network and without a
  cached copy, the call fails with an error that says so.
* ``small_cnn`` takes :class:`SmallCNN_Weights`: the book's CPU analog of
  ImageNet pretraining, a :class:`SmallCNN` trained on the ``"pretraining"``
  HierShapes world, whose 108 species share no class and no body shape with the
  book's experiments (colours and markings are shared, as ImageNet shares colours
  and textures with birds). The weight file ships inside the package
  (no network, ever) and is checked against the sha256 in its metadata; the
  script :mod:`hmglib.pretraining` re-creates both.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import PurePath
from typing import Any
from urllib.error import URLError

import torch
import torchvision
from torch import nn
from torchvision.models import Weights, WeightsEnum

__all__ = [
    "BACKBONES",
    "build_backbone",
    "resolve_backbone",
    "input_channels",
    "SmallCNN",
    "SmallCNN_Weights",
    "small_cnn",
    "SMALL_CNN_WEIGHTS_FILE",
]

#: The file name of the shipped :class:`SmallCNN` weights, in ``hmglib/models/weights/``;
#: their metadata lie beside it in the JSON of the same stem.
SMALL_CNN_WEIGHTS_FILE = "small_cnn_hiershapes_v1.pt"

_RECREATE = ("re-create the file and its JSON with `python -m hmglib.pretraining` "
             "(or reinstall hmglib)")


class SmallCNN(nn.Module):
    """Three conv blocks (conv-BN-ReLU-maxpool), for the CPU profile.

    ``(B, 3, H, W)`` → ``(B, 4 * width, H/8, W/8)``; about 0.1 M parameters at
    ``width=32`` (``.out_channels = 128``), 0.025 M at ``width=16`` (64).
    Randomly initialised; :func:`small_cnn` builds one with pretrained weights.
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
        """``(B, 3, H, W)`` → ``(B, 4 * width, H/8, W/8)``."""
        return self.features(x)


def _weights_dir() -> Traversable:
    """The folder of the weight files inside the installed package."""
    return resources.files(__package__).joinpath("weights")


def _meta_name(file: str) -> str:
    """The metadata JSON beside a weight file: same stem, ``.json``."""
    return PurePath(file).stem + ".json"


def _read_meta(file: str) -> dict[str, Any]:
    """The metadata JSON of a shipped weight file, or a stub whose ``sha256`` is
    ``None`` when it is missing (loading then says how to re-create it)."""
    try:
        meta = json.loads(_weights_dir().joinpath(_meta_name(file)).read_text())
    except (OSError, ValueError):
        return {"file": file, "sha256": None}
    return {**meta, "file": file}


class _UnitRange(nn.Module):
    """The preprocessing the :class:`SmallCNN` weights expect: images as float32 in
    ``[0, 1]`` (``uint8`` images are divided by 255), no normalisation and no
    resizing (the network is fully convolutional; it was trained at the image
    size in ``meta["data"]``). ``(..., 3, H, W)`` → same shape, float32."""

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """``(..., 3, H, W)`` uint8 or float → ``(..., 3, H, W)`` float32 in ``[0, 1]``."""
        if img.dtype == torch.uint8:
            return img.float() / 255.0
        return img.float()


class SmallCNN_Weights(WeightsEnum):  # noqa: N801 - torchvision's naming
    """Pretrained weights of :class:`SmallCNN`, torchvision-style.

    ``HIERSHAPES_V1`` (also ``DEFAULT``): a ``SmallCNN(width=16)`` trained with a
    global-average-pool + linear head to tell the 108 species of the
    ``"pretraining"`` HierShapes world apart (cross-entropy); only the backbone
    is kept. That world's bodies (rectangle, plus, hexagon) are none of the
    book's, so no class of it is one of the book's; its colours and markings are
    the book's, as ImageNet's colours and textures are those of birds
    (:mod:`hmglib.pretraining` says why and what a fully disjoint world gave).

    ``.meta`` (read at import from the JSON beside the weight file) holds
    ``data`` (world, cue set, image size, object scale, clutter, images per
    species, seed), ``categories`` (the 108 species names, in the order of the
    head that was trained), ``width``, ``epochs``, ``accuracy`` (held-out species
    accuracy in %), ``num_params``, ``recipe`` and ``sha256`` (of the file).
    ``.transforms()`` builds the preprocessing: float32 in ``[0, 1]``, no
    normalisation. ``.url`` is where the file lies inside the package: nothing is
    ever downloaded.
    """

    HIERSHAPES_V1 = Weights(
        url=f"hmglib/models/weights/{SMALL_CNN_WEIGHTS_FILE}",
        transforms=_UnitRange,
        meta=_read_meta(SMALL_CNN_WEIGHTS_FILE),
    )
    DEFAULT = HIERSHAPES_V1

    def get_state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """The state dict of :class:`SmallCNN` (an ordered dict of cpu tensors:
        float32 weights and BatchNorm statistics, int64 batch counters), read from
        the package and checked against ``meta["sha256"]``.

        Arguments (torchvision's ``progress`` and ``check_hash``) are accepted and
        ignored: nothing is downloaded and the sha256 is always checked.

        Raises:
            FileNotFoundError: the file or its metadata JSON is missing.
            RuntimeError: the file's sha256 differs from ``meta["sha256"]``.
        """
        file = self.meta["file"]
        path = _weights_dir().joinpath(file)
        expected = self.meta.get("sha256")
        if expected is None:
            raise FileNotFoundError(
                f"the metadata {_meta_name(file)} of the weights {self!r} are missing from "
                f"{_weights_dir()}; {_RECREATE}.")
        try:
            data = path.read_bytes()
        except FileNotFoundError as err:
            raise FileNotFoundError(f"the weights file {path} is missing; {_RECREATE}.") from err
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected:
            raise RuntimeError(
                f"the weights file {path} has sha256 {digest}, but {_meta_name(file)} says "
                f"{expected}: the file is damaged or does not belong to its metadata; "
                f"{_RECREATE}.")
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _resolve_weights(name: str, enum: type[WeightsEnum], weights: Any) -> WeightsEnum | None:
    """``weights`` (``None``, a member of ``enum`` or its name) as a member of ``enum``."""
    if weights is None:
        return None
    names = list(enum.__members__)
    if isinstance(weights, bool):
        raise ValueError(
            f"weights={weights!r}: weights are chosen by name, not by a flag; pass one of "
            f"{names} for backbone '{name}' (or weights=None).")
    if isinstance(weights, str):
        key = weights.removeprefix(f"{enum.__name__}.")
        if key not in enum.__members__:
            raise ValueError(f"unknown weights {weights!r} for backbone '{name}'; choose one "
                             f"of {names} ({enum.__name__}) or weights=None.")
        return enum[key]
    if not isinstance(weights, enum):
        raise ValueError(f"weights {weights!r} are not weights of backbone '{name}'; pass a "
                         f"member of {enum.__name__} or one of {names}.")
    return weights


def small_cnn(*, weights: SmallCNN_Weights | str | None = None,
              width: int | None = None) -> SmallCNN:
    """A :class:`SmallCNN`, torchvision-style: ``(B, 3, H, W)`` → ``(B, 4 * width, H/8, W/8)``.

    Args:
        weights: ``None`` (random initialisation), a :class:`SmallCNN_Weights`
            member or its name (``"DEFAULT"``, ``"HIERSHAPES_V1"``).
        width: channels of the first block (``> 0``). Default: the weights' width
            (16 for ``HIERSHAPES_V1``), or 32 without weights.

    Returns:
        The network in train mode; with weights, it holds exactly the shipped tensors.

    Raises:
        ValueError: unknown weights, or a ``width`` that contradicts the weights'.
        FileNotFoundError, RuntimeError: see :meth:`SmallCNN_Weights.get_state_dict`.
    """
    w = _resolve_weights("small_cnn", SmallCNN_Weights, weights)
    if w is None:
        return SmallCNN() if width is None else SmallCNN(width=width)
    trained = w.meta.get("width")
    if width is not None and trained is not None and width != trained:
        raise ValueError(f"width={width} contradicts the weights {w!r}, which were trained "
                         f"at width={trained}; leave width out (or pass width={trained}).")
    state = w.get_state_dict()  # raises first if the file or its metadata are missing
    model = SmallCNN(width=int(w.meta["width"]))
    model.load_state_dict(state)
    return model


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


#: name → (builder taking a weights member or ``None``, that backbone's weights enum).
BACKBONES: dict[str, tuple[Callable[[WeightsEnum | None], nn.Module], type[WeightsEnum]]] = {
    "resnet50": (lambda w: _resnet(torchvision.models.resnet50, w),
                 torchvision.models.ResNet50_Weights),
    "resnet101": (lambda w: _resnet(torchvision.models.resnet101, w),
                  torchvision.models.ResNet101_Weights),
    "resnet18": (lambda w: _resnet(torchvision.models.resnet18, w),
                 torchvision.models.ResNet18_Weights),
    "vgg19": (_vgg19, torchvision.models.VGG19_Weights),
    "small_cnn": (lambda w: small_cnn(weights=w), SmallCNN_Weights),
}


def build_backbone(name: str, weights: WeightsEnum | str | None = None, *,
                   width: int | None = None) -> nn.Module:
    """A feature extractor ``(B, 3, H, W)`` → ``(B, C, h, w)`` with ``.out_channels = C``.

    Args:
        name: one of ``resnet50``, ``resnet101``, ``resnet18``, ``vgg19``, ``small_cnn``.
        weights: ``None`` (random initialisation), a member of the backbone's
            weights enum (``torchvision.models.ResNet50_Weights``, ...,
            :class:`SmallCNN_Weights`) or its name: ``"DEFAULT"``,
            ``"IMAGENET1K_V1"`` (torchvision's original ImageNet weights, as the
            papers used; needs network once, or a cached copy), ``"HIERSHAPES_V1"``
            (``small_cnn``; shipped in the package).
        width: ``small_cnn`` only: the channels of its first block (see
            :func:`small_cnn`); the torchvision backbones have fixed widths.

    Raises:
        ValueError: unknown name, or weights that are not the backbone's (the
            message lists the valid names), or ``width`` for a torchvision backbone.
        RuntimeError: torchvision weights asked for but neither cached nor downloadable.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone '{name}'; choose one of {sorted(BACKBONES)}.")
    make, enum = BACKBONES[name]
    w = _resolve_weights(name, enum, weights)
    if width is not None:
        if name != "small_cnn":
            raise ValueError(f"width={width} applies to the 'small_cnn' backbone only; "
                             f"'{name}' has a fixed width: leave width out.")
        return small_cnn(weights=w, width=width)
    if w is None or isinstance(w, SmallCNN_Weights):  # nothing to download
        return make(w)
    try:
        return make(w)
    except (URLError, OSError, ConnectionError) as err:
        raise RuntimeError(
            f"pretrained weights for '{name}' ({w!r}) are not in torchvision's cache "
            f"({torch.hub.get_dir()}/checkpoints) and could not be downloaded ({err}). "
            "Run once with network access (e.g. in Colab), copy the file into that folder, "
            "or use weights=None."
        ) from err


def input_channels(backbone: nn.Module) -> int | None:
    """The channels a backbone's first convolution takes (3 for every named
    backbone), or ``None`` when it has no :class:`~torch.nn.Conv2d`."""
    first = next((m for m in backbone.modules() if isinstance(m, nn.Conv2d)), None)
    return None if first is None else first.in_channels


def resolve_backbone(backbone: str | nn.Module,
                     weights: WeightsEnum | str | None = None) -> tuple[nn.Module, int]:
    """``(module, C)`` for a backbone name or module (which must set ``.out_channels``).

    Args:
        backbone: a name for :func:`build_backbone`, or a module mapping
            ``(B, 3, H, W)`` to ``(B, C, h, w)``.
        weights: for a name, as in :func:`build_backbone`; must be ``None`` for a module.

    Raises:
        ValueError: weights for a module, a module without an int ``.out_channels``
            (or see :func:`build_backbone`).
    """
    if isinstance(backbone, str):
        module = build_backbone(backbone, weights)
    elif weights is not None:
        raise ValueError(
            f"weights={weights!r} apply to a backbone given by name; for a module, load "
            "them into the module yourself (e.g. module.load_state_dict("
            "SmallCNN_Weights.DEFAULT.get_state_dict())) and pass weights=None.")
    else:
        module = backbone
    channels = getattr(module, "out_channels", None)
    if not isinstance(channels, int):
        raise ValueError("a backbone module must say its feature channels in `.out_channels`.")
    return module, channels
