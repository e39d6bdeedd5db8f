"""The synthetic worlds: determinism, cues, boxes, co-occurrence and bad input."""

from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hmglib.data import HierShapes, MultiShapes, empirical_cooccurrence, hier_shapes_tree
from hmglib.data.synthetic import class_cues, render
from hmglib.data.synthetic.render import (
    MARK_CENTER,
    MARK_HALF,
    MARKINGS,
    SILHOUETTES,
    _marking_mask,
    _silhouette_mask,
)


# ------------------------------------------------------------------ HierShapes
def test_same_seed_gives_identical_bytes_and_other_seeds_differ() -> None:
    a = HierShapes(samples_per_class=2, seed=3)
    b = HierShapes(samples_per_class=2, seed=3)
    c = HierShapes(samples_per_class=2, seed=4)
    for i in (0, 7, 53):
        xa, xb, xc = a[i][0], b[i][0], c[i][0]
        assert xa.numpy().tobytes() == xb.numpy().tobytes()
        assert not torch.equal(xa, xc)
        assert torch.equal(a.boxes(i).object, b.boxes(i).object)


def test_images_do_not_depend_on_access_order_or_workers() -> None:
    ds = HierShapes(samples_per_class=1, image_size=32)
    fresh = [ds[i][0] for i in range(len(ds))]
    order = np.random.default_rng(0).permutation(len(ds))
    shuffled = {int(i): HierShapes(samples_per_class=1, image_size=32)[int(i)][0] for i in order}
    assert all(torch.equal(fresh[i], shuffled[i]) for i in range(len(ds)))
    loader = DataLoader(ds, batch_size=5, num_workers=2, shuffle=False)
    batched = torch.cat([x for x, _ in loader])
    assert torch.equal(batched, torch.stack(fresh))


def test_splits_share_no_image() -> None:
    images = {
        split: {HierShapes(split, samples_per_class=4, image_size=16)[i][0].numpy().tobytes()
                for i in range(108)}
        for split in ("train", "val", "test")
    }
    assert len(images["train"]) == 108
    assert not images["train"] & images["val"]
    assert not images["train"] & images["test"]
    assert not images["val"] & images["test"]


def test_items_shapes_ranges_and_targets() -> None:
    ds = HierShapes(samples_per_class=3, image_size=40)
    assert len(ds) == 81
    x, y = ds[5]
    assert x.shape == (3, 40, 40) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert y == int(ds.targets[5]) and y in ds.tree.leaves.tolist()
    # sample i is species i % 27: every prefix is balanced, all leaves present
    leaves = ds.tree.to_level_index(ds.targets)
    assert torch.equal(leaves, torch.arange(81) % 27)
    assert torch.equal(ds[-1][0], ds[80][0])


def test_default_tree_and_branching() -> None:
    tree = HierShapes().tree
    assert tree.level_names == ("order", "family", "species")
    assert tree.level_sizes == (3, 9, 27)
    assert tree.names[:3] == ["ellipse", "triangle", "diamond"]
    assert tree.path_names(tree.index("green triangle + bar")) == [
        "triangle", "green triangle", "green triangle + bar"]
    small = hier_shapes_tree((2, 3, 4))
    assert small.level_sizes == (2, 6, 24)
    ds = HierShapes(samples_per_class=1, branching=(6, 6, 6), image_size=16)
    assert len(ds) == 216 and ds.tree.level_sizes == (6, 36, 216)


def test_transforms_are_applied() -> None:
    ds = HierShapes(samples_per_class=1, transform=lambda x: x[:1] * 0 + 7,
                    target_transform=lambda t: t - 12)
    x, y = ds[2]
    assert x.shape == (1, 64, 64) and float(x.mean()) == 7.0
    assert y == 2  # leaf 2 is node 12 + 2


