"""Tests of hmglib.cam: per-level, per-scale and per-class Grad-CAM maps on tiny models,
their side effects (modes, hooks, gradients), Grad-CAM recomputed by hand, and the
localisation and faithfulness scores on hand-built maps and boxes."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from unittest.mock import MagicMock, patch

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from pytorch_grad_cam import ScoreCAM
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from hmglib import LabelTree, cam
from hmglib.data import boxes as boxes_mod
from hmglib.models import build_backbone, get_model

B = 3  # images per batch
SIZE = 16  # image side
METHODS = tuple(cam.METHODS)
SPECIES = ("s1", "s2", "s3", "s4", "s5")


# ------------------------------------------------------------------ tiny models
def _tree() -> LabelTree:
    """Three levels: 2 orders, 3 families, 5 species."""
    paths = [("o1", "f1", "s1"), ("o1", "f1", "s2"), ("o1", "f2", "s3"),
             ("o2", "f3", "s4"), ("o2", "f3", "s5")]
    return LabelTree.from_paths(paths, ["order", "family", "species"])


def _backbone() -> nn.Module:
    return build_backbone("small_cnn", width=4)


def _hrn(seed: int = 0, **kwargs: object) -> nn.Module:
    torch.manual_seed(seed)
    return get_model("hrn", _tree(), backbone=_backbone(), feature_dim=8, **kwargs).eval()


def _racnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return get_model("racnn", _tree(), backbone=_backbone(), input_sizes=(16, 16, 16),
                     apn_hidden=8).eval()


def _sarb(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return get_model("sarb", LabelTree.flat(["a", "b", "c", "d"]), backbone=_backbone(),
                     feature_dim=8, hidden=4, embed_dim=4, num_prototypes=2).eval()


def _linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return get_model("linear", LabelTree.flat(["a", "b", "c", "d"]),
                     backbone=_backbone()).eval()


def _images(n: int = B, size: int = SIZE, seed: int = 1,
            dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g, dtype=dtype)


# ------------------------------------------------------------------ helpers
def _assert_maps(maps: torch.Tensor, shape: tuple[int, ...]) -> None:
    """Maps of the given shape, float32 in [0, 1], finite, on the CPU."""
    assert tuple(maps.shape) == shape
    assert maps.dtype == torch.float32
    assert maps.device.type == "cpu"
    assert bool(torch.isfinite(maps).all())
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0


def _modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def _assert_no_hooks(model: nn.Module) -> None:
    assert cam.live_hooks(model) == 0
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks


@contextlib.contextmanager
def _spied_methods() -> Iterator[dict[str, MagicMock]]:
    """Replace every CAM class by a spy that builds the real one (counts constructions)."""
    spies = {name: MagicMock(side_effect=cam.method_class(name)) for name in cam.METHODS}
    with patch.object(cam, "method_class", lambda name: spies[name]):
        yield spies


def _constructions(spies: dict[str, MagicMock]) -> int:
    return sum(s.call_count for s in spies.values())


def _normalise(x: torch.Tensor) -> torch.Tensor:
    """Per map (dims 1, 2): subtract the minimum, divide by 1e-7 + the maximum."""
    x = x - x.amin((1, 2), keepdim=True)
    return x / (1e-7 + x.amax((1, 2), keepdim=True))


def _hand_grad_cam(forward: Callable[[torch.Tensor], torch.Tensor], layer: nn.Module,
                   images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Grad-CAM recomputed from a forward hook: ReLU(sum_k mean(dy/dA_k) A_k), then the
    package's min-max scaling, bilinear upsampling to the image and scaling again."""
    store: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        logits = forward(images)  # (B, K)
    finally:
        handle.remove()
    acts = store["a"]  # (B, k, h, w)
    score = logits[torch.arange(len(classes)), classes].sum()
    (grads,) = torch.autograd.grad(score, acts)
    weights = grads.mean((2, 3))  # (B, k)
    raw = torch.relu((weights[:, :, None, None] * acts).sum(1)).detach()  # (B, h, w)
    up = F.interpolate(_normalise(raw)[:, None], size=tuple(images.shape[-2:]),
                       mode="bilinear", align_corners=False)[:, 0]  # (B, H, W)
    return _normalise(up)


