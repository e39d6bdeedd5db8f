"""SARB's representations and blends drawn (hmglib.viz.blending): per-class
attention over the image, blended targets, category features and prototypes in
two dimensions, per-step losses; and the relabel curves' x-axis label."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from hmglib import viz
from hmglib.viz.colors import BLEND_COLOR, PARTIAL_COLORS

NAMES = ["cat", "dog", "car", "bus"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _readable(fig: Figure) -> None:
    """At most the page's width, every text at 9 pt or more as shown there."""
    assert fig.get_figwidth() <= viz.PAGE_WIDTH_IN + 1e-9
    assert not viz.unreadable_text(fig, min_pt=9)


def _rects(ax) -> list[tuple[float, float, float, float]]:
    """The rectangles drawn in ``ax`` as pixel ``xyxy``."""
    out = []
    for p in ax.patches:
        if isinstance(p, Rectangle):
            x, y = p.get_xy()
            out.append((x, y, x + p.get_width(), y + p.get_height()))
    return out


def _bilinear(m: np.ndarray, size: int) -> np.ndarray:
    """``(h, w)`` upsampled to ``(size, size)`` by hand: output pixel ``i``'s centre
    ``i + 1/2`` sits at ``(i + 1/2) h / size - 1/2`` in the map's pixels (clamped)."""
    h, w = m.shape
    out = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            y = min(max((i + 0.5) * h / size - 0.5, 0.0), h - 1)
            x = min(max((j + 0.5) * w / size - 0.5, 0.0), w - 1)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            dy, dx = y - y0, x - x0
            out[i, j] = ((1 - dy) * (1 - dx) * m[y0, x0] + (1 - dy) * dx * m[y0, x1]
                         + dy * (1 - dx) * m[y1, x0] + dy * dx * m[y1, x1])
    return out


@pytest.fixture
def image() -> torch.Tensor:
    return torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))  # (3, S, S)


@pytest.fixture
def attention() -> torch.Tensor:
    logits = torch.randn(4, 4, 4, generator=torch.Generator().manual_seed(1))  # (C, h, w)
    return logits.flatten(1).softmax(1).view_as(logits)


# ----------------------------------------------------------- class attention
def test_class_attention_panels_heat_maps_and_boxes(image, attention) -> None:
    labels = torch.tensor([0, 1, -1, 1])
    boxes = torch.tensor([[1.0, 2.0, 9.0, 12.0], [4.0, 4.0, 15.5, 16.0], [0.0, 0.0, 3.0, 3.0]])
    fig = viz.draw_class_attention(image, attention, NAMES, labels=labels, boxes=boxes,
                                   box_labels=[1, 3, 1])
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1 + 4 + 1  # the image, four classes, the colour bar
    titles = [ax.get_title() for ax in fig.axes[:5]]
    # known positives first (dog, bus), then the others in order
    assert titles == ["image", "dog\nknown +", "bus\nknown +", "cat\nunknown", "car\nknown −"]
    assert fig.axes[5].get_ylabel() == "attention / its max"
    for ax, c in zip(fig.axes[1:5], [1, 3, 0, 2], strict=True):
        picture, heat = ax.images
        assert picture.get_array().shape == (16, 16, 3)
        want = _bilinear(attention[c].numpy().astype(np.float64), 16)
        assert heat.get_array().shape == (16, 16)  # upsampled to S x S
        assert np.allclose(heat.get_array(), want / want.max(), atol=1e-6)
        assert heat.get_extent() == [0, 16, 16, 0]  # over the image's pixels
    assert sorted(_rects(fig.axes[0])) == sorted(
        [(1.0, 2.0, 9.0, 12.0), (4.0, 4.0, 15.5, 16.0), (0.0, 0.0, 3.0, 3.0)])
    assert sorted(_rects(fig.axes[1])) == [(0.0, 0.0, 3.0, 3.0), (1.0, 2.0, 9.0, 12.0)]  # dog
    assert _rects(fig.axes[2]) == [(4.0, 4.0, 15.5, 16.0)]  # bus
    assert _rects(fig.axes[3]) == [] and _rects(fig.axes[4]) == []
    _readable(fig)


