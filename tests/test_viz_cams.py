"""Class activation maps drawn (hmglib.viz.cams): a map over its image, maps per
level and per scale, methods × levels for one image, localisation scores as
bars over seeds, a map by hand beside the package's, and the explorer."""

from __future__ import annotations

import dataclasses

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from figure_rects import rects
from matplotlib.colors import ListedColormap, to_hex
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.figure import Figure

from hmglib import viz
from hmglib.cam import ScaleCam, centre_prior, random_maps
from hmglib.viz.colors import BOX_COLORS, CAM_CMAP, level_color

NAN = float("nan")
S = 24  # the images' side


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _readable(fig: Figure) -> None:
    """At most the page's width, every text at least the smallest readable size."""
    assert isinstance(fig, Figure)
    assert fig.get_figwidth() <= viz.PAGE_WIDTH_IN + 1e-9
    assert not viz.unreadable_text(fig)




def _count(ax) -> int:
    return sum(len(v) for v in rects(ax).values())


def _blob(cx: float, cy: float, sigma: float, size: int = S) -> torch.Tensor:
    """``(size, size)`` a Gaussian blob centred at pixel ``(cx, cy)``, maximum 1."""
    y, x = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    return torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2))  # (size, size)


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(2, 3, S, S, generator=torch.Generator().manual_seed(0))  # (B, 3, S, S)


@pytest.fixture
def maps() -> dict[str, torch.Tensor]:
    return {"order": centre_prior(2, S, S),
            "family": torch.stack([_blob(6, 6, 3), _blob(18, 12, 2)]),
            "species": random_maps(2, S, S, seed=1)}


@pytest.fixture
def boxes() -> dict[str, torch.Tensor]:
    part = torch.tensor([[[2.0, 2.0, 8.0, 8.0], [NAN] * 4],
                         [[14.0, 9.0, 20.0, 15.0], [0.0, 0.0, 3.5, 3.0]]])  # (B, K, 4)
    return {"object": torch.tensor([[1.0, 1.0, 12.0, 12.0], [10.0, 5.0, 23.0, 20.0]]),
            "part": part}


# ------------------------------------------------------------------ overlay
def test_overlay_by_hand_on_a_two_by_two_image() -> None:
    image = torch.tensor([[[0.0, 1.0], [0.5, 0.2]],
                          [[0.0, 0.0], [0.5, 0.4]],
                          [[1.0, 0.0], [0.5, 0.6]]])  # (3, 2, 2)
    cam = torch.tensor([[0.0, 1.0], [0.5, 0.25]])  # (2, 2)
    rgb = image.permute(1, 2, 0).double().numpy()  # (2, 2, 3)
    assert np.allclose(viz.overlay(image, cam, alpha=0.0), rgb)
    jet = np.array([[mpl.colormaps["jet"](v)[:3] for v in row] for row in cam.tolist()])
    assert np.allclose(viz.overlay(image, cam, alpha=1.0), jet)
    assert np.allclose(viz.overlay(image.numpy(), cam.numpy()), 0.5 * rgb + 0.5 * jet)
    assert np.allclose(viz.overlay(image, cam, 0.3), 0.7 * rgb + 0.3 * jet)
    # the corner where the map is 0 is jet's dark blue (0, 0, 0.5); where it is 1, dark red
    assert np.allclose(viz.overlay(image, cam, 1.0)[0, 0], [0.0, 0.0, 0.5])
    assert np.allclose(viz.overlay(image, cam, 1.0)[0, 1], [0.5, 0.0, 0.0])
    two = ListedColormap(["#000000", "#ffffff"])  # 0 -> black, 1 -> white
    out = viz.overlay(image, torch.tensor([[0.0, 1.0], [1.0, 0.0]]), 0.5, two)
    assert np.allclose(out[0, 0], 0.5 * rgb[0, 0]) and np.allclose(out[0, 1], 0.5 * rgb[0, 1] + 0.5)
    grey = viz.overlay(torch.full((1, 2, 2), 0.4), cam, 0.0)  # one channel: repeated
    assert grey.shape == (2, 2, 3) and np.allclose(grey, 0.4)
    eight = viz.overlay((image * 255).round().to(torch.uint8), cam, 0.0)  # uint8: / 255
    assert np.abs(eight - rgb).max() <= 0.5 / 255 + 1e-9
    assert viz.CAM_CMAP == CAM_CMAP == "jet"


