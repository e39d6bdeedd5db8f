"""RA-CNN: the attention crop, boxes and bounds, the model, its losses and the
alternating training (what each phase freezes)."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from hmglib.alternation import fit_racnn, racnn_optimizer, response_squares
from hmglib.data.synthetic.hier_shapes import hier_shapes_tree
from hmglib.losses import RACNNLoss, RACNNLossOutput, get_loss, rank_loss
from hmglib.models import build_backbone, get_model
from hmglib.models.racnn import (
    APN,
    RACNN,
    BoxBounds,
    RACNNOutput,
    attention_crop,
    boxcar_mask,
    boxes_to_xyxy,
    compose_boxes,
    square_around,
)
from hmglib.recipes import RACNN_RECIPES

# (2, 2, 2): nodes 0-1 orders | 2-5 families | 6-13 species (species i: family i // 2,
# order i // 4)
TREE = hier_shapes_tree((2, 2, 2))
LEAF0 = TREE.offset(-1)
K = TREE.level_sizes[-1]
WHOLE = (0.5, 0.5, 0.5)  # the whole image as a box
# float32 rounding of the bounds and of t_l + (1 - 2 t_l) u; a box that broke its
# bounds would be off by far more
EPS = 1e-6


def tiny(num_scales: int = 2, seed: int = 0, **kw) -> RACNN:
    """A fast RA-CNN: small_cnn of width 4 on 16-px inputs, 8 hidden APN units."""
    torch.manual_seed(seed)
    return get_model("racnn", TREE, backbone=build_backbone("small_cnn", width=4), weights=None,
                     input_sizes=(16,) * num_scales, num_scales=num_scales, apn_hidden=8, **kw)


def checkerboard(size: int = 64, cell: int = 8, lo: float = 0.2, hi: float = 1.0) -> torch.Tensor:
    """``(1, 2, size, size)``: a checkerboard of ``cell``-px cells and its inverse."""
    idx = torch.arange(size) // cell
    board = ((idx[:, None] + idx[None, :]) % 2).float()  # (size, size) in {0, 1}
    board = lo + (hi - lo) * board
    return torch.stack([board, hi + lo - board])[None]  # (1, 2, size, size)


def smooth_image(batch: int, channels: int, h: int, w: int) -> torch.Tensor:
    """``(B, C, H, W)`` float64: a sum of sines, different per image and channel."""
    y = torch.arange(h, dtype=torch.float64)[:, None]
    x = torch.arange(w, dtype=torch.float64)[None, :]
    out = torch.empty(batch, channels, h, w, dtype=torch.float64)
    for b, c in itertools.product(range(batch), range(channels)):
        a = 0.3 + 0.11 * b + 0.07 * c
        out[b, c] = torch.sin(a * x + 0.5 * a * y + c) + 0.5 * torch.cos(0.4 * y - 0.9 * a * x)
    return out


def sample_positions(boxes: torch.Tensor, h: int, w: int, out_h: int, out_w: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The documented sample points in pixel coordinates (pixel ``j``'s centre is
    ``j``): one per output pixel centre, ``align_corners=False``.

    Returns ``(ys (B, out_h), xs (B, out_w))``."""
    tx, ty, tl = (boxes[:, i : i + 1].double() for i in range(3))  # (B, 1) each
    j = torch.arange(out_w, dtype=torch.float64)[None]
    i = torch.arange(out_h, dtype=torch.float64)[None]
    xs = (tx - tl) * w + (j + 0.5) * (2 * tl * w / out_w) - 0.5
    ys = (ty - tl) * h + (i + 0.5) * (2 * tl * h / out_h) - 0.5
    return ys, xs


