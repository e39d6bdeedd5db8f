"""Trained networks read back from the run cache, and the Grad-CAM chapter's runs
(CamRun) in the quick profile."""

from __future__ import annotations

import dataclasses
import functools
import math
import random

import numpy as np
import pytest
import torch

from hmglib import engine, experiments, metrics, profile
from hmglib.data import MultiShapes
from hmglib.experiments import (
    BlendRun,
    CamRun,
    HierRun,
    ZoomRun,
    cam_frame,
    cam_subjects,
    model_path,
    profile_blend,
    profile_cams,
    profile_run,
    profile_zoom,
    run_blend,
    run_cam,
    run_hier,
    run_key,
    run_many,
    run_zoom,
    trained_model,
)

HIER_TINY = dict(epochs=1, samples_per_class=2, image_size=16, batch_size=16, width=4,
                 feature_dim=8, weights=None)


pytestmark = pytest.mark.usefixtures("quick_run_cache")


def _same_state(a: torch.nn.Module, b: dict) -> bool:
    sa = a.state_dict()
    return sa.keys() == b.keys() and all(torch.equal(sa[k], b[k]) for k in sa)


# ------------------------------------------------------------------ sizes
def test_cam_sizes_of_every_profile() -> None:
    assert profile.get("quick").cam == profile.CamSizes(image_size=32, images=4, known=0.5)
    cpu = profile.get("cpu").cam
    assert cpu.image_size % 8 == 0 and cpu.image_size // 8 >= 8  # an 8 x 8 map at least
    for name in profile.PROFILES:
        sizes = profile.get(name).cam
        assert set(sizes.methods) == {"gradcam", "gradcam++", "scorecam"}
        assert 0 < sizes.known <= 1 and sizes.images >= 1


def test_profile_cams_explains_each_family_for_each_seed() -> None:
    runs = profile_cams()
    seeds = profile.current().seeds
    assert len(runs) == 3 * len(seeds)
    assert [r.family for r in runs] == ["hrn", "racnn", "sarb"] * len(seeds)
    sizes = profile.current().cam
    for r in runs:
        assert r.images == sizes.images and r.methods == sizes.methods
    hrn, zoom, blend = runs[:3]
    assert hrn.run == profile_run(image_size=sizes.image_size, seed=seeds[0])
    assert zoom.run == profile_zoom(seed=seeds[0])
    assert blend.run == profile_blend(method="sarb", known=sizes.known, seed=seeds[0])


# ------------------------------------------------------------------ trained models
def test_trained_hrn_is_the_network_the_run_tested(quick_run_cache) -> None:
    run = HierRun(**HIER_TINY)
    result = run_hier(run)
    assert model_path(run).is_file()
    model = trained_model(run)
    assert not model.training
    test = experiments._Rendered(experiments._hier_world(run, "test"))
    report = engine.evaluate(model, test, functools.partial(
        metrics.hierarchical_report, tree=test.tree, energy_fn=run.energy_fn))
    assert report == pytest.approx(result["test"])


def test_trained_model_trains_a_missing_run_and_gives_the_same_weights(quick_run_cache) -> None:
    run = HierRun(**HIER_TINY, seed=3)
    first = trained_model(run)  # trains it: nothing cached yet
    assert experiments._from_cache(run) is not None
    state = {k: v.clone() for k, v in first.state_dict().items()}
    model_path(run).unlink()
    again = trained_model(run)  # retrains: the weights are a function of the run
    assert _same_state(again, state)
    # loading, and training a missing run, leave the caller's random streams alone
    for missing in (False, True):
        if missing:
            model_path(run).unlink()
        random.seed(5)
        np.random.seed(5)  # noqa: NPY002
        torch.manual_seed(5)
        expected = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
        random.seed(5)
        np.random.seed(5)  # noqa: NPY002
        torch.manual_seed(5)
        trained_model(run)
        got = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
        assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