def _brute_mask(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pixel (i, j) is in when its centre (j + 0.5, i + 0.5) lies in [x0, x1) x [y0, y1)
    of any box that is not an all-NaN row."""
    t = boxes if boxes.dim() == 3 else boxes[:, None]
    out = torch.zeros(t.shape[0], height, width, dtype=torch.bool)
    for b in range(t.shape[0]):
        for box in t[b].tolist():
            if all(math.isnan(v) for v in box):
                continue
            x0, y0, x1, y1 = box
            for i in range(height):
                for j in range(width):
                    if x0 <= j + 0.5 < x1 and y0 <= i + 0.5 < y1:
                        out[b, i, j] = True
    return out


def _bilinear_clamped(m: torch.Tensor, px: float, py: float) -> float:
    """Bilinear sample of a (h, w) map at pixel coordinates (centres at integers),
    the nearest edge pixel outside (as F.interpolate and cv2.resize read a map)."""
    h, w = m.shape
    px, py = min(max(px, 0.0), w - 1.0), min(max(py, 0.0), h - 1.0)
    x0, y0 = int(math.floor(px)), int(math.floor(py))
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    fx, fy = px - x0, py - y0
    top = (1 - fx) * float(m[y0, x0]) + fx * float(m[y0, x1])
    bottom = (1 - fx) * float(m[y1, x0]) + fx * float(m[y1, x1])
    return (1 - fy) * top + fy * bottom


def _brute_paste(maps: torch.Tensor, regions: torch.Tensor, height: int,
                 width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pixel: the crop map read at the pixel centre when the centre lies in the
    region ``[c - l, c + l)`` (per axis), else 0. Also returns which pixels lie at
    least half a crop pixel inside the region (where no edge handling matters)."""
    n, h, w = maps.shape
    out = torch.zeros(n, height, width, dtype=torch.float64)
    deep = torch.zeros(n, height, width, dtype=torch.bool)
    for b in range(n):
        cx, cy, half = (float(v) for v in regions[b])
        left, top, side = cx - half, cy - half, 2 * half
        for i in range(height):
            for j in range(width):
                u, v = (j + 0.5) / width, (i + 0.5) / height
                fx, fy = (u - left) / side, (v - top) / side  # [0, 1) inside
                if not (0 <= fx < 1 and 0 <= fy < 1):
                    continue
                px, py = fx * w - 0.5, fy * h - 0.5
                out[b, i, j] = _bilinear_clamped(maps[b], px, py)
                deep[b, i, j] = 0 <= px <= w - 1 and 0 <= py <= h - 1
    return out, deep


def _region_mask(regions: torch.Tensor, height: int, width: int,
                 margin: float = 0.0) -> torch.Tensor:
    """Pixels whose centre lies inside each region grown by ``margin`` (fraction)."""
    u = (torch.arange(width, dtype=torch.float64) + 0.5) / width
    v = (torch.arange(height, dtype=torch.float64) + 0.5) / height
    r = regions.double()
    lo, hi = (r[:, :2] - r[:, 2:] - margin), (r[:, :2] + r[:, 2:] + margin)  # (B, 2)
    in_x = (u[None] >= lo[:, :1]) & (u[None] < hi[:, :1])  # (B, W)
    in_y = (v[None] >= lo[:, 1:]) & (v[None] < hi[:, 1:])  # (B, H)
    return in_y[:, :, None] & in_x[:, None, :]


# ================================================================== 1. shapes and range
@pytest.mark.parametrize("method", METHODS)
def test_level_cam_every_level_gives_maps_in_unit_range(method: str) -> None:
    model, x = _hrn(), _images()
    peaks = []
    for level in range(3):
        maps = cam.level_cam(model, x, level, method=method)
        _assert_maps(maps, (B, SIZE, SIZE))
        peaks += maps.amax((1, 2)).tolist()
    # each map is scaled to a maximum of 1, or is zero everywhere
    assert all(p == 0.0 or p == pytest.approx(1.0, abs=1e-5) for p in peaks)
    assert max(peaks) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_level_cam_level_by_index_negative_index_and_name_agree(method: str) -> None:
    model, x = _hrn(), _images()
    classes = [0, 2, 1]
    by_index = cam.level_cam(model, x, 1, classes, method=method)
    by_negative = cam.level_cam(model, x, -2, classes, method=method)
    by_name = cam.level_cam(model, x, "family", classes, method=method)
    assert torch.equal(by_index, by_negative) and torch.equal(by_index, by_name)
    # the levels explain different heads with different layers
    assert not torch.equal(by_index, cam.level_cam(model, x, "species", classes,
                                                   method=method))


def test_level_cam_shared_block_and_a_baseline() -> None:
    x = _images()
    shared = _hrn(gsb=False)
    for level in ("order", "family", "species"):
        _assert_maps(cam.level_cam(shared, x, level), (B, SIZE, SIZE))
    torch.manual_seed(0)
    baseline = get_model("per-level", _tree(), backbone=_backbone(), feature_dim=8).eval()
    for level in range(3):
        _assert_maps(cam.level_cam(baseline, x, level), (B, SIZE, SIZE))


def test_level_cam_32_pixel_images() -> None:
    _assert_maps(cam.level_cam(_hrn(), _images(2, 32), -1), (2, 32, 32))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("scale", [0, 1, 2])
def test_scale_cam_shapes_range_and_region(scale: int, method: str) -> None:
    model, x = _racnn(), _images()
    out = cam.scale_cam(model, x, scale, method=method)
    _assert_maps(out.maps, (B, SIZE, SIZE))
    _assert_maps(out.crop_maps, (B, 16, 16))
    assert tuple(out.crops.shape) == (B, 3, 16, 16)
    assert tuple(out.regions.shape) == (B, 3) and tuple(out.classes.shape) == (B,)
    assert out.classes.dtype == torch.int64
    with torch.no_grad():
        regions = model(x).regions[:, scale]
    assert torch.allclose(out.regions, regions)
    if scale == 0:
        assert torch.allclose(out.regions, torch.tensor([0.5, 0.5, 0.5]).expand(B, 3))
        assert torch.allclose(out.crops, x)
    # the map on the image is the crop's map pasted into the region
    pasted = cam.paste_into_region(out.crop_maps, out.regions, (SIZE, SIZE))
    assert torch.allclose(out.maps, pasted.clamp(0, 1), atol=1e-6)
    # zero outside the region (farther than half a crop pixel from its edge)
    half_pixel = float(out.regions[:, 2].max()) * 2 / 16 / 2
    outside = ~_region_mask(out.regions, SIZE, SIZE, margin=half_pixel)
    assert not out.maps[outside].any()
    assert outside.any() == (scale > 0)  # scales 2 and 3 see a part of the image


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("builder", [_sarb, _linear], ids=["sarb", "linear"])
def test_class_cam_shapes_and_range(builder: Callable[..., nn.Module], method: str) -> None:
    model, x = builder(), _images()
    for c in range(4):
        _assert_maps(cam.class_cam(model, x, c, method=method), (B, SIZE, SIZE))


# ================================================================== 2. one target per image
def _calls(c: object) -> list[Callable[[], object]]:
    """Each of the three functions on a tiny model with ``classes=c``."""
    x = _images()
    hrn, racnn, sarb = _hrn(), _racnn(), _sarb()
    return [lambda: cam.level_cam(hrn, x, 0, c), lambda: cam.scale_cam(racnn, x, 1, c),
            lambda: cam.class_cam(sarb, x, c),
            lambda: cam.grad_cam(cam.ClassLogits(sarb), x, sarb.backbone, c)]


@pytest.mark.parametrize("classes", [[0] * (B - 1), [0] * (B + 1), [[0] * B], [[0]] * B,
                                     torch.zeros(B, 1, dtype=torch.long)],
                         ids=["B-1", "B+1", "1xB", "Bx1", "tensor-Bx1"])
def test_classes_of_the_wrong_length_raise(classes: object) -> None:
    with _spied_methods() as spies:
        for call in _calls(classes):
            with pytest.raises(ValueError, match="one class per image"):
                call()
    assert _constructions(spies) == 0


@pytest.mark.parametrize("classes", [[0.0, 1.0, 0.0], [True, False, True],
                                     torch.tensor([0.0, 1.0, 1.0]), np.array([0.5, 1, 0])],
                         ids=["floats", "bools", "float-tensor", "float-array"])
def test_float_or_bool_classes_raise_type_error(classes: object) -> None:
    with _spied_methods() as spies:
        for call in _calls(classes):
            with pytest.raises(TypeError, match="integers"):
                call()
    assert _constructions(spies) == 0


@pytest.mark.parametrize("classes", [1.0, True, torch.tensor(1.0)])
def test_float_or_bool_scalar_class_raises_type_error(classes: object) -> None:
    with pytest.raises(TypeError):
        cam.level_cam(_hrn(), _images(), 0, classes)


def test_an_int_class_applies_to_every_image() -> None:
    x = _images()
    hrn, racnn, sarb = _hrn(), _racnn(), _sarb()
    assert torch.equal(cam.level_cam(hrn, x, 2, 3), cam.level_cam(hrn, x, 2, [3] * B))
    assert torch.equal(cam.level_cam(hrn, x, 2, np.int64(3)),
                       cam.level_cam(hrn, x, 2, torch.full((B,), 3)))
    one = cam.scale_cam(racnn, x, 1, 4)
    assert one.classes.tolist() == [4] * B
    assert torch.equal(one.maps, cam.scale_cam(racnn, x, 1, [4] * B).maps)
    assert torch.equal(cam.class_cam(sarb, x, 2), cam.class_cam(sarb, x, [2] * B))


@pytest.mark.parametrize("method", METHODS)
def test_none_explains_each_images_top_class(method: str) -> None:
    x = _images(4, seed=5)
    hrn, racnn, sarb = _hrn(), _racnn(), _sarb()
    for level in range(3):
        with torch.no_grad():
            top = hrn(x).level_logits[level].argmax(1)
        assert torch.equal(cam.level_cam(hrn, x, level, None, method),
                           cam.level_cam(hrn, x, level, top, method))
    out = cam.scale_cam(racnn, x, 2, None, method)
    with torch.no_grad():
        top = cam.ScaleNet(racnn, 2)(out.crops).argmax(1)
    assert torch.equal(out.classes, top)
    assert torch.equal(out.maps, cam.scale_cam(racnn, x, 2, top, method).maps)
    with torch.no_grad():
        top = sarb(x).logits.argmax(1)
    assert torch.equal(cam.class_cam(sarb, x, None, method), cam.class_cam(sarb, x, top, method))


def test_different_classes_give_different_maps() -> None:
    model, x = _hrn(), _images()
    maps = [cam.level_cam(model, x, "species", c) for c in range(5)]
    assert any(not torch.equal(maps[0], m) for m in maps[1:])


# ================================================================== 3. bad classes, levels, methods
def test_level_cam_class_out_of_range_is_checked_per_level() -> None:
    model, x = _hrn(), _images()
    cam.level_cam(model, x, "species", 4)  # valid at the leaves (5 species)
    with _spied_methods() as spies:
        for level, size in (("order", 2), ("family", 3), (0, 2), (-2, 3)):
            with pytest.raises(ValueError, match=f"outside the {size} classes"):
                cam.level_cam(model, x, level, 4)
            with pytest.raises(ValueError, match="outside"):
                cam.level_cam(model, x, level, [0, size, 0])
        for level in range(3):
            with pytest.raises(ValueError, match=r"\[-1\]"):
                cam.level_cam(model, x, level, [0, -1, 0])
        with pytest.raises(ValueError, match="species"):
            cam.level_cam(model, x, "species", 5)
    assert _constructions(spies) == 0


def test_a_valid_call_reaches_the_package_once() -> None:
    """The positive control of the spy: a valid class does construct the CAM class."""
    with _spied_methods() as spies:
        cam.level_cam(_hrn(), _images(), 0, 1, method="gradcam++")
    assert spies["gradcam++"].call_count == 1 and _constructions(spies) == 1


@pytest.mark.parametrize("bad", [-1, 5, [0, 0, 5], [-2, 0, 0]])
def test_scale_and_class_cam_class_out_of_range(bad: object) -> None:
    x = _images()
    racnn, sarb = _racnn(), _sarb()
    with _spied_methods() as spies:
        with pytest.raises(ValueError, match="outside the 5 classes"):
            cam.scale_cam(racnn, x, 1, bad)
        with pytest.raises(ValueError, match="outside the 4 classes"):
            cam.class_cam(sarb, x, [4, 0, 0] if bad == 5 else bad)
        with pytest.raises(ValueError, match="outside the 3 classes"):
            cam.class_cam(_linear(), x, 3, num_classes=3)
    assert _constructions(spies) == 0


@pytest.mark.parametrize("bad", [-1, 4])
def test_class_cam_on_the_linear_model_checks_the_class_range(bad: int) -> None:
    with _spied_methods() as spies:
        with pytest.raises(ValueError, match="outside the 4 classes"):
            cam.class_cam(_linear(), _images(), bad)
    assert _constructions(spies) == 0


def test_bad_levels_raise() -> None:
    model, x = _hrn(), _images()
    with _spied_methods() as spies:
        with pytest.raises(ValueError, match="genus"):
            cam.level_cam(model, x, "genus")
        for level in (3, -4, 10):
            with pytest.raises(ValueError, match="outside the tree's 3 levels"):
                cam.level_cam(model, x, level)
        for level in (1.0, True, None, [0]):
            with pytest.raises(TypeError, match="level"):
                cam.level_cam(model, x, level)
    assert _constructions(spies) == 0
    with pytest.raises(TypeError, match=r"\.tree"):
        cam.level_cam(_sarb(), x, 0)


def test_bad_scales_raise() -> None:
    model, x = _racnn(), _images()
    for scale in (-1, 3, 1.0, True):
        with pytest.raises(ValueError, match="scale"):
            cam.scale_cam(model, x, scale)
    with pytest.raises(TypeError, match="RA-CNN"):
        cam.scale_cam(_hrn(), x, 0)


def test_bad_method_names_raise() -> None:
    x = _images()
    hrn, racnn, sarb = _hrn(), _racnn(), _sarb()
    with _spied_methods() as spies:
        for method in ("GradCAM", "eigencam", "", "gradcam "):
            with pytest.raises(ValueError, match="method"):
                cam.level_cam(hrn, x, 0, method=method)
            with pytest.raises(ValueError, match="method"):
                cam.scale_cam(racnn, x, 0, method=method)
            with pytest.raises(ValueError, match="method"):
                cam.class_cam(sarb, x, method=method)
    assert _constructions(spies) == 0


def test_bad_images_and_target_layers_raise() -> None:
    model = _hrn()
    with pytest.raises(ValueError, match="unsqueeze"):
        cam.level_cam(model, _images()[0], 0)
    with pytest.raises(TypeError, match="float"):
        cam.level_cam(model, (_images() * 255).to(torch.uint8), 0)
    with pytest.raises(ValueError, match="target_layer"):
        cam.level_cam(model, _images(), 0, target_layer=nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match="batch_size"):
        cam.grad_cam(cam.LevelLogits(model, 0), _images(), model.blocks[0].conv, 0,
                     batch_size=0)


# ================================================================== 4. no side effects
def _run_all(hrn: nn.Module | None = None, racnn: nn.Module | None = None,
             sarb: nn.Module | None = None, method: str = "gradcam") -> None:
    x = _images()
    if hrn is not None:
        cam.level_cam(hrn, x, 1, [0, 1, 2], method)
        cam.level_cam(hrn, x, -1, None, method)
    if racnn is not None:
        cam.scale_cam(racnn, x, 1, None, method)
        cam.scale_cam(racnn, x, 2, 0, method)
    if sarb is not None:
        cam.class_cam(sarb, x, 1, method)
        cam.class_cam(sarb, x, None, method)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_train_or_eval_mode_is_kept(train: bool) -> None:
    models = {"hrn": _hrn().train(train), "racnn": _racnn().train(train),
              "sarb": _sarb().train(train)}
    for method in METHODS:
        _run_all(**models, method=method)
        for model in models.values():
            assert all(mode == train for mode in _modes(model))
    x, sarb = _images(), models["sarb"]
    cam.confidence_change(cam.ClassLogits(sarb), x, torch.ones(B, SIZE, SIZE), 0)
    assert all(mode == train for mode in _modes(sarb))


def test_mixed_modes_are_restored_module_by_module() -> None:
    racnn = _racnn().set_phase("classifiers").train()
    assert not racnn.apns[0].training and racnn.backbones[1].training  # mixed
    sarb = _sarb().train()
    sarb.backbone.eval()
    hrn = _hrn().train()
    hrn.blocks[1].eval()
    hrn.heads[0].eval()
    before = {name: _modes(m) for name, m in (("r", racnn), ("s", sarb), ("h", hrn))}
    for method in METHODS:
        _run_all(hrn, racnn, sarb, method)
    assert {name: _modes(m) for name, m in (("r", racnn), ("s", sarb), ("h", hrn))} == before


def test_buffers_and_parameters_unchanged_in_train_mode() -> None:
    """The maps are computed in eval mode: BatchNorm statistics do not move."""
    models = [_hrn().train(), _racnn().train(), _sarb().train()]
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in models]
    _run_all(*models)
    for model, state in zip(models, before, strict=True):
        after = model.state_dict()
        assert all(torch.equal(state[k], after[k]) for k in state)