@pytest.mark.parametrize(("args", "match"), [
    ((torch.rand(3, 4, 4), torch.rand(4, 5)),
     r"cam has shape \(4, 5\); give \(H, W\) of the image = \(4, 4\)"),
    ((torch.rand(3, 4, 4), torch.rand(1, 4, 4)), r"cam has shape \(1, 4, 4\)"),
    ((torch.rand(4, 4, 3), torch.rand(4, 4)), r"image must be one image of shape \(3, H, W\)"),
    ((torch.rand(1, 3, 4, 4), torch.rand(4, 4)), r"image must be one image of shape"),
    ((torch.full((3, 4, 4), 1.2), torch.rand(4, 4)), r"image has values in \[1.2, 1.2\]"),
    ((torch.rand(3, 4, 4), torch.full((4, 4), 2.0)),
     r"cam has values in \[2, 2\], outside \[0, 1\]; .* divide it by its maximum"),
    ((torch.rand(3, 4, 4), torch.full((4, 4), -0.5)), r"cam has values in \[-0.5, -0.5\]"),
    ((torch.rand(3, 4, 4), torch.full((4, 4), NAN)), "cam holds nan or inf"),
    ((torch.rand(3, 4, 4), torch.rand(4, 4), 1.5), r"alpha=1.5 must be a number in \[0, 1\]"),
    ((torch.rand(3, 4, 4), torch.rand(4, 4), 0.5, "no-such-map"), "unknown cmap='no-such-map'"),
])
def test_overlay_bad_input(args, match) -> None:
    with pytest.raises(ValueError, match=f"^overlay: {match}"):
        viz.overlay(*args)


# ------------------------------------------------------------------ draw_cams
def test_cams_grid_overlays_every_map_and_outlines_the_boxes(images, maps, boxes) -> None:
    fig = viz.draw_cams(images, maps, boxes, row_labels=["first", "second"],
                        notes={"family": ["energy 0.62", "energy 0.10"]})
    image_axes = fig.axes[:2 * 4]
    assert len(fig.axes) == 2 * 4 + 1  # two rows of the image and three maps, a colour bar
    assert [ax.get_title() for ax in image_axes[:4]] == ["image", "order", "family", "species"]
    assert fig.axes[-1].get_ylabel() == "map"
    for i in range(2):
        shown = image_axes[4 * i].images[0].get_array()  # the image itself, as uint8
        want = (images[i].permute(1, 2, 0).numpy() * 255).round()
        assert shown.shape == (S, S, 3) and np.abs(shown - want).max() <= 1
        for j, name in enumerate(maps, start=1):
            ax = image_axes[4 * i + j]
            (picture,) = ax.images
            assert np.allclose(picture.get_array(), viz.overlay(images[i], maps[name][i]))
            assert picture.get_extent() == [0, S, S, 0]  # in the image's pixels
    # image 0: one object and one part (its second part row is padding); image 1: 1 + 2
    for j in range(4):
        assert _count(image_axes[j]) == 2 and _count(image_axes[4 + j]) == 3
    second = rects(image_axes[5])
    assert second["object"] == [(10.0, 5.0, 23.0, 20.0)]
    assert sorted(second["part"]) == [(0.0, 0.0, 3.5, 3.0), (14.0, 9.0, 20.0, 15.0)]
    colours = {p.get_label(): to_hex(p.get_edgecolor()) for p in image_axes[1].patches}
    assert colours == {"object": BOX_COLORS[0], "part": BOX_COLORS[1]}
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["object", "part"]
    assert image_axes[2].get_xlabel() == "energy 0.62"
    assert image_axes[6].get_xlabel() == "energy 0.10"
    assert image_axes[1].get_xlabel() == ""
    assert image_axes[0].get_ylabel() == "first" and image_axes[4].get_ylabel() == "second"
    _readable(fig)


def test_cams_one_row_titles_and_no_boxes(images, maps) -> None:
    fig = viz.draw_cams(images[:1].numpy(), {"car": maps["family"][:1].numpy()},
                        titles=["class 'car' (present)"], colorbar=False, alpha=1.0,
                        cmap="inferno")
    assert len(fig.axes) == 2 and not fig.legends
    assert fig.axes[1].get_title() == "class 'car' (present)"
    want = mpl.colormaps["inferno"](maps["family"][0].numpy())[..., :3]
    assert np.allclose(fig.axes[1].images[0].get_array(), want)
    assert _count(fig.axes[1]) == 0
    _readable(fig)


def test_cams_image_without_a_box_of_a_kind(images, maps) -> None:
    part = torch.tensor([[[NAN] * 4], [[4.0, 4.0, 9.0, 9.0]]])  # image 0 has no part
    fig = viz.draw_cams(images, {"species": maps["species"]}, {"part": part})
    assert _count(fig.axes[1]) == 0 and rects(fig.axes[3]) == {"part": [(4.0, 4.0, 9.0, 9.0)]}