def test_class_attention_states_and_chosen_classes(image, attention) -> None:
    fig = viz.draw_class_attention(image.numpy(), attention.numpy(), NAMES,
                                   labels=np.array([1, 0, 0, 1]))
    assert [ax.get_title() for ax in fig.axes[1:5]] == [
        "cat\npresent", "bus\npresent", "dog\nabsent", "car\nabsent"]
    fig = viz.draw_class_attention(image, attention, NAMES, labels=[1, 0, 0, 1], partial=True)
    assert fig.axes[3].get_title() == "dog\nunknown"
    fig = viz.draw_class_attention(image, attention, NAMES, classes=[2, 0])
    assert len(fig.axes) == 3 + 1
    assert [ax.get_title() for ax in fig.axes[:3]] == ["image", "car", "cat"]
    _readable(fig)


def test_class_attention_shows_at_most_max_classes() -> None:
    logits = torch.randn(9, 3, 3, generator=torch.Generator().manual_seed(2))  # (C, h, w)
    att = logits.flatten(1).softmax(1).view_as(logits)
    names = [f"a rather long class name {c}" for c in range(9)]
    labels = torch.tensor([0, -1, 0, 0, 0, 0, 0, 1, 0])
    fig = viz.draw_class_attention(torch.rand(3, 24, 24), att, names, labels=labels)
    assert len(fig.axes) == 1 + 6 + 1  # max_classes=6
    assert fig.axes[1].get_title().startswith("a rather long")
    assert fig.axes[1].get_title().endswith("7\nknown +")
    assert fig.axes[2].get_title().endswith("0\nunknown")
    _readable(fig)
    fig = viz.draw_class_attention(torch.rand(3, 24, 24), att, names, max_classes=2)
    assert len(fig.axes) == 1 + 2 + 1


_NEGATIVE = torch.full((4, 4, 4), 1 / 16)  # (C, h, w)
_NEGATIVE[1, 0, 0] = -0.1


@pytest.mark.parametrize(("change", "match"), [
    ({"image": torch.rand(1, 3, 16, 16)}, r"image must be one image of shape \(3, H, W\)"),
    ({"image": torch.full((3, 16, 16), 1.5)}, r"image has values in \[1.5, 1.5\], outside"),
    ({"attention": torch.full((4, 16), 1 / 16)}, r"attention must have shape \(C, h, w\)"),
    ({"attention": torch.full((3, 4, 4), 1 / 16)}, "attention holds 3 maps for 4 class_names"),
    ({"attention": torch.full((4, 4, 4), 1 / 8)}, r"attention\[0\] sums to 2 over its h·w"),
    ({"attention": _NEGATIVE}, r"attention has a negative value \(-0.1\)"),
    ({"attention": torch.full((4, 4, 4), float("nan"))}, "attention holds nan or inf"),
    ({"class_names": "cat"}, "class_names is one string"),
    ({"labels": [1, 0, -1]}, "labels holds 3 values for 4 classes"),
    ({"labels": [1, 0, 2, 0]}, r"labels holds 2; give partial labels in \{1, 0, -1\}"),
    ({"labels": [1, 0, -1, 0], "partial": False}, "labels holds -1 but partial=False"),
    ({"boxes": [[0.0, 0, 4, 4]]}, "boxes without box_labels"),
    ({"box_labels": [0]}, "box_labels without boxes"),
    ({"boxes": [[0.0, 0, 4, 4]], "box_labels": [0, 1]},
     "box_labels holds 2 class ids for 1 rows"),
    ({"boxes": [[0.0, 0, 4, 4]], "box_labels": [4]}, "box_labels holds the class id 4"),
    ({"boxes": [[5.0, 0, 4, 4]], "box_labels": [0]}, r"boxes\[0\] = .* is not xyxy"),
    ({"boxes": [[20.0, 20, 24, 24]], "box_labels": [0]},
     r"boxes\[0\] = .* lies outside the 16 x 16 image"),
    ({"classes": [0, 7]}, "classes holds the class id 7"),
    ({"classes": [1, 1]}, r"classes=\[1, 1\] repeats a class"),
    ({"classes": []}, "classes is empty"),
    ({"classes": [0, 1, 2], "max_classes": 2}, "classes holds 3 classes but max_classes=2"),
    ({"max_classes": 0}, "max_classes=0 must be an int >= 1"),
])
def test_class_attention_bad_input(image, attention, change, match) -> None:
    kwargs = {"image": image, "attention": attention, "class_names": NAMES, **change}
    with pytest.raises(ValueError, match=f"^draw_class_attention: {match}"):
        viz.draw_class_attention(**kwargs)


