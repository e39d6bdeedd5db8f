"""RA-CNN's crops drawn (hmglib.viz.crops): the boxcar mask and its derivative,
the regions each scale attends, one box cropped both ways, and the explorer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from figure_rects import rects
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from hmglib import viz
from hmglib.models.racnn import BoxBounds, attention_crop
from hmglib.viz.colors import BOX_COLORS


def _line(ax, label: str) -> tuple[np.ndarray, np.ndarray]:
    (line,) = [ln for ln in ax.lines if ln.get_label() == label]
    return np.asarray(line.get_xdata()), np.asarray(line.get_ydata())


@pytest.fixture
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 40, 40, generator=g)  # (N, 3, H, W)


@pytest.fixture
def regions() -> torch.Tensor:
    return torch.tensor([[[0.5, 0.5, 0.5], [0.4, 0.5, 0.25], [0.35, 0.45, 0.1]],
                         [[0.5, 0.5, 0.5], [0.6, 0.6, 0.3], [0.7, 0.65, 0.125]]])  # (N, S, 3)


# ----------------------------------------------------------------- the mask
def test_boxcar_mask_panels_and_its_derivative_lives_at_the_edges() -> None:
    size, box = 64, (0.5, 0.5, 0.25)
    fig = viz.draw_boxcar_mask(sharpness=(0.5, 10.0), size=size, box=box, log=False)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    profile, derivative, mask = fig.axes
    edges = np.array([16.0, 48.0])  # (t_x -+ t_l) W
    x, m = _line(profile, "k = 10")
    assert m[np.abs(x - 32) < 10].min() > 0.99 and m[np.abs(x - 32) > 20].max() < 1e-3
    x, d = _line(derivative, "k = 10")
    alive = np.abs(d) > 1e-3 * np.abs(d).max()
    distance = np.abs(x[:, None] - edges[None]).min(1)  # to the nearer edge, pixels
    assert alive.any() and distance[alive].max() < 1.0  # within a pixel of an edge
    assert d[np.argmin(np.abs(x - 16))] < 0 < d[np.argmin(np.abs(x - 48))]  # moving right
    # the analytic slope of the x factor: k W [h'(k(x - x0)) - h'(k(x - x1))] (sign: -, +)
    s = torch.sigmoid(torch.tensor(10 * (x[:, None] - edges[None])))
    slope = (10 * 64 * s * (1 - s) * torch.tensor([-1.0, 1.0])).sum(1).numpy()
    assert np.allclose(d, slope, atol=1e-3 * np.abs(slope).max())
    x, d_soft = _line(derivative, "k = 0.5")  # a soft mask's slope reaches far from the edges
    assert np.abs(d_soft[np.abs(x - 32) < 4]).max() > 1e-3 * np.abs(d_soft).max()
    # the 2-D mask at the largest k, with the box's outline
    assert mask.images[0].get_array().shape == (size, size)
    assert rects(mask)["box"] == [pytest.approx((16.0, 16.0, 48.0, 48.0))]


def test_boxcar_mask_log_and_t_l() -> None:
    fig = viz.draw_boxcar_mask(sharpness=torch.tensor(10.0), size=32, box=(0.5, 0.5, 0.25),
                               wrt="t_l")
    derivative = fig.axes[1]
    assert derivative.get_yscale() == "log"
    x, d = _line(derivative, "k = 10")
    assert (d >= 0).all()  # the magnitude
    alive = x[d > 1e-3 * d.max()]
    assert np.abs(alive[:, None] - np.array([8.0, 24.0])).min(1).max() < 1.0  # edges 8, 24


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"sharpness": ()}, "sharpness is empty"),
    ({"sharpness": (1.0, -2.0)}, r"sharpness=-2.0 must be a number in \(0, inf\]"),
    ({"size": 1}, "size=1 must be an int >= 2"),
    ({"box": (0.5, 0.5)}, r"box has 2 numbers; give one box \(t_x, t_y, t_l\)"),
    ({"box": (0.5, 0.5, 0.0)}, "box has half-side t_l=0; it must be > 0"),
    ({"wrt": "t_y"}, "unknown wrt='t_y'"),
    ({"oversample": 0}, "oversample=0 must be an int >= 1"),
    ({"size": 512, "oversample": 8}, "size \\* oversample = 4096 samples"),
])
def test_boxcar_mask_bad_input(kwargs, match) -> None:
    with pytest.raises(ValueError, match=f"^draw_boxcar_mask: {match}"):
        viz.draw_boxcar_mask(**kwargs)


# -------------------------------------------------------- attention regions
def test_regions_are_drawn_nested_at_their_pixels(images, regions) -> None:
    obj = torch.tensor([[8.0, 10.0, 24.0, 30.0], [20.0, 18.0, 36.0, 34.0]])
    part = torch.tensor([[12.0, 14.0, 16.0, 18.0], [26.0, 24.0, 30.0, 28.0]])
    fig = viz.draw_attention_regions(images, regions, obj, part, titles=["a", "b"])
    assert len(fig.axes) == 2 * 3
    first, second, third = fig.axes[:3]  # image 0, scales 1..3
    assert set(rects(first)) == {"object", "part"}  # scale 1 is the whole image
    assert rects(second)["scale 2 region"] == [pytest.approx((6.0, 10.0, 26.0, 30.0))]
    third_rects = rects(third)
    assert third_rects["scale 2 region"] == [pytest.approx((6.0, 10.0, 26.0, 30.0))]
    assert third_rects["scale 3 region"] == [pytest.approx((10.0, 14.0, 18.0, 22.0))]
    assert third_rects["object"] == [pytest.approx((8.0, 10.0, 24.0, 30.0))]
    # image 1, scale 3: (0.7 -+ 0.125) * 40, (0.65 -+ 0.125) * 40
    assert rects(fig.axes[5])["scale 3 region"] == [pytest.approx((23.0, 21.0, 33.0, 31.0))]
    colors = {p.get_label(): to_hex(p.get_edgecolor()) for p in third.patches}
    assert colors == {"object": BOX_COLORS[0], "part": BOX_COLORS[1],  # each its own colour
                      "scale 2 region": BOX_COLORS[2], "scale 3 region": BOX_COLORS[3]}
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "object", "part", "scale 2 region", "scale 3 region"]
    assert fig.axes[0].get_ylabel() == "a" and fig.axes[2].get_xlabel() == "zoom ×5.0"
    assert fig.get_figwidth() <= viz.PAGE_WIDTH_IN


def test_crops_sit_beside_their_regions_with_the_boxes_they_show(images, regions) -> None:
    part = torch.tensor([[12.0, 14.0, 16.0, 18.0], [0.0, 0.0, 4.0, 4.0]])
    crops = [torch.nn.functional.interpolate(images, size=20)]
    crops += [attention_crop(images, regions[:, s], 16) for s in (1, 2)]
    fig = viz.draw_attention_regions(images, regions, part_boxes=part, crops=crops,
                                     scale_names=["whole", "zoom 1", "zoom 2"])
    assert len(fig.axes) == 2 * 6
    crop_ax = fig.axes[5]  # image 0, the input of scale 3
    assert crop_ax.images[0].get_array().shape == (16, 16, 3)
    assert crop_ax.get_title() == "zoom 2: input"
    assert fig.axes[0].get_title() == "whole: the image"
    # the part (12..16, 14..18) in scale 3's region (10..18, 14..22) zoomed to 16 px
    assert rects(crop_ax)["part"] == [pytest.approx((4.0, 0.0, 12.0, 8.0), abs=1e-4)]
    assert "part" not in rects(fig.axes[11])  # image 1's part is outside scale 3's crop


@pytest.mark.parametrize(("change", "error", "match"), [
    ({"images": torch.rand(3, 40, 40)}, ValueError, r"images must be a batch \(N, 3, H, W\)"),
    ({"images": torch.full((2, 3, 40, 40), 2.0)}, ValueError, r"images\[0\] has values"),
    ({"regions": torch.rand(2, 3)}, ValueError, r"regions must have shape \(N, S, 3\)"),
    ({"regions": torch.rand(2, 3, 4)}, ValueError, r"regions must have shape \(N, S, 3\)"),
    ({"regions": torch.full((3, 3, 3), 0.25)}, ValueError,
     "regions holds 3 images but images holds 2"),
    ({"regions": torch.zeros(2, 3, 3)}, ValueError, "every half-side t_l of regions must be > 0"),
    ({"object_boxes": torch.zeros(2, 3)}, ValueError, r"object_boxes must have shape \(N, 4\)"),
    ({"part_boxes": torch.tensor([[0.0, 0, 4, 4]])}, ValueError,
     "part_boxes holds 1 boxes but images holds 2"),
    ({"part_boxes": torch.tensor([[0.0, 0, 4, 4], [5, 5, 1, 1]])}, ValueError,
     r"part_boxes\[1\]\[0\] = .* is not xyxy"),
    ({"crops": torch.rand(2, 3, 8, 8)}, TypeError, "crops must be a list of 3 batches"),
    ({"crops": [torch.rand(2, 3, 8, 8)] * 2}, ValueError, "crops holds 2 batches for 3 scales"),
    ({"crops": [torch.rand(2, 3, 8, 8)] * 2 + [torch.rand(1, 3, 8, 8)]}, ValueError,
     r"crops\[2\] holds 1 images but images holds 2"),
    ({"scale_names": ["a"]}, ValueError, "1 scale_names for 3"),
    ({"titles": ["a", "b", "c"]}, ValueError, "3 titles for 2"),
])
def test_attention_regions_bad_input(images, regions, change, error, match) -> None:
    kwargs = {"images": images, "regions": regions, **change}
    with pytest.raises(error, match=f"^draw_attention_regions: {match}"):
        viz.draw_attention_regions(**kwargs)


# --------------------------------------------------------------- crop views
def test_crop_views_draw_the_box_and_each_method_s_crop(images) -> None:
    image, box = images[0], (0.4, 0.55, 0.2)
    fig = viz.draw_crop_views(image, box, out_size=24)
    assert len(fig.axes) == 3
    assert rects(fig.axes[0])["box"] == [pytest.approx((8.0, 14.0, 24.0, 30.0))]
    want = attention_crop(image[None], torch.tensor([box]), 24)[0]  # (3, 24, 24)
    shown = fig.axes[1].images[0].get_array()
    assert shown.shape == (24, 24, 3)
    assert np.abs(shown / 255.0 - want.permute(1, 2, 0).numpy()).max() <= 1 / 255 + 1e-6
    assert [ax.get_title() for ax in fig.axes[1:]] == ["grid crop (24 px)",
                                                       "mask crop, k = 10 (24 px)"]
    title = fig.get_suptitle()
    assert "(0.40, 0.55, 0.20)" in title and "16.0 px → 24 px, zoom ×1.50" in title
    assert fig.axes[0].get_xlabel() == ""  # inside the image
    fig = viz.draw_crop_views(image, (0.1, 0.5, 0.2), out_size=8, methods="mask")
    assert len(fig.axes) == 2 and "reaches outside" in fig.axes[0].get_xlabel()


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    ((torch.rand(1, 3, 8, 8), (0.5, 0.5, 0.2), 8), {}, "image must be one image"),
    ((torch.rand(3, 8, 8), (0.5, 0.5), 8), {}, "box has 2 numbers"),
    ((torch.rand(3, 8, 8), (0.5, 0.5, float("nan")), 8), {},
     r"box=\[0.5, 0.5, nan\] holds nan or inf"),
    ((torch.rand(3, 8, 8), (0.5, 0.5, 0.2), 0), {}, "out_size=0 must be an int >= 1"),
    ((torch.rand(3, 8, 8), (0.5, 0.5, 0.2), 8), {"methods": ()}, "methods is empty"),
    ((torch.rand(3, 8, 8), (0.5, 0.5, 0.2), 8), {"methods": ("crop",)}, "unknown methods"),
    ((torch.rand(3, 8, 8), (0.5, 0.5, 0.2), 8), {"sharpness": 0}, "sharpness=0 must be"),
])
def test_crop_views_bad_input(args, kwargs, match) -> None:
    with pytest.raises(ValueError, match=f"^draw_crop_views: {match}"):
        viz.draw_crop_views(*args, **kwargs)


# ----------------------------------------------------------------- explorer
def test_crop_explorer_keeps_the_box_inside_and_redraws(images) -> None:
    w = pytest.importorskip("ipywidgets")
    from hmglib.widgets import crop_explorer

    box = crop_explorer(images[0], 16, box=(0.5, 0.5, 0.25), bounds=BoxBounds(0.1, 0.4))
    pick, sx, sy, half, image = box.children
    assert isinstance(image, w.Image) and bytes(image.value).startswith(b"\x89PNG")
    assert (half.min, half.max) == (0.1, 0.4) and (sx.min, sx.max) == (0.25, 0.75)
    assert pick.value == ("grid", "mask")
    before = bytes(image.value)
    sx.value = 0.7
    assert bytes(image.value) != before
    half.value = 0.4  # the centre slides back so that the square stays inside
    assert (sx.min, sx.max) == pytest.approx((0.4, 0.6)) and sx.value == pytest.approx(0.6)
    before = bytes(image.value)
    pick.value = ("mask",)
    assert bytes(image.value) != before
    with pytest.raises(TypeError, match="crop_explorer: bounds must be a BoxBounds"):
        crop_explorer(images[0], 16, bounds=(0.1, 0.4))
    with pytest.raises(ValueError, match=r"crop_explorer: box has t_l=0.45, outside the bounds"):
        crop_explorer(images[0], 16, box=(0.5, 0.5, 0.45), bounds=BoxBounds(0.1, 0.4))
    with pytest.raises(ValueError, match=r"crop_explorer: box has t_x=0.1, so its square"):
        crop_explorer(images[0], 16, box=(0.1, 0.5, 0.2))
    with pytest.raises(ValueError, match="draw_crop_views: out_size=0"):
        crop_explorer(images[0], 0)