def bilinear_by_hand(images: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """Bilinear reads of ``images`` (B, C, H, W) on the grid ``ys`` (B, h) x ``xs``
    (B, w), positions clamped into the image (border padding)."""
    b, c, h, w = images.shape
    out = torch.empty(b, c, ys.shape[1], xs.shape[1], dtype=images.dtype)
    for n in range(b):
        py = ys[n].clamp(0, h - 1)
        px = xs[n].clamp(0, w - 1)
        y0, x0 = py.floor().long(), px.floor().long()
        y1, x1 = (y0 + 1).clamp(max=h - 1), (x0 + 1).clamp(max=w - 1)
        wy, wx = (py - y0)[:, None], (px - x0)[None, :]  # (h, 1), (1, w)
        img = images[n]  # (C, H, W)
        top = img[:, y0][:, :, x0] * (1 - wx) + img[:, y0][:, :, x1] * wx  # (C, h, w)
        bottom = img[:, y1][:, :, x0] * (1 - wx) + img[:, y1][:, :, x1] * wx
        out[n] = top * (1 - wy) + bottom * wy
    return out


# ------------------------------------------------------------------ crop
@pytest.mark.parametrize("method", ["grid", "mask"])
def test_crop_of_a_known_box_is_that_region(method: str) -> None:
    img = checkerboard()  # (1, 2, 64, 64)
    box = torch.tensor([[0.5, 0.5, 0.25]])  # x and y in [16, 48): cells 2..5
    crop = attention_crop(img, box, 32, method=method)
    region = img[:, :, 16:48, 16:48]
    assert crop.shape == (1, 2, 32, 32) and crop.dtype == img.dtype
    # output pixel j samples input pixel 16 + j at its centre: the exact pixels
    torch.testing.assert_close(crop[..., 1:-1, 1:-1], region[..., 1:-1, 1:-1],
                               atol=1e-5, rtol=0)
    if method == "grid":
        torch.testing.assert_close(crop, region, atol=1e-6, rtol=0)
    else:
        # the soft mask is ~1 half a pixel inside the edges: the border rows and
        # columns (pixel centres 0.5 px from an edge) are scaled by sigmoid(k * 0.5)
        # = sigmoid(5) ~ 0.9933 per axis; the interior (>= 1.5 px) by 1 - 3e-7 at
        # worst. So the whole crop is within 2 (1 - sigmoid(5)) of the region (a
        # corner pixel is darkened on both axes), and the border is darker.
        dark = 1 - torch.sigmoid(torch.tensor(5.0))
        torch.testing.assert_close(crop, region, atol=float(2 * dark * img.max()) + 1e-6, rtol=0)
        assert (crop[..., 0, :] < region[..., 0, :]).all()
        torch.testing.assert_close(crop[..., 0, 1:-1], region[..., 0, 1:-1] * (1 - dark),
                                   atol=1e-5, rtol=0)


def test_grid_crop_zooms_by_bilinear_interpolation() -> None:
    img = checkerboard()
    box = torch.tensor([[0.5, 0.5, 0.25]])
    region = img[:, :, 16:48, 16:48]  # (1, 2, 32, 32)
    # half the side: output j samples between pixels 16 + 2j and 17 + 2j, which lie
    # in one 8-px cell, so the crop is the region's every other pixel, exactly
    torch.testing.assert_close(attention_crop(img, box, 16), region[..., ::2, ::2],
                               atol=1e-6, rtol=0)
    # twice the side: output j samples pixel 15.75 + j / 2; away from the cells'
    # edges that is the nearest pixel's value; next to an edge bilinear
    # interpolation gives the neighbouring cell a weight of 1/4 per axis, so at
    # most 1 - (3/4)^2 = 7/16 of the contrast hi - lo = 0.8 (in a corner)
    zoom = attention_crop(img, box, 64)
    nearest = region.repeat_interleave(2, -1).repeat_interleave(2, -2)  # (1, 2, 64, 64)
    diff = (zoom - nearest).abs()
    assert float(diff.max()) <= 7 / 16 * 0.8 + 1e-6
    edge = torch.zeros(64, dtype=torch.bool)
    pos = 15.75 + torch.arange(64) / 2  # the sample positions in pixels
    edge |= (torch.floor(pos) // 8) != (torch.ceil(pos) // 8)  # samples across a cell edge
    assert float(diff[..., ~edge, :][..., ~edge].max()) <= 1e-6
    assert float(diff.max()) > 0.1  # the edges really are interpolated


def test_off_centre_non_square_and_non_square_image_crops() -> None:
    img = checkerboard()
    # x in [4, 36), y in [20, 52): not aligned with the cells
    box = torch.tensor([[0.3125, 0.5625, 0.25]])
    torch.testing.assert_close(attention_crop(img, box, 32), img[:, :, 20:52, 4:36],
                               atol=1e-6, rtol=0)
    # (h, w) = (16, 32) of the square [16, 48)^2: rows at half resolution
    centre = torch.tensor([[0.5, 0.5, 0.25]])
    crop = attention_crop(img, centre, (16, 32))
    assert crop.shape == (1, 2, 16, 32)
    torch.testing.assert_close(crop, img[:, :, 16:48:2, 16:48], atol=1e-6, rtol=0)
    # a 32 x 64 image: the region has the image's aspect ratio (rows [8, 24),
    # columns [16, 48))
    wide = torch.rand(2, 3, 32, 64)
    boxes = centre.expand(2, 3)
    torch.testing.assert_close(attention_crop(wide, boxes, (16, 32)), wide[:, :, 8:24, 16:48],
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", ["grid", "mask"])
def test_each_image_gets_its_own_box(method: str) -> None:
    torch.manual_seed(0)
    imgs = torch.rand(4, 3, 64, 64)
    boxes = torch.tensor([[0.25, 0.25, 0.25], [0.5, 0.75, 0.25], [0.75, 0.375, 0.25],
                          [0.375, 0.5, 0.125]])
    crop = attention_crop(imgs, boxes, 32, method=method)
    regions = [imgs[0, :, 0:32, 0:32], imgs[1, :, 32:64, 16:48], imgs[2, :, 8:40, 32:64],
               imgs[3, :, 24:40, 16:32].repeat_interleave(2, 1).repeat_interleave(2, 2)]
    for n in range(3):  # out_size = the region's side: its pixels (interior for "mask")
        torch.testing.assert_close(crop[n, :, 1:-1, 1:-1], regions[n][:, 1:-1, 1:-1],
                                   atol=1e-5, rtol=0)
    # the 16-px box zoomed 2x: bilinear, so compare with the by-hand reading
    ys, xs = sample_positions(boxes[3:], 64, 64, 32, 32)
    masked = imgs[3:] if method == "grid" else imgs[3:] * boxcar_mask(boxes[3:], 64, 64)[:, None]
    torch.testing.assert_close(crop[3:], bilinear_by_hand(masked, ys, xs), atol=1e-5, rtol=0)


def test_crop_reads_the_documented_sample_points() -> None:
    """One bilinear sample at the centre of each output pixel (align_corners=False),
    the image's edge pixels repeated outside it."""
    g = torch.Generator().manual_seed(1)
    imgs = torch.rand(3, 2, 20, 28, generator=g, dtype=torch.float64)
    boxes = torch.tensor([[0.41, 0.37, 0.23], [0.66, 0.52, 0.31], [0.1, 0.9, 0.2]],
                         dtype=torch.float64)  # the last reaches out of the image
    ys, xs = sample_positions(boxes, 20, 28, 7, 9)
    crop = attention_crop(imgs, boxes, (7, 9))
    torch.testing.assert_close(crop, bilinear_by_hand(imgs, ys, xs), atol=1e-10, rtol=0)
    mask = boxcar_mask(boxes, 20, 28)[:, None]
    torch.testing.assert_close(attention_crop(imgs, boxes, (7, 9), method="mask"),
                               bilinear_by_hand(imgs * mask, ys, xs), atol=1e-10, rtol=0)


def test_boxcar_mask_by_hand() -> None:
    box = torch.tensor([[0.5, 0.25, 0.25]])  # x in [6, 18), y in [0, 8) of a 16 x 24 image
    m = boxcar_mask(box, 16, 24)
    assert m.shape == (1, 16, 24)
    assert float(m.min()) >= 0 and float(m.max()) <= 1
    h = torch.sigmoid
    x = torch.arange(24) + 0.5  # pixel centres
    y = torch.arange(16) + 0.5
    mx = h(10 * (x - 6)) - h(10 * (x - 18))
    my = h(10 * (y - 0)) - h(10 * (y - 8))
    torch.testing.assert_close(m[0], my[:, None] * mx[None, :])
    assert float(m[0, 2, 8]) > 0.999 and float(m[0, 12, 8]) < 1e-6 and float(m[0, 2, 20]) < 1e-6
    # larger sharpness: closer to the hard boxcar
    hard = boxcar_mask(box, 16, 24, sharpness=100.0)
    assert float((hard - (hard > 0.5).float()).abs().max()) < 1e-6


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"boxes": torch.tensor([[0.5, 0.5]])}, ValueError, r"expected \(2, 3\)"),
    ({"boxes": torch.tensor([[0.5, 0.5, 0.2]])}, ValueError, r"expected \(2, 3\)"),
    ({"boxes": torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.2]])}, ValueError, "t_l must be > 0"),
    ({"boxes": torch.tensor([[0.5, math.nan, 0.2], [0.5, 0.5, 0.2]])}, ValueError, "NaN"),
    ({"boxes": torch.tensor([[1, 1, 1], [1, 1, 1]])}, TypeError, "float tensor"),
    ({"method": "nearest"}, ValueError, r"unknown method='nearest'; choose one of \['grid'"),
    ({"out_size": 0}, ValueError, "out_size"),
    ({"out_size": (8, 8, 8)}, TypeError, r"int or \(height, width\)"),
    ({"images": torch.zeros(2, 3, 16, 16, dtype=torch.uint8)}, TypeError, "float images"),
    ({"images": torch.zeros(3, 16, 16)}, ValueError, "unsqueeze"),
])
def test_crop_bad_input(kwargs: dict, error: type, message: str) -> None:
    args = {"images": torch.rand(2, 3, 16, 16), "boxes": torch.full((2, 3), 0.25),
            "out_size": 8, **kwargs}
    with pytest.raises(error, match=message):
        attention_crop(**args)