@pytest.mark.parametrize(("change", "match"), [
    ({"images": torch.rand(3, S, S)}, r"images must be a batch \(B, 3, H, W\)"),
    ({"images": torch.rand(0, 3, S, S)}, "images is empty"),
    ({"images": torch.full((2, 3, S, S), 2.0)}, r"images\[0\] has values in \[2, 2\]"),
    ({"max_rows": 1}, r"images holds 2 images but max_rows=1; draw fewer \(images\[:1\]"),
    ({"max_rows": 0}, "max_rows=0 must be an int >= 1"),
    ({"maps": {}}, "maps must be a non-empty dict"),
    ({"maps": {"order": torch.rand(2, 12, 12)}},
     r"maps\['order'\] has shape \(2, 12, 12\); give \(B, H, W\) = \(2, 24, 24\)"),
    ({"maps": {"order": torch.rand(3, S, S)}}, r"maps\['order'\] has shape \(3, 24, 24\)"),
    ({"maps": {"order": torch.full((2, S, S), 3.0)}},
     r"maps\['order'\] has values in \[3, 3\], outside \[0, 1\]"),
    ({"maps": {f"m{k}": torch.rand(2, S, S) for k in range(8)}},
     "the image and 8 maps makes 9 panels a row; at most 8 fit"),
    ({"boxes": {"object": torch.zeros(3, 4)}},
     r"boxes\['object'\] holds boxes of 3 images but images holds 2"),
    ({"boxes": {"object": torch.zeros(2, 5)}}, r"boxes\['object'\] must be \(B, 4\) or"),
    ({"boxes": {"object": torch.tensor([[1.0, 1, 5, 5], [1.0, NAN, 5, 5]])}},
     r"boxes\['object'\]\[1\]\[0\] = \[1.0, nan, 5.0, 5.0\] mixes nan and numbers"),
    ({"boxes": {"object": torch.tensor([[6.0, 1, 5, 5], [1.0, 1, 5, 5]])}},
     r"boxes\['object'\]\[0\]\[0\] = .* is not xyxy"),
    ({"boxes": {"object": torch.tensor([[30.0, 30, 40, 40], [1.0, 1, 5, 5]])}},
     r"boxes\['object'\]\[0\]\[0\] = .* lies outside the 24 x 24 image"),
    ({"boxes": torch.zeros(2, 4)}, "boxes must be a non-empty dict"),
    ({"titles": ["a"]}, "titles holds 1 strings for 3"),
    ({"row_labels": "ab"}, "row_labels is one string"),
    ({"notes": {"genus": ["a", "b"]}}, r"notes\['genus'\] names no map; the maps are"),
    ({"notes": {"order": ["a"]}}, r"notes\['order'\] holds 1 strings for 2"),
    ({"alpha": -0.1}, r"alpha=-0.1 must be a number in \[0, 1\]"),
    ({"cmap": "nope"}, "unknown cmap='nope'"),
])
def test_cams_bad_input(images, maps, boxes, change, match) -> None:
    kwargs = {"images": images, "maps": maps, "boxes": boxes, **change}
    with pytest.raises(ValueError, match=f"^draw_cams: {match}"):
        viz.draw_cams(**kwargs)


def test_cams_bad_dtype(maps) -> None:
    with pytest.raises(TypeError, match=r"^draw_cams: images\[0\] has dtype torch.int32"):
        viz.draw_cams(torch.zeros(2, 3, S, S, dtype=torch.int32), maps)


# ------------------------------------------------------------------ scale cams
@pytest.fixture
def scale_cams() -> list[ScaleCam]:
    g = torch.Generator().manual_seed(2)
    whole = torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]])  # (B, 3)
    zoom = torch.tensor([[0.25, 0.25, 0.25], [0.5, 0.625, 0.125]])  # (B, 3)
    crop_maps = torch.stack([_blob(8, 8, 3, 16), _blob(4, 10, 2, 16)])  # (B, 16, 16)
    first = ScaleCam(centre_prior(2, S, S), centre_prior(2, 16, 16),
                     torch.rand(2, 3, 16, 16, generator=g), whole, torch.tensor([0, 1]))
    pasted = torch.zeros(2, S, S)
    pasted[:, :12, :12] = 0.5
    second = ScaleCam(pasted, crop_maps, torch.rand(2, 3, 16, 16, generator=g), zoom,
                      torch.tensor([0, 1]))
    return [first, second]