class _Boom(Exception):
    pass


def test_no_hooks_left_after_fifty_calls() -> None:
    hrn, racnn, sarb = _hrn(), _racnn(), _sarb()
    for m in (hrn, racnn, sarb):
        _assert_no_hooks(m)
    x = _images(2)
    for i in range(50):
        method = METHODS[i % len(METHODS)] if i % 5 == 0 else "gradcam"
        kind = i % 4
        if kind == 0:
            cam.level_cam(hrn, x, i % 3, None, method)
        elif kind == 1:
            cam.scale_cam(racnn, x, i % 3, None, method)
        elif kind == 2:
            cam.class_cam(sarb, x, i % 4, method)
        else:  # calls that fail before the package, inside the model, inside the package
            with pytest.raises(ValueError):
                cam.level_cam(hrn, x, 0, 7)
            with pytest.raises(ValueError):
                cam.scale_cam(racnn, x[:, :1], 1)  # one channel: the RA-CNN refuses it
            with patch.object(BaseCAM, "compute_cam_per_layer", side_effect=_Boom("inside")):
                with pytest.raises(_Boom):
                    cam.level_cam(hrn, x, 2, 1, method)
                with pytest.raises(_Boom):
                    cam.scale_cam(racnn, x, 1, 1, method)
                with pytest.raises(_Boom):
                    cam.class_cam(sarb, x, 1, method)
    for m in (hrn, racnn, sarb):
        _assert_no_hooks(m)


@pytest.mark.parametrize("method", METHODS)
def test_hooks_modes_and_grads_restored_when_the_target_layer_raises(method: str) -> None:
    model = _hrn().train()
    sentinels = [torch.full_like(p, 0.25) for p in model.parameters()]
    for p, s in zip(model.parameters(), sentinels, strict=True):
        p.grad = s
    layer = model.blocks[1].conv
    with patch.object(layer[0], "forward", side_effect=_Boom("inside the target layer")):
        with pytest.raises(_Boom):
            cam.level_cam(model, _images(), 1, 0, method)
    _assert_no_hooks(model)
    assert all(_modes(model))
    for p, s in zip(model.parameters(), sentinels, strict=True):
        assert p.grad is s and bool((s == 0.25).all())
    _assert_maps(cam.level_cam(model, _images(), 1, 0, method), (B, SIZE, SIZE))  # still works