# ------------------------------------------------------------------ crop gradients
@pytest.mark.parametrize("method", ["grid", "mask"])
def test_box_gradients_are_finite_and_non_zero(method: str) -> None:
    img = smooth_image(2, 3, 48, 48).float() + torch.linspace(0, 1, 48)  # textured, a ramp in x
    boxes = torch.tensor([[0.45, 0.55, 0.3], [0.6, 0.4, 0.2]], requires_grad=True)
    attention_crop(img, boxes, 24, method=method).sum().backward()
    assert torch.isfinite(boxes.grad).all()
    assert (boxes.grad.abs() > 1e-4).all(), boxes.grad


def test_grid_crop_gradcheck() -> None:
    img = smooth_image(2, 2, 20, 24)  # float64, smooth: bilinear reads are smooth between pixels
    boxes = torch.tensor([[0.437, 0.521, 0.2113], [0.573, 0.409, 0.1687]], dtype=torch.float64,
                         requires_grad=True)
    out_hw = (5, 6)
    # bilinear sampling has kinks where a sample sits on a pixel centre: gradcheck
    # is valid only when every sample point is well away from one
    ys, xs = sample_positions(boxes.detach(), 20, 24, *out_hw)
    for pos in (ys, xs):
        assert float((pos - pos.round()).abs().min()) > 1e-2
    assert torch.autograd.gradcheck(lambda b: attention_crop(img, b, out_hw), (boxes,))


def test_boxcar_mask_gradcheck() -> None:
    boxes = torch.tensor([[0.43, 0.55, 0.21], [0.61, 0.38, 0.27]], dtype=torch.float64,
                         requires_grad=True)
    for k in (10.0, 2.0):
        assert torch.autograd.gradcheck(lambda b, k=k: boxcar_mask(b, 9, 11, sharpness=k),
                                        (boxes,))


def textured_centre(size: int = 64, lo: int = 24, hi: int = 40) -> torch.Tensor:
    """``(1, 3, size, size)``: zero except a texture in ``[lo, hi)^2``."""
    img = torch.zeros(1, 3, size, size)
    img[..., lo:hi, lo:hi] = 1 + smooth_image(1, 3, hi - lo, hi - lo).float()
    return img


def box_gradient(img: torch.Tensor, box: tuple[float, float, float], method: str,
                 out: int = 24) -> torch.Tensor:
    """``d L / d box`` (3,) for ``L = sum(w * crop)``, ``w`` a fixed random weight map
    (what a linear classifier on the crop computes)."""
    w = torch.randn(1, img.shape[1], out, out, generator=torch.Generator().manual_seed(0))
    b = torch.tensor([box], requires_grad=True)
    (w * attention_crop(img, b, out, method=method)).sum().backward()
    return b.grad[0]


def test_mask_gradient_vanishes_away_from_the_box_edges() -> None:
    """The chapter's point: the mask's derivative lives within ~1 px of the box
    edges (k = 10 per pixel), so a box whose object lies inside it, 8 px from every
    edge, gets no gradient from the mask; the sampling grid's gradient is the
    image's slope at every sample, wherever the texture is."""
    img = textured_centre()  # texture in [24, 40)^2
    box = (0.5, 0.5, 0.25)  # edges at 16 and 48 px: 8 px from the texture
    grid = box_gradient(img, box, "grid")
    mask = box_gradient(img, box, "mask")
    assert float(grid.abs().min()) > 1e-2  # all of t_x, t_y, t_l
    assert float(mask.abs().max()) <= 1e-6 * float(grid.abs().min())
    # the paper's form, d(sum M * I) / d t_x, is as flat
    b = torch.tensor([box], requires_grad=True)
    (boxcar_mask(b, 64, 64)[:, None] * img).sum().backward()
    assert float(b.grad.abs().max()) <= 1e-6 * float(grid.abs().min())
    # a texture that reaches the box's edges: then the mask has a gradient too
    edge = textured_centre(lo=14, hi=50)
    ratio = box_gradient(edge, box, "mask").abs() / box_gradient(edge, box, "grid").abs()
    assert float(ratio.max()) > 1e-2


# ------------------------------------------------------------------ boxes
def test_box_bounds_hold_for_extreme_apn_outputs() -> None:
    torch.manual_seed(0)
    bounds = BoxBounds(0.1, 0.4)
    apn = APN(4, (3, 3), hidden=8, bounds=bounds)
    with torch.no_grad():  # saturate the sigmoid: u in {0, 1}
        apn.fc2.weight.mul_(1e4)
        apn.fc2.bias.mul_(1e4)
    for scale in (1e6, -1e6, 1.0):
        with torch.no_grad():
            t = apn(scale * torch.randn(256, 4, 3, 3))
        tx, ty, tl = t.unbind(1)
        assert torch.isfinite(t).all()
        assert float(tl.min()) >= 0.1 - EPS and float(tl.max()) <= 0.4 + EPS
        for c in (tx, ty):
            assert float((c - tl).min()) >= -EPS and float((c + tl).max()) <= 1 + EPS
    with torch.no_grad():
        t = apn(1e6 * torch.randn(256, 4, 3, 3))
    assert float(t[:, 2].min()) == pytest.approx(0.1) and float(t[:, 2].max()) == pytest.approx(0.4)
    assert float((t[:, 0] - t[:, 2]).min()) == pytest.approx(0, abs=EPS)  # the edges are reached
    assert float((t[:, 0] + t[:, 2]).max()) == pytest.approx(1, abs=EPS)