def test_trained_racnn_reproduces_the_run_report(quick_run_cache) -> None:
    run = profile_zoom()
    result = run_zoom(run)
    model = trained_model(run)
    _, test_world = experiments._zoom_world(run)
    test = experiments._Rendered(test_world)
    outputs, targets = engine.predict(model, test)
    report = metrics.attention_report(outputs, targets, test.tree,
                                      boxes=experiments._object_boxes(test_world),
                                      image_size=(run.canvas, run.canvas))
    assert report == pytest.approx(result["test"])


def test_trained_sarb_takes_whole_images_and_reproduces_the_run_map(quick_run_cache) -> None:
    run = profile_blend(method="sarb", known=0.5)
    result = run_blend(run)
    model = trained_model(run)
    _, test_world = experiments._blend_world(run)
    images = torch.stack([test_world[i][0] for i in range(len(test_world))])  # (N, 3, S, S)
    with torch.no_grad():
        scores = torch.sigmoid(model(images).logits)  # (N, C)
    report = metrics.multilabel_report(scores, test_world.targets)
    assert report["mAP"] == pytest.approx(result["test"]["mAP"], abs=1e-4)
    assert model.backbone[0].in_channels == 3  # the frozen layers are back in front


def test_trained_model_refuses_what_is_not_a_training_run() -> None:
    with pytest.raises(TypeError, match="HierRun, ZoomRun or BlendRun"):
        trained_model("hrn")  # type: ignore[arg-type]