@pytest.mark.parametrize("error", [_Boom, IndexError])
def test_an_error_after_the_backward_pass_propagates_and_cleans_up(error: type) -> None:
    """An error inside the package, after the backward pass, reaches the caller (even
    an IndexError, which the package's own ``with`` block would swallow)."""
    model = _sarb().train()
    sentinels = [torch.full_like(p, -3.0) for p in model.parameters()]
    for p, s in zip(model.parameters(), sentinels, strict=True):
        p.grad = s
    with patch.object(BaseCAM, "compute_cam_per_layer", side_effect=error("after backward")):
        with pytest.raises(error, match="after backward"):
            cam.class_cam(model, _images(), 1)
    _assert_no_hooks(model)
    assert all(_modes(model))
    for p, s in zip(model.parameters(), sentinels, strict=True):
        assert p.grad is s and bool((s == -3.0).all())


def test_scale_cam_on_a_forward_that_stops_early() -> None:
    model = _racnn().set_phase("scale", 0).train()
    before = _modes(model)
    with pytest.raises(ValueError, match="set_phase"):
        cam.scale_cam(model, _images(), 1)
    _assert_no_hooks(model)
    assert _modes(model) == before
    _assert_maps(cam.scale_cam(model, _images(), 0).maps, (B, SIZE, SIZE))


@pytest.mark.parametrize("method", METHODS)
def test_parameter_gradients_are_left_as_they_were(method: str) -> None:
    hrn, racnn, sarb = _hrn(), _racnn(), _sarb()
    models = (hrn, racnn, sarb)
    g = torch.Generator().manual_seed(3)
    saved = []
    for m in models:
        params = list(m.parameters())
        for k, p in enumerate(params):  # half with a sentinel gradient, half with none
            p.grad = torch.randn(p.shape, generator=g) if k % 2 == 0 else None
        saved.append([(p.grad, None if p.grad is None else p.grad.clone()) for p in params])
    _run_all(hrn, racnn, sarb, method)
    for m, grads in zip(models, saved, strict=True):
        for p, (obj, value) in zip(m.parameters(), grads, strict=True):
            assert p.grad is obj
            if value is not None:
                assert torch.equal(p.grad, value)


@pytest.mark.parametrize("method", METHODS)
def test_no_grad_and_frozen_parameters_give_the_same_maps(method: str) -> None:
    x = _images()
    hrn, racnn, sarb = _hrn(), _racnn(), _sarb()
    ref = (cam.level_cam(hrn, x, 2, [0, 3, 4], method), cam.scale_cam(racnn, x, 1, 2, method).maps,
           cam.class_cam(sarb, x, [0, 1, 3], method))
    with torch.no_grad():
        quiet = (cam.level_cam(hrn, x, 2, [0, 3, 4], method),
                 cam.scale_cam(racnn, x, 1, 2, method).maps,
                 cam.class_cam(sarb, x, [0, 1, 3], method))
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()
    for m in (hrn, racnn, sarb):
        m.requires_grad_(False)
    frozen = (cam.level_cam(hrn, x, 2, [0, 3, 4], method),
              cam.scale_cam(racnn, x, 1, 2, method).maps,
              cam.class_cam(sarb, x, [0, 1, 3], method))
    for m in (hrn, racnn, sarb):
        assert not any(p.requires_grad for p in m.parameters())
        assert all(p.grad is None for p in m.parameters())
    assert any(float(r.max()) > 0 for r in ref)
    for r, q, f in zip(ref, quiet, frozen, strict=True):
        assert torch.allclose(r, q, atol=1e-6) and torch.allclose(r, f, atol=1e-6)


def test_the_images_are_not_touched() -> None:
    x = _images().requires_grad_(True)
    copy = x.detach().clone()
    cam.level_cam(_hrn(), x, 0, 1)
    cam.scale_cam(_racnn(), x, 1, 1)
    assert x.grad is None and torch.equal(x.detach(), copy)