# ------------------------------------------------------------- blend targets
@pytest.fixture
def targets() -> dict[str, torch.Tensor]:
    partial = torch.tensor([[1.0, 0, -1, 0], [0, 1, 0, -1], [1, 1, 0, 0]])  # (B, C)
    ilrb = partial.clone()
    ilrb[0, 1], ilrb[2, 2] = 0.5, 0.25
    plrb = partial.clone()
    plrb[1, 0] = 0.7
    return {"partial labels": partial, "ILRB": ilrb, "PLRB": plrb}


def test_blend_targets_colour_and_write_the_soft_entries(targets) -> None:
    fig = viz.draw_blend_targets(targets, NAMES)
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["partial labels (0 soft)", "ILRB (2 soft)",
                                                   "PLRB (1 soft)"]
    ilrb = fig.axes[1]
    written = {(t.get_position(), t.get_text()) for t in ilrb.texts}
    assert written == {((1, 0), "0.50"), ((2, 2), "0.25")}  # (column, row), the value
    assert "0.50" in [t.get_text() for t in ilrb.texts]
    assert [t.get_text() for t in fig.axes[2].texts] == ["0.70"]
    assert len(fig.axes[0].texts) == 0
    rgb = ilrb.images[0].get_array()  # (B, C, 3)
    assert rgb.shape == (3, 4, 3)
    assert to_hex(rgb[0, 1]) == BLEND_COLOR and to_hex(rgb[2, 2]) == BLEND_COLOR
    assert to_hex(rgb[0, 2]) == PARTIAL_COLORS[0]  # known negative
    assert to_hex(rgb[0, 3]) == to_hex(to_rgb(PARTIAL_COLORS[1]))  # unknown
    assert to_hex(rgb[0, 0]) == PARTIAL_COLORS[2]  # known positive
    assert [t.get_text() for t in ilrb.get_xticklabels()] == NAMES
    assert [t.get_text() for t in fig.legends[0].get_texts()][-1].startswith("blended")
    _readable(fig)


def test_blend_targets_rows_and_many_classes() -> None:
    y = np.zeros((12, 4))
    y[10, 0] = 0.5  # beyond max_rows: not shown, not counted
    y[1, 3] = 0.5
    fig = viz.draw_blend_targets({"batch": y}, max_rows=8)
    assert fig.axes[0].images[0].get_array().shape == (8, 4, 3)
    assert [t.get_text() for t in fig.axes[0].texts] == ["0.50"]
    assert fig.axes[0].get_title() == "batch (1 soft)" and fig.axes[0].get_xlabel() == "class"
    wide = np.zeros((4, 30))
    wide[0, 29] = 0.5
    fig = viz.draw_blend_targets({"partial labels": np.zeros((4, 30)), "ILRB": wide},
                                 [f"class {c}" for c in range(30)])
    (text,) = fig.axes[1].texts
    assert text.get_text() == "0.50" and text.get_rotation() == 90  # written up the cell
    _readable(fig)


@pytest.mark.parametrize(("args", "kwargs", "match"), [
    (({},), {}, r"panels must be a non-empty dict"),
    ((np.zeros((2, 3)),), {}, r"panels must be a non-empty dict"),
    (({"a": np.zeros(3)},), {}, r"panels\['a'\] must have shape \(B, C\)"),
    (({"a": np.zeros((0, 3))},), {}, r"panels\['a'\] has shape \(0, 3\)"),
    (({"a": [[0, 1.5]]},), {}, r"panels\['a'\]\[0, 1\] = 1.5; targets are -1"),
    (({"a": [[0, -0.5]]},), {}, r"panels\['a'\]\[0, 1\] = -0.5; targets are -1"),
    (({"a": [[0, float("nan")]]},), {}, r"panels\['a'\] holds nan or inf"),
    (({"a": np.zeros((2, 3)), "b": np.zeros((2, 4))},), {},
     r"panels\['b'\] has 4 classes but panels\['a'\] has 3"),
    (({"a": np.zeros((2, 3))}, ["x", "y"]), {}, "class_names holds 2 names for 3 classes"),
    (({"a": np.zeros((2, 3))},), {"max_rows": 0}, "max_rows=0 must be an int >= 1"),
    (({"a": np.zeros((2, 60))},), {}, r"the targets hold 60 classes; at most 37 fit"),
])
def test_blend_targets_bad_input(args, kwargs, match) -> None:
    with pytest.raises(ValueError, match=f"^draw_blend_targets: {match}"):
        viz.draw_blend_targets(*args, **kwargs)