def test_scale_cams_show_each_scale_on_its_input_and_on_the_image(images, scale_cams,
                                                                  boxes) -> None:
    fig = viz.draw_scale_cams(images, scale_cams, boxes, row_labels=["a", "b"])
    assert len(fig.axes) == 2 * 4 + 1  # two rows of 2 x 2 scales, a colour bar
    assert [ax.get_title() for ax in fig.axes[:4]] == [
        "scale 1: input", "scale 1: on the\nimage", "scale 2: input", "scale 2: on the\nimage"]
    for i in range(2):
        for s, sc in enumerate(scale_cams):
            seen, pasted = fig.axes[4 * i + 2 * s], fig.axes[4 * i + 2 * s + 1]
            assert np.allclose(seen.images[0].get_array(),
                               viz.overlay(sc.crops[i], sc.crop_maps[i]))
            assert seen.images[0].get_array().shape == (16, 16, 3)
            assert np.allclose(pasted.images[0].get_array(), viz.overlay(images[i], sc.maps[i]))
            assert seen.get_xlabel() == "16×16 px"
    # scale 1 sees the whole image: no region drawn; scale 2's region in pixels
    assert "scale 1 region" not in rects(fig.axes[1])
    assert rects(fig.axes[3])["scale 2 region"] == [pytest.approx((0.0, 0.0, 12.0, 12.0))]
    assert rects(fig.axes[7])["scale 2 region"] == [pytest.approx((9.0, 12.0, 15.0, 18.0))]
    assert to_hex(fig.axes[3].patches[-1].get_edgecolor()) == BOX_COLORS[2]
    assert fig.axes[1].get_xlabel() == "zoom ×1.0" and fig.axes[7].get_xlabel() == "zoom ×4.0"
    # image 0's boxes in scale 2's input: its region (0..12, 0..12) zoomed to 16 px
    crop = rects(fig.axes[2])
    assert crop["object"] == [pytest.approx((4 / 3, 4 / 3, 16.0, 16.0))]
    assert crop["part"] == [pytest.approx((8 / 3, 8 / 3, 32 / 3, 32 / 3))]
    # image 1's region (9..15, 12..18) shows a corner of its part (14..20, 9..15), not the
    # other part (0..3.5, 0..3), and its object (10..23, 5..20) from x = 10 on
    crop = rects(fig.axes[6])
    assert crop["part"] == [pytest.approx((40 / 3, 0.0, 16.0, 8.0))]
    assert crop["object"] == [pytest.approx((8 / 3, 0.0, 16.0, 16.0))]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "object", "part", "scale 2 region"]
    assert fig.axes[0].get_ylabel() == "a"
    _readable(fig)