def test_boxes_inside_canvas_part_inside_object_and_part_size() -> None:
    ds = HierShapes(samples_per_class=12)
    shares = []
    for i in range(len(ds)):
        obj, part = ds.boxes(i)
        assert obj.shape == (4,) and part.shape == (4,)
        assert 0 <= obj[0] < obj[2] <= 64 and 0 <= obj[1] < obj[3] <= 64
        assert obj[0] <= part[0] < part[2] <= obj[2] and obj[1] <= part[1] < part[3] <= obj[3]
        shares.append(float((part[2] - part[0]) * (part[3] - part[1])) / 64**2)
    assert 0.02 <= min(shares) and max(shares) <= 0.06  # the part is 2-6 % of the image
    small = HierShapes(samples_per_class=4, object_scale=0.3, clutter=5)
    for i in range(len(small)):
        obj, part = small.boxes(i)
        assert 0 <= obj[0] and obj[2] <= 64 and 0 <= obj[1] and obj[3] <= 64
        assert float((obj[2] - obj[0]) * (obj[3] - obj[1])) < 0.16 * 64**2


def test_the_marking_is_dark_ink_inside_the_part_box() -> None:
    ds = HierShapes(samples_per_class=2, clutter=0)
    for i in range(0, len(ds), 5):
        x, _ = ds[i]
        part = ds.boxes(i).part
        c0, r0 = int(math.ceil(part[0])), int(math.ceil(part[1]))
        c1, r1 = int(part[2]), int(part[3])
        inside = x[:, r0:r1, c0:c1].amax(dim=0)  # (h, w) brightest channel
        assert float(inside.min()) < 0.3  # some ink
        # ink is darker than 0.17 + noise; backgrounds are >= 0.25 and bodies >= 0.6
        dark = x.amax(dim=0) < 0.12
        ys, xs = torch.nonzero(dark, as_tuple=True)
        near = ((xs >= part[0] - 1) & (xs <= part[2] + 1) & (ys >= part[1] - 1)
                & (ys <= part[3] + 1))
        assert len(xs) > 0 and float(near.float().mean()) > 0.95  # dark pixels: the marking


def test_species_cue_lives_only_in_the_part_box() -> None:
    cv = render.canvas(64)
    bg = np.full(3, 0.5, dtype=np.float32)
    images = []
    for marking in MARKINGS:
        img = render.background(cv, bg, bg, 0.0)
        render.paint_silhouette(img, cv, "triangle", 30.0, 33.0, 18.0, 0.4, render.hsv(120, .8, .8))
        box = render.paint_marking(img, cv, marking, 30.0, 33.0, 18.0, 0.4, render.hsv(0, 0, .1))
        images.append(img)
    diff = np.zeros((64, 64), dtype=bool)
    for img in images[1:]:
        diff |= np.any(img != images[0], axis=0)
    ys, xs = np.nonzero(diff)
    assert len(xs) > 0
    assert xs.min() >= math.floor(box[0]) and xs.max() < math.ceil(box[2])
    assert ys.min() >= math.floor(box[1]) and ys.max() < math.ceil(box[3])
    # every pair of markings differs
    for a in range(len(images)):
        for b in range(a + 1, len(images)):
            assert not np.array_equal(images[a], images[b]), (MARKINGS[a], MARKINGS[b])


def test_family_sets_the_hue_and_order_the_silhouette() -> None:
    ds = HierShapes(samples_per_class=3, clutter=0)
    hue_names = list(render.HUES)
    for i in range(len(ds)):
        p = ds._params(i)
        o, f, _ = ds._cues(p.leaf)
        family = ds.tree.lift(torch.tensor([int(ds.targets[i])]), "family")
        assert ds.tree.names[int(family)].split()[0] == hue_names[f]
        assert ds.tree.path_names(int(ds.targets[i]))[0] == SILHOUETTES[o]
        hue = 360 * colorsys.rgb_to_hsv(*p.body_rgb.tolist())[0]
        gap = abs((hue - render.HUES[hue_names[f]] + 180) % 360 - 180)
        assert gap <= 10.5