# ------------------------------------------------------------------ CamRun
@pytest.mark.parametrize("bad, match", [
    (dict(run=HierRun(method="flat")), "HRN"),
    (dict(run=ZoomRun(method="centre")), "RA-CNN"),
    (dict(run=BlendRun(method="linear")), "CSRL"),
    (dict(run=HierRun(), methods=("gradcam", "eigencam")), "eigencam"),
    (dict(run=HierRun(), images=0), "images"),
    (dict(run=HierRun(), images=2.5), "images"),
    (dict(run=HierRun(), methods="gradcam"), "tuple of names"),
    (dict(run="hrn"), "HierRun"),
])
def test_cam_run_refuses_what_it_cannot_explain(bad: dict, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        CamRun(**bad)


def test_cam_run_key_follows_its_fields_and_the_trained_run() -> None:
    a = CamRun(HierRun(**HIER_TINY))
    assert run_key(a) == run_key(CamRun(HierRun(**HIER_TINY)))
    assert run_key(a) != run_key(dataclasses.replace(a, images=5))
    assert run_key(a) != run_key(dataclasses.replace(a, methods=("gradcam",)))
    assert run_key(a) != run_key(CamRun(HierRun(**{**HIER_TINY, "seed": 1})))
    assert run_key(a) != run_key(a.run)


def test_cam_subjects_of_hierarchical_runs_hold_boxes_inside_the_canvas() -> None:
    run = CamRun(HierRun(**HIER_TINY), images=5)
    got = cam_subjects(run)
    b = got["images"].shape[0]
    assert got["images"].shape == (b, 3, 16, 16) and 1 <= b <= 5
    assert got["targets"].shape == (b,)
    for kind in ("object", "part"):
        boxes = got["boxes"][kind]
        assert boxes.shape == (b, 1, 4)
        assert bool((boxes[..., :2] >= 0).all()) and bool((boxes[..., 2:] <= 16).all())
    part, obj = got["boxes"]["part"][:, 0], got["boxes"]["object"][:, 0]
    assert bool((part[:, :2] >= obj[:, :2] - 1e-4).all())  # the marking is on the body
    assert len(set(got["targets"].tolist())) > 1  # spread over the species


def test_cam_subjects_of_sarb_are_one_entry_per_image_and_present_class() -> None:
    run = CamRun(profile_blend(method="sarb", known=0.5), images=3)
    got = cam_subjects(run)
    world = MultiShapes("test", num_images=run.run.test_images, num_classes=run.run.num_classes,
                        group_size=run.run.group_size, cohesion=run.run.cohesion,
                        image_size=run.run.image_size, seed=run.run.seed)
    expected = [(i, c) for i in range(3) for c in world.boxes(i).labels.unique().tolist()]
    assert list(zip(got["image_index"].tolist(), got["targets"].tolist(), strict=True)) == expected
    for j, (i, c) in enumerate(expected):
        assert torch.equal(got["images"][j], world[i][0])
        objects = world.boxes(i)
        real = got["boxes"]["object"][j]
        real = real[~torch.isnan(real).all(-1)]
        assert torch.equal(real, objects.boxes[objects.labels == c])


@pytest.mark.parametrize("family", [0, 1, 2])
def test_run_cam_scores_every_unit_and_method_beside_the_references(family: int) -> None:
    run = profile_cams(seeds=[0])[family]
    result = run_cam(run)
    assert not result["cached"] and result["family"] == run.family
    frame = cam_frame([result])
    units = {"hrn": {"order", "family", "species"}, "racnn": {"scale 1", "scale 2", "scale 3"},
             "sarb": {"class"}}[run.family]
    assert set(frame.unit) == units
    assert set(frame.method) == {*run.methods, "random", "centre"}
    boxes = {"object", "part"} if run.family != "sarb" else {"object"}
    assert set(frame.box) == boxes and set(frame.metric) == {"pointing", "energy"}
    # one row per (unit, method, box, metric), each a mean in [0, 1]
    assert len(frame) == len(units) * (len(run.methods) + 2) * len(boxes) * 2
    assert frame.value.between(0, 1).all() and (frame.images >= 1).all()
    faithful = cam_frame([result], "faithfulness")
    assert set(faithful.method) == {*run.methods, "random", "centre", "uniform dim"}
    assert len(faithful) == len(units) * (len(run.methods) + 3)
    assert faithful.value.between(-1, 1).all()
    assert (frame.seed == 0).all() and (frame.family == run.family).all()
    again = run_cam(run)
    assert again["cached"] and again["rows"] == result["rows"]


def test_run_cam_random_reference_scores_near_the_box_share() -> None:
    """A uniform random map's energy in a box is about the box's share of the canvas."""
    run = CamRun(HierRun(**{**HIER_TINY, "image_size": 32}), methods=("gradcam",), images=8)
    rows = run_cam(run)["rows"]
    got = cam_subjects(run)
    boxes = got["boxes"]["object"][:, 0]
    share = float(((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).mean()) / 32 ** 2
    energy = [r["value"] for r in rows if r["method"] == "random" and r["box"] == "object"
              and r["metric"] == "energy"]
    assert all(math.isclose(e, share, abs_tol=0.05) for e in energy)


def test_run_many_runs_cam_runs_beside_training_runs() -> None:
    cam_run = CamRun(HierRun(**HIER_TINY), methods=("gradcam",), images=2)
    results = run_many([cam_run, HierRun(**HIER_TINY)], workers=1)
    assert results[0]["family"] == "hrn" and "test" in results[1]
    with pytest.raises(ValueError, match="CamRun"):
        run_many([object()], workers=1)  # type: ignore[list-item]


def test_hand_built_grad_cam_equals_the_package_on_the_chapters_model() -> None:
    """The chapter builds Grad-CAM by hand on its own trained HRN (the first run of
    :func:`profile_cams`) and compares it with the package: here, on that model."""
    from hmglib import cam

    run = profile_cams(seeds=[0])[0]
    model = trained_model(run.run)
    got = cam_subjects(run)
    x, tree = got["images"], model.tree
    for lv in range(tree.num_levels):
        classes = tree.lift(got["targets"], lv) - int(tree.nodes_at(lv)[0])  # (B,)
        hand = cam.hand_grad_cam(cam.LevelLogits(model, lv), x, model.blocks[lv].conv, classes)
        package = cam.level_cam(model, x, lv, classes)
        assert hand.shape == package.shape == x.shape[:1] + x.shape[2:]
        assert float(package.max()) > 0.5  # a map, not an empty one
        assert torch.allclose(hand, package, atol=1e-5)