# ================================================================== 5. batches
@pytest.mark.parametrize("method", METHODS)
def test_the_map_of_an_image_does_not_depend_on_its_batch(method: str) -> None:
    x = _images(4, seed=7)
    classes = torch.tensor([1, 0, 4, 2])
    hrn, racnn, sarb = _hrn(), _racnn(), _sarb()
    batch = (cam.level_cam(hrn, x, 2, classes, method), cam.scale_cam(racnn, x, 1, classes,
                                                                       method).maps,
             cam.class_cam(sarb, x, classes % 4, method))
    assert all(float(b.max()) > 0 for b in batch)
    for i in range(4):
        xi, ci = x[i:i + 1], classes[i:i + 1]
        alone = (cam.level_cam(hrn, xi, 2, ci, method), cam.scale_cam(racnn, xi, 1, ci,
                                                                       method).maps,
                 cam.class_cam(sarb, xi, ci % 4, method))
        for b, a in zip(batch, alone, strict=True):
            assert torch.allclose(b[i:i + 1], a, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_grad_cam_in_chunks_equals_one_call(method: str) -> None:
    model, x = _hrn(), _images(5, seed=9)
    net = cam.LevelLogits(model, "species")
    layer = model.blocks[2].conv
    whole = cam.grad_cam(net, x, layer, None, method)
    with _spied_methods() as spies:
        chunked = cam.grad_cam(net, x, layer, None, method, batch_size=2)
    assert _constructions(spies) == 1  # one CAM object, three calls of it
    assert torch.allclose(whole, chunked, atol=1e-6)
    classes = [1, 2, 3, 4, 0]
    assert torch.allclose(cam.grad_cam(net, x, layer, classes, method, batch_size=1),
                          cam.grad_cam(net, x, layer, classes, method), atol=1e-6)


# ================================================================== 6. scores by hand
def _hot(h: int, w: int, y: int, x: int, n: int = 1) -> torch.Tensor:
    m = torch.zeros(n, h, w)
    m[:, y, x] = 1.0
    return m


def test_pointing_game_single_hot_pixel() -> None:
    maps = torch.cat([_hot(8, 8, 2, 5), _hot(8, 8, 7, 0)])  # peaks at (x=5, y=2), (x=0, y=7)
    boxes = torch.tensor([[4.0, 1.0, 6.0, 3.0], [4.0, 1.0, 6.0, 3.0]])
    assert cam.pointing_game(maps, boxes).tolist() == [True, False]
    assert cam.pointing_game(maps, torch.tensor([[5.6, 0.0, 8.0, 8.0],
                                                 [0.0, 7.5, 0.6, 8.0]])).tolist() == [False, True]
    assert cam.pointing_game(maps, boxes).dtype == torch.bool


def test_pixel_centre_convention() -> None:
    box = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    mask = cam.box_mask(box, 3, 3)
    expected = torch.zeros(1, 3, 3, dtype=torch.bool)
    expected[0, 0, 0] = True
    assert torch.equal(mask, expected)
    assert cam.pointing_game(_hot(3, 3, 0, 0), box).tolist() == [True]
    assert cam.pointing_game(_hot(3, 3, 0, 1), box).tolist() == [False]
    assert cam.pointing_game(_hot(3, 3, 1, 0), box).tolist() == [False]
    # a box that does not reach a pixel's centre holds none of it
    assert not cam.box_mask(torch.tensor([[0.0, 0.0, 0.5, 0.5]]), 3, 3).any()
    half = cam.box_mask(torch.tensor([[0.5, 0.5, 1.5, 1.5]]), 3, 3)
    assert torch.equal(half, expected)  # the centre (0.5, 0.5) is in, (1.5, 1.5) is out


def test_energy_in_box_by_hand() -> None:
    # a map half inside the box: two equal pixels, one in it
    m = torch.zeros(1, 4, 4)
    m[0, 1, 1] = m[0, 1, 3] = 0.7
    box = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    assert cam.energy_in_box(m, box).tolist() == pytest.approx([0.5])
    # three quarters: weights 3 and 1
    m[0, 1, 1] = 0.9
    m[0, 1, 3] = 0.3
    assert cam.energy_in_box(m, box).tolist() == pytest.approx([0.75])
    # a single hot pixel inside, then outside
    assert cam.energy_in_box(_hot(4, 4, 0, 0), box).tolist() == [1.0]
    assert cam.energy_in_box(_hot(4, 4, 3, 3), box).tolist() == [0.0]
    # a uniform map: the box's share of the pixels
    u = torch.full((1, 4, 4), 0.2)
    assert cam.energy_in_box(u, torch.tensor([[0.0, 0.0, 4.0, 1.0]])).tolist() == \
        pytest.approx([0.25])


def test_several_boxes_per_image_are_their_union() -> None:
    m = torch.zeros(2, 6, 6)
    m[:, 0, 0] = 1.0
    m[:, 5, 5] = 1.0
    m[:, 2, 3] = 2.0
    nan = float("nan")
    boxes = torch.tensor([[[0.0, 0.0, 1.0, 1.0], [5.0, 5.0, 6.0, 6.0], [nan] * 4],
                          [[0.0, 0.0, 6.0, 1.0], [nan] * 4, [0.0, 0.0, 6.0, 6.0]]])
    # image 0: the two corners, 2 of 4 units of mass; overlapping boxes count once
    assert cam.energy_in_box(m, boxes).tolist() == pytest.approx([0.5, 1.0])
    assert cam.pointing_game(m, boxes).tolist() == [False, True]
    union = cam.box_mask(boxes, 6, 6)
    assert union[0].sum() == 2 and union[1].all()
    # the peak (3, 2) is in the second box only: a hit in any box counts
    two = torch.tensor([[[0.0, 0.0, 1.0, 1.0], [3.0, 2.0, 4.0, 3.0]]]).expand(2, 2, 4)
    assert cam.pointing_game(m, two).tolist() == [True, True]
    assert torch.equal(cam.box_mask(boxes, 6, 6), _brute_mask(boxes, 6, 6))


def test_pointing_game_tolerance() -> None:
    m = _hot(10, 10, 5, 5)  # centre (5.5, 5.5)
    box = torch.tensor([[1.0, 1.0, 5.0, 5.0]])
    assert cam.pointing_game(m, box).tolist() == [False]
    assert cam.pointing_game(m, box, tolerance=0.5).tolist() == [False]  # edge 5.5 excluded
    assert cam.pointing_game(m, box, tolerance=0.6).tolist() == [True]
    assert cam.pointing_game(m, box, tolerance=3).tolist() == [True]
    nan = float("nan")
    padded = torch.tensor([[[1.0, 1.0, 5.0, 5.0], [nan] * 4]])
    assert cam.pointing_game(m, padded, tolerance=100.0).tolist() == [True]
    for bad in (-0.1, float("nan"), "1", True):
        with pytest.raises(ValueError, match="tolerance"):
            cam.pointing_game(m, box, tolerance=bad)


def test_constant_and_zero_maps() -> None:
    whole = torch.tensor([[0.0, 0.0, 5.0, 5.0]] * 2)
    const = torch.stack([torch.zeros(5, 5), torch.full((5, 5), 0.3)])
    assert cam.pointing_game(const, whole).tolist() == [False, False]
    energy = cam.energy_in_box(const, whole)
    assert math.isnan(energy[0]) and energy[1] == pytest.approx(1.0)
    scores = cam.localisation_scores(const, {"object": whole})
    assert set(scores) == {"pointing/object", "energy/object"}
    assert scores["pointing/object"].tolist() == [0.0, 0.0]


def test_ties_point_at_the_first_maximum_in_row_major_order() -> None:
    m = torch.zeros(1, 4, 4)
    m[0, 1, 3] = m[0, 2, 0] = 1.0  # (x=3, y=1) comes first
    assert cam.pointing_game(m, torch.tensor([[3.0, 1.0, 4.0, 2.0]])).tolist() == [True]
    assert cam.pointing_game(m, torch.tensor([[0.0, 2.0, 1.0, 3.0]])).tolist() == [False]


def test_localisation_scores_match_the_single_scores() -> None:
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(3, 8, 8, generator=g)
    boxes = {"object": torch.tensor([[0.0, 0.0, 4.0, 4.0], [2.0, 2.0, 8.0, 8.0],
                                     [1.0, 0.0, 3.0, 8.0]]),
             "part": torch.tensor([[[1.0, 1.0, 2.0, 2.0], [5.0, 5.0, 7.0, 7.0]]] * 3)}
    scores = cam.localisation_scores(maps, boxes)
    assert set(scores) == {"pointing/object", "energy/object", "pointing/part", "energy/part"}
    for kind, b in boxes.items():
        assert torch.equal(scores[f"pointing/{kind}"], cam.pointing_game(maps, b).float())
        assert torch.equal(scores[f"energy/{kind}"], cam.energy_in_box(maps, b))


def test_box_mask_against_brute_force_on_random_boxes() -> None:
    g = torch.Generator().manual_seed(4)
    h, w = 7, 9
    corners = torch.rand(4, 3, 2, 2, generator=g) * torch.tensor([w + 2.0, h + 2.0]) - 1
    lo, hi = corners.min(2).values, corners.max(2).values  # (4, 3, 2) each
    boxes = torch.cat([lo, hi], -1)  # (4, 3, 4) xyxy
    boxes[1, 2] = float("nan")
    boxes[3, 0] = float("nan")
    assert torch.equal(cam.box_mask(boxes, h, w), _brute_mask(boxes, h, w))
    assert torch.equal(cam.box_mask(boxes[:, 1], h, w), _brute_mask(boxes[:, 1], h, w))
    assert cam.box_mask(boxes, h, w).dtype == torch.bool


@st.composite
def _maps_and_boxes(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    b, h, w, k = (draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6)),
                  draw(st.integers(1, 3)))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2 ** 31 - 1)))
    maps = torch.rand(b, h, w, generator=g) * (torch.rand(b, h, w, generator=g) < 0.7)
    coords = draw(st.lists(st.floats(-2.0, 8.0, width=32), min_size=4 * b * k,
                           max_size=4 * b * k))
    t = torch.tensor(coords, dtype=torch.float32).reshape(b, k, 2, 2)
    boxes = torch.cat([t.min(2).values, t.max(2).values], -1)  # (b, k, 4): x0 y0 x1 y1
    pad = draw(st.lists(st.booleans(), min_size=b * k, max_size=b * k))
    pad_t = torch.tensor(pad).reshape(b, k)
    pad_t[:, 0] = False  # every image keeps a box
    boxes[pad_t] = float("nan")
    return maps, boxes