def test_scale_cams_names_and_one_scale(images, scale_cams) -> None:
    fig = viz.draw_scale_cams(images[:1], [dataclasses.replace(
        scale_cams[1], maps=scale_cams[1].maps[:1], crop_maps=scale_cams[1].crop_maps[:1],
        crops=scale_cams[1].crops[:1], regions=scale_cams[1].regions[:1])],
        scale_names=["APN 1"], colorbar=False)
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["APN 1: input", "APN 1: on the image"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["APN 1 region"]
    _readable(fig)


def _replace(sc: ScaleCam, **kw) -> ScaleCam:
    return dataclasses.replace(sc, **kw)


@pytest.mark.parametrize(("change", "error", "match"), [
    (lambda sc: sc[0], TypeError, "scale_cams must be a list of ScaleCams"),
    (lambda sc: [sc[0], torch.rand(2, S, S)], TypeError,
     r"scale_cams\[1\] is a Tensor; give the ScaleCam"),
    (lambda sc: [], ValueError, "scale_cams is empty"),
    (lambda sc: sc * 5, ValueError, "10 scales \\(two panels each\\) makes 20 panels"),
    (lambda sc: [_replace(sc[0], maps=torch.rand(2, 16, 16))], ValueError,
     r"scale_cams\[0\].maps has shape \(2, 16, 16\)"),
    (lambda sc: [_replace(sc[0], crops=sc[0].crops * 4 - 2)], ValueError,
     r"scale_cams\[0\].crops have values in .* the model read normalised images"),
    (lambda sc: [_replace(sc[0], crops=sc[0].crops[:1])], ValueError,
     r"scale_cams\[0\].crops must be \(2, 3, h, w\)"),
    (lambda sc: [_replace(sc[0], crop_maps=torch.rand(2, 8, 8))], ValueError,
     r"scale_cams\[0\].crop_maps has shape \(2, 8, 8\); give \(B, h, w\) of its crops"),
    (lambda sc: [_replace(sc[0], regions=torch.zeros(2, 3))], ValueError,
     r"scale_cams\[0\].regions must be \(2, 3\) finite \(t_x, t_y, t_l\) with t_l > 0"),
])
def test_scale_cams_bad_input(images, scale_cams, change, error, match) -> None:
    with pytest.raises(error, match=f"^draw_scale_cams: {match}"):
        viz.draw_scale_cams(images, change(scale_cams))


def test_scale_cams_bad_names_and_rows(images, scale_cams) -> None:
    with pytest.raises(ValueError, match="^draw_scale_cams: scale_names holds 1 strings for 2"):
        viz.draw_scale_cams(images, scale_cams, scale_names=["a"])
    with pytest.raises(ValueError, match="^draw_scale_cams: images holds 2 images but max_rows=1"):
        viz.draw_scale_cams(images, scale_cams, max_rows=1)


# ------------------------------------------------------------------ cam grid
def test_cam_grid_methods_by_levels_with_a_missing_cell(images, maps) -> None:
    grid = {"gradcam": {"order": maps["order"][0], "species": maps["family"][0]},
            "scorecam": {"order": maps["species"][0]}}
    box = {"object": torch.tensor([2.0, 3.0, 12.0, 14.0]),
           "part": torch.tensor([[4.0, 4.0, 6.0, 6.0], [NAN] * 4])}
    fig = viz.draw_cam_grid(images[0], grid, box, notes={"gradcam": {"species": "0.81"}})
    assert len(fig.axes) == 1 + 2 * 2 + 1  # the image, 2 x 2 cells, a colour bar
    image, g_order, g_species, s_order, s_species = fig.axes[:5]
    assert image.get_title() == "image"
    assert [g_order.get_title(), g_species.get_title()] == ["order", "species"]
    assert g_order.get_ylabel() == "gradcam" and s_order.get_ylabel() == "scorecam"
    assert np.allclose(g_species.images[0].get_array(), viz.overlay(images[0], maps["family"][0]))
    assert np.allclose(s_order.images[0].get_array(), viz.overlay(images[0], maps["species"][0]))
    assert not s_species.images and [t.get_text() for t in s_species.texts] == ["not computed"]
    assert g_species.get_xlabel() == "0.81" and g_order.get_xlabel() == ""
    for ax in (image, g_order, g_species, s_order):
        assert rects(ax) == {"object": [(2.0, 3.0, 12.0, 14.0)], "part": [(4.0, 4.0, 6.0, 6.0)]}
    assert _count(s_species) == 0
    _readable(fig)


@pytest.mark.parametrize(("change", "match"), [
    ({"maps": {}}, "maps must be a non-empty dict"),
    ({"maps": {"gradcam": {}}}, r"maps\['gradcam'\] must be a non-empty dict"),
    ({"maps": {f"m{r}": {"order": torch.rand(S, S)} for r in range(7)}},
     "maps holds 7 rows; at most 6 fit"),
    ({"maps": {"gradcam": {"order": torch.rand(2, S, S)}}},
     r"maps\['gradcam'\]\['order'\] has shape \(2, 24, 24\); give \(H, W\) of the image"),
    ({"notes": {"gradcam": {"species": "x"}}}, r"notes\['gradcam'\]\['species'\] names no map"),
    ({"boxes": {"object": torch.tensor([5.0, 5.0, 1.0, 1.0])}},
     r"boxes\['object'\]\[0\] = \[5.0, 5.0, 1.0, 1.0\] is not xyxy"),
])
def test_cam_grid_bad_input(images, change, match) -> None:
    kwargs = {"image": images[0], "maps": {"gradcam": {"order": torch.rand(S, S)}}, **change}
    with pytest.raises(ValueError, match=f"^draw_cam_grid: {match}"):
        viz.draw_cam_grid(**kwargs)


# ------------------------------------------------------------------ localisation
def _frame() -> pd.DataFrame:
    """HRN with two levels, both box kinds, two CAM methods and both references;
    SARB with one level, the object box only, Grad-CAM only and the random
    reference only. Values ``base + 0.1 * seed``."""
    rows = []
    base = {("gradcam", "order"): 0.5, ("scorecam", "order"): 0.3,
            ("gradcam", "species"): 0.6, ("scorecam", "species"): 0.2,
            ("random", "order"): 0.25, ("random", "species"): 0.25,
            ("centre", "order"): 0.35, ("centre", "species"): 0.4}
    for (method, level), value in base.items():
        for box, shift in (("object", 0.0), ("part", -0.1)):
            for seed in range(3):
                for metric, extra in (("energy", 0.0), ("pointing", 0.05)):
                    rows.append({"family": "HRN", "level": level, "method": method, "box": box,
                                 "metric": metric, "seed": seed,
                                 "value": value + shift + extra + 0.1 * seed})
    for seed, v in ((0, 0.7), (1, 0.9)):
        rows += [{"family": "SARB", "level": "class", "method": "gradcam", "box": "object",
                  "metric": "energy", "seed": seed, "value": v},
                 {"family": "SARB", "level": "class", "method": "random", "box": "object",
                  "metric": "energy", "seed": seed, "value": 0.2}]
    return pd.DataFrame(rows)


def _bars(ax) -> dict[str, list[tuple[float, float]]]:
    """Each method's bars as ``(centre x, height)``, by x."""
    out: dict[str, list[tuple[float, float]]] = {}
    for c in ax.containers:
        if isinstance(c, BarContainer):
            (p,) = c.patches
            out.setdefault(c.get_label(), []).append((p.get_x() + p.get_width() / 2,
                                                      p.get_height()))
    return {k: sorted(v) for k, v in out.items()}


def _half_errors(ax) -> list[float]:
    """Half the length of each error bar, by x."""
    found = []
    for c in ax.containers:
        if isinstance(c, ErrorbarContainer):
            (segment,) = c.lines[2][0].get_segments()
            found.append((segment[0][0], (segment[1][1] - segment[0][1]) / 2))
    return [h for _, h in sorted(found)]


def _references(ax) -> dict[str, list[tuple[float, float, float]]]:
    """Each reference's lines as ``(x0, x1, y)``, by x."""
    out: dict[str, list[tuple[float, float, float]]] = {}
    for col in ax.collections:
        if col.get_label().endswith("(reference)"):
            (seg,) = col.get_segments()
            out.setdefault(col.get_label(), []).append((seg[0][0], seg[1][0], seg[0][1]))
    return {k: sorted(v) for k, v in out.items()}


def test_localisation_bars_are_means_over_seeds_with_the_references() -> None:
    fig = viz.draw_localisation(_frame(), "energy", title="energy in the box")
    assert len(fig.axes) == 4  # (HRN, SARB) x (object, part)
    hrn_obj, hrn_part, sarb_obj, sarb_part = fig.axes
    assert [ax.get_title() for ax in fig.axes] == [
        "HRN: object box", "HRN: part box", "SARB: object box", "SARB: part box"]
    bars = _bars(hrn_obj)
    assert set(bars) == {"gradcam", "scorecam"}
    # means over seeds 0, 1, 2 of base + 0.1 seed: base + 0.1; bars 0.4 wide around each level
    assert bars["gradcam"] == [pytest.approx((-0.2, 0.6)), pytest.approx((0.8, 0.7))]
    assert bars["scorecam"] == [pytest.approx((0.2, 0.4)), pytest.approx((1.2, 0.3))]
    assert _half_errors(hrn_obj) == pytest.approx([0.1] * 4)  # sample std of 0, .1, .2
    assert _bars(hrn_part)["gradcam"] == [pytest.approx((-0.2, 0.5)), pytest.approx((0.8, 0.6))]
    refs = _references(hrn_obj)
    assert refs["random (reference)"] == [pytest.approx((-0.45, 0.45, 0.35)),
                                          pytest.approx((0.55, 1.45, 0.35))]
    assert refs["centre (reference)"] == [pytest.approx((-0.45, 0.45, 0.45)),
                                          pytest.approx((0.55, 1.45, 0.5))]
    assert [t.get_text() for t in hrn_obj.get_xticklabels()] == ["order", "species"]
    # SARB: one level, Grad-CAM only, the random reference only, no part boxes
    assert _bars(sarb_obj) == {"gradcam": [pytest.approx((0.0, 0.8))]}
    assert _half_errors(sarb_obj) == pytest.approx([np.std([0.7, 0.9], ddof=1)])
    assert set(_references(sarb_obj)) == {"random (reference)"}
    assert not sarb_part.containers and [t.get_text() for t in sarb_part.texts] == [
        "no part boxes"]
    assert hrn_obj.get_ylim() == (0.0, 1.0) and "energy" in hrn_obj.get_ylabel()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "gradcam", "scorecam", "random (reference)", "centre (reference)"]
    colours = {c.get_label(): to_hex(c.patches[0].get_facecolor()) for c in hrn_obj.containers
               if isinstance(c, BarContainer)}
    assert colours == {"gradcam": level_color(0), "scorecam": level_color(1)}
    assert fig.get_suptitle() == "energy in the box"
    assert [t.get_text() for t in hrn_obj.get_yticklabels()]  # the shared axis keeps its ticks
    _readable(fig)