@pytest.mark.parametrize("bounds", [BoxBounds(), BoxBounds(0.05, 0.5), BoxBounds(0.2, 0.2),
                                    BoxBounds(0.01, 0.49)])
def test_box_bounds_from_unit_corners(bounds: BoxBounds) -> None:
    corners = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))  # (8, 3)
    u = torch.cat([corners, torch.rand(64, 3, generator=torch.Generator().manual_seed(0))])
    t = bounds.from_unit(u)
    tx, ty, tl = t.unbind(1)
    assert float(tl.min()) >= bounds.min_half - EPS and float(tl.max()) <= bounds.max_half + EPS
    assert float((torch.minimum(tx, ty) - tl).min()) >= -EPS
    assert float((torch.maximum(tx, ty) + tl).max()) <= 1 + EPS
    # u_l = 0 / 1: the bounds; u_x = 0 / 1: the square touches the left / right edge
    torch.testing.assert_close(tl[:8], torch.where(corners[:, 2] > 0, bounds.max_half,
                                                   bounds.min_half))
    torch.testing.assert_close(tx[:8], torch.where(corners[:, 0] > 0, 1 - tl[:8], tl[:8]))


@pytest.mark.parametrize(("min_half", "max_half"), [
    (0.0, 0.4), (-0.1, 0.4), (0.5, 0.5), (0.3, 0.2), (0.1, 0.6), (math.nan, 0.4), (0.1, math.nan),
])
def test_bad_box_bounds(min_half: float, max_half: float) -> None:
    with pytest.raises(ValueError, match="BoxBounds: (min|max)_half"):
        BoxBounds(min_half, max_half)


def test_compose_boxes() -> None:
    g = torch.Generator().manual_seed(0)
    boxes = BoxBounds(0.05, 0.5).from_unit(torch.rand(16, 3, generator=g))
    whole = torch.tensor(WHOLE).expand(16, 3)
    torch.testing.assert_close(compose_boxes(whole, boxes), boxes)  # inside the whole image
    torch.testing.assert_close(compose_boxes(boxes, whole), boxes)  # the whole region
    # region: x in [0, 0.5], y in [0.5, 1]; the box's centre at 3/4 of its width and
    # 1/4 of its height, half-side a fifth of its side
    region = torch.tensor([[0.25, 0.75, 0.25]])
    box = torch.tensor([[0.75, 0.25, 0.2]])
    torch.testing.assert_close(compose_boxes(region, box), torch.tensor([[0.375, 0.625, 0.1]]))
    # zooming twice is zooming once into the composed box
    a, b, c = boxes[:5], boxes[5:10], boxes[10:15]
    torch.testing.assert_close(compose_boxes(compose_boxes(a, b), c),
                               compose_boxes(a, compose_boxes(b, c)))


def test_boxes_to_xyxy_and_square_around() -> None:
    boxes = torch.tensor([[0.5, 0.25, 0.125], [0.5, 0.5, 0.5]])
    torch.testing.assert_close(boxes_to_xyxy(boxes, 32, 64),  # H = 32, W = 64
                               torch.tensor([[24.0, 4.0, 40.0, 12.0], [0.0, 0.0, 64.0, 32.0]]))
    # a 20 x 10 box at (10, 20)-(30, 30) on 64 x 64: centre (20, 25) px, half-side
    # half the longer side, 10 px
    xyxy = torch.tensor([[10.0, 20.0, 30.0, 30.0]])
    torch.testing.assert_close(square_around(xyxy, 64, 64),
                               torch.tensor([[20 / 64, 25 / 64, 10 / 64]]))
    torch.testing.assert_close(square_around(xyxy, 64, 64, margin=2.0),
                               torch.tensor([[20 / 64, 25 / 64, 20 / 64]]))
    # bounded: the half-side is clamped into the bounds
    torch.testing.assert_close(square_around(xyxy, 64, 64, bounds=BoxBounds(0.2, 0.4)),
                               torch.tensor([[20 / 64, 25 / 64, 0.2]]))
    # a corner box: the square is moved inside the image
    corner = torch.tensor([[0.0, 0.0, 8.0, 8.0], [0.0, 0.0, 64.0, 64.0]])
    torch.testing.assert_close(square_around(corner, 64, 64, margin=2.0),
                               torch.tensor([[0.125, 0.125, 0.125], [0.5, 0.5, 0.5]]))
    # a square box inside the image is its own square
    sq = torch.tensor([[0.3, 0.6, 0.2], [0.5, 0.5, 0.1]])
    torch.testing.assert_close(square_around(boxes_to_xyxy(sq, 40, 40), 40, 40), sq)


