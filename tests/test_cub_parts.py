"""CUB-200-2011's part locations as boxes, and boxes moved through an image pipeline."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms as transforms_v1
from PIL import Image
from torchvision.transforms import v2

from fixtures_real import write_cub
from hmglib.cam import energy_in_box, pointing_game
from hmglib.data import CUB200
from hmglib.data.boxes import transform_boxes
from hmglib.data.cub import PART_HALF_SIDE
from hmglib.recipes import hrn_transforms

NAN = float("nan")
TO_TENSOR = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
#: the test pipeline of `hmg train` on the real datasets (resize 550, centre crop 448)
TEST_PIPELINE = v2.Compose([TO_TENSOR, hrn_transforms(False)])


@pytest.fixture(scope="module")
def cub_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cub")
    write_cub(root)
    return root


@pytest.fixture(scope="module")
def test_split(cub_root) -> CUB200:
    return CUB200(cub_root, split="test")  # image ids 2, 4, 6; every image 48 x 40 px


def visible_rows(boxes: torch.Tensor) -> list[int]:
    return (~torch.isnan(boxes).all(-1)).nonzero().flatten().tolist()


# ------------------------------------------------------------------ part boxes
def test_part_boxes_by_hand(test_split) -> None:
    # image 2: box (2, 5) + (20, 30) -> longer side 30, half side 0.1 * 30 = 3; the fixture
    # makes part p visible when (2 + p) % 3 == 0, at (x, y) = (2 + p, 2p)
    boxes = test_split.part_boxes(0)
    assert boxes.shape == (15, 4) and boxes.dtype == torch.float32
    assert visible_rows(boxes) == [0, 3, 6, 9, 12]  # parts 1, 4, 7, 10, 13
    assert boxes[0].tolist() == pytest.approx([0.0, -1.0, 6.0, 5.0])  # part 1 at (3, 2)
    assert boxes[3].tolist() == pytest.approx([3.0, 5.0, 9.0, 11.0])  # part 4 at (6, 8)
    assert boxes[12].tolist() == pytest.approx([12.0, 23.0, 18.0, 29.0])  # part 13 at (15, 26)
    assert bool(torch.isnan(boxes[[1, 2, 4, 14]]).all())
    # image 4: box 47 x 39 -> half side 4.7; parts 2, 5, 8, 11, 14 visible
    boxes = test_split.part_boxes(1)
    assert visible_rows(boxes) == [1, 4, 7, 10, 13]
    assert boxes[1].tolist() == pytest.approx([1.3, -0.7, 10.7, 8.7])  # part 2 at (6, 4)
    # image 6: box 3 x 4 -> half side 0.4; part 3 at (9, 6)
    boxes = test_split.part_boxes(2)
    assert visible_rows(boxes) == [2, 5, 8, 11, 14]
    assert boxes[2].tolist() == pytest.approx([8.6, 5.6, 9.4, 6.4])
    assert PART_HALF_SIDE == 0.1


def test_part_boxes_with_a_given_half_side(test_split) -> None:
    boxes = test_split.part_boxes(0, half_side=2.5)
    assert boxes[0].tolist() == pytest.approx([0.5, -0.5, 5.5, 4.5])
    # a negative index counts from the end
    torch.testing.assert_close(test_split.part_boxes(-3, half_side=2.5), boxes, equal_nan=True)
    for bad in (0.0, -1.0, float("nan"), True):
        with pytest.raises((ValueError, TypeError), match="half_side"):
            test_split.part_boxes(0, half_side=bad)
    with pytest.raises(IndexError):
        test_split.part_boxes(3)


def test_invisible_parts_are_padding_for_the_scores(test_split) -> None:
    # a map whose only mass sits in part 1's square of image 2 (0..6 x 0..5 on the canvas)
    cams = torch.zeros(1, 40, 48)
    cams[0, 1:4, 2:5] = 1.0
    boxes = test_split.part_boxes(0)[None]  # (1, 15, 4), ten rows NaN
    assert bool(pointing_game(cams, boxes)[0])
    assert float(energy_in_box(cams, boxes)[0]) == pytest.approx(1.0)
    cams[0, 35:38, 40:44] = 3.0  # far from every visible part: 36 of 45 units outside
    assert not bool(pointing_game(cams, boxes)[0])
    assert float(energy_in_box(cams, boxes)[0]) == pytest.approx(9 / 45)


# ------------------------------------------------------------------ boxes through a pipeline
def test_transform_boxes_by_hand() -> None:
    # 40 x 48 -> resize the short side to 20 (x 0.5, width 24) -> centre crop 16:
    # the crop's corner is (round(8 / 2), round(4 / 2)) = (4, 2)
    pipeline = v2.Compose([TO_TENSOR, v2.Resize(20, antialias=True), v2.CenterCrop(16)])
    boxes = torch.tensor([[10.0, 8.0, 30.0, 20.0], [NAN] * 4, [0.0, 0.0, 48.0, 40.0]])
    out = transform_boxes(boxes, pipeline, (40, 48))
    assert out[0].tolist() == pytest.approx([1.0, 2.0, 11.0, 8.0])
    assert bool(torch.isnan(out[1]).all())  # an invisible part stays padding
    assert out[2].tolist() == pytest.approx([0.0, 0.0, 16.0, 16.0])  # clipped to the crop
    # the book's test pipeline: x 13.75 (40 -> 550, width 660), crop corner (106, 51)
    out = transform_boxes(torch.tensor([2.0, 5.0, 22.0, 35.0]), TEST_PIPELINE, (40, 48))
    assert out.tolist() == pytest.approx([0.0, 17.75, 196.5, 430.25])
    torch.testing.assert_close(transform_boxes(boxes, None, (40, 48)), boxes, equal_nan=True)


@pytest.mark.parametrize(("size", "resize"), [(448, 550), (32, 60)])
@pytest.mark.parametrize(("x", "y"), [(30, 12), (24, 20), (0, 39)])
def test_transform_boxes_follows_a_marked_pixel(size, resize, x, y) -> None:
    """A pixel painted white on a black 48 x 40 image lands where its box lands: the
    centroid of the transformed image's light is the moved box's centre."""
    pipeline = v2.Compose([TO_TENSOR, hrn_transforms(False, size=size, resize=resize)])
    pixels = np.zeros((40, 48, 3), np.uint8)
    pixels[y, x] = 255
    light = (pipeline(Image.fromarray(pixels))[0] * 0.5 + 0.5).clamp_min(0.0)  # (S, S)
    box = transform_boxes(torch.tensor([x, y, x + 1.0, y + 1.0]), pipeline, (40, 48))
    total = float(light.sum())
    if total < 1e-6:  # the crop cut the pixel away: its box is gone (an all-NaN row)
        assert bool(torch.isnan(box).all())
        return
    centre = torch.arange(size, dtype=torch.float32) + 0.5  # (S,) pixel centres
    cx = float((light.sum(0) * centre).sum()) / total
    cy = float((light.sum(1) * centre).sum()) / total
    assert cx == pytest.approx(float(box[0] + box[2]) / 2, abs=0.1)
    assert cy == pytest.approx(float(box[1] + box[3]) / 2, abs=0.1)
    assert float(box[2] - box[0]) == pytest.approx(resize / 40)  # one pixel, scaled


def test_transform_boxes_refuses_what_cannot_move_boxes() -> None:
    box = torch.tensor([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(TypeError, match="not a torchvision.transforms.v2"):
        transform_boxes(box, transforms_v1.Compose([transforms_v1.Resize(8)]), (40, 48))
    with pytest.raises(ValueError, match="RandomCrop may be random"):
        transform_boxes(box, hrn_transforms(True, size=16, resize=20), (40, 48))
    for step in (v2.ScaleJitter((40, 48)), v2.ElasticTransform(), v2.Lambda(lambda x: x)):
        with pytest.raises(ValueError, match="may be random or is not known"):
            transform_boxes(box, v2.Compose([v2.Resize(20), step]), (40, 48))
    with pytest.raises(ValueError, match="partly NaN"):
        transform_boxes(torch.tensor([1.0, NAN, 3.0, 4.0]), None, (40, 48))
    with pytest.raises(ValueError, match=r"\(4,\) or \(K, 4\)"):
        transform_boxes(torch.zeros(3), None, (40, 48))
    with pytest.raises(ValueError, match="size"):
        transform_boxes(box, TEST_PIPELINE, (0, 48))
    everything_hidden = torch.full((15, 4), NAN)
    assert bool(torch.isnan(transform_boxes(everything_hidden, TEST_PIPELINE, (40, 48))).all())


# ------------------------------------------------------------------ evidence boxes
def test_evidence_boxes_follow_the_datasets_transform(cub_root, test_split) -> None:
    moved = CUB200(cub_root, split="test", transform=TEST_PIPELINE)
    image, _ = moved[0]
    assert tuple(image.shape) == (3, 448, 448)
    assert moved.original_size(0) == (40, 48)
    boxes = moved.evidence_boxes(0)
    assert set(boxes) == {"object", "part"}
    assert boxes["object"].shape == (1, 4) and boxes["part"].shape == (15, 4)
    assert boxes["object"][0].tolist() == pytest.approx([0.0, 17.75, 196.5, 430.25])
    # part 4's square (3, 5, 9, 11) x 13.75 - (106, 51), clipped at x = 0
    assert boxes["part"][3].tolist() == pytest.approx([0.0, 17.75, 17.75, 100.25])
    assert visible_rows(boxes["part"]) == [3, 6, 9, 12]  # part 1 is visible, but cut away
    assert bool(torch.isnan(boxes["part"][0]).all())
    assert not bool(torch.isnan(test_split.part_boxes(0)[0]).any())
    plain = test_split.evidence_boxes(0)  # no transform: the original pixels
    assert plain["object"][0].tolist() == pytest.approx([2.0, 5.0, 22.0, 35.0])
    torch.testing.assert_close(plain["part"], test_split.part_boxes(0), equal_nan=True)
    wide = moved.evidence_boxes(0, half_side=100.0)["part"]  # covers the whole crop
    assert wide[0].tolist() == pytest.approx([0.0, 0.0, 448.0, 448.0])
    assert not math.isnan(float(wide[3, 0]))