def test_localisation_other_metric_references_methods_and_level_column() -> None:
    frame = _frame()
    fig = viz.draw_localisation(frame, "pointing", references=("centre",), methods=["scorecam"])
    assert len(fig.axes) == 2  # only HRN has pointing rows
    bars = _bars(fig.axes[0])
    # random is no reference now, so it is a method; only the chosen one is drawn
    assert set(bars) == {"scorecam"}
    assert bars["scorecam"] == [pytest.approx((0.0, 0.45)), pytest.approx((1.0, 0.35))]
    assert set(_references(fig.axes[0])) == {"centre (reference)"}
    assert "pointing" in fig.axes[0].get_ylabel()
    fig = viz.draw_localisation(frame.rename(columns={"level": "unit"}), by="unit",
                                references="random", ylim=None)
    assert set(_bars(fig.axes[0])) == {"gradcam", "scorecam", "centre"}
    _readable(fig)


def test_localisation_leaves_out_nan_values_and_one_seed_has_no_spread() -> None:
    frame = _frame()
    frame.loc[(frame.family == "SARB") & (frame.method == "gradcam") & (frame.seed == 1),
              "value"] = NAN
    fig = viz.draw_localisation(frame)
    sarb_obj = fig.axes[2]
    assert _bars(sarb_obj) == {"gradcam": [pytest.approx((0.0, 0.7))]}
    assert _half_errors(sarb_obj) == [0.0]