@pytest.mark.parametrize("name", SILHOUETTES)
def test_silhouette_boxes_are_exact_and_contain_the_marking(name: str) -> None:
    grid = np.linspace(-1.3, 1.3, 1301, dtype=np.float32)
    u, v = np.meshgrid(grid, grid)  # body coordinates
    rng = np.random.default_rng(0)
    for angle in rng.uniform(0, 2 * np.pi, 5):
        mask = _silhouette_mask(name, u, v)
        # pixel offsets of the inside points for radius 10 at this angle
        c, s = math.cos(angle), math.sin(angle)
        px, py = 10 * (u * c - v * s)[mask], 10 * (u * s + v * c)[mask]
        box = render.silhouette_box(name, 0.0, 0.0, 10.0, float(angle))
        tol = 10 * 2.6 / 1300 * 1.5
        assert box[0] == pytest.approx(px.min(), abs=tol)
        assert box[2] == pytest.approx(px.max(), abs=tol)
        assert box[1] == pytest.approx(py.min(), abs=tol)
        assert box[3] == pytest.approx(py.max(), abs=tol)
    square = np.linspace(-1, 1, 201, dtype=np.float32)
    a, b = np.meshgrid(square, square)
    mu, mv = MARK_CENTER[0] + MARK_HALF * a, MARK_CENTER[1] + MARK_HALF * b
    assert _silhouette_mask(name, mu, mv).all(), f"the marking square leaves the {name}"


def test_markings_have_similar_ink_area() -> None:
    grid = np.linspace(-1, 1, 401, dtype=np.float32)
    a, b = np.meshgrid(grid, grid)
    ink = [float(_marking_mask(m, a, b).mean()) for m in MARKINGS]
    assert min(ink) > 0.3 and max(ink) < 0.7  # told apart by layout, not by amount of ink


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "dev"}, "split"),
        ({"samples_per_class": 0}, "samples_per_class"),
        ({"image_size": 8}, "image_size"),
        ({"object_scale": 0.0}, "object_scale"),
        ({"object_scale": 0.95}, "object_scale"),
        ({"object_scale": True}, "object_scale"),
        ({"clutter": -1}, "clutter"),
        ({"seed": -2}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"branching": (3, 3)}, "branching"),
        ({"branching": (7, 3, 3)}, "branching"),
        ({"branching": (3, 0, 3)}, "branching"),
        ({"cues": "imagenet"}, r"cues='imagenet'.*'book', 'pretraining'"),
        ({"cues": "pretraining", "branching": (4, 3, 3)}, r"\(3, 6, 6\).*'pretraining'"),
    ],
)
def test_hier_shapes_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HierShapes(**kwargs)


def test_cue_sets_name_their_cues_and_draw_their_own_streams() -> None:
    book = HierShapes("train", samples_per_class=2, image_size=32)
    pre = HierShapes("train", samples_per_class=2, image_size=32, cues="pretraining",
                     branching=(3, 6, 6))
    strict = HierShapes("train", samples_per_class=2, image_size=32, cues="pretraining-disjoint")
    assert len(pre.tree.leaves) == 108 and pre.tree.names[0] == "rectangle"
    assert pre.tree.names[pre.tree.leaves[0]] == "red rectangle + spot"
    assert strict.tree.names[strict.tree.leaves[0]] == "cyan rectangle + cross"
    # the pretraining world never repeats a book image's pose, background or noise
    for i in range(4):
        a, b = book._params(i), pre._params(i)
        assert (a.cx, a.cy, a.angle, a.bg_angle) != (b.cx, b.cy, b.angle, b.bg_angle)
    # and the book world's own stream is the one it always had
    rng = np.random.default_rng([0, 0, 0])
    assert book._params(0).angle == pytest.approx(
        (math.pi if rng.random() < 0.5 else 0.0) + (2 * rng.random() - 1) * math.radians(30))