# ------------------------------------------------------------------ rank loss
def probs(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def test_rank_loss_by_hand() -> None:
    t0 = torch.tensor([0])
    coarse, fine = probs([0.6, 0.3, 0.1]), probs([0.5, 0.2, 0.3])
    assert rank_loss(coarse, fine, t0).item() == pytest.approx(0.6 - 0.5 + 0.05)
    assert rank_loss(coarse, fine, t0, margin=0.0).item() == pytest.approx(0.1)
    # satisfied: the finer scale is surer by more than the margin
    assert rank_loss(probs([0.3, 0.7, 0.0]), probs([0.5, 0.5, 0.0]), t0).item() == 0.0
    # inside the margin: still penalised
    assert rank_loss(probs([0.3, 0.7, 0.0]), probs([0.33, 0.67, 0.0]), t0).item() == \
        pytest.approx(0.02)
    # the batch mean: 0.15 (class 0: 0.6 -> 0.5), 0 (class 2: 0.1 -> 0.3), 0.35
    # (class 1: 0.4 -> 0.1)
    batch = rank_loss(probs([0.6, 0.3, 0.1], [0.6, 0.3, 0.1], [0.5, 0.4, 0.1]),
                      probs([0.5, 0.2, 0.3], [0.5, 0.2, 0.3], [0.6, 0.1, 0.3]),
                      torch.tensor([0, 2, 1]))
    assert batch.item() == pytest.approx((0.15 + 0.0 + 0.35) / 3)
    assert rank_loss(probs([0.6, 0.3, 0.1]), probs([0.5, 0.2, 0.3]), t0).dtype == torch.float64


def test_rank_loss_gradient_and_empty_batch() -> None:
    coarse = probs([0.6, 0.4], [0.2, 0.8]).requires_grad_()
    fine = probs([0.5, 0.5], [0.9, 0.1]).requires_grad_()
    rank_loss(coarse, fine, torch.tensor([0, 0])).backward()
    # only the violated pair (the first) pushes: coarse down, fine up, by 1 / B
    torch.testing.assert_close(coarse.grad, probs([0.5, 0.0], [0.0, 0.0]))
    torch.testing.assert_close(fine.grad, probs([-0.5, 0.0], [0.0, 0.0]))
    empty = torch.zeros(0, 3, requires_grad=True)
    out = rank_loss(empty, empty, torch.zeros(0, dtype=torch.long))
    assert out.item() == 0.0 and out.requires_grad


@pytest.mark.parametrize(("coarse", "fine", "targets", "margin", "error", "message"), [
    (torch.tensor([[2.0, -1.0]]), torch.tensor([[0.5, 0.5]]), torch.tensor([0]), 0.05,
     ValueError, "apply softmax"),
    (torch.tensor([[0.5, 0.5]]), torch.tensor([[1.5, -0.5]]), torch.tensor([0]), 0.05,
     ValueError, "p_fine must be probabilities"),
    (torch.tensor([[0.5, 0.5]]), torch.tensor([[0.2, 0.3, 0.5]]), torch.tensor([0]), 0.05,
     ValueError, r"p_fine has shape \(1, 3\), expected \(1, 2\)"),
    (torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5]), torch.tensor([0]), 0.05,
     TypeError, r"p_coarse must be a float tensor \(B, K\)"),
    (torch.tensor([[0.5, 0.5]]), torch.tensor([[0.5, 0.5]]), torch.tensor([2]), 0.05,
     ValueError, r"class indices in 0..1"),
    (torch.tensor([[0.5, 0.5]]), torch.tensor([[0.5, 0.5]]), torch.tensor([-1]), 0.05,
     ValueError, r"class indices in 0..1"),
    (torch.tensor([[0.5, 0.5]]), torch.tensor([[0.5, 0.5]]), torch.tensor([0.0]), 0.05,
     TypeError, "int64 tensor"),
    (torch.tensor([[0.5, 0.5]]), torch.tensor([[0.5, 0.5]]), torch.tensor([0, 1]), 0.05,
     ValueError, "2 targets for a batch of 1"),
    (torch.tensor([[0.5, 0.5]]), torch.tensor([[0.5, 0.5]]), torch.tensor([0]), -0.1,
     ValueError, "margin=-0.1 must be >= 0"),
    (torch.tensor([[0.5, 0.5]]), torch.tensor([[0.5, math.nan]]), torch.tensor([0]), 0.05,
     ValueError, "NaN"),
], ids=["logits", "fine-logits", "shapes", "1-d", "target-high", "target-negative",
        "float-targets", "target-count", "negative-margin", "nan"])
def test_rank_loss_bad_input(coarse, fine, targets, margin, error, message) -> None:
    with pytest.raises(error, match=message):
        rank_loss(coarse, fine, targets, margin=margin)


# ------------------------------------------------------------------ RACNNLoss
def racnn_output(batch: int = 6, scales: int = 3, fused: bool = True, seed: int = 0
                 ) -> RACNNOutput:
    g = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(batch, scales, K, generator=g)
    whole = torch.tensor(WHOLE).expand(batch, scales, 3)
    return RACNNOutput(logits, 2 * torch.randn(batch, K, generator=g) if fused else None,
                       torch.full((batch, scales - 1, 3), 0.25), whole)


def test_racnn_loss_parts() -> None:
    out = racnn_output()
    y = torch.tensor([0, 3, 7, 7, 2, 5])  # species indices
    loss = RACNNLoss(TREE, margin=0.1)
    parts = loss(out, y + LEAF0)
    assert isinstance(parts, RACNNLossOutput)
    cls = sum(F.cross_entropy(out.scale_logits[:, s], y) for s in range(3))
    torch.testing.assert_close(parts.cls, cls)
    torch.testing.assert_close(parts.fused, F.cross_entropy(out.fused_logits, y))
    p = torch.softmax(out.scale_logits, -1)[torch.arange(6), :, y]  # (B, S): true class
    rank = sum(torch.clamp(p[:, s] - p[:, s + 1] + 0.1, min=0).mean() for s in range(2))
    torch.testing.assert_close(parts.rank, rank)
    assert parts.rank > 0  # the case is not trivial
    torch.testing.assert_close(parts.total, parts.cls + parts.fused + parts.rank)


def test_racnn_loss_terms_change_the_total_only() -> None:
    out = racnn_output()
    targets = torch.tensor([6, 9, 13, 13, 8, 11])
    both = RACNNLoss(TREE)(out, targets)
    cls = RACNNLoss(TREE, terms=("cls",))(out, targets)
    rank = RACNNLoss(TREE, terms=["rank"])(out, targets)
    for parts in (cls, rank):
        for name in ("cls", "fused", "rank"):
            torch.testing.assert_close(getattr(parts, name), getattr(both, name))
    torch.testing.assert_close(cls.total, both.cls + both.fused)
    torch.testing.assert_close(rank.total, both.rank)
    torch.testing.assert_close(both.total, cls.total + rank.total)


def test_racnn_loss_without_tree_takes_class_indices() -> None:
    out = racnn_output()
    y = torch.tensor([0, 3, 7, 7, 2, 5])
    a, b = RACNNLoss(None)(out, y), RACNNLoss(TREE)(out, y + LEAF0)
    for x, z in zip(a, b, strict=True):
        torch.testing.assert_close(x, z)
    with pytest.raises(ValueError, match="class indices in 0..7"):
        RACNNLoss(None)(out, y + LEAF0)


def test_racnn_loss_partial_outputs() -> None:
    # the forward of phase "scale": no fused logits; one scale: no ranking pair
    out = racnn_output(scales=1, fused=False)
    parts = RACNNLoss(TREE)(out, torch.full((6,), LEAF0))
    assert parts.fused.item() == 0.0 and parts.rank.item() == 0.0
    torch.testing.assert_close(parts.total, parts.cls)


def test_racnn_loss_bad_targets_and_options() -> None:
    out = racnn_output()
    family = TREE.offset(1)
    with pytest.raises(ValueError, match=r"target node 2 \(.*\) is not a leaf.*'species'.*"
                                         r"train it on species labels"):
        RACNNLoss(TREE)(out, torch.tensor([6, 7, family, 8, 9, 10]))
    with pytest.raises(ValueError, match="not a leaf"):
        RACNNLoss(TREE)(out, torch.tensor([0, 7, 7, 8, 9, 10]))  # a root
    with pytest.raises(TypeError, match="RACNNOutput"):
        RACNNLoss(TREE)(out.scale_logits, torch.tensor([6] * 6))
    with pytest.raises(ValueError, match=r"terms=\('ce',\); choose a non-empty subset of "
                                         r"\('cls', 'rank'\)"):
        RACNNLoss(TREE, terms=("ce",))
    with pytest.raises(ValueError, match="non-empty subset"):
        RACNNLoss(TREE, terms=())
    with pytest.raises(ValueError, match="margin=-1"):
        RACNNLoss(TREE, margin=-1)