@pytest.mark.parametrize(("change", "kwargs", "match"), [
    (lambda f: f.drop(columns="seed"), {},
     r"frame needs rows with the columns .* lacks \['seed'\]"),
    (lambda f: f.rename(columns={"level": "unit"}), {},
     r"frame needs .* lacks \['level'\] .* pass by='unit'"),
    (lambda f: f.iloc[:0], {}, "frame needs rows with the columns"),
    (lambda f: f, {"metric": "accuracy"},
     r"unknown metric='accuracy'; choose one of \['energy', 'pointing'\]"),
    (lambda f: f.assign(value=f.value * 100), {},
     r"frame holds the energy value 50, outside \[0, 1\]"),
    (lambda f: pd.concat([f, f.iloc[:1]]), {},
     "frame holds 2 rows for the same family, level, method, box and seed"),
    (lambda f: f[f.method.isin(["random", "centre"])], {},
     "the frame holds only the reference methods"),
    (lambda f: f, {"methods": ["gradcam", "lime"]}, "unknown methods='lime'"),
    (lambda f: f, {"methods": ["random"]}, "unknown methods='random'"),
])
def test_localisation_bad_input(change, kwargs, match) -> None:
    with pytest.raises(ValueError, match=f"^draw_localisation: {match}"):
        viz.draw_localisation(change(_frame()), **kwargs)


# ------------------------------------------------------------------ by hand vs package
def test_hand_vs_package_shows_both_and_their_difference(images) -> None:
    hand = _blob(10, 12, 4)
    package = hand.clone()
    package[3, 4] = (package[3, 4] + 0.25).clamp(max=1.0)
    diff = float((package - hand).abs().max())
    fig = viz.draw_hand_vs_package(images[0], hand, package.numpy())
    assert len(fig.axes) == 4 + 2  # four panels, two colour bars
    image, by_hand, theirs, difference = fig.axes[:4]
    assert [image.get_title(), by_hand.get_title(), theirs.get_title()] == [
        "image", "by hand", "grad-cam package"]
    assert difference.get_title() == f"|difference|\nmax {diff:.2g}"
    assert np.allclose(by_hand.images[0].get_array(), viz.overlay(images[0], hand))
    assert np.allclose(theirs.images[0].get_array(), viz.overlay(images[0], package))
    shown = difference.images[0]
    assert np.allclose(shown.get_array(), (package - hand).abs().numpy(), atol=1e-7)
    assert shown.get_clim() == (0.0, 1.0)
    fig = viz.draw_hand_vs_package(images[0], hand, hand, names=("mine", "theirs"))
    assert fig.axes[3].get_title() == "|difference|\nmax 0"
    assert [ax.get_title() for ax in fig.axes[1:3]] == ["mine", "theirs"]
    _readable(fig)


