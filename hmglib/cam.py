"""Grad-CAM that knows the hierarchy, and scores itself against ground truth.

Class activation maps (Selvaraju et al., 2017) weight the channels of one
convolutional layer's output ``A`` (``(K, h, w)``) by the gradient of one class
score ``y_c`` and keep the positive part:

``L_c = ReLU( Σ_k α_k A_k ),   α_k = mean_ij ∂y_c / ∂A_kij``

The maps come from the ``grad-cam`` package (pytorch-grad-cam); this module is
the adapter that makes it answer the book's questions without its pitfalls:

* **one map per level, scale or class.** :func:`level_cam` explains one level of
  a hierarchical model (HRN: that level's granularity-specific convolutions by
  default), :func:`scale_cam` one scale of RA-CNN (computed on the zoomed input
  the scale saw, and mapped back onto the image through its region),
  :func:`class_cam` one class of a multi-label model (SARB). The package wants a
  model that returns one tensor; each function wraps the model so that it
  returns the logits being explained (:class:`LevelLogits`, :class:`ScaleNet`,
  :class:`ClassLogits`).
* **one target per image**, always: ``classes`` holds one class per image (or
  ``None``: each image's top class). Class indices are checked against the
  level *before* the package is called: its ``with`` block swallows
  ``IndexError``, so an out-of-range class would silently return nothing.
* **no side effects.** Hooks are released in ``finally``, every module's
  train/eval mode and every parameter's ``.grad`` are restored, and maps are
  computed under ``enable_grad`` from an input that requires a gradient, so a
  frozen network or a caller's ``no_grad`` block still gets its gradients.

Every map is a ``(B, H, W)`` float32 tensor in ``[0, 1]`` on the CPU, at the
size of the images given (the package min-max scales each map to ``[0, 1]``, so
a map that is constant, zero everywhere say, becomes zero).

The scores compare a map with ground-truth boxes (float pixel ``xyxy``, pixel
``j`` spans ``[j, j + 1)``, the convention of the synthetic worlds):

* :func:`pointing_game`: is the map's maximum inside the box?
* :func:`energy_in_box`: the share of the map's mass inside the box;
* :func:`confidence_change`: the package's faithfulness metric, the change of
  the class's probability when the image is multiplied by its map;
* :func:`reference_maps`: a random map and a centre prior, what a map scores
  without looking at the image.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hmglib.checks import check_choice, check_images, check_int, check_real, check_seed
from hmglib.models.baselines import FlatClassifier, PerLevelClassifier

__all__ = [
    "METHODS", "REFERENCES", "method_class", "level_classes", "LevelLogits", "ScaleNet",
    "ClassLogits", "ScaleCam",
    "grad_cam", "hand_grad_cam", "level_cam", "scale_cam", "class_cam", "paste_into_region",
    "box_mask", "pointing_game", "energy_in_box", "localisation_scores",
    "random_maps", "centre_prior", "reference_maps", "confidence_change", "live_hooks",
]

#: The CAM methods by name → the package's class: two gradient methods and one
#: gradient-free one (:func:`method_class` imports it).
METHODS: dict[str, str] = {"gradcam": "GradCAM", "gradcam++": "GradCAMPlusPlus",
                           "scorecam": "ScoreCAM"}


def _package(module: str = "pytorch_grad_cam"):
    """The ``grad-cam`` package (or one of its modules), imported on first use: it
    loads OpenCV, seconds that importing :mod:`hmglib` should not cost."""
    from importlib import import_module

    try:
        return import_module(module)
    except ImportError as err:
        raise ImportError("hmglib.cam computes maps with the grad-cam package, which is not "
                          "installed: pip install 'grad-cam>=1.5' (it comes with the book and "
                          "colab extras of hmglib).") from err


def method_class(method: str) -> type:
    """The package's class of a CAM method named in :data:`METHODS`.

    Raises:
        ValueError: ``method`` is not a key of :data:`METHODS`.
        ImportError: the grad-cam package is not installed (the message says how).
    """
    check_choice("method_class", "method", method, METHODS)
    return getattr(_package(), METHODS[method])

#: The reference maps of :func:`reference_maps`.
REFERENCES = ("random", "centre")


# ------------------------------------------------------------------ model wrappers
def _level_index(owner: str, tree, level: int | str) -> int:
    """``level`` (an index, negative from the end, or a level name) as ``0..L-1``."""
    names = list(tree.level_names)
    if isinstance(level, str):
        if level not in names:
            raise ValueError(f"{owner}: level '{level}' is not one of the tree's levels "
                             f"{names}; pass a name or an index 0..{len(names) - 1}.")
        return names.index(level)
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
        raise TypeError(f"{owner}: level must be an int or a level name of {names}, got "
                        f"{level!r}.")
    if not -len(names) <= int(level) < len(names):
        raise ValueError(f"{owner}: level {level} is outside the tree's {len(names)} levels "
                         f"{names}; use 0..{len(names) - 1} (0 the coarsest).")
    return int(level) % len(names)


def level_classes(targets: torch.Tensor, tree, level: int | str) -> torch.Tensor:
    """The true class at ``level`` of each target, as the level's heads number it.

    Args:
        targets: ``(B,)`` int64 node indices of ``tree`` (labels at any level).
        tree: the :class:`~hmglib.hierarchy.LabelTree`.
        level: the level's index or name.

    Returns:
        ``(B,)`` int64: the class within the level (``0..C_level-1``) of each target's
        ancestor-or-self at ``level``; ``-1`` where the target is coarser than
        ``level`` (a coarse label says nothing about its finer classes).
    """
    lv = tree.level_index(level)
    targets = torch.as_tensor(targets, dtype=torch.long)
    fine = tree.level_of[targets] >= lv  # (B,)
    out = torch.full_like(targets, -1)
    out[fine] = tree.lift(targets[fine], lv) - tree.offset(lv)
    return out


class LevelLogits(nn.Module):
    """A hierarchical model (HRN or a baseline) that returns one level's logits.

    Args:
        model: returns an :class:`~hmglib.models.hrn.HRNOutput` (``.level_logits``)
            and has ``.tree``.
        level: an index (0 the coarsest, negative from the end) or a level name.

    Forward: ``(B, 3, H, W)`` → ``(B, C_level)`` logits of the level's head (for
    HRN's finest level, its sigmoid-node head ``level_logits[-1]``, not the softmax
    head ``leaf_logits``; both read the same feature ``h_L``).
    """

    def __init__(self, model: nn.Module, level: int | str) -> None:
        super().__init__()
        if not hasattr(model, "tree"):
            raise TypeError(f"LevelLogits: {type(model).__name__} has no .tree; level maps "
                            "need a hierarchical model (HRN or a baseline of "
                            "hmglib.models.get_model).")
        self.model = model
        self.level = _level_index("LevelLogits", model.tree, level)
        self.num_classes = int(model.tree.level_sizes[self.level])
        #: how the level's logits become a class probability: one softmax per level
        #: for the flat and per-level baselines, one sigmoid per node otherwise (HRN's
        #: level heads, C-HMCNN)
        self.probability = ("softmax" if isinstance(model, (FlatClassifier, PerLevelClassifier))
                            else "sigmoid")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images).level_logits[self.level]  # (B, C_level)


class ScaleNet(nn.Module):
    """One scale of an RA-CNN as a classifier of its own zoomed input: that scale's
    backbone, global average pool and head.

    Args:
        model: an :class:`~hmglib.models.racnn.RACNN`.
        scale: ``0..S-1`` (0 sees the whole image).

    Forward: ``(B, 3, s, s)`` zoomed inputs → ``(B, K)`` the scale's logits (a
    softmax over the ``K`` classes gives its probabilities).
    """

    #: how the logits become a class probability (RA-CNN's classifiers: a softmax)
    probability = "softmax"

    def __init__(self, model: nn.Module, scale: int) -> None:
        super().__init__()
        n = int(getattr(model, "num_scales", 0))
        if n < 1 or not hasattr(model, "backbones"):
            raise TypeError(f"ScaleNet: {type(model).__name__} is not an RA-CNN (no "
                            ".backbones and .num_scales).")
        if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or not (
                0 <= int(scale) < n):
            raise ValueError(f"ScaleNet: scale {scale!r} is outside the model's {n} scales; "
                             f"use 0..{n - 1} (0 the whole image).")
        self.scale = int(scale)
        self.backbone, self.head = model.backbones[self.scale], model.heads[self.scale]
        self.num_classes = int(model.num_classes)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(crops).mean(dim=(2, 3)))  # (B, K)


class ClassLogits(nn.Module):
    """A multi-label model (SARB, SSGRL-style, linear) that returns its ``(B, C)``
    logits (``.logits`` of its :class:`~hmglib.models.sarb.MultiLabelOutput`).

    Args:
        model: the multi-label model.
        num_classes: ``C`` when the model has no ``.num_classes``.
    """

    #: how the logits become a class probability (one independent sigmoid per class)
    probability = "sigmoid"

    def __init__(self, model: nn.Module, num_classes: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.num_classes = num_classes if num_classes is not None else getattr(
            model, "num_classes", None)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.model(images)
        return out if isinstance(out, torch.Tensor) else out.logits  # (B, C)


# ------------------------------------------------------------------ the core
def _check_classes(owner: str, classes: object, batch: int, num_classes: int | None,
                   what: str) -> torch.Tensor | None:
    """``classes`` as ``(B,)`` int64 in ``[0, num_classes)``, or ``None``."""
    if classes is None:
        return None
    if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
        classes = [int(classes)] * batch
    try:
        t = torch.as_tensor(classes)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{owner}: classes must be one int per image, got {classes!r}.") from err
    if t.is_floating_point() or t.dtype == torch.bool:
        raise TypeError(f"{owner}: classes must be integers, got dtype {t.dtype}.")
    if t.dim() == 0:  # one integer tensor: the same class for every image
        t = t.expand(batch)
    if t.dim() != 1 or t.numel() != batch:
        raise ValueError(f"{owner}: classes must hold one class per image, {batch} for this "
                         f"batch; got shape {tuple(t.shape)}. Pass a (B,) list or tensor, "
                         "an int for every image, or None for each image's top class.")
    t = t.long()
    if num_classes is not None and bool(((t < 0) | (t >= num_classes)).any()):
        bad = t[(t < 0) | (t >= num_classes)][:5].tolist()
        raise ValueError(f"{owner}: classes {bad} are outside the {num_classes} classes of "
                         f"{what} (0..{num_classes - 1}).")
    return t


@contextlib.contextmanager
def _untouched(model: nn.Module) -> Iterator[None]:
    """Restore every module's train/eval mode and every parameter's ``.grad`` on exit."""
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.grad) for p in model.parameters()]
    for p, _ in grads:  # a backward inside must not add into the caller's tensors
        p.grad = None
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode
        for p, g in grads:
            p.grad = g


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    if p is None:
        raise ValueError(f"{type(model).__name__} has no parameters; Grad-CAM needs a model "
                         "with parameters (the package reads their device).")
    return p.device


def grad_cam(net: nn.Module, images: torch.Tensor, target_layer: nn.Module,
             classes: Sequence[int] | torch.Tensor | int | None = None,
             method: str = "gradcam", batch_size: int = 64) -> torch.Tensor:
    """Class activation maps of ``net``'s logits at ``target_layer``, one per image.

    The one entry to the package: :func:`level_cam`, :func:`scale_cam` and
    :func:`class_cam` call it with a wrapped model.

    Args:
        net: maps ``(B, 3, H, W)`` to ``(B, K)`` logits (one tensor). A ``.num_classes``
            attribute, when present, bounds ``classes``.
        images: ``(B, 3, H, W)`` float, as ``net`` takes them.
        target_layer: a module inside ``net`` whose output ``(B, k, h, w)`` is explained.
        classes: one class per image (``(B,)``), one int for every image, or ``None``
            for each image's highest logit.
        method: a key of :data:`METHODS`.
        batch_size: images per call of the package (memory, not the result).

    Returns:
        ``(B, H, W)`` float32 in ``[0, 1]`` on the CPU.

    Raises:
        TypeError, ValueError: bad images, classes, method or target layer.
    """
    _batch(images, "grad_cam")
    check_choice("grad_cam", "method", method, METHODS)
    batch_size = check_int("grad_cam", "batch_size", batch_size, 1)
    if not any(m is target_layer for m in net.modules()):
        raise ValueError("grad_cam: target_layer is not a module of the model; pass one of "
                         "its layers (e.g. model.blocks[level].conv for an HRN).")
    b = images.shape[0]
    device = _device(net)
    num_classes = getattr(net, "num_classes", None)
    if num_classes is None and classes is not None:  # read C from one forward
        with _untouched(net), torch.no_grad():
            net.eval()
            num_classes = int(net(images[:1].to(device)).shape[1])
    classes = _check_classes("grad_cam", classes, b, num_classes, "the model's output")
    with _untouched(net):
        if classes is None:  # each image's top class, chosen here: one target per image
            net.eval()
            with torch.no_grad():
                classes = torch.cat([net(images[i:i + batch_size].to(device)).argmax(1).cpu()
                                     for i in range(0, b, batch_size)])  # (B,)
        maps = []
        target = _package("pytorch_grad_cam.utils.model_targets").ClassifierOutputTarget
        cam = method_class(method)(model=net, target_layers=[target_layer])
        try:
            if method == "scorecam":
                cam.batch_size = 256  # masked copies per forward
                batch_size = 1  # the package holds (B, K, 3, H, W) masked copies at once
            for i in range(0, b, batch_size):
                x = images[i:i + batch_size].detach().to(device).clone().requires_grad_(True)
                targets = [target(int(c)) for c in classes[i:i + batch_size]]
                quiet = contextlib.redirect_stderr(io.StringIO())  # Score-CAM's progress bars
                with torch.enable_grad(), (quiet if method == "scorecam"
                                           else contextlib.nullcontext()):
                    maps.append(torch.from_numpy(np.asarray(cam(x, targets), np.float32)))
        finally:
            cam.activations_and_grads.release()
    out = torch.cat(maps)  # (B, H, W)
    if tuple(out.shape) != (b, *images.shape[-2:]):
        raise RuntimeError(f"grad_cam: the package returned maps of shape {tuple(out.shape)} "
                           f"for images {tuple(images.shape)}.")
    return out.clamp_(0.0, 1.0)


def hand_grad_cam(net: nn.Module, images: torch.Tensor, target_layer: nn.Module,
                  classes: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """Grad-CAM written out with two hooks, for teaching and for checking the package.

    ``A`` is ``target_layer``'s output ``(B, K, h, w)`` and ``y`` the explained
    logits; ``α_k = mean_ij ∂y_c/∂A_kij``, ``L = ReLU(Σ_k α_k A_k)``, upsampled
    bilinearly (pixel centres aligned, as the package's OpenCV resize does) to the
    image size and scaled to ``[0, 1]`` by its minimum and maximum, before and after
    the upsampling, as the package does (a map that is zero everywhere stays zero).

    Args:
        net: maps ``(B, 3, H, W)`` to ``(B, C)`` logits.
        images: ``(B, 3, H, W)`` float.
        target_layer: a module of ``net``.
        classes: ``(B,)`` one class per image.

    Returns:
        ``(B, H, W)`` float in ``[0, 1]`` (the dtype of the images).
    """
    saved: dict[str, torch.Tensor] = {}

    def keep(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        saved["A"] = output
        output.register_hook(lambda grad: saved.__setitem__("dA", grad))

    classes = _check_classes("hand_grad_cam", classes, _batch(images, "hand_grad_cam"),
                             getattr(net, "num_classes", None), "the model's output")
    if classes is None:
        raise ValueError("hand_grad_cam: classes are required (one per image).")
    handle = target_layer.register_forward_hook(keep)
    try:
        with _untouched(net), torch.enable_grad():
            net.eval()
            x = images.detach().clone().requires_grad_(True)
            logits = net(x)  # (B, C)
            logits.gather(1, classes.to(logits.device)[:, None]).sum().backward()
    finally:
        handle.remove()
    a, da = saved["A"].detach(), saved["dA"]  # (B, K, h, w) each
    alpha = da.mean(dim=(2, 3), keepdim=True)  # (B, K, 1, 1)
    low = torch.relu((alpha * a).sum(1, keepdim=True))  # (B, 1, h, w)
    low = low - low.amin(dim=(2, 3), keepdim=True)  # as the package: min to 0, max to 1
    low = low / (low.amax(dim=(2, 3), keepdim=True) + 1e-7)
    up = F.interpolate(low, size=tuple(images.shape[-2:]), mode="bilinear",
                       align_corners=False)  # (B, 1, H, W)
    up = up[:, 0] - up[:, 0].amin(dim=(1, 2), keepdim=True)  # (B, H, W), min to 0 again
    return up / (up.amax(dim=(1, 2), keepdim=True) + 1e-7)


def level_cam(model: nn.Module, images: torch.Tensor, level: int | str,
              classes: Sequence[int] | torch.Tensor | int | None = None,
              method: str = "gradcam", target_layer: nn.Module | None = None) -> torch.Tensor:
    """One map per image for one level of a hierarchical model.

    Args:
        model: an :class:`~hmglib.models.hrn.HRN` (or a hierarchical baseline, with
            ``target_layer`` or its trunk's block by default).
        images: ``(B, 3, H, W)`` float.
        level: the level's index (0 the coarsest) or name (``"order"``).
        classes: one class index *within the level* per image (``0..C_level-1``),
            an int for every image, or ``None`` for the level head's top class.
        method: a key of :data:`METHODS`.
        target_layer: the layer explained; default the level's granularity-specific
            convolutions ``model.blocks[level].conv`` (the shared block's when
            ``gsb=False``), the paper's "last conv block of each level".

    Returns:
        ``(B, H, W)`` float32 in ``[0, 1]``.
    """
    net = LevelLogits(model, level)
    if target_layer is None:
        blocks = getattr(model, "blocks", None)
        if blocks is not None:
            target_layer = blocks[net.level if len(blocks) > 1 else 0].conv
        elif hasattr(model, "trunk"):
            target_layer = model.trunk.block.conv
        else:
            raise ValueError(f"level_cam: {type(model).__name__} has no granularity-specific "
                             "blocks; pass target_layer=.")
    classes = _check_classes("level_cam", classes, _batch(images, "level_cam"),
                             net.num_classes, f"level '{model.tree.level_names[net.level]}'")
    return grad_cam(net, images, target_layer, classes, method)


def _batch(images: object, owner: str) -> int:
    check_images(owner, images, None)
    if images.shape[0] == 0:
        raise ValueError(f"{owner}: images is an empty batch (shape {tuple(images.shape)}); "
                         "give at least one image.")
    return int(images.shape[0])


@dataclass
class ScaleCam:
    """The maps of one RA-CNN scale.

    Attributes:
        maps: ``(B, H, W)`` in ``[0, 1]`` on the original image: the scale's map
            pasted into the region it saw, zero outside it.
        crop_maps: ``(B, s, s)`` in ``[0, 1]`` on the zoomed input.
        crops: ``(B, 3, s, s)`` the zoomed inputs the scale classified.
        regions: ``(B, 3)`` ``(t_x, t_y, t_l)`` of the original image each crop shows.
        classes: ``(B,)`` the explained class of each image.
    """

    maps: torch.Tensor
    crop_maps: torch.Tensor
    crops: torch.Tensor
    regions: torch.Tensor
    classes: torch.Tensor


def paste_into_region(maps: torch.Tensor, regions: torch.Tensor,
                      size: tuple[int, int]) -> torch.Tensor:
    """Map crop-space maps back onto the image they were cropped from.

    Args:
        maps: ``(B, h, w)`` maps on the zoomed crops.
        regions: ``(B, 3)`` ``(t_x, t_y, t_l)``: each crop's centre as a fraction of
            the image's width and height, and half its side as a fraction of the side.
        size: ``(H, W)`` of the image.

    Returns:
        ``(B, H, W)``: bilinear samples of each map at the pixels whose centre lies
        inside its region (the map's edge values extend to the region's edge), zero
        at the others.
    """
    if maps.dim() != 3 or regions.dim() != 2 or regions.shape != (maps.shape[0], 3):
        raise ValueError(f"paste_into_region: maps (B, h, w) and regions (B, 3) expected, "
                         f"got {tuple(maps.shape)} and {tuple(regions.shape)}.")
    if len(size) != 2 or min(int(v) for v in size) < 1:
        raise ValueError(f"paste_into_region: size must be the image's (H, W) in pixels, got "
                         f"{size}.")
    if not bool(torch.isfinite(regions).all()) or bool((regions[:, 2] <= 0).any()):
        raise ValueError("paste_into_region: regions must be finite (t_x, t_y, t_l) with a "
                         "positive half side t_l.")
    h, w = int(size[0]), int(size[1])
    u = (torch.arange(w, dtype=torch.float32) + 0.5) / w  # (W,) pixel centres in [0, 1]
    v = (torch.arange(h, dtype=torch.float32) + 0.5) / h  # (H,)
    r = regions.float().cpu()
    left, top, side = r[:, 0] - r[:, 2], r[:, 1] - r[:, 2], 2 * r[:, 2]  # (B,) each
    gx = 2 * (u[None] - left[:, None]) / side[:, None] - 1  # (B, W) in crop coords
    gy = 2 * (v[None] - top[:, None]) / side[:, None] - 1  # (B, H)
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), -1)  # (B,H,W,2)
    out = F.grid_sample(maps.float().cpu()[:, None], grid, mode="bilinear",
                        padding_mode="border", align_corners=False)  # (B, 1, H, W)
    inside = (((gy >= -1) & (gy < 1))[:, :, None]
              & ((gx >= -1) & (gx < 1))[:, None, :])  # (B, H, W): centre inside the region
    return out[:, 0] * inside


def scale_cam(model: nn.Module, images: torch.Tensor, scale: int,
              classes: Sequence[int] | torch.Tensor | int | None = None,
              method: str = "gradcam", target_layer: nn.Module | None = None) -> ScaleCam:
    """One map per image for one scale of an :class:`~hmglib.models.racnn.RACNN`.

    The scale's input is taken from the model's own forward (so every crop method
    and chain gives exactly what the scale saw); the map is computed on that
    zoomed input and mapped back onto the image through the scale's region.

    Args:
        model: an RA-CNN.
        images: ``(B, 3, H, W)`` float.
        scale: ``0..S-1`` (0 sees the whole image).
        classes: one class per image, an int for every image, or ``None`` for the
            scale's top class.
        method: a key of :data:`METHODS`.
        target_layer: default the scale's backbone (its last feature map).

    Returns:
        A :class:`ScaleCam`.
    """
    check_choice("scale_cam", "method", method, METHODS)
    net = ScaleNet(model, scale)
    b = _batch(images, "scale_cam")
    classes = _check_classes("scale_cam", classes, b, net.num_classes, f"scale {scale + 1}")
    seen: list[torch.Tensor] = []
    handle = net.backbone.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    try:
        with _untouched(model), torch.no_grad():
            model.eval()
            out = model(images.to(_device(model)))
    finally:
        handle.remove()
    if not seen:
        raise ValueError(f"scale_cam: the model's forward stopped before scale {scale + 1} "
                         f"(phase '{model.phase}'); call model.set_phase('all') first.")
    crops = seen[0].detach().cpu()  # (B, 3, s, s)
    regions = out.regions[:, net.scale].detach().cpu()  # (B, 3)
    if classes is None:
        classes = out.scale_logits[:, net.scale].argmax(1).cpu()  # (B,)
    crop_maps = grad_cam(net, crops, target_layer if target_layer is not None else net.backbone,
                         classes, method)  # (B, s, s)
    maps = paste_into_region(crop_maps, regions, tuple(images.shape[-2:]))  # (B, H, W)
    return ScaleCam(maps.clamp_(0.0, 1.0), crop_maps, crops, regions, classes)


def class_cam(model: nn.Module, images: torch.Tensor,
              classes: Sequence[int] | torch.Tensor | int | None = None,
              method: str = "gradcam", target_layer: nn.Module | None = None,
              num_classes: int | None = None) -> torch.Tensor:
    """One map per image for one class of a multi-label model (SARB's per-class maps).

    Args:
        model: returns a :class:`~hmglib.models.sarb.MultiLabelOutput` or ``(B, C)``
            logits.
        images: ``(B, 3, H, W)`` float.
        classes: the class explained in each image (``(B,)``; repeat an image to
            explain several of its classes), an int for every image, or ``None``
            for each image's top class.
        method: a key of :data:`METHODS`.
        target_layer: default ``model.backbone`` (its last feature map).
        num_classes: ``C`` when the model has no ``.num_classes`` (bounds ``classes``).

    Returns:
        ``(B, H, W)`` float32 in ``[0, 1]``.
    """
    net = ClassLogits(model, num_classes)
    if target_layer is None:
        if not hasattr(model, "backbone"):
            raise ValueError(f"class_cam: {type(model).__name__} has no .backbone; pass "
                             "target_layer=.")
        target_layer = model.backbone
    classes = _check_classes("class_cam", classes, _batch(images, "class_cam"),
                             net.num_classes, "the model's output")
    return grad_cam(net, images, target_layer, classes, method)


def live_hooks(model: nn.Module) -> int:
    """How many forward, forward-pre, backward and backward-pre hooks the modules of
    ``model`` hold (zero after any number of calls of this module's functions)."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(m._backward_pre_hooks) for m in model.modules())


# ------------------------------------------------------------------ scores
def _check_maps(owner: str, cams: object) -> torch.Tensor:
    cams = cams.detach().cpu() if isinstance(cams, torch.Tensor) else torch.as_tensor(
        np.asarray(cams))
    if cams.dim() != 3 or not cams.is_floating_point():
        raise ValueError(f"{owner}: cams must be (B, H, W) float maps, got shape "
                         f"{tuple(cams.shape)} and dtype {cams.dtype}.")
    if not bool(torch.isfinite(cams).all()) or bool((cams < 0).any()):
        raise ValueError(f"{owner}: cams must be finite and non-negative (as Grad-CAM's "
                         "maps are); clip or rescale them first.")
    return cams.float()


def _check_boxes(owner: str, boxes: object, batch: int) -> torch.Tensor:
    """``boxes`` as ``(B, K, 4)`` float ``xyxy`` (rows of NaN are padding)."""
    t = torch.as_tensor(boxes, dtype=torch.float32)
    if t.dim() == 2:
        t = t[:, None]  # (B, 1, 4)
    if t.dim() != 3 or t.shape[0] != batch or t.shape[-1] != 4:
        raise ValueError(f"{owner}: boxes must be (B, 4) or (B, K, 4) float pixel xyxy with "
                         f"B = {batch} (one row per map), got shape {tuple(t.shape)}.")
    pad = torch.isnan(t).all(-1)  # (B, K)
    real = t[~pad]
    if bool(torch.isnan(real).any()) or bool((real[:, 2] < real[:, 0]).any()) or bool(
            (real[:, 3] < real[:, 1]).any()):
        raise ValueError(f"{owner}: boxes must be x0 <= x1 and y0 <= y1 (a padding row is all "
                         "NaN); got a malformed box.")
    if bool(pad.all(-1).any()):
        i = int(pad.all(-1).nonzero()[0])
        raise ValueError(f"{owner}: map {i} has no box (all rows NaN); leave it out.")
    return t


def box_mask(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(B, H, W)`` bool: the pixels whose centre lies inside any of each image's
    boxes (``(B, 4)`` or ``(B, K, 4)`` float pixel ``xyxy``; all-NaN rows are padding)."""
    t = _check_boxes("box_mask", boxes, torch.as_tensor(boxes).shape[0])
    x = torch.arange(width, dtype=torch.float32) + 0.5  # (W,)
    y = torch.arange(height, dtype=torch.float32) + 0.5  # (H,)
    t = torch.nan_to_num(t, nan=-1.0)  # padding: an empty box
    inside_x = (x >= t[..., 0:1]) & (x < t[..., 2:3])  # (B, K, W)
    inside_y = (y >= t[..., 1:2]) & (y < t[..., 3:4])  # (B, K, H)
    return (inside_y[..., :, None] & inside_x[..., None, :]).any(1)  # (B, H, W)


def pointing_game(cams: torch.Tensor, boxes: torch.Tensor,
                  tolerance: float = 0.0) -> torch.Tensor:
    """Does each map's maximum fall inside its box?

    Args:
        cams: ``(B, H, W)`` non-negative maps.
        boxes: ``(B, 4)`` or ``(B, K, 4)`` float pixel ``xyxy`` (a hit in any of an
            image's boxes counts; all-NaN rows are padding).
        tolerance: pixels the boxes grow by on every side (the original pointing
            game allows 15 at ImageNet scale; 0 here).

    Returns:
        ``(B,)`` bool. The maximum is the first maximal pixel in row-major order; a
        map that is constant (zero everywhere, say) points nowhere and misses.
    """
    cams = _check_maps("pointing_game", cams)
    tol = check_real("pointing_game", "tolerance", tolerance, 0.0)
    t = _check_boxes("pointing_game", boxes, cams.shape[0])
    t = t + torch.tensor([-tol, -tol, tol, tol])
    b, h, w = cams.shape
    flat = cams.reshape(b, -1)  # (B, H*W)
    peak = flat.argmax(1)  # (B,)
    x, y = (peak % w).float() + 0.5, torch.div(peak, w, rounding_mode="floor").float() + 0.5
    inside = ((x[:, None] >= t[..., 0]) & (x[:, None] < t[..., 2])
              & (y[:, None] >= t[..., 1]) & (y[:, None] < t[..., 3]))  # (B, K), NaN -> False
    flat_map = flat.max(1).values <= flat.min(1).values  # (B,)
    return inside.any(1) & ~flat_map


def energy_in_box(cams: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """The share of each map's mass inside its box (the union of an image's boxes).

    Args:
        cams: ``(B, H, W)`` non-negative maps.
        boxes: ``(B, 4)`` or ``(B, K, 4)`` float pixel ``xyxy`` (all-NaN rows are padding).

    Returns:
        ``(B,)`` float in ``[0, 1]``; NaN for a map with no mass (zero everywhere),
        whose share is undefined.
    """
    cams = _check_maps("energy_in_box", cams)
    mask = box_mask(_check_boxes("energy_in_box", boxes, cams.shape[0]), *cams.shape[1:])
    total = cams.sum((1, 2))  # (B,)
    inside = (cams * mask).sum((1, 2))  # (B,)
    share = inside / total.clamp_min(1e-12)
    return torch.where(total > 0, share, torch.full_like(share, float("nan")))


def localisation_scores(cams: torch.Tensor,
                        boxes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Both scores of each map against each kind of box.

    Args:
        cams: ``(B, H, W)`` non-negative maps.
        boxes: kind → ``(B, 4)`` or ``(B, K, 4)`` float pixel ``xyxy`` (e.g.
            ``{"object": ..., "part": ...}``).

    Returns:
        A dict with, for each kind, ``"pointing/<kind>"`` (``(B,)`` float in {0, 1})
        and ``"energy/<kind>"`` (``(B,)`` float in [0, 1]). A score is NaN where it
        is undefined: both scores of an image with no box of that kind (all its
        rows NaN, such as a CUB bird whose parts are all hidden), and the energy of
        a map without mass.
    """
    cams = _check_maps("localisation_scores", cams)
    out: dict[str, torch.Tensor] = {}
    for kind, b in boxes.items():
        t = torch.as_tensor(b, dtype=torch.float32)
        t = t[:, None] if t.dim() == 2 else t  # (B, K, 4)
        if t.dim() != 3 or t.shape[0] != cams.shape[0]:
            raise ValueError(f"localisation_scores: boxes['{kind}'] must be (B, 4) or "
                             f"(B, K, 4) with B = {cams.shape[0]}, got {tuple(t.shape)}.")
        has = ~torch.isnan(t).all(-1).all(-1)  # (B,): images with a box of this kind
        point = torch.full((len(t),), float("nan"))
        energy = torch.full((len(t),), float("nan"))
        if bool(has.any()):
            point[has] = pointing_game(cams[has], t[has]).float()
            energy[has] = energy_in_box(cams[has], t[has])
        out[f"pointing/{kind}"], out[f"energy/{kind}"] = point, energy
    return out


# ------------------------------------------------------------------ references
def random_maps(n: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """``(n, H, W)`` float32 uniform noise in ``[0, 1)``: a map that ignores the image
    (its pointing game hits at the box's share of the canvas, on average)."""
    n = check_int("random_maps", "n", n, 1)
    g = torch.Generator().manual_seed(check_seed("random_maps", seed))
    return torch.rand(n, int(height), int(width), generator=g)


def centre_prior(n: int, height: int, width: int, sigma: float = 0.25) -> torch.Tensor:
    """``(n, H, W)`` float32: an isotropic Gaussian at the canvas centre with standard
    deviation ``sigma`` times the side, scaled to a maximum of 1 (what a map scores
    from the photographer's habit of centring the object)."""
    n = check_int("centre_prior", "n", n, 1)
    sigma = check_real("centre_prior", "sigma", sigma, 0.0, closed_low=False)
    y = ((torch.arange(height) + 0.5) / height - 0.5)[:, None]  # (H, 1)
    x = ((torch.arange(width) + 0.5) / width - 0.5)[None, :]  # (1, W)
    g = torch.exp(-(x ** 2 + y ** 2) / (2 * sigma ** 2))  # (H, W)
    return (g / g.max()).expand(n, height, width).clone()


def reference_maps(kind: str, n: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """``(n, H, W)`` reference maps: ``"random"`` (:func:`random_maps`) or
    ``"centre"`` (:func:`centre_prior`)."""
    check_choice("reference_maps", "kind", kind, REFERENCES)
    if kind == "random":
        return random_maps(n, height, width, seed)
    return centre_prior(n, height, width)


# ------------------------------------------------------------------ faithfulness
class _SigmoidTarget:
    """The sigmoid probability of class ``c`` from one image's ``(C,)`` logits (the
    package's targets give the softmax one)."""

    def __init__(self, category: int) -> None:
        self.category = category

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(output[..., self.category])


def confidence_change(net: nn.Module, images: torch.Tensor, cams: torch.Tensor,
                      classes: Sequence[int] | torch.Tensor,
                      batch_size: int = 64, probability: str | None = None) -> torch.Tensor:
    """The package's faithfulness metric (``CamMultImageConfidenceChange``): how the
    class's probability changes when each image is multiplied by its map.

    A faithful map keeps what the class needs: the change is near 0 (or positive);
    a map on the wrong place drops the probability.

    Args:
        net: returns ``(B, K)`` logits (:class:`LevelLogits`, :class:`ScaleNet`,
            :class:`ClassLogits`).
        images: ``(B, 3, H, W)`` float, as ``net`` takes them.
        cams: ``(B, H, W)`` maps in ``[0, 1]`` on those images.
        classes: ``(B,)`` the class each map explains.
        batch_size: images per forward.
        probability: ``"softmax"`` (over the ``K`` classes) or ``"sigmoid"`` (of the
            class's own logit); default ``net.probability`` (the wrappers above say
            which their model states), else ``"softmax"``.

    Returns:
        ``(B,)`` float32 in ``[-1, 1]``: probability after minus before.
    """
    check_images("confidence_change", images, None)
    cams = _check_maps("confidence_change", cams)
    batch_size = check_int("confidence_change", "batch_size", batch_size, 1)
    probability = probability or getattr(net, "probability", "softmax")
    check_choice("confidence_change", "probability", probability, ("softmax", "sigmoid"))
    b = images.shape[0]
    if tuple(cams.shape) != (b, *images.shape[-2:]):
        raise ValueError(f"confidence_change: cams {tuple(cams.shape)} must be (B, H, W) of "
                         f"images {tuple(images.shape)}.")
    classes = _check_classes("confidence_change", classes, b,
                             getattr(net, "num_classes", None), "the model's output")
    if classes is None:
        raise ValueError("confidence_change: classes are required (one per map).")
    device = _device(net)
    metric = _package("pytorch_grad_cam.metrics.cam_mult_image").CamMultImageConfidenceChange()
    target = (_package("pytorch_grad_cam.utils.model_targets").ClassifierOutputSoftmaxTarget
              if probability == "softmax" else _SigmoidTarget)
    out = []
    with _untouched(net):
        net.eval()
        for i in range(0, b, batch_size):
            targets = [target(int(c)) for c in classes[i:i + batch_size]]
            change = metric(images[i:i + batch_size].to(device), cams[i:i + batch_size].numpy(),
                            targets, net)
            out.append(torch.as_tensor(np.asarray(change, np.float32)).reshape(-1))
    return torch.cat(out)  # (B,)