def test_get_loss_racnn() -> None:
    loss = get_loss("racnn", TREE, margin=0.2, terms=("rank",))
    assert isinstance(loss, RACNNLoss) and loss.margin == 0.2 and loss.terms == ("rank",)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['k'\]; RACNNLoss takes "
                                         r"\['margin', 'terms'\]"):
        get_loss("racnn", TREE, k=3)


# ------------------------------------------------------------------ the model
@pytest.mark.parametrize("scales", [1, 2, 3])
def test_forward_shapes_and_regions(scales: int) -> None:
    model = tiny(scales).eval()
    with torch.no_grad():
        out = model(torch.rand(5, 3, 16, 16))
    assert out.scale_logits.shape == (5, scales, K)
    assert out.fused_logits.shape == (5, K)
    assert out.boxes.shape == (5, scales - 1, 3)
    assert out.regions.shape == (5, scales, 3)
    assert out.scale_probabilities.shape == (5, scales, K)
    torch.testing.assert_close(out.scale_probabilities.sum(-1), torch.ones(5, scales))
    torch.testing.assert_close(out.regions[:, 0], torch.tensor(WHOLE).expand(5, 3))
    for s in range(1, scales):
        torch.testing.assert_close(out.regions[:, s],
                                   compose_boxes(out.regions[:, s - 1], out.boxes[:, s - 1]))
    b = model.bounds
    assert (out.boxes[..., 2] >= b.min_half - EPS).all()
    assert (out.boxes[..., 2] <= b.max_half + EPS).all()


def test_forward_resizes_other_image_sizes() -> None:
    model = tiny(2).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 24, 20))
    assert out.scale_logits.shape == (2, 2, K)


class FixedAPN(nn.Module):
    """An APN that proposes the same box for every image."""

    def __init__(self, box: tuple[float, float, float]) -> None:
        super().__init__()
        self.register_buffer("box", torch.tensor([box]))

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.box.expand(fmap.shape[0], 3)