# -------------------------------------------------------- feature projection
@pytest.fixture
def features() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    labels = torch.arange(3).repeat_interleave(8)  # (N,)
    feats = torch.randn(24, 5, generator=g) + 3 * labels[:, None] * torch.tensor(
        [1.0, -0.5, 0.2, 0.0, 0.3])  # (N, D)
    proto_labels = torch.tensor([0, 0, 1, 2])  # (P,)
    protos = torch.stack([feats[labels == c].mean(0) for c in proto_labels.tolist()])  # (P, D)
    return feats, labels, protos + 0.1, proto_labels


def test_feature_projection_pca_variance_and_prototypes(features) -> None:
    from sklearn.decomposition import PCA

    feats, labels, protos, proto_labels = features
    fig = viz.draw_feature_projection(feats, labels, prototypes=protos,
                                      prototype_labels=proto_labels,
                                      class_names=["cat", "dog", "car"])
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    pca = PCA(n_components=2).fit(feats.numpy().astype(np.float64))
    for label, share in zip((ax.get_xlabel(), ax.get_ylabel()), pca.explained_variance_ratio_,
                            strict=True):
        assert float(re.search(r"\(([\d.]+) % of variance\)", label).group(1)) == pytest.approx(
            100 * share, abs=0.05)
    by_label = {c.get_label(): c for c in ax.collections}
    assert set(by_label) == {"cat", "dog", "car", "prototypes"}
    assert len(by_label["dog"].get_offsets()) == 8
    want = np.abs(pca.transform(feats.numpy().astype(np.float64)[labels.numpy() == 1]))
    assert np.allclose(np.abs(by_label["dog"].get_offsets()), want, atol=1e-6)  # up to sign
    stars = by_label["prototypes"]
    assert len(stars.get_offsets()) == 4  # one marker per prototype
    assert np.allclose(np.abs(stars.get_offsets()),
                       np.abs(pca.transform(protos.numpy().astype(np.float64))), atol=1e-6)
    assert all(to_hex(c) == "#000000" for c in stars.get_edgecolor())
    assert stars.get_sizes()[0] > 4 * by_label["cat"].get_sizes()[0]  # large markers
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["cat", "dog", "car", "prototypes"]
    assert "PCA" in ax.get_title()
    _readable(fig)


def test_feature_projection_tsne_is_seeded_and_fitted_on_all_points(features) -> None:
    feats, labels, protos, proto_labels = features
    kwargs = {"prototypes": protos.numpy(), "prototype_labels": proto_labels.numpy(),
              "method": "tsne", "seed": 5}
    one = viz.draw_feature_projection(feats.numpy(), labels.numpy(), **kwargs)
    two = viz.draw_feature_projection(feats.numpy(), labels.numpy(), **kwargs)
    offsets = [[c.get_offsets().copy() for c in f.axes[0].collections] for f in (one, two)]
    for a, b in zip(*offsets, strict=True):
        assert np.array_equal(a, b)
    ax = one.axes[0]
    assert "together" in ax.get_title() and ax.get_xlabel() == "t-SNE 1"
    assert len(ax.collections[-1].get_offsets()) == 4
    assert [t.get_text() for t in ax.get_legend().get_texts()][:3] == [
        "class 0", "class 1", "class 2"]
    fig = viz.draw_feature_projection(feats, labels, method="tsne")
    assert len(fig.axes[0].collections) == 3 and "features" in fig.axes[0].get_title()
    _readable(one)


@pytest.mark.parametrize(("change", "match"), [
    ({"features": np.zeros(24)}, r"features must have shape \(N, D\)"),
    ({"features": np.full((24, 5), np.nan)}, "features holds nan or inf"),
    ({"labels": np.zeros(23)}, "labels holds 23 class ids for 24 rows"),
    ({"labels": np.full(24, 0.5)}, "labels must be whole class ids, got 0.5"),
    ({"labels": np.full(24, -1)}, "labels holds the class id -1"),
    ({"class_names": ["cat", "dog"]}, "labels holds the class id 2; class ids are >= 0, < 2"),
    ({"prototype_labels": None}, "prototypes without prototype_labels"),
    ({"prototypes": None}, "prototype_labels without prototypes"),
    ({"prototypes": np.zeros((4, 3))}, "prototypes have 3 dimensions but features have 5"),
    ({"prototype_labels": [0, 1]}, "prototype_labels holds 2 class ids for 4 rows"),
    ({"method": "umap"}, r"unknown method='umap'; choose one of \['pca', 'tsne'\]"),
    ({"seed": -1}, "seed=-1 must be an int >= 0"),
])
def test_feature_projection_bad_input(features, change, match) -> None:
    feats, labels, protos, proto_labels = features
    kwargs = {"features": feats, "labels": labels, "prototypes": protos,
              "prototype_labels": proto_labels, **change}
    with pytest.raises(ValueError, match=f"^draw_feature_projection: {match}"):
        viz.draw_feature_projection(**kwargs)