@settings(max_examples=60, deadline=None)
@given(_maps_and_boxes())
def test_energy_and_pointing_agree_with_brute_force(data: tuple[torch.Tensor, torch.Tensor],
                                                    ) -> None:
    maps, boxes = data
    b, h, w = maps.shape
    mask = _brute_mask(boxes, h, w)
    assert torch.equal(cam.box_mask(boxes, h, w), mask)
    energy = cam.energy_in_box(maps, boxes)
    pointing = cam.pointing_game(maps, boxes)
    for i in range(b):
        total = float(maps[i].double().sum())
        if total == 0:
            assert math.isnan(energy[i])
        else:
            share = float((maps[i].double() * mask[i]).sum()) / total
            assert 0.0 <= float(energy[i]) <= 1.0
            assert float(energy[i]) == pytest.approx(share, abs=1e-5)
        flat = maps[i].flatten()
        peak = int(flat.argmax())
        hit = bool(mask[i, peak // w, peak % w]) and float(flat.max()) > float(flat.min())
        assert bool(pointing[i]) == hit
    # a box over the whole canvas holds all the mass, and every peak
    whole = torch.tensor([[0.0, 0.0, float(w), float(h)]]).expand(b, 4)
    full = cam.energy_in_box(maps, whole)
    constant = maps.flatten(1).amax(1) == maps.flatten(1).amin(1)
    totals = maps.sum((1, 2))
    assert all(math.isnan(e) if t == 0 else e == pytest.approx(1.0)
               for e, t in zip(full.tolist(), totals.tolist(), strict=True))
    assert torch.equal(cam.pointing_game(maps, whole), ~constant)


def test_bad_score_inputs_name_the_argument() -> None:
    good_maps = torch.rand(2, 4, 4)
    good_boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0]] * 2)
    nan = float("nan")
    bad_maps = [-good_maps, good_maps[0], good_maps.long(), good_maps.clone().fill_(nan),
                torch.full((2, 4, 4), float("inf"))]
    bad_boxes = [torch.tensor([[2.0, 0.0, 1.0, 2.0]] * 2), torch.tensor([[0.0, 2.0, 2.0, 1.0]] * 2),
                 torch.tensor([[0.0, 0.0, 2.0, 2.0]] * 3), torch.tensor([[0.0, 0.0, 2.0, 2.0]]),
                 torch.zeros(2, 3), torch.zeros(2, 1, 1, 4),
                 torch.tensor([[0.0, nan, 2.0, 2.0]] * 2)]
    for fn in (cam.pointing_game, cam.energy_in_box):
        for maps in bad_maps:
            with pytest.raises(ValueError, match="cams"):
                fn(maps, good_boxes)
        for boxes in bad_boxes:
            with pytest.raises(ValueError, match="boxes"):
                fn(good_maps, boxes)
        all_nan = torch.tensor([[[0.0, 0.0, 2.0, 2.0]], [[nan] * 4]])
        with pytest.raises(ValueError, match="map 1 has no box"):
            fn(good_maps, all_nan)
    with pytest.raises(ValueError, match="boxes"):
        cam.box_mask(torch.tensor([[3.0, 0.0, 1.0, 1.0]]), 4, 4)
    with pytest.raises(ValueError, match="cams"):
        cam.localisation_scores(-good_maps, {"object": good_boxes})


def test_point_boxes() -> None:
    points = torch.tensor([[[2.0, 3.0, 1.0], [5.0, 5.0, 0.0], [0.0, 1.0, 1.0]],
                           [[7.0, 1.0, 0.0], [1.5, 2.5, 2.0], [4.0, 4.0, 0.0]]])
    boxes = boxes_mod.point_boxes(points, 1.5)
    assert tuple(boxes.shape) == (2, 3, 4)
    visible = points[..., 2] > 0
    assert torch.isnan(boxes[~visible]).all()
    assert not torch.isnan(boxes[visible]).any()
    assert torch.equal(boxes[0, 0], torch.tensor([0.5, 1.5, 3.5, 4.5]))
    real = boxes[visible]
    assert torch.allclose(real[:, 2] - real[:, 0], torch.full((3,), 3.0))
    assert torch.allclose(real[:, 3] - real[:, 1], torch.full((3,), 3.0))
    centres = (real[:, :2] + real[:, 2:]) / 2
    assert torch.allclose(centres, points[visible][:, :2])
    # one half-side per image
    per_image = boxes_mod.point_boxes(points, torch.tensor([1.0, 2.0]))
    assert torch.equal(per_image[0, 0], torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert torch.equal(per_image[1, 1], torch.tensor([-0.5, 0.5, 3.5, 4.5]))
    # the boxes score maps: a peak on a visible part is a hit
    m = torch.cat([_hot(8, 8, 3, 2), _hot(8, 8, 7, 7)])  # peaks at (2.5, 3.5), (7.5, 7.5)
    assert cam.pointing_game(m, boxes).tolist() == [True, False]
    for bad in (0.0, -1.0, torch.tensor([1.0, 0.0])):
        with pytest.raises(ValueError, match="half_side"):
            boxes_mod.point_boxes(points, bad)
    with pytest.raises(ValueError, match="points"):
        boxes_mod.point_boxes(points[..., :2], 1.0)
    with pytest.raises(ValueError, match="points"):
        boxes_mod.point_boxes(points[0], 1.0)


def test_random_maps() -> None:
    a = cam.random_maps(3, 5, 7, seed=11)
    _assert_maps(a, (3, 5, 7))
    assert float(a.max()) < 1.0
    assert torch.equal(a, cam.random_maps(3, 5, 7, seed=11))
    assert not torch.equal(a, cam.random_maps(3, 5, 7, seed=12))
    assert not torch.equal(a[0], a[1])
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="seed"):
            cam.random_maps(2, 4, 4, seed=bad)
    with pytest.raises(ValueError, match="n=0"):
        cam.random_maps(0, 4, 4)