def test_image_and_scale_chains_agree() -> None:
    x = torch.rand(4, 3, 16, 16)
    # the APN of scale 1 sees the same map in both chains: the same boxes, regions
    a, b = tiny(2, chain="image").eval(), tiny(2, chain="scale").eval()
    with torch.no_grad():
        oa, ob = a(x), b(x)
    torch.testing.assert_close(oa.regions, ob.regions)
    torch.testing.assert_close(oa.scale_logits, ob.scale_logits)
    # three scales with boxes that land on whole pixels (64 px: [16, 48) at 32 px,
    # then [8, 24) of that at 16 px = [24, 40) of the image): one crop or two is
    # the same pixels, so the logits agree too
    x = torch.rand(4, 3, 64, 64)
    models = []
    for chain in ("image", "scale"):
        torch.manual_seed(0)
        m = get_model("racnn", TREE, backbone=build_backbone("small_cnn", width=4),
                      num_scales=3, input_sizes=(64, 32, 16), apn_hidden=8, chain=chain)
        m.apns[0], m.apns[1] = FixedAPN((0.5, 0.5, 0.25)), FixedAPN((0.5, 0.5, 0.25))
        models.append(m.eval())
    with torch.no_grad():
        oa, ob = (m(x) for m in models)
    expected = torch.tensor([WHOLE, (0.5, 0.5, 0.25), (0.5, 0.5, 0.125)]).expand(4, 3, 3)
    torch.testing.assert_close(oa.regions, expected)
    torch.testing.assert_close(ob.regions, expected)
    torch.testing.assert_close(oa.scale_logits, ob.scale_logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("crop", ["grid", "mask"])
def test_gradients_reach_the_apns(crop: str) -> None:
    model = tiny(3, crop=crop).train()
    out = model(torch.rand(4, 3, 16, 16))
    RACNNLoss(TREE)(out, torch.tensor([6, 7, 8, 9])).total.backward()
    for apn in model.apns:
        grad = apn.fc1.weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize(("images", "error", "message"), [
    (torch.zeros(2, 3, 16, 16, dtype=torch.uint8), TypeError, r"RACNN takes float images.*"
                                                              r"images\.float\(\) / 255"),
    (torch.rand(3, 16, 16), ValueError, r"one image without a batch dimension"),
    (torch.rand(2, 1, 16, 16), ValueError, r"the 3 channels its backbone takes.*"
                                           r"images\.expand\(-1, 3, -1, -1\)"),
    (torch.rand(2, 16, 16, 3), ValueError, r"images\.permute\(0, 3, 1, 2\)"),
], ids=["uint8", "3d", "grey", "channels-last"])
def test_bad_images(images, error, message) -> None:
    with pytest.raises(error, match=message):
        tiny(2)(images)


def test_bad_model_options() -> None:
    with pytest.raises(ValueError, match=r"input_sizes=\(16, 16\) has 2 sizes for "
                                         r"num_scales=3; give one input side per scale"):
        get_model("racnn", TREE, backbone=build_backbone("small_cnn", width=4), num_scales=3,
                  input_sizes=(16, 16), apn_hidden=8)
    with pytest.raises(ValueError, match=r"get_model\('racnn'\): unknown option\(s\) "
                                         r"\['scales'\]; racnn takes \[.*'num_scales'.*"
                                         r"'input_sizes'.*'crop'.*\]"):
        get_model("racnn", TREE, backbone="small_cnn", scales=2)
    with pytest.raises(ValueError, match=r"unknown crop='bilinear'; choose one of "
                                         r"\['grid', 'mask'\]"):
        tiny(2, crop="bilinear")
    with pytest.raises(ValueError, match=r"unknown chain='paper'"):
        tiny(2, chain="paper")
    with pytest.raises(ValueError, match="input_sizes"):
        get_model("racnn", TREE, backbone=build_backbone("small_cnn", width=4), num_scales=2,
                  input_sizes=(16, 4))
    with pytest.raises(ValueError, match="weights"):
        get_model("racnn", TREE, backbone=build_backbone("small_cnn", width=4),
                  weights="DEFAULT", num_scales=1, input_sizes=(16,))


def test_scales_do_not_share_weights() -> None:
    model = tiny(2)
    a, b = (list(m.parameters()) for m in model.backbones)
    assert all(p is not q for p, q in zip(a, b, strict=True))
    # a module backbone is deep-copied: the copies start equal, then train apart
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


def test_two_scales_train_on_cpu() -> None:
    torch.manual_seed(0)
    model = tiny(2).train()
    x = torch.rand(8, 3, 16, 16)
    y = torch.arange(8) + LEAF0
    loss_fn = RACNNLoss(TREE)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = loss_fn(model(x), y).total
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.8 * losses[0], losses


# ------------------------------------------------------------------ phases
PHASE_GROUPS = [  # (phase, scale, the groups that train)
    ("all", None, {"scale0", "scale1", "apn0", "fuse"}),
    ("classifiers", None, {"scale0", "scale1", "fuse"}),
    ("apns", None, {"apn0"}),
    ("scale", 0, {"scale0"}),
    ("scale", 1, {"scale1"}),
    ("apn-init", 0, {"apn0"}),
]


def group_of(name: str) -> str:
    """The phase group of a state-dict key of a two-scale RACNN."""
    head, index = name.split(".")[:2]
    return {"backbones": f"scale{index}", "heads": f"scale{index}", "apns": f"apn{index}",
            "fuse": "fuse"}[head]


@pytest.mark.parametrize(("phase", "scale", "trains"), PHASE_GROUPS,
                         ids=[f"{p}-{s}" for p, s, _ in PHASE_GROUPS])
def test_phases_freeze_what_they_say(phase: str, scale: int | None, trains: set[str]) -> None:
    model = tiny(2).set_phase(phase, scale).train()
    assert (model.phase, model.phase_scale) == (phase, scale)
    for name, p in model.named_parameters():
        assert p.requires_grad == (group_of(name) in trains), name
    for group, modules in {"scale0": [model.backbones[0]], "scale1": [model.backbones[1]],
                           "apn0": [model.apns[0]]}.items():  # frozen networks in eval mode
        assert all(m.training == (group in trains) for mod in modules for m in mod.modules())

    before = {k: v.clone() for k, v in model.state_dict().items()}
    # SGD over ALL parameters: a frozen one would move as soon as it got a gradient
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    torch.manual_seed(1)
    out = model(torch.rand(8, 3, 16, 16))
    targets = torch.arange(8) + LEAF0
    loss = RACNNLoss(TREE)(out, targets).total  # cls (every scale run) + fused + rank
    if phase == "apn-init":
        loss = loss + F.mse_loss(out.boxes[:, 0], torch.tensor([[0.3, 0.6, 0.25]]).expand(8, 3))
    loss.backward()
    opt.step()

    after = model.state_dict()
    changed: dict[str, set[str]] = {}
    for name, p in model.named_parameters():
        if group_of(name) not in trains:
            assert p.grad is None, name
            assert torch.equal(after[name], before[name]), name
        elif not torch.equal(after[name], before[name]):
            changed.setdefault(group_of(name), set()).add(name)
    assert set(changed) == trains  # every trainable group moved
    for name, _ in model.named_buffers():  # BatchNorm statistics
        if name.startswith("backbones."):
            moved = not torch.equal(after[name], before[name])
            assert moved == (group_of(name) in trains), name


def test_phase_forward_depth() -> None:
    model = tiny(3).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        out = model.set_phase("scale", 1)(x)
        assert out.scale_logits.shape == (2, 2, K) and out.fused_logits is None
        assert out.boxes.shape == (2, 1, 3) and out.regions.shape == (2, 2, 3)
        out = model.set_phase("apn-init", 1)(x)  # stops after APN 2: its box, no region 3
        assert out.scale_logits.shape == (2, 2, K) and out.fused_logits is None
        assert out.boxes.shape == (2, 2, 3) and out.regions.shape == (2, 2, 3)
        out = model.set_phase("scale", 0)(x)
        assert out.scale_logits.shape == (2, 1, K) and out.boxes.shape == (2, 0, 3)
        for phase in ("all", "classifiers", "apns"):
            out = model.set_phase(phase)(x)
            assert out.scale_logits.shape == (2, 3, K) and out.fused_logits is not None


def test_classifier_phase_detaches_the_boxes() -> None:
    model = tiny(2).set_phase("classifiers")
    out = model(torch.rand(4, 3, 16, 16))
    assert not out.boxes.requires_grad
    # so scale 2's loss trains scale 2 only, not scale 1 through the APN's input
    # (scale 1's parameters get zeros through the stacked logits, nothing more)
    F.cross_entropy(out.scale_logits[:, 1], torch.arange(4)).backward()
    assert all(p.grad is None or not p.grad.any() for p in model.backbones[0].parameters())
    assert all(p.grad is not None and p.grad.any() for p in model.backbones[1].parameters())
    out = model.set_phase("all")(torch.rand(4, 3, 16, 16))
    assert out.boxes.requires_grad


def test_fused_classifier_learns_on_detached_descriptors() -> None:
    model = tiny(3).train()
    out = model(torch.rand(4, 3, 16, 16))
    F.cross_entropy(out.fused_logits, torch.arange(4)).backward()
    assert model.fuse.weight.grad is not None and model.fuse.weight.grad.abs().sum() > 0
    others = [*model.backbones.parameters(), *model.heads.parameters(), *model.apns.parameters()]
    assert all(p.grad is None or not p.grad.any() for p in others)


@pytest.mark.parametrize(("phase", "scale", "message"), [
    ("warmup", None, r"unknown phase='warmup'; choose one of \['all', 'classifiers'"),
    ("scale", None, r"set_phase\('scale'\) needs scale in 0..1, got None"),
    ("scale", 2, r"needs scale in 0..1, got 2"),
    ("apn-init", 1, r"set_phase\('apn-init'\) needs scale in 0..0, got 1"),
    ("all", 0, r"set_phase\('all'\) takes no scale"),
])
def test_bad_phases(phase: str, scale: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny(2).set_phase(phase, scale)


# ------------------------------------------------------------------ alternation
def tiny_data(n: int = 16, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.rand(n, 3, 16, 16, generator=g), torch.arange(n) % K + LEAF0)


def tiny_recipe(**kw):
    return dataclasses.replace(RACNN_RECIPES["synthetic"], scale_epochs=1, apn_init_epochs=1,
                               cls_epochs=1, apn_epochs=1, rounds=1, batch_size=4, **kw)


def test_fit_racnn_runs_the_stages_in_order() -> None:
    model = tiny(2)
    rows: list[dict] = []
    fit = fit_racnn(model, tiny_data(), tiny_recipe(), tree=TREE, device="cpu",
                    on_epoch_end=rows.append)
    stages = [r["stage"] for r in fit.history]
    assert stages == ["scale 1", "apn 1 init", "scale 2", "classifiers", "apns"]
    assert [r["round"] for r in fit.history] == [0, 0, 0, 1, 1]
    assert rows == fit.history and fit.rounds == 1
    assert all(math.isfinite(r["loss"]) and r["seconds"] >= 0 for r in fit.history)
    # the classifiers learn on L_cls (and the fused layer's loss), the APNs on L_rank
    cls_row, apn_row = fit.history[3], fit.history[4]
    assert cls_row["loss"] == pytest.approx(cls_row["cls"] + cls_row["fused"], rel=1e-4)
    assert apn_row["loss"] == pytest.approx(apn_row["rank"], rel=1e-4, abs=1e-7)
    assert model.phase == "all" and model.phase_scale is None and model.training
    assert all(p.requires_grad for p in model.parameters())


def test_fit_racnn_convergence_rule() -> None:
    # tol = 0.99: an epoch must cut the loss a hundredfold to count as progress, so
    # every phase stops after its second epoch, and the alternation after round 2
    recipe = dataclasses.replace(tiny_recipe(tol=0.99), cls_epochs=3, apn_epochs=3, rounds=4,
                                 scale_epochs=3)
    fit = fit_racnn(tiny(2), tiny_data(), recipe, tree=TREE, device="cpu")
    stages = [(r["stage"], r["round"], r["epoch"]) for r in fit.history]
    assert stages == [("scale 1", 0, 0), ("scale 1", 0, 1), ("apn 1 init", 0, 0),
                      ("scale 2", 0, 0), ("scale 2", 0, 1),
                      ("classifiers", 1, 0), ("classifiers", 1, 1), ("apns", 1, 0),
                      ("apns", 1, 1), ("classifiers", 2, 0), ("classifiers", 2, 1),
                      ("apns", 2, 0), ("apns", 2, 1)]
    assert fit.rounds == 2


def test_racnn_optimizer_groups() -> None:
    model = tiny(2)
    r = tiny_recipe()
    opt = racnn_optimizer(model.set_phase("classifiers"), r)
    assert [g["lr"] for g in opt.param_groups] == [r.backbone_lr, r.head_lr]
    opt = racnn_optimizer(model.set_phase("apns"), r)
    assert [g["lr"] for g in opt.param_groups] == [r.apn_lr]
    assert {id(p) for p in opt.param_groups[0]["params"]} == \
        {id(p) for p in model.apns.parameters()}
    sgd = racnn_optimizer(model.set_phase("all"), RACNN_RECIPES["paper"])
    assert isinstance(sgd, torch.optim.SGD) and len(sgd.param_groups) == 3
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        racnn_optimizer(model, dataclasses.replace(r, optimizer="rmsprop"))
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="nothing trains in phase 'all'"):
        racnn_optimizer(model, r)


class HotSpot(nn.Module):
    """A fixed backbone: the mean of the first channel over 4 x 4 cells, on 2
    channels; its arg-max is the cell holding the image's brightest patch."""

    out_channels = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x[:, :1], 4).expand(-1, 2, -1, -1)  # (B, 2, H/4, W/4)