@pytest.mark.parametrize(("change", "match"), [
    ({"hand": torch.rand(S, S + 1)}, r"hand has shape \(24, 25\); give \(H, W\) of the image"),
    ({"package": torch.rand(2, S, S)}, r"package has shape \(2, 24, 24\)"),
    ({"package": torch.full((S, S), 1.5)}, r"package has values in \[1.5, 1.5\]"),
    ({"names": ("only one",)}, "names holds 1 strings for 2"),
    ({"image": torch.rand(S, S)}, r"image must be one image of shape \(3, H, W\)"),
])
def test_hand_vs_package_bad_input(images, change, match) -> None:
    kwargs = {"image": images[0], "hand": torch.rand(S, S), "package": torch.rand(S, S), **change}
    with pytest.raises(ValueError, match=f"^draw_hand_vs_package: {match}"):
        viz.draw_hand_vs_package(**kwargs)


# ------------------------------------------------------------------ explorer
def test_cam_explorer_asks_for_the_picked_map_and_redraws(images, boxes) -> None:
    w = pytest.importorskip("ipywidgets")
    from hmglib.widgets import cam_explorer

    calls = []
    levels, methods = ["order", "family", "species"], ["gradcam", "scorecam"]

    def compute(index: int, level: str, method: str) -> torch.Tensor:
        calls.append((index, level, method))
        sigma = 2.0 + 3 * levels.index(level)
        return _blob(6 + 12 * index, 6 + 10 * methods.index(method), sigma)  # (S, S)

    box = cam_explorer(images, compute, levels, methods, boxes, titles=["cat", "dog"])
    row, image = box.children
    pick, level, method = row.children
    assert isinstance(image, w.Image) and bytes(image.value).startswith(b"\x89PNG")
    assert calls == [(0, "order", "gradcam")]
    assert [o[0] for o in pick.options] == ["0: cat", "1: dog"]
    assert list(level.options) == levels and list(method.options) == methods
    for widget, value, call in ((pick, 1, (1, "order", "gradcam")),
                                (level, "species", (1, "species", "gradcam")),
                                (method, "scorecam", (1, "species", "scorecam"))):
        before = bytes(image.value)
        widget.value = value
        assert calls[-1] == call
        assert bytes(image.value) != before
    assert len(calls) == 4  # once per change
    started = cam_explorer(images, compute, ["order"], ["gradcam"], index=1)
    assert started.children[0].children[0].value == 1 and calls[-1] == (1, "order", "gradcam")


def test_cam_explorer_bad_input(images) -> None:
    pytest.importorskip("ipywidgets")
    from hmglib.widgets import cam_explorer

    def compute(index: int, level: str, method: str) -> torch.Tensor:
        return centre_prior(1, S, S)[0]

    with pytest.raises(ValueError, match="^cam_explorer: levels is empty"):
        cam_explorer(images, compute, [], ["gradcam"])
    with pytest.raises(ValueError, match="^cam_explorer: methods is empty"):
        cam_explorer(images, compute, ["order"], [])
    with pytest.raises(ValueError, match=r"^cam_explorer: levels=\['a', 'a'\] repeats a name"):
        cam_explorer(images, compute, ["a", "a"], ["gradcam"])
    with pytest.raises(ValueError, match="^cam_explorer: index=2 is not an image of the batch "
                                         "of 2; give an int in 0..1"):
        cam_explorer(images, compute, ["order"], ["gradcam"], index=2)
    with pytest.raises(ValueError, match="^cam_explorer: index=-1 must be an int >= 0"):
        cam_explorer(images, compute, ["order"], ["gradcam"], index=-1)
    with pytest.raises(ValueError, match="^cam_explorer: titles must hold one string per image"):
        cam_explorer(images, compute, ["order"], ["gradcam"], titles=["cat"])
    with pytest.raises(ValueError, match=r"^cam_explorer: boxes\['object'\] has shape \(3, 4\)"):
        cam_explorer(images, compute, ["order"], ["gradcam"], boxes={"object": torch.zeros(3, 4)})
    with pytest.raises(ValueError, match=r"^cam_explorer: images must be a non-empty batch"):
        cam_explorer(images[0], compute, ["order"], ["gradcam"])
    with pytest.raises(TypeError, match="^cam_explorer: compute must be a function"):
        cam_explorer(images, "maps", ["order"], ["gradcam"])
    with pytest.raises(ValueError, match=r"^cam_explorer: compute\(0, 'order', 'gradcam'\) "
                                         r"returned shape \(12, 12\)"):
        cam_explorer(images, lambda i, lv, m: torch.rand(12, 12), ["order"], ["gradcam"])
    with pytest.raises(ValueError, match=r"^draw_cams: maps\['order, gradcam'\] has values"):
        cam_explorer(images, lambda i, lv, m: torch.full((S, S), 4.0), ["order"], ["gradcam"])
