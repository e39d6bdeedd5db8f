"""The data drawn (hmglib.viz.data): boxes burned into images, samples with boxes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from hmglib import viz
from hmglib.viz.colors import BOX_COLORS

GREY = 127  # 0.5 as uint8 (torchvision's to_dtype: floor(0.5 * 256 - eps))


def _pixels(fig, k: int = 0) -> np.ndarray:
    """The ``(H, W, 3)`` uint8 image shown in axes ``k``."""
    return np.asarray(fig.axes[k].images[0].get_array())


def _hex(rgb: np.ndarray) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


def test_a_box_covers_every_pixel_it_touches_with_a_dark_outline() -> None:
    image = torch.full((3, 16, 16), 0.5)
    # x from 2.5 to 11.2 touches columns 2..11, y from 2.5 to 9.7 rows 2..9
    fig = viz.draw_boxes(image, torch.tensor([[2.5, 2.5, 11.2, 9.7]]), colors="white",
                         width=1, scale=1)
    px = _pixels(fig)[..., 0]
    assert px.shape == (16, 16)
    assert (px[2, 2:12] == 255).all() and (px[9, 2:12] == 255).all()  # top and bottom
    assert (px[2:10, 2] == 255).all() and (px[2:10, 11] == 255).all()  # left and right
    assert (px[1, 1:13] == 0).all() and (px[10, 1:13] == 0).all()  # outline outside
    assert px[3, 5] == 0 and px[5, 3] == 0  # and inside
    assert (px[4:8, 4:10] == GREY).all()  # the inside is untouched
    assert (px[0] == GREY).all() and (px[11:, :] == GREY).all() and (px[:, 13:] == GREY).all()
    # the axes keep the image's own pixel coordinates
    assert fig.axes[0].get_xlim() == (0.0, 16.0) and fig.axes[0].get_ylim() == (16.0, 0.0)


def test_uint8_and_float_images_give_the_same_picture() -> None:
    torch.manual_seed(0)
    u8 = torch.randint(0, 256, (3, 10, 12), dtype=torch.uint8)
    boxes = [[1.0, 1.0, 6.0, 8.0]]
    a = _pixels(viz.draw_boxes(u8, boxes, scale=1))
    b = _pixels(viz.draw_boxes(u8.float() / 255, boxes, scale=1))
    assert a.shape == (10, 12, 3) and np.array_equal(a, b)
    grey = _pixels(viz.draw_boxes(torch.full((1, 10, 12), 0.5), boxes, scale=1))
    assert grey.shape == (10, 12, 3) and (grey[9] == GREY).all()  # (1, H, W): repeated


def test_small_images_are_enlarged_before_drawing() -> None:
    fig = viz.draw_boxes(torch.zeros(3, 16, 16), [[2.0, 2.0, 6.0, 6.0]])
    px = _pixels(fig)
    assert px.shape == (192, 192, 3)  # 200 // 16 = 12 times
    assert _hex(px[24, 40]) == BOX_COLORS[0]  # the top line at enlarged row 2 * 12
    assert fig.axes[0].get_xlim() == (0.0, 16.0)
    assert _pixels(viz.draw_boxes(torch.zeros(3, 300, 100), [[0, 0, 5, 5]])).shape[:2] == (
        300, 100)  # large enough already
    assert _pixels(viz.draw_boxes(torch.zeros(3, 8, 8), [[0, 0, 5, 5]], scale=3)).shape[:2] == (
        24, 24)


def test_colours_follow_the_labels() -> None:
    image = torch.zeros(3, 60, 60)
    boxes = [[2, 2, 20, 20], [30, 2, 50, 20], [2, 30, 20, 50]]

    def right_lines(px: np.ndarray) -> list[str]:  # the right line of each box, clear of labels
        return [_hex(px[12, 19]), _hex(px[12, 49]), _hex(px[40, 19])]

    px = _pixels(viz.draw_boxes(image, boxes, labels=["a", "b", "a"], scale=1))
    assert right_lines(px) == [BOX_COLORS[0], BOX_COLORS[1], BOX_COLORS[0]]
    px = _pixels(viz.draw_boxes(image, boxes, colors=["red", "#00ff00", (0.0, 0.0, 1.0)],
                                scale=1))
    assert right_lines(px) == ["#ff0000", "#00ff00", "#0000ff"]
    px = _pixels(viz.draw_boxes(image, boxes, colors=(1.0, 1.0, 0.0), scale=1))
    assert set(right_lines(px)) == {"#ffff00"}
    px = _pixels(viz.draw_boxes(image, boxes, scale=1))  # no labels: one colour per box
    assert right_lines(px) == BOX_COLORS[:3]


def test_boxes_are_clipped_to_the_image_and_none_is_fine() -> None:
    px = _pixels(viz.draw_boxes(torch.zeros(3, 12, 12), [[-5.0, -5.0, 4.0, 4.0]],
                                colors="white", width=1, scale=1))[..., 0]
    assert (px[0, 0:4] == 255).all() and (px[0:4, 3] == 255).all() and px[6, 6] == 0
    empty = viz.draw_boxes(torch.full((3, 5, 5), 0.5), torch.zeros(0, 4), scale=1)
    assert (_pixels(empty) == GREY).all()


def test_draw_into_given_axes() -> None:
    fig, (a, b) = plt.subplots(1, 2)
    assert viz.draw_boxes(torch.zeros(3, 8, 8), [[1, 1, 4, 4]], ax=b, title="crop") is fig
    assert b.get_title() == "crop" and not a.images and len(b.images) == 1


@pytest.mark.parametrize(
    ("image", "boxes", "kwargs", "error", "match"),
    [
        (torch.zeros(8, 8, 3), [[0, 0, 2, 2]], {}, ValueError, r"image must be one image.*"
         r"got shape \(8, 8, 3\).*permute\(2, 0, 1\)"),
        (torch.zeros(2, 3, 8, 8), [[0, 0, 2, 2]], {}, ValueError, "image must be one image"),
        (torch.full((3, 8, 8), 1.5), [[0, 0, 2, 2]], {}, ValueError,
         r"image has values in \[1.5, 1.5\], outside \[0, 1\]; undo the normalisation"),
        (torch.full((3, 8, 8), float("nan")), [[0, 0, 2, 2]], {}, ValueError, "image holds nan"),
        (torch.zeros(3, 8, 8, dtype=torch.int32), [[0, 0, 2, 2]], {}, TypeError,
         "image has dtype torch.int32; give floats in"),
        (torch.zeros(3, 8, 8), [0, 0, 2, 2], {}, ValueError,
         r"boxes must have shape \(K, 4\).*got shape \(4,\); a single box is"),
        (torch.zeros(3, 8, 8), [[4, 0, 2, 2]], {}, ValueError,
         r"boxes\[0\] = \[4.0, 0.0, 2.0, 2.0\] is not xyxy.*box_convert"),
        (torch.zeros(3, 8, 8), [[0, 0, 2, 2], [9, 9, 12, 12]], {}, ValueError,
         r"boxes\[1\] = .* lies outside the 8 x 8 image"),
        (torch.zeros(3, 8, 8), [[0, 0, float("inf"), 2]], {}, ValueError, "boxes hold nan or inf"),
        (torch.zeros(3, 8, 8), [[0, 0, 2, 2]], {"labels": ["a", "b"]}, ValueError,
         "2 labels for 1 boxes"),
        (torch.zeros(3, 8, 8), [[0, 0, 2, 2]], {"colors": ["red", "blue"]}, ValueError,
         "2 colors for 1 boxes"),
        (torch.zeros(3, 8, 8), [[0, 0, 2, 2]], {"colors": "reddish"}, ValueError,
         "colors holds 'reddish', not a colour"),
        (torch.zeros(3, 8, 8), [[0, 0, 2, 2]], {"width": 0}, ValueError, "width=0"),
        (torch.zeros(3, 8, 8), [[0, 0, 2, 2]], {"scale": 1.5}, ValueError, "scale=1.5"),
        (torch.zeros(3, 8, 8), [[0, 0, 2, 2]], {"font_size": 0}, ValueError, "font_size=0"),
    ],
)
def test_draw_boxes_bad_input(image, boxes, kwargs, error, match) -> None:
    with pytest.raises(error, match=f"^draw_boxes: {match}"):
        viz.draw_boxes(image, boxes, **kwargs)


def test_samples_with_boxes_share_colours_across_images() -> None:
    images = torch.full((3, 3, 20, 20), 0.5)
    boxes = [[[2, 2, 10, 10], [12, 12, 18, 18]], [[12, 12, 18, 18], [2, 2, 10, 10]],
             torch.zeros(0, 4)]
    labels = [["object", "part"], ["part", "object"], []]
    fig = viz.draw_samples(images, boxes, labels, titles=["a", "b", "c"], ncols=3)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c"]
    first, second, third = (_pixels(fig, k) for k in range(3))
    assert first.shape == (200, 200, 3)  # 200 // 20 = 10 times
    # the bottom line of the object box (rows 2..9 → enlarged row 99) and of the part box
    assert _hex(first[99, 50]) == _hex(second[99, 50]) == BOX_COLORS[0]
    assert _hex(first[179, 150]) == _hex(second[179, 150]) == BOX_COLORS[1]
    assert (third == GREY).all()
    with pytest.raises(ValueError, match="draw_samples: 2 boxes for 3 images"):
        viz.draw_samples(images, boxes[:2])
    with pytest.raises(ValueError, match=r"draw_samples: box_labels\[0\] has 1 labels for 2"):
        viz.draw_samples(images, boxes, [["object"], ["part", "object"], []])
    with pytest.raises(ValueError, match=r"draw_samples: boxes\[0\]\[0\] = \[2.0, 2.0, 1.0, "
                                         r"10.0\] is not xyxy"):
        viz.draw_samples(images, [[[2, 2, 1, 10]], [], []])