@pytest.mark.parametrize("size", [(4, 4), (5, 5), (6, 9)])
def test_centre_prior_peaks_at_the_centre_and_is_symmetric(size: tuple[int, int]) -> None:
    h, w = size
    m = cam.centre_prior(2, h, w)
    _assert_maps(m, (2, h, w))
    assert torch.equal(m[0], m[1])
    assert torch.allclose(m, m.flip(1), atol=1e-6) and torch.allclose(m, m.flip(2), atol=1e-6)
    assert float(m.max()) == pytest.approx(1.0)
    peak = int(m[0].flatten().argmax())
    assert abs(peak // w + 0.5 - h / 2) <= 0.5 and abs(peak % w + 0.5 - w / 2) <= 0.5
    # the value falls with the distance from the centre
    assert float(m[0, 0, 0]) < float(m[0, h // 2, 0]) < float(m[0, h // 2, w // 2]) + 1e-7
    assert cam.pointing_game(m, torch.tensor([[w / 2 - 0.6, h / 2 - 0.6, w / 2 + 0.6,
                                               h / 2 + 0.6]] * 2)).all()


def test_centre_prior_by_hand() -> None:
    m = cam.centre_prior(1, 4, 4, sigma=0.25)
    # corner (-0.375, -0.375) against the centre pixels (+-0.125, +-0.125): exp(-2)
    assert float(m[0, 0, 0]) == pytest.approx(math.exp(-2.0), rel=1e-5)
    assert float(m[0, 1, 1]) == pytest.approx(1.0)
    assert float(m[0, 0, 1]) == pytest.approx(math.exp(-1.0), rel=1e-5)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="sigma"):
            cam.centre_prior(1, 4, 4, sigma=bad)


def test_reference_maps() -> None:
    assert torch.equal(cam.reference_maps("random", 2, 6, 5, seed=3),
                       cam.random_maps(2, 6, 5, seed=3))
    assert torch.equal(cam.reference_maps("centre", 2, 6, 5), cam.centre_prior(2, 6, 5))
    assert set(cam.REFERENCES) == {"random", "centre"}
    for bad in ("center", "uniform", ""):
        with pytest.raises(ValueError, match="kind"):
            cam.reference_maps(bad, 2, 6, 5)


# ================================================================== 7. paste_into_region
def test_paste_the_whole_image_returns_the_map() -> None:
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(2, 12, 12, generator=g)
    whole = torch.tensor([[0.5, 0.5, 0.5]] * 2)
    assert torch.allclose(cam.paste_into_region(maps, whole, (12, 12)), maps, atol=1e-6)
    # a non-square image: the region scales with each side
    rect = torch.rand(1, 6, 10, generator=g)
    assert torch.allclose(cam.paste_into_region(rect, whole[:1], (6, 10)), rect, atol=1e-6)
    # upsampled by an even factor: the interior is bilinear resampling
    small = torch.rand(2, 8, 8, generator=g)
    up = F.interpolate(small[:, None], size=(16, 16), mode="bilinear", align_corners=False)
    pasted = cam.paste_into_region(small, whole, (16, 16))
    assert torch.allclose(pasted[:, 1:-1, 1:-1], up[:, 0, 1:-1, 1:-1], atol=1e-6)


def test_paste_the_whole_image_resamples_up_to_the_border() -> None:
    g = torch.Generator().manual_seed(0)
    small = torch.rand(2, 8, 8, generator=g)
    up = F.interpolate(small[:, None], size=(16, 16), mode="bilinear", align_corners=False)
    pasted = cam.paste_into_region(small, torch.tensor([[0.5, 0.5, 0.5]] * 2), (16, 16))
    assert torch.allclose(pasted, up[:, 0], atol=1e-6)


def test_paste_a_crop_of_the_left_half() -> None:
    g = torch.Generator().manual_seed(1)
    crop = torch.rand(1, 16, 16, generator=g)
    region = torch.tensor([[0.25, 0.5, 0.25]])  # x in [0, 0.5), y in [0.25, 0.75)
    out = cam.paste_into_region(crop, region, (16, 16))
    assert tuple(out.shape) == (1, 16, 16)
    assert not out[0, :, 8:].any()  # the right half
    assert not out[0, :4].any() and not out[0, 12:].any()  # above and below the region
    # each image pixel's centre lies between four crop pixels: their mean
    by_hand = crop[0].reshape(8, 2, 8, 2).mean((1, 3))
    assert torch.allclose(out[0, 4:12, :8], by_hand, atol=1e-6)


def test_paste_into_a_random_region_against_brute_force() -> None:
    g = torch.Generator().manual_seed(2)
    maps = torch.rand(3, 12, 12, generator=g)
    regions = torch.tensor([[0.43, 0.57, 0.21], [0.3, 0.62, 0.17], [0.6, 0.4, 0.33]])
    out = cam.paste_into_region(maps, regions, (20, 24))
    assert tuple(out.shape) == (3, 20, 24)
    brute, deep = _brute_paste(maps, regions, 20, 24)
    assert deep.sum() > 50
    assert torch.allclose(out.double()[deep], brute[deep], atol=1e-5)
    # far outside the region (more than half a crop pixel) the map is zero
    margin = float(regions[:, 2].max()) * 2 / 12 / 2
    assert not out[~_region_mask(regions, 20, 24, margin)].any()
    with pytest.raises(ValueError, match="regions"):
        cam.paste_into_region(maps, regions[:2], (20, 24))
    with pytest.raises(ValueError, match="maps"):
        cam.paste_into_region(maps[0], regions[:1], (20, 24))


def test_paste_is_exactly_zero_outside_the_region() -> None:
    ones = torch.ones(1, 16, 16)
    region = torch.tensor([[0.5, 0.5, 0.24]])  # x, y in [0.26, 0.74)
    out = cam.paste_into_region(ones, region, (10, 10))
    expected = torch.zeros(1, 10, 10)
    expected[0, 3:7, 3:7] = 1.0  # centres 0.35 .. 0.65 are in; 0.25 and 0.75 are out
    assert torch.equal(out, expected)
    g = torch.Generator().manual_seed(2)
    maps = torch.rand(3, 12, 12, generator=g)
    regions = torch.tensor([[0.43, 0.57, 0.21], [0.3, 0.62, 0.17], [0.6, 0.4, 0.33]])
    brute, _ = _brute_paste(maps, regions, 20, 24)
    assert torch.allclose(cam.paste_into_region(maps, regions, (20, 24)).double(), brute,
                          atol=1e-5)


# ================================================================== 8. Grad-CAM by hand
def test_the_package_resizes_like_bilinear_interpolation() -> None:
    """The package upsamples with cv2.resize's default (bilinear, pixel centres)."""
    g = torch.Generator().manual_seed(0)
    for h, w, height, width in ((2, 2, 16, 16), (4, 4, 32, 32), (3, 5, 17, 23)):
        m = torch.rand(h, w, generator=g)
        by_cv2 = torch.from_numpy(cv2.resize(m.numpy(), (width, height)))
        by_torch = F.interpolate(m[None, None], size=(height, width), mode="bilinear",
                                 align_corners=False)[0, 0]
        assert torch.allclose(by_cv2, by_torch, atol=1e-6)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_level_cam_equals_grad_cam_by_hand_in_float64(level: int) -> None:
    model = _hrn(seed=3).double()
    x = _images(4, size=32, seed=4, dtype=torch.float64)
    classes = torch.tensor([0, 1, 1, 0]) if level == 0 else torch.tensor([2, 0, 1, 2])
    got = cam.level_cam(model, x, level, classes)
    want = _hand_grad_cam(lambda t: model(t).level_logits[level], model.blocks[level].conv,
                          x, classes)
    assert float(want.amax((1, 2)).max()) == pytest.approx(1.0, abs=1e-6)  # not all zero
    assert torch.allclose(got.double(), want, atol=1e-5)


def test_class_cam_equals_grad_cam_by_hand_in_float64() -> None:
    for model in (_sarb(seed=2).double(), _linear(seed=2).double()):
        x = _images(3, size=32, seed=6, dtype=torch.float64)
        classes = torch.tensor([3, 0, 2])
        got = cam.class_cam(model, x, classes)
        want = _hand_grad_cam(lambda t, m=model: m(t).logits, model.backbone, x, classes)
        assert float(want.max()) > 0
        assert torch.allclose(got.double(), want, atol=1e-5)


def test_scale_cam_crop_maps_equal_grad_cam_by_hand() -> None:
    model, x = _racnn(seed=5), _images(3, seed=8)
    classes = torch.tensor([4, 1, 0])
    for scale in range(3):
        out = cam.scale_cam(model, x, scale, classes)
        net = cam.ScaleNet(model, scale)
        want = _hand_grad_cam(net, net.backbone, out.crops.clone(), classes)
        assert float(want.max()) > 0
        assert torch.allclose(out.crop_maps, want.float(), atol=1e-4)


def test_grad_cam_by_hand_on_a_module_returning_logits() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.Conv2d(5, 6, 3, stride=2),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4))
    net = net.double()
    x = _images(3, size=17, seed=2, dtype=torch.float64)
    classes = torch.tensor([0, 3, 2])
    got = cam.grad_cam(net, x, net[3], classes)
    want = _hand_grad_cam(net, net[3], x, classes)
    assert float(want.max()) > 0
    assert torch.allclose(got.double(), want, atol=1e-5)


# ================================================================== 9. confidence_change
def test_confidence_change() -> None:
    model = _sarb()
    net = cam.ClassLogits(model)  # a multi-label class: the sigmoid of its logit
    x = _images(4, seed=3)
    classes = torch.tensor([0, 3, 1, 2])
    ones = cam.confidence_change(net, x, torch.ones(4, SIZE, SIZE), classes)
    assert tuple(ones.shape) == (4,) and ones.dtype == torch.float32
    assert torch.allclose(ones, torch.zeros(4), atol=1e-6)
    zero = cam.confidence_change(net, x, torch.zeros(4, SIZE, SIZE), classes)
    with torch.no_grad():
        before = torch.sigmoid(net(x))[torch.arange(4), classes]
        blank = torch.sigmoid(net(torch.zeros_like(x)))[torch.arange(4), classes]
    assert torch.allclose(zero, blank - before, atol=1e-6)
    assert not torch.allclose(zero, torch.zeros(4), atol=1e-4)
    # a map in between: the probability of the multiplied image, by hand
    half = torch.full((4, SIZE, SIZE), 0.5)
    with torch.no_grad():
        after = torch.sigmoid(net(x * 0.5))[torch.arange(4), classes]
    assert torch.allclose(cam.confidence_change(net, x, half, classes, batch_size=3),
                          after - before, atol=1e-6)
    assert torch.allclose(cam.confidence_change(net, x, half, 2),
                          cam.confidence_change(net, x, half, [2] * 4))