def test_bad_indices() -> None:
    ds = HierShapes(samples_per_class=1)
    with pytest.raises(IndexError, match="outside"):
        ds[27]
    with pytest.raises(IndexError, match="outside"):
        ds.boxes(-28)
    with pytest.raises(TypeError, match="int"):
        ds["3"]
    assert torch.equal(ds[torch.tensor(4)][0], ds[4][0])


# ----------------------------------------------------------------- MultiShapes
def test_multi_shapes_determinism_and_seeds() -> None:
    a, b, c = (MultiShapes(num_images=20, seed=s) for s in (1, 1, 2))
    for i in (0, 9, 19):
        assert a[i][0].numpy().tobytes() == b[i][0].numpy().tobytes()
        assert torch.equal(a[i][1], b[i][1])
    assert any(not torch.equal(a[i][0], c[i][0]) for i in range(20))
    test = MultiShapes("test", num_images=20, seed=1)
    assert all(not torch.equal(a[i][0], test[i][0]) for i in range(20))


def test_multi_shapes_items_boxes_and_targets() -> None:
    ds = MultiShapes(num_images=200)
    targets = ds.targets
    assert targets.shape == (200, 12) and targets.dtype == torch.float32
    counts = []
    for i in range(0, 200, 7):
        x, y = ds[i]
        assert x.shape == (3, 64, 64) and 0 <= float(x.min()) and float(x.max()) <= 1
        assert torch.equal(y, targets[i])
        boxes, labels = ds.boxes(i)
        assert 1 <= len(labels) <= 4 and boxes.shape == (len(labels), 4)
        assert set(labels.tolist()) == set(torch.nonzero(y).flatten().tolist())
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 64).all()
        for j in range(len(boxes)):  # objects never overlap (one grid cell each)
            for k in range(j + 1, len(boxes)):
                bj, bk = boxes[j], boxes[k]
                overlap_x = min(bj[2], bk[2]) - max(bj[0], bk[0])
                overlap_y = min(bj[3], bk[3]) - max(bj[1], bk[1])
                assert overlap_x <= 0 or overlap_y <= 0
        counts.append(len(labels))
    assert set(counts) == {1, 2, 3, 4}
    assert ds.class_names[0] == "red ellipse"
    largest = MultiShapes(num_images=150, object_scale=0.45)
    for i in range(len(largest)):
        boxes = largest.boxes(i).boxes
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 64).all()
        for j in range(len(boxes)):
            for k in range(j + 1, len(boxes)):
                bj, bk = boxes[j], boxes[k]
                assert (min(bj[2], bk[2]) <= max(bj[0], bk[0])
                        or min(bj[3], bk[3]) <= max(bj[1], bk[1]))
    assert ds.groups == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]


def test_cooccurrence_exact_matches_the_samples() -> None:
    ds = MultiShapes(num_images=3000, num_classes=6, group_size=2, cohesion=0.9)
    exact = ds.cooccurrence()
    assert exact.shape == (6, 6)
    assert torch.allclose(exact.diagonal(), torch.ones(6, dtype=torch.float64))
    assert float(exact[0, 1]) > 3 * float(exact[0, 2])  # in-group pairs co-occur more
    sampled = empirical_cooccurrence(ds.targets)
    assert torch.allclose(sampled, exact, atol=0.05)
    # with cohesion = group share, every class is equally likely: no structure
    flat = MultiShapes(num_images=10, num_classes=6, group_size=2, cohesion=2 / 6).cooccurrence()
    off = flat[~torch.eye(6, dtype=torch.bool)]
    assert torch.allclose(off, off[0].expand_as(off))


def test_cooccurrence_by_hand_for_one_object() -> None:
    # one object per image: two classes never appear together
    ds = MultiShapes(num_images=5, num_classes=4, group_size=2, max_objects=1)
    assert torch.allclose(ds.cooccurrence(), torch.eye(4, dtype=torch.float64))


