"""RA-CNN: the recurrent attention CNN of Fu, Zheng and Mei (CVPR 2017).

"Look closer to see better": a classification network looks at the image
(scale 1); an **attention proposal network** (APN) on its last feature map
proposes a square, which is cropped and zoomed to the input size of the next
scale's network, and so on for ``S`` scales (3 in the paper). Every scale
classifies on its own; a fused classifier reads the concatenated descriptors
of all scales.

**Boxes.** An attention box is ``(t_x, t_y, t_l)``: the centre as a fraction of
the width and the height from the top-left corner, and the half-side as a
fraction of the side (a square on a square image). An APN's box is in the
coordinates of the input of its own scale; :func:`compose_boxes` maps it into
the coordinates of the original image, where it is called the scale's
*region*.

**Cropping** (:func:`attention_crop`), two ways:

* ``"grid"`` (the default): an affine sampling grid over the box (the grid
  :func:`torch.nn.functional.affine_grid` makes, built here from one row and
  one column of positions) read with bilinear
  :func:`~torch.nn.functional.grid_sample`. The crop is a differentiable
  function of the box wherever the image is not constant, so the box receives
  exact gradients.
* ``"mask"``: the paper's boxcar ``M(x, y) = [h(x - t_x + t_l) - h(x - t_x -
  t_l)] [h(y - t_y + t_l) - h(y - t_y - t_l)]`` with the logistic ``h(x) = 1 /
  (1 + exp(-k x))``, ``k = 10`` and ``x`` in pixels; the image is multiplied by
  ``M`` and the box's square is zoomed with the same bilinear sampler, at a box
  that receives no gradient. The box then learns only through ``M``, whose
  derivative vanishes farther than about a pixel from the box's edges (the
  paper's own layer used a hand-made backward pass instead).

**Bounds** (:class:`BoxBounds`). Whatever the APN outputs, its half-side lies in
``[min_half, max_half]`` and its square inside the image: a sigmoid gives ``u
in (0, 1)^3``, then ``t_l = min_half + (max_half - min_half) u_l`` and ``t_x =
t_l + (1 - 2 t_l) u_x`` (and the same for ``t_y``). The official layer bounded
the side below at 1 % of the image; ports that let the box collapse to a point
or grow to the whole image did not learn to zoom.

Differences from the paper, all documented options: every scale is cropped
from the original image through its composed region (``chain="image"``, one
interpolation; ``chain="scale"`` crops each scale from the previous scale's
input, as the paper does), the classification heads are global average pooling
and one linear layer on the backbone's map (the paper uses VGG-19's fully
connected layers), and the fused classifier learns on detached descriptors, so
each scale network learns from its own loss only.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import WeightsEnum

from hmglib.checks import check_choice, check_images, check_int, check_real
from hmglib.hierarchy import LabelTree
from hmglib.models.backbones import input_channels, resolve_backbone

__all__ = [
    "attention_crop", "boxcar_mask", "compose_boxes", "boxes_to_xyxy", "square_around",
    "BoxBounds", "APN", "RACNN", "RACNNOutput", "racnn", "CROP_METHODS", "CHAINS", "PHASES",
]

#: The ways :func:`attention_crop` crops: ``"grid"`` (exact box gradients) and
#: ``"mask"`` (the paper's boxcar mask).
CROP_METHODS = ("grid", "mask")
#: Where scale ``s + 1`` is cropped from: the original ``"image"`` (through the
#: composed region) or the previous ``"scale"``'s input (the paper).
CHAINS = ("image", "scale")
#: What :meth:`RACNN.set_phase` can train (see there).
PHASES = ("all", "classifiers", "apns", "scale", "apn-init")


# ------------------------------------------------------------------ boxes
def _check_boxes(owner: str, boxes: object, batch: int | None,
                 name: str = "boxes") -> torch.Tensor:
    if not isinstance(boxes, torch.Tensor) or not boxes.is_floating_point():
        raise TypeError(f"{owner}: {name} must be a float tensor (B, 3) of (t_x, t_y, t_l), "
                        f"got {type(boxes).__name__}.")
    if boxes.dim() != 2 or boxes.shape[1] != 3 or batch not in (None, boxes.shape[0]):
        want = "B" if batch is None else batch
        raise ValueError(f"{owner}: {name} has shape {tuple(boxes.shape)}; expected ({want}, 3): "
                         "one (t_x, t_y, t_l) per image, in fractions of the image side.")
    if not bool(torch.isfinite(boxes).all()):
        raise ValueError(f"{owner}: {name} holds NaN or inf; check the network that made them.")
    if bool((boxes[:, 2] <= 0).any()):
        raise ValueError(f"{owner}: every half-side t_l must be > 0, got min "
                         f"{float(boxes[:, 2].min()):g}; bound the boxes (BoxBounds).")
    return boxes


def _out_hw(owner: str, out_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(out_size, int) and not isinstance(out_size, bool):
        return check_int(owner, "out_size", out_size, 1), check_int(owner, "out_size", out_size, 1)
    if isinstance(out_size, tuple) and len(out_size) == 2:
        return (check_int(owner, "out_size[0]", out_size[0], 1),
                check_int(owner, "out_size[1]", out_size[1], 1))
    raise TypeError(f"{owner}: out_size must be an int or (height, width), got {out_size!r}.")


def _grid(boxes: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """The sampling grid ``(B, h, w, 2)`` of the boxes' squares in ``[-1, 1]`` units.

    The same grid as :func:`~torch.nn.functional.affine_grid` with the scaling
    and translation ``[[2 t_l, 0, 2 t_x - 1], [0, 2 t_l, 2 t_y - 1]]``
    (``align_corners=False``), built from one row of ``x`` and one column of ``y``
    positions, because an axis-aligned box needs no more (a quarter of the
    cost of ``affine_grid`` at the CPU profile's sizes)."""
    h, w = out_hw
    tx, ty, tl = (t[:, None] for t in boxes.unbind(1))  # (B, 1) each
    u = (2 * torch.arange(w, dtype=boxes.dtype, device=boxes.device) + 1) / w - 1  # (w,)
    v = (2 * torch.arange(h, dtype=boxes.dtype, device=boxes.device) + 1) / h - 1  # (h,)
    xs = (2 * tx - 1) + 2 * tl * u  # (B, w)
    ys = (2 * ty - 1) + 2 * tl * v  # (B, h)
    return torch.stack([xs[:, None, :].expand(-1, h, -1),
                        ys[:, :, None].expand(-1, -1, w)], dim=-1)  # (B, h, w, 2)


def boxcar_mask(boxes: torch.Tensor, height: int, width: int,
                sharpness: float = 10.0) -> torch.Tensor:
    """The paper's attention mask ``M``: a soft boxcar, 1 inside each box, 0 outside.

    ``M[b, y, x] = [h(x - x0) - h(x - x1)] [h(y - y0) - h(y - y1)]`` at the pixel
    centres ``x = j + 0.5``, with ``h(u) = 1 / (1 + exp(-k u))``, ``k =
    sharpness`` and the box's edges ``x0 = (t_x - t_l) W``, ``x1 = (t_x + t_l) W``
    (the same in ``y`` with ``H``), all in pixels.

    Args:
        boxes: ``(B, 3)`` float ``(t_x, t_y, t_l)``, fractions of the image side.
        height, width: the image's size in pixels.
        sharpness: ``k`` in 1 / pixel (10 in the paper); larger is sharper.

    Returns:
        ``(B, H, W)`` in ``[0, 1]``, differentiable in ``boxes``.
    """
    boxes = _check_boxes("boxcar_mask", boxes, None)
    k = check_real("boxcar_mask", "sharpness", sharpness, 0.0, closed_low=False)
    tx, ty, tl = boxes.unbind(1)  # (B,) each
    xs = torch.arange(width, dtype=boxes.dtype, device=boxes.device) + 0.5  # (W,)
    ys = torch.arange(height, dtype=boxes.dtype, device=boxes.device) + 0.5  # (H,)

    def edge(u: torch.Tensor, centre: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
        lo, hi = (centre - half)[:, None], (centre + half)[:, None]  # (B, 1)
        return torch.sigmoid(k * (u - lo)) - torch.sigmoid(k * (u - hi))  # (B, len(u))

    mx = edge(xs, tx * width, tl * width)  # (B, W)
    my = edge(ys, ty * height, tl * height)  # (B, H)
    return my[:, :, None] * mx[:, None, :]  # (B, H, W)


def attention_crop(images: torch.Tensor, boxes: torch.Tensor, out_size: int | tuple[int, int],
                   method: str = "grid", sharpness: float = 10.0) -> torch.Tensor:
    """Crop each image to its attention box and zoom the crop to ``out_size``.

    Both methods read the box's square with the same bilinear sampler
    (one sample at the centre of each output pixel, ``align_corners=False``,
    edge pixels repeated outside the image); they differ in how the box is
    learnt:

    * ``"grid"``: the sampling positions depend on the box, so the crop's
      gradient with respect to the box is exact (the image's bilinear slope at
      every sample).
    * ``"mask"``: the paper's ``images * M`` (:func:`boxcar_mask`) is sampled at a
      detached box; the box learns only through ``M``.

    Args:
        images: ``(B, C, H, W)`` float (any range; normalised or not).
        boxes: ``(B, 3)`` float ``(t_x, t_y, t_l)``: centre and half-side as
            fractions of the image's width and height (on a non-square image
            the region has the image's aspect ratio). A box that reaches out of
            the image is allowed; the edge pixels fill the outside.
        out_size: the crop's side ``s`` (or ``(h, w)``) in pixels.
        method: ``"grid"`` or ``"mask"`` (:data:`CROP_METHODS`).
        sharpness: ``k`` of the mask (1 / pixel), ``"mask"`` only.

    Returns:
        ``(B, C, s, s)`` (or ``(B, C, h, w)``), the same dtype as ``images``.

    Raises:
        TypeError, ValueError: malformed images or boxes, a half-side ``<= 0``,
            NaN in the boxes, an unknown method (the message names the input).
    """
    check_images("attention_crop", images, channels=None)
    check_choice("attention_crop", "method", method, CROP_METHODS)
    boxes = _check_boxes("attention_crop", boxes, images.shape[0])
    out_hw = _out_hw("attention_crop", out_size)
    h, w = images.shape[-2:]
    boxes = boxes.to(images.dtype)
    if method == "mask":
        images = images * boxcar_mask(boxes, h, w, sharpness)[:, None]  # (B, C, H, W)
        boxes = boxes.detach()
    grid = _grid(boxes, out_hw)  # (B, s, s, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                         align_corners=False)  # (B, C, s, s)


def compose_boxes(region: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """A box given inside a region, in the coordinates of the region's image.

    ``region`` spans ``[c - l, c + l]`` of the image (per axis); a box ``(t_x,
    t_y, t_l)`` inside it covers ``c_x' = c_x - l + 2 l t_x``, ``l' = 2 l t_l``.
    The whole image is the region ``(0.5, 0.5, 0.5)``.

    Args:
        region: ``(B, 3)`` float, the parent's region in image coordinates.
        box: ``(B, 3)`` float, the child box in the parent's coordinates.

    Returns:
        ``(B, 3)``: the child's region in image coordinates.
    """
    cx, cy, half = region.unbind(1)  # (B,) each
    tx, ty, tl = box.unbind(1)
    return torch.stack([cx - half + 2 * half * tx, cy - half + 2 * half * ty,
                        2 * half * tl], 1)  # (B, 3)


def boxes_to_xyxy(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Attention boxes ``(B, 3)`` ``(t_x, t_y, t_l)`` → float pixel ``xyxy``
    ``(B, 4)`` on an ``H x W`` image (the book's ground-truth box convention)."""
    tx, ty, tl = boxes.unbind(-1)
    return torch.stack([(tx - tl) * width, (ty - tl) * height,
                        (tx + tl) * width, (ty + tl) * height], -1)  # (B, 4)


def square_around(xyxy: torch.Tensor, height: int, width: int, margin: float = 1.0,
                  bounds: BoxBounds | None = None) -> torch.Tensor:
    """The attention box of the square around pixel boxes: centred on each box,
    half-side ``margin`` times half its longer side, bounded by ``bounds`` (if
    given) and moved inside the image.

    Args:
        xyxy: ``(B, 4)`` float pixel boxes.
        height, width: the image's size in pixels.
        margin: ``>= 1`` scales the square around the box.
        bounds: the half-side range, as an APN would be bounded.

    Returns:
        ``(B, 3)`` float ``(t_x, t_y, t_l)``.
    """
    x0, y0, x1, y1 = xyxy.float().unbind(-1)
    half = margin * torch.maximum((x1 - x0) / width, (y1 - y0) / height) / 2  # (B,)
    lo, hi = (0.0, 0.5) if bounds is None else (bounds.min_half, bounds.max_half)
    half = half.clamp(lo, hi)
    cx = ((x0 + x1) / 2 / width).clamp(half, 1 - half)
    cy = ((y0 + y1) / 2 / height).clamp(half, 1 - half)
    return torch.stack([cx, cy, half], -1)  # (B, 3)


@dataclass(frozen=True)
class BoxBounds:
    """The range of an APN's boxes: half-side in ``[min_half, max_half]``, the
    square inside the image.

    Attributes:
        min_half: the smallest half-side, a fraction of the side in ``(0, 0.5)``
            (0.1: a crop of a fifth of the side, a 5x zoom at most).
        max_half: the largest half-side, in ``[min_half, 0.5]`` (0.4: never the
            whole image, where there is nothing to zoom).
    """

    min_half: float = 0.1
    max_half: float = 0.4

    def __post_init__(self) -> None:
        check_real("BoxBounds", "min_half", self.min_half, 0.0, 0.5, closed_low=False,
                   closed_high=False)
        check_real("BoxBounds", "max_half", self.max_half, self.min_half, 0.5,
                   hint="at least min_half, at most half the side")

    def from_unit(self, u: torch.Tensor) -> torch.Tensor:
        """``(B, 3)`` in ``[0, 1]`` → ``(B, 3)`` boxes inside the bounds and the image."""
        ux, uy, ul = u.unbind(1)
        tl = self.min_half + (self.max_half - self.min_half) * ul  # (B,)
        return torch.stack([tl + (1 - 2 * tl) * ux, tl + (1 - 2 * tl) * uy, tl], 1)  # (B, 3)


# ------------------------------------------------------------------ networks
class APN(nn.Module):
    """The attention proposal network: ``M → (t_x, t_y, t_l)``.

    The official layout: a 2 x 2 max-pool of the scale's last feature map, a
    fully connected layer with tanh, a fully connected layer to 3 numbers and a
    sigmoid, mapped into ``bounds`` (:meth:`BoxBounds.from_unit`).

    Args:
        channels: ``C`` of the feature map.
        map_size: its ``(h, w)``.
        hidden: width of the hidden layer (1024 in the paper).
        bounds: the box range.

    Shapes:
        ``(B, C, h, w)`` → ``(B, 3)`` boxes within ``bounds``.
    """

    def __init__(self, channels: int, map_size: tuple[int, int], hidden: int = 1024,
                 bounds: BoxBounds | None = None) -> None:
        super().__init__()
        self.bounds = bounds or BoxBounds()
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        pooled = math.ceil(map_size[0] / 2) * math.ceil(map_size[1] / 2)
        self.fc1 = nn.Linear(channels * pooled, check_int("APN", "hidden", hidden, 1))
        self.fc2 = nn.Linear(hidden, 3)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` → ``(B, 3)`` boxes ``(t_x, t_y, t_l)`` within the bounds."""
        x = self.pool(fmap).flatten(1)  # (B, C * ceil(h/2) * ceil(w/2))
        u = torch.sigmoid(self.fc2(torch.tanh(self.fc1(x))))  # (B, 3) in (0, 1)
        return self.bounds.from_unit(u)  # (B, 3)


@dataclass
class RACNNOutput:
    """What an :class:`RACNN` returns.

    Attributes:
        scale_logits: ``(B, S, K)``: the logits of each scale's classifier.
        fused_logits: ``(B, K)``: the fused classifier's (``None`` when the forward
            stops before the last scale, see :meth:`RACNN.set_phase`).
        boxes: ``(B, S - 1, 3)``: each APN's box, in the coordinates of its own
            scale's input.
        regions: ``(B, S, 3)``: the region of the original image each scale sees
            (scale 1: ``(0.5, 0.5, 0.5)``, the whole image).
    """

    scale_logits: torch.Tensor
    fused_logits: torch.Tensor | None
    boxes: torch.Tensor
    regions: torch.Tensor

    #: not a hierarchical output (the metrics of the HRN chapters do not apply)
    sigmoid_nodes: ClassVar[bool] = False

    @property
    def scale_probabilities(self) -> torch.Tensor:
        """``(B, S, K)`` in ``[0, 1]``: the softmax of each scale's logits."""
        return torch.softmax(self.scale_logits, dim=-1)


class RACNN(nn.Module):
    """RA-CNN with ``S`` scales: a classification network per scale, an APN
    between consecutive scales and a fused classifier.

    Args:
        num_classes: ``K``, the classes (the species of a tree).
        num_scales: ``S >= 1`` (3 in the paper).
        backbone: a name for :func:`~hmglib.models.backbones.build_backbone`
            (``"vgg19"`` is the paper's; ``"small_cnn"`` the CPU profile's) or a
            module with ``.out_channels``; every scale gets its own copy.
        weights: the backbone's weights (as in ``build_backbone``; ``None`` for a
            module).
        input_sizes: the side of each scale's input, ``S`` ints (the paper:
            448, 224, 224). Scale 1 resizes the images to ``input_sizes[0]`` when
            they have another size.
        apn_hidden: width of the APNs' hidden layer (1024 in the paper).
        crop: ``"grid"`` or ``"mask"`` (:func:`attention_crop`).
        chain: ``"image"`` (crop every scale from the original images) or
            ``"scale"`` (from the previous scale's input, as the paper).
        bounds: the APNs' box range (:class:`BoxBounds`).
        sharpness: the mask's ``k`` for ``crop="mask"``.

    Forward:
        ``(B, 3, H, W)`` float → :class:`RACNNOutput`.
    """

    def __init__(self, num_classes: int, num_scales: int = 3, *,
                 backbone: str | nn.Module, weights: WeightsEnum | str | None = None,
                 input_sizes: tuple[int, ...] = (448, 224, 224), apn_hidden: int = 1024,
                 crop: str = "grid", chain: str = "image", bounds: BoxBounds | None = None,
                 sharpness: float = 10.0) -> None:
        super().__init__()
        self.num_classes = check_int("RACNN", "num_classes", num_classes, 2)
        self.num_scales = check_int("RACNN", "num_scales", num_scales, 1)
        sizes = tuple(input_sizes)
        if len(sizes) != self.num_scales:
            raise ValueError(f"RACNN: input_sizes={input_sizes!r} has {len(sizes)} sizes for "
                             f"num_scales={num_scales}; give one input side per scale.")
        self.input_sizes = tuple(check_int("RACNN", f"input_sizes[{i}]", s, 8)
                                 for i, s in enumerate(sizes))
        self.crop = check_choice("RACNN", "crop", crop, CROP_METHODS)
        self.chain = check_choice("RACNN", "chain", chain, CHAINS)
        self.sharpness = check_real("RACNN", "sharpness", sharpness, 0.0, closed_low=False)
        self.bounds = bounds or BoxBounds()
        first, channels = resolve_backbone(backbone, weights)
        copies = [first] + [_build_copy(backbone, weights, first)
                            for _ in range(self.num_scales - 1)]
        self.backbones = nn.ModuleList(copies)
        self.heads = nn.ModuleList(nn.Linear(channels, num_classes) for _ in copies)
        self.fuse = nn.Linear(channels * self.num_scales, num_classes)
        self.in_channels = input_channels(first)
        self.apns = nn.ModuleList(
            APN(channels, _map_size(copies[s], self.in_channels or 3, self.input_sizes[s]),
                apn_hidden, self.bounds)
            for s in range(self.num_scales - 1))
        self.out_channels = channels
        self.phase, self.phase_scale = "all", None
        self.set_phase("all")

    # -------------------------------------------------------------- phases
    def set_phase(self, phase: str, scale: int | None = None) -> RACNN:
        """Choose what trains (``requires_grad``) and how far the forward runs.

        * ``"all"``: everything trains end to end (not the paper's schedule).
        * ``"classifiers"``: every scale's network and head and the fused
          classifier; the APNs are frozen and their boxes detached.
        * ``"apns"``: the APNs only; the classifiers are frozen and kept in eval
          mode (their BatchNorm statistics do not move), and the gradient flows
          through them into the boxes.
        * ``"scale"``: the network and head of scale ``scale`` (0-based) only; the
          forward stops after that scale, with detached boxes.
        * ``"apn-init"``: APN ``scale`` only; the forward stops after that
          scale's APN (the APN's initialisation, :mod:`hmglib.alternation`).

        Returns:
            The model (for chaining).

        Raises:
            ValueError: an unknown phase, or a scale out of range or missing.
        """
        check_choice("RACNN.set_phase", "phase", phase, PHASES)
        if phase in ("scale", "apn-init"):
            top = self.num_scales if phase == "scale" else self.num_scales - 1
            if scale is None or not isinstance(scale, int) or not 0 <= scale < top:
                raise ValueError(f"RACNN.set_phase('{phase}') needs scale in 0..{top - 1}, got "
                                 f"{scale!r}.")
        elif scale is not None:
            raise ValueError(f"RACNN.set_phase('{phase}') takes no scale (got {scale}).")
        trains = self._trainable(phase, scale)
        for name, module in self._groups().items():
            for p in module.parameters():
                p.requires_grad_(name in trains)
        self.phase, self.phase_scale = phase, scale
        return self.train(self.training)

    def _groups(self) -> dict[str, nn.Module]:
        groups: dict[str, nn.Module] = {"fuse": self.fuse}
        for s in range(self.num_scales):
            groups[f"scale{s}"] = nn.ModuleList([self.backbones[s], self.heads[s]])
        for s in range(self.num_scales - 1):
            groups[f"apn{s}"] = self.apns[s]
        return groups

    def _trainable(self, phase: str, scale: int | None) -> set[str]:
        scales = {f"scale{s}" for s in range(self.num_scales)}
        apns = {f"apn{s}" for s in range(self.num_scales - 1)}
        return {"all": scales | apns | {"fuse"}, "classifiers": scales | {"fuse"},
                "apns": apns, "scale": {f"scale{scale}"},
                "apn-init": {f"apn{scale}"}}[phase]

    def train(self, mode: bool = True) -> RACNN:
        """Train mode for what the phase trains; frozen networks stay in eval mode."""
        super().train(mode)
        if mode:
            trains = self._trainable(self.phase, self.phase_scale)
            for name, module in self._groups().items():
                if name not in trains:
                    module.eval()
        return self

    def _depth(self) -> tuple[int, bool]:
        """``(scales the forward runs, whether it runs the APN after the last)``."""
        if self.phase == "scale":
            return self.phase_scale + 1, False
        if self.phase == "apn-init":
            return self.phase_scale + 1, True
        return self.num_scales, False

    # -------------------------------------------------------------- forward
    def forward(self, images: torch.Tensor) -> RACNNOutput:
        """``(B, 3, H, W)`` float → :class:`RACNNOutput` (see the class)."""
        check_images("RACNN", images, self.in_channels)
        b = images.shape[0]
        depth, last_apn = self._depth()
        detach = self.phase in ("classifiers", "scale")
        size0 = self.input_sizes[0]
        x = images
        if tuple(images.shape[-2:]) != (size0, size0):
            x = F.interpolate(images, size=(size0, size0), mode="bilinear",
                              align_corners=False, antialias=True)  # (B, 3, s1, s1)
        region = images.new_tensor([0.5, 0.5, 0.5]).expand(b, 3)  # (B, 3)
        logits, descriptors, boxes, regions = [], [], [], [region]
        for s in range(depth):
            fmap = self.backbones[s](x)  # (B, C, h, w)
            desc = fmap.mean(dim=(2, 3))  # (B, C)
            descriptors.append(desc)
            logits.append(self.heads[s](desc))  # (B, K)
            if s == self.num_scales - 1 or (s == depth - 1 and not last_apn):
                break
            box = self.apns[s](fmap)  # (B, 3)
            if detach:
                box = box.detach()
            boxes.append(box)
            region = compose_boxes(region, box)  # (B, 3)
            if s == depth - 1:
                break
            regions.append(region)
            source, where = (images, region) if self.chain == "image" else (x, box)
            size = self.input_sizes[s + 1]
            x = attention_crop(source, where, size, self.crop, self.sharpness)  # (B, 3, s, s)
        fused = None
        if len(descriptors) == self.num_scales:
            fused = self.fuse(torch.cat([d.detach() for d in descriptors], 1))  # (B, K)
        return RACNNOutput(
            scale_logits=torch.stack(logits, 1),  # (B, S, K)
            fused_logits=fused,
            boxes=torch.stack(boxes, 1) if boxes else images.new_zeros(b, 0, 3),  # (B, S-1, 3)
            regions=torch.stack(regions, 1))  # (B, S, 3)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, num_scales={self.num_scales}, "
                f"input_sizes={self.input_sizes}, crop={self.crop!r}, chain={self.chain!r}, "
                f"bounds={self.bounds}, phase={self.phase!r}")


def _build_copy(backbone: str | nn.Module, weights: WeightsEnum | str | None,
               first: nn.Module) -> nn.Module:
    """Another scale's network: built again from the name, or a deep copy of the
    module (so that the scales do not share weights)."""
    if isinstance(backbone, str):
        return resolve_backbone(backbone, weights)[0]
    return copy.deepcopy(first)


@torch.no_grad()
def _map_size(backbone: nn.Module, channels: int, side: int) -> tuple[int, int]:
    """The ``(h, w)`` of the backbone's map for a ``side x side`` input (one
    forward of a zero image in eval mode; the train/eval mode is restored)."""
    was = backbone.training
    backbone.eval()
    try:
        shape = backbone(torch.zeros(1, channels, side, side)).shape
    finally:
        backbone.train(was)
    return int(shape[-2]), int(shape[-1])


def racnn(tree: LabelTree, *, backbone: str | nn.Module,
          weights: WeightsEnum | str | None = None, num_scales: int = 3,
          input_sizes: tuple[int, ...] = (448, 224, 224), apn_hidden: int = 1024,
          crop: str = "grid", chain: str = "image", bounds: BoxBounds | None = None,
          sharpness: float = 10.0) -> RACNN:
    """An :class:`RACNN` over the species of ``tree`` (``K = tree.level_sizes[-1]``),
    as :func:`~hmglib.models.registry.get_model` builds it (``get_model("racnn",
    tree, backbone=..., ...)``); the arguments are :class:`RACNN`'s."""
    return RACNN(tree.level_sizes[-1], num_scales, backbone=backbone, weights=weights,
                 input_sizes=input_sizes, apn_hidden=apn_hidden, crop=crop, chain=chain,
                 bounds=bounds, sharpness=sharpness)