def test_response_squares_centre_on_the_hot_spot() -> None:
    torch.manual_seed(0)
    model = RACNN(K, 2, backbone=HotSpot(), input_sizes=(16, 16), apn_hidden=8)
    cells = [(1, 2), (0, 0), (3, 1), (2, 3), (2, 2)]  # (row, column) of the 4 x 4 map
    images = torch.rand(len(cells), 3, 16, 16) * 0.1
    for n, (i, j) in enumerate(cells):
        images[n, 0, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4] = 1.0
    data = TensorDataset(images, torch.zeros(len(cells), dtype=torch.long))
    model.set_phase("classifiers").train()
    squares = response_squares(model, data, 0, half=0.25, batch_size=2, device="cpu")
    # the cells' centres, (j + 0.5) / 4, moved inside: [0.25, 0.75] for t_l = 0.25
    expected = torch.tensor([[0.625, 0.375, 0.25], [0.25, 0.25, 0.25], [0.375, 0.75, 0.25],
                             [0.75, 0.625, 0.25], [0.625, 0.625, 0.25]])
    torch.testing.assert_close(squares, expected)
    assert squares.dtype == torch.float32
    assert ((squares[:, :2] - squares[:, 2:]) >= 0).all()
    assert ((squares[:, :2] + squares[:, 2:]) <= 1).all()
    # the model's phase and mode are restored
    assert model.phase == "classifiers" and model.training
    # the half-side is clamped into the model's bounds (0.1 .. 0.4)
    big = response_squares(model, data, 0, half=0.45, device="cpu")
    torch.testing.assert_close(big[:, 2], torch.full((5,), 0.4))
    torch.testing.assert_close(big[:, :2], torch.full((5, 2), 0.6).minimum(
        torch.tensor([[0.625, 0.375], [0.125, 0.125], [0.375, 0.875], [0.875, 0.625],
                      [0.625, 0.625]])).maximum(torch.tensor(0.4)))
    small = response_squares(model, data, 0, half=0.05, device="cpu")
    torch.testing.assert_close(small, torch.tensor(
        [[0.625, 0.375, 0.1], [0.125, 0.125, 0.1], [0.375, 0.875, 0.1], [0.875, 0.625, 0.1],
         [0.625, 0.625, 0.1]]))


def test_the_separable_grid_is_affine_grids() -> None:
    """The crop's grid, built from one row and one column, is affine_grid's."""
    from hmglib.models.racnn import _grid

    boxes = torch.rand(5, 3, dtype=torch.float64) * 0.3 + 0.2  # (5, 3)
    tx, ty, tl = boxes.unbind(1)
    zero = torch.zeros_like(tx)
    theta = torch.stack([torch.stack([2 * tl, zero, 2 * tx - 1], 1),
                         torch.stack([zero, 2 * tl, 2 * ty - 1], 1)], 1)  # (5, 2, 3)
    expected = F.affine_grid(theta, [5, 3, 7, 9], align_corners=False)  # (5, 7, 9, 2)
    torch.testing.assert_close(_grid(boxes, (7, 9)), expected, rtol=0, atol=1e-12)