def test_empirical_cooccurrence_by_hand_and_partial_labels() -> None:
    y = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, -1, 1]])
    got = empirical_cooccurrence(y)
    want = torch.tensor([[1, 2 / 3, 1 / 3], [1, 1, 1 / 2], [1 / 2, 1 / 2, 1]], dtype=torch.float64)
    assert torch.allclose(got, want)
    assert torch.equal(empirical_cooccurrence(torch.zeros(2, 2))[0], torch.zeros(2,
                                                                                  dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        empirical_cooccurrence(torch.zeros(3))
    with pytest.raises(ValueError, match="1, 0 and -1"):
        empirical_cooccurrence(torch.tensor([[2, 0]]))


def test_class_cues_are_distinct() -> None:
    cues = class_cues(36)
    assert len(set(cues)) == 36
    twelve = class_cues(12)
    for shape in {s for s, _ in twelve}:
        assert sum(s == shape for s, _ in twelve) == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "all"}, "split"),
        ({"num_images": 0}, "num_images"),
        ({"num_classes": 1}, "num_classes"),
        ({"num_classes": 37}, "num_classes"),
        ({"group_size": 13}, "group_size"),
        ({"cohesion": 1.5}, "cohesion"),
        ({"cohesion": float("nan")}, "cohesion"),
        ({"max_objects": 5}, "max_objects"),
        ({"object_scale": 0.5}, "object_scale"),
        ({"image_size": 4}, "image_size"),
    ],
)
def test_multi_shapes_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MultiShapes(**kwargs)


# --------------------------------------------------------------------- figures
def test_data_figures() -> None:
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from hmglib import viz

    ds = HierShapes(samples_per_class=1, image_size=32)
    images = torch.stack([ds[i][0] for i in range(5)])
    boxes = [torch.stack(ds.boxes(i)) for i in range(5)]
    fig = viz.draw_samples(images, boxes, [["object", "part"]] * 5, titles=list("abcde"), ncols=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 6 and fig.axes[0].get_title() == "a"
    # the boxes are burned into the images, the same label in the same colour everywhere:
    # the left line of each part box (its first enlarged column) is the part's colour
    shown = [np.asarray(ax.images[0].get_array()) for ax in fig.axes[:5]]
    scale = shown[0].shape[0] // 32
    part = [(math.floor(float(b[1, 0]) * scale), int(float(b[1, 1] + b[1, 3]) / 2 * scale))
            for b in boxes]
    colours = {tuple(shown[i][y, x]) for i, (x, y) in enumerate(part)}
    assert scale > 1 and colours == {(0, 229, 255)}  # viz.BOX_COLORS[1], #00e5ff
    fig = viz.draw_accuracy_vs_chance({"run": {"order": 90.0, "species": 40.0}},
                                      {"order": 33.3, "species": 3.7})
    assert len(fig.axes[0].patches) == 2
    fig = viz.draw_label_counts({"0 %": {"family": 0, "species": 10},
                                 "90 %": {"family": 9, "species": 1}})
    assert len(fig.axes[0].patches) == 4
    fig = viz.draw_degraded_pairs(images[:3], images[:3] * 0.5, titles=["x", "y", "z"])
    assert len(fig.axes) == 6
    with pytest.raises(ValueError, match="originals"):
        viz.draw_degraded_pairs(images[:3], images[:2])
    y = torch.tensor([[1, 0, -1], [0, 0, 1]])
    fig = viz.draw_partial_labels({"50 %": y, "90 %": y}, class_names=["a", "b", "c"])
    assert len(fig.axes) == 2
    fig = viz.draw_cooccurrence({"exact": torch.eye(3)}, class_names=["a", "b", "c"])
    assert len(fig.axes) == 2  # the matrix and its colour bar
    with pytest.raises(ValueError, match="image"):
        viz.draw_samples(torch.zeros(2, 4, 4))
    plt.close("all")