def test_confidence_change_of_level_maps_and_bad_inputs() -> None:
    model, x = _hrn(), _images()
    maps = cam.level_cam(model, x, "family", [0, 1, 2])
    net = cam.LevelLogits(model, "family")
    change = cam.confidence_change(net, x, maps, [0, 1, 2])
    assert tuple(change.shape) == (B,) and bool(((change >= -1) & (change <= 1)).all())
    with pytest.raises(ValueError, match="classes are required"):
        cam.confidence_change(net, x, maps, None)
    with pytest.raises(ValueError, match="outside the 3 classes"):
        cam.confidence_change(net, x, maps, [0, 1, 3])
    with pytest.raises(ValueError, match="one class per image"):
        cam.confidence_change(net, x, maps, [0, 1])
    with pytest.raises(ValueError, match="cams"):
        cam.confidence_change(net, x, maps[:, :8], [0, 1, 2])
    with pytest.raises(ValueError, match="cams"):
        cam.confidence_change(net, x, -maps, [0, 1, 2])
    _assert_no_hooks(model)


# ================================================================== 10. Score-CAM
def test_score_cam_is_silent(capsys: pytest.CaptureFixture[str]) -> None:
    model, x = _hrn(), _images(2)
    maps = cam.level_cam(model, x, 1, [0, 2], "scorecam")
    cam.scale_cam(_racnn(), x, 1, 0, "scorecam")
    cam.class_cam(_sarb(), x, 1, "scorecam")
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    _assert_maps(maps, (2, SIZE, SIZE))
    # the control: the package itself draws progress bars on stderr
    raw = ScoreCAM(model=cam.LevelLogits(model, 1), target_layers=[model.blocks[1].conv])
    try:
        raw(x, [ClassifierOutputTarget(0), ClassifierOutputTarget(2)])
    finally:
        raw.activations_and_grads.release()
    assert "100%" in capsys.readouterr().err


def test_score_cam_needs_no_gradient() -> None:
    model, x = _hrn(), _images()
    ref = cam.level_cam(model, x, 2, [1, 2, 3], "scorecam")
    model.requires_grad_(False)
    with torch.no_grad():
        frozen = cam.level_cam(model, x, 2, [1, 2, 3], "scorecam")
    assert torch.allclose(ref, frozen, atol=1e-6)
    assert all(p.grad is None for p in model.parameters())
    _assert_no_hooks(model)


def test_a_zero_dimensional_integer_tensor_applies_to_every_image() -> None:
    model, x = _hrn(), _images()
    assert torch.equal(cam.level_cam(model, x, -1, torch.tensor(2)),
                       cam.level_cam(model, x, -1, [2] * len(x)))


def test_localisation_scores_are_nan_for_an_image_without_a_box_of_that_kind() -> None:
    maps = torch.zeros(3, 8, 8)
    maps[:, 2, 2] = 1.0  # the peak at pixel (x 2, y 2) of every map
    nan = [float("nan")] * 4
    parts = torch.tensor([[[1.0, 1, 4, 4], nan], [nan, nan], [[6.0, 6, 8, 8], nan]])  # (3, 2, 4)
    scores = cam.localisation_scores(maps, {"part": parts})
    point, energy = scores["pointing/part"], scores["energy/part"]
    assert point[0] == 1 and point[2] == 0 and torch.isnan(point[1])
    assert energy[0] == 1 and energy[2] == 0 and torch.isnan(energy[1])
    with pytest.raises(ValueError, match="boxes\\['part'\\]"):
        cam.localisation_scores(maps, {"part": parts[:2]})


def test_an_empty_batch_is_refused_with_a_clear_message() -> None:
    empty, sarb = torch.zeros(0, 3, 16, 16), _sarb()
    for call in (lambda: cam.level_cam(_hrn(), empty, 0),
                 lambda: cam.class_cam(sarb, empty, None),
                 lambda: cam.grad_cam(cam.ClassLogits(sarb), empty, sarb.backbone)):
        with pytest.raises(ValueError, match="empty batch"):
            call()


def test_hand_grad_cam_leaves_the_callers_gradients_as_they_were() -> None:
    model, x = _hrn(), _images()
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    before = {name: p.grad for name, p in model.named_parameters()}
    net = cam.LevelLogits(model, -1)
    cam.hand_grad_cam(net, x, model.blocks[-1].conv, [0] * len(x))
    for name, p in model.named_parameters():
        assert p.grad is before[name] and bool((p.grad == 1).all()), name


def test_each_wrapper_names_the_probability_its_model_states() -> None:
    assert cam.LevelLogits(_hrn(), 0).probability == "sigmoid"
    tree = _hrn().tree
    backbone = build_backbone("small_cnn", width=4)
    flat = get_model("flat", tree, backbone=backbone, feature_dim=8)
    assert cam.LevelLogits(flat, 0).probability == "softmax"
    assert cam.ScaleNet(_racnn(), 0).probability == "softmax"
    assert cam.ClassLogits(_sarb()).probability == "sigmoid"


def test_confidence_change_uses_the_sigmoid_of_a_multilabel_class() -> None:
    sarb, x = _sarb().eval(), _images()
    net = cam.ClassLogits(sarb)
    half = torch.full(x.shape[:1] + x.shape[2:], 0.5)  # (B, H, W)
    got = cam.confidence_change(net, x, half, [1] * len(x))
    with torch.no_grad():
        before = torch.sigmoid(net(x)[:, 1])
        after = torch.sigmoid(net(x * 0.5)[:, 1])
    assert torch.allclose(got, after - before, atol=1e-6)
    softmax = cam.confidence_change(net, x, half, [1] * len(x), probability="softmax")
    with torch.no_grad():
        expected = torch.softmax(net(x * 0.5), 1)[:, 1] - torch.softmax(net(x), 1)[:, 1]
    assert torch.allclose(softmax, expected, atol=1e-6)
    with pytest.raises(ValueError, match="probability"):
        cam.confidence_change(net, x, half, [1] * len(x), probability="logit")


def test_paste_into_region_refuses_a_degenerate_region() -> None:
    maps = torch.ones(1, 4, 4)
    for bad in ([[0.5, 0.5, 0.0]], [[0.5, float("nan"), 0.2]], [[0.5, 0.5, -0.1]]):
        with pytest.raises(ValueError, match="half side"):
            cam.paste_into_region(maps, torch.tensor(bad), (8, 8))
    with pytest.raises(ValueError, match="size"):
        cam.paste_into_region(maps, torch.tensor([[0.5, 0.5, 0.5]]), (0, 8))


def test_point_boxes_refuses_a_nan_half_side() -> None:
    with pytest.raises(ValueError, match="half_side"):
        boxes_mod.point_boxes(torch.zeros(1, 2, 3), float("nan"))


def test_level_classes_lift_and_mark_coarse_labels() -> None:
    tree = LabelTree.from_paths([("a", "a1", "a1x"), ("a", "a1", "a1y"), ("a", "a2", "a2x"),
                                 ("b", "b1", "b1x")], ["order", "family", "species"])
    targets = torch.tensor([tree.index("a2x"), tree.index("a1"), tree.index("b"),
                            tree.index("b1x")])
    assert cam.level_classes(targets, tree, 0).tolist() == [0, 0, 1, 1]
    assert cam.level_classes(targets, tree, 1).tolist() == [1, 0, -1, 2]
    assert cam.level_classes(targets, tree, 2).tolist() == [2, -1, -1, 3]
    assert cam.level_classes(targets, tree, "family").tolist() == [1, 0, -1, 2]


def test_pad_boxes_pads_with_nan_rows() -> None:
    got = boxes_mod.pad_boxes([torch.tensor([[0.0, 0, 2, 2], [1, 1, 3, 3]]), torch.zeros(0, 4),
                               torch.tensor([5.0, 5, 6, 6])])
    assert got.shape == (3, 2, 4)
    assert got[0].tolist() == [[0, 0, 2, 2], [1, 1, 3, 3]]
    assert bool(torch.isnan(got[1]).all())
    assert got[2, 0].tolist() == [5, 5, 6, 6] and bool(torch.isnan(got[2, 1]).all())
    assert boxes_mod.pad_boxes([torch.zeros(0, 4)]).shape == (1, 1, 4)