def test_feature_projection_too_few_points() -> None:
    with pytest.raises(ValueError, match="PCA onto two axes needs at least 2 features of at "
                                         r"least 2 dimensions, got features of shape \(6, 1\)"):
        viz.draw_feature_projection(np.zeros((6, 1)), np.zeros(6))
    with pytest.raises(ValueError, match="t-SNE needs at least 5 points"):
        viz.draw_feature_projection(np.eye(4), np.arange(4), method="tsne")


# ---------------------------------------------------------------- step losses
def test_step_losses_moving_mean_and_std_by_hand() -> None:
    fig = viz.draw_step_losses({"a": torch.tensor([1.0, 3.0, 2.0, 6.0, 4.0]),
                                "b": np.array([2.0, 2.0, 2.0])}, window=2)
    assert len(fig.axes) == 2
    loss, std = fig.axes
    lines = {ln.get_label(): ln for ln in loss.lines}
    assert set(lines) == {"a (per step)", "a", "b (per step)", "b"}
    assert list(lines["a (per step)"].get_xdata()) == [1, 2, 3, 4, 5]
    assert list(lines["a"].get_xdata()) == [2, 3, 4, 5]
    assert np.allclose(lines["a"].get_ydata(), [2.0, 2.5, 4.0, 5.0])
    assert lines["a"].get_linewidth() > lines["a (per step)"].get_linewidth()
    spread = {ln.get_label(): ln for ln in std.lines}
    assert list(spread["a"].get_xdata()) == [2, 3, 4, 5]
    assert np.allclose(spread["a"].get_ydata(), [1.0, 0.5, 2.0, 1.0])  # |x_t - x_{t-1}| / 2
    assert np.allclose(spread["b"].get_ydata(), [0.0, 0.0])
    assert spread["a"].get_color() != spread["b"].get_color()
    assert loss.get_ylabel() == "training loss" and std.get_ylabel() == "moving std"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["a", "b"]
    fig = viz.draw_step_losses({"a": [1.0, 3.0, 2.0, 6.0]}, window=3, ylabel="BCE")
    _, std = fig.axes
    assert np.allclose(std.lines[0].get_ydata(), [np.sqrt(2 / 3), np.sqrt(26 / 9)])
    assert fig.axes[0].get_ylabel() == "BCE" and "3" in std.get_title()
    _readable(fig)


@pytest.mark.parametrize(("series", "kwargs", "match"), [
    ({"a": [1.0, 2.0]}, {"window": 3},
     r"series\['a'\] has 2 steps, fewer than window=3; pass a window of at most 2"),
    ({"a": [1.0, float("nan"), 2.0]}, {"window": 2}, r"series\['a'\] holds nan or inf"),
    ({"a": [1.0, 2.0]}, {"window": 0}, "window=0 must be an int >= 1"),
    ({}, {}, "series must be a non-empty dict"),
    ({"a": [[1.0, 2.0]]}, {"window": 1}, r"series\['a'\] must have shape \(T,\)"),
])
def test_step_losses_bad_input(series, kwargs, match) -> None:
    with pytest.raises(ValueError, match=f"^draw_step_losses: {match}"):
        viz.draw_step_losses(series, **kwargs)


# ------------------------------------------------- relabel curves' x label
def test_relabel_curves_take_an_x_label() -> None:
    panels = {"mAP": {"SSGRL": [70, 75, 78], "SARB": [72, 77, 80]},
              "CF1": {"SSGRL": [60, 65, 70], "SARB": [62, 68, 71]}}
    fig = viz.draw_relabel_curves([0.1, 0.5, 0.9], panels, xlabel="known labels (%)")
    assert [ax.get_xlabel() for ax in fig.axes] == ["known labels (%)"] * 2
    assert list(fig.axes[0].lines[0].get_xdata()) == [10, 50, 90]
    default = viz.draw_relabel_curves([0.1, 0.5, 0.9], panels)
    assert default.axes[0].get_xlabel() == "relabelled to the parent (%)"
    _readable(fig)
