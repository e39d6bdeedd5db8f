"""Cached, seeded multi-label runs of the representation-blending chapter (BlendRun) in
the quick profile, and the blending sizes of every profile."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from hmglib import experiments, profile
from hmglib.data import MultiShapes, drop_labels, empirical_cooccurrence
from hmglib.experiments import (
    BLEND_METHODS,
    BlendRun,
    HierRun,
    blend_model,
    blend_sweep,
    profile_blend,
    run_blend,
    run_key,
    run_many,
)
from hmglib.models import LinearMultiLabel, small_cnn
from hmglib.models.sarb import SARB

# a random small CNN keeps the HRN run of a mixed sweep to a fraction of a second
HIER_TINY = dict(epochs=1, samples_per_class=2, image_size=16, batch_size=16, width=4,
                 feature_dim=8, weights=None)
REPORT = {"mAP", "OP", "OR", "OF1", "CP", "CR", "CF1", "classes_scored"}
KEYS = {"run", "key", "test", "train", "history", "steps", "prototype_epochs", "known_share",
        "seconds", "cached"}
CSRL_KEYS = {"attention", "features", "feature_classes", "prototypes", "prototype_counts"}


pytestmark = pytest.mark.usefixtures("quick_run_cache")


# ------------------------------------------------------------------ sizes
def test_quick_blend_sizes_are_pinned_and_profile_blend_reads_them() -> None:
    """The tests' runs: a change here changes every cached quick run."""
    quick = profile.get("quick").blend
    assert quick == profile.BlendSizes(known=(0.1, 0.9), num_images=64, test_images=32,
                                       image_size=32, epochs=2, blend_start=1,
                                       prototype_every=1, num_prototypes=2, feature_dim=16,
                                       hidden=8)
    run = profile_blend(method="ilrb", known=0.5)
    assert (run.method, run.known) == ("ilrb", 0.5)
    sizes = dataclasses.asdict(quick)
    sizes.pop("known")
    assert {k: getattr(run, k) for k in sizes} == sizes
    assert profile_blend().known == BlendRun().known  # the profile's shares are not a default


def test_profile_blend_follows_the_profile(monkeypatch) -> None:
    monkeypatch.delenv("HMG_QUICK")
    monkeypatch.setenv("HMG_PROFILE", "gpu")
    assert profile_blend(seed=2).num_images == profile.get("gpu").blend.num_images
    assert profile_blend(seed=2).seed == 2


def test_blend_sizes_grow_and_the_gpu_schedule_is_the_papers() -> None:
    q, c, g = (profile.get(n).blend for n in ("quick", "cpu", "gpu"))
    for field in ("num_images", "test_images", "image_size", "epochs", "feature_dim"):
        assert getattr(q, field) < getattr(c, field) < getattr(g, field), field
    for sizes in (q, c, g):
        assert 0 <= sizes.blend_start < sizes.epochs and sizes.prototype_every >= 1
        assert list(sizes.known) == sorted(sizes.known)
        assert all(0 < k < 1 for k in sizes.known)
    # Pu et al.: blending from epoch 5, prototypes every 5 epochs, K = 10, 20 epochs,
    # D = 1024, H = 512; known shares 10 ... 90 %
    assert (g.epochs, g.blend_start, g.prototype_every, g.num_prototypes) == (20, 5, 5, 10)
    assert (g.feature_dim, g.hidden) == (1024, 512)
    assert g.known == pytest.approx(tuple(k / 10 for k in range(1, 10)))


# ------------------------------------------------------------------ the run
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"method": "svm"}, "method 'svm' is not one of"),
    ({"recipe": "fast"}, "recipe 'fast' is not one of"),
    ({"embeddings": "glove"}, "embeddings 'glove' must be 'words' or 'learned'"),
    ({"known": 0.0}, r"known=0.0 must be in \(0, 1\]"),
    ({"known": 1.5}, r"known=1.5 must be in \(0, 1\]"),
    ({"known": -0.1}, r"known=-0.1 must be in \(0, 1\]"),
])
def test_bad_blend_runs(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        BlendRun(**kwargs)


def test_good_blend_runs_and_their_keys() -> None:
    assert BlendRun(known=1.0).known == 1.0
    for method in BLEND_METHODS:
        BlendRun(method=method)
    keys = {run_key(BlendRun(method=m)) for m in BLEND_METHODS}
    assert len(keys) == len(BLEND_METHODS)
    assert run_key(BlendRun(seed=3)) == run_key(BlendRun(seed=3))
    assert run_key(BlendRun(seed=3)) != run_key(BlendRun(seed=4))


def test_blend_model_builds_each_method() -> None:
    run = profile_blend()
    world = MultiShapes("train", num_images=40, num_classes=run.num_classes, image_size=32)
    labels = drop_labels(world.targets, 0.5, seed=0)
    flags = {"sarb": (True, True), "ilrb": (True, False), "plrb": (False, True),
             "sarb-no-blend": (False, False), "ssgrl": (False, False)}
    for method in BLEND_METHODS:
        model, cnn = blend_model(dataclasses.replace(run, method=method), labels,
                                 world.class_names)
        reference = small_cnn(weights="DEFAULT", width=run.width).state_dict()
        for key, value in cnn.state_dict().items():  # the pretrained small CNN
            torch.testing.assert_close(value, reference[key])
        # the trainable part: the small CNN's layers after the frozen ones
        assert len(model.backbone) == len(cnn.features) - run.frozen
        assert model.backbone.out_channels == cnn.out_channels
        if method.startswith("linear"):
            assert isinstance(model, LinearMultiLabel)
            continue
        assert isinstance(model, SARB) and (model.ilrb, model.plrb) == flags[method]
        assert model.num_classes == run.num_classes
        off = 1 - torch.eye(run.num_classes)
        torch.testing.assert_close(model.adjacency, (empirical_cooccurrence(labels) * off)
                                   .float())
        assert "embeddings" in dict(model.named_buffers())  # fixed word embeddings
    learned, _ = blend_model(dataclasses.replace(run, embeddings="learned"), labels,
                             world.class_names)
    assert "embeddings" in dict(learned.named_parameters())


def check_report(report: dict) -> None:
    assert set(report) >= REPORT
    for key in REPORT - {"classes_scored"}:
        assert 0.0 <= report[key] <= 100.0, key


def test_run_blend_reports_and_is_cached(quick_run_cache) -> None:
    run = profile_blend()
    first = run_blend(run)
    assert not first["cached"]
    assert set(first) >= KEYS | CSRL_KEYS
    assert first["run"] == dataclasses.asdict(run) and first["key"] == run_key(run)
    check_report(first["test"])
    check_report(first["train"])
    sizes = profile.get("quick").blend
    assert len(first["history"]) == sizes.epochs
    # 64 images in batches of the synthetic recipe's 32: 2 steps per epoch
    assert len(first["steps"]) == sizes.epochs * (sizes.num_images // 32)
    assert abs(first["known_share"] - run.known) < 0.05
    c = run.num_classes
    attention = torch.tensor(first["attention"])  # (6, C, h, w)
    assert attention.shape[:2] == (6, c)
    torch.testing.assert_close(attention.sum(dim=(2, 3)), torch.ones(6, c))
    assert torch.tensor(first["prototypes"]).shape == (c, sizes.num_prototypes,
                                                       sizes.feature_dim)
    counts = first["prototype_counts"]
    assert len(counts) == c and all(0 <= k <= sizes.num_prototypes for k in counts)
    assert len(first["features"]) == len(first["feature_classes"])
    assert all(len(f) == sizes.feature_dim for f in first["features"])
    assert all(0 <= k < c for k in first["feature_classes"])
    saved = list(quick_run_cache.glob("*.json"))
    assert [p.stem for p in saved] == [first["key"]]
    assert json.loads(saved[0].read_text())["run"]["method"] == "sarb"
    again = run_blend(run)
    assert again["cached"] and again["test"] == first["test"]
    assert again["history"] == first["history"] and again["steps"] == first["steps"]
    full = run_blend(profile_blend(known=1.0, method="ssgrl"))
    assert full["known_share"] == 1.0


def test_a_blend_run_trained_again_gives_the_same_numbers() -> None:
    experiments._blend_inputs.cache_clear()  # the first run computes the frozen inputs
    run = profile_blend()
    first = run_blend(run, use_cache=False)
    again = run_blend(run, use_cache=False)  # the frozen inputs come from the process cache
    assert not again["cached"]
    assert again["steps"] == first["steps"] and again["test"] == first["test"]


def test_a_baseline_run_trained_again_gives_the_same_numbers() -> None:
    experiments._blend_inputs.cache_clear()
    run = profile_blend(method="linear")
    first = run_blend(run, use_cache=False)
    again = run_blend(run, use_cache=False)
    assert again["steps"] == first["steps"] and again["test"] == first["test"]


def test_every_blend_method_runs(quick_run_cache) -> None:
    runs = [profile_blend(method=m) for m in BLEND_METHODS]
    results = run_many(runs + [HierRun(**HIER_TINY)], workers=1)  # kinds mixed in one sweep
    assert [r["run"]["method"] for r in results[:-1]] == list(BLEND_METHODS)
    assert "OA/species" in results[-1]["test"]  # the HRN run's own report
    assert len({r["key"] for r in results}) == len(results)
    by = {r["run"]["method"]: r for r in results[:-1]}
    start = profile.get("quick").blend.blend_start
    for method, res in by.items():
        assert set(res) >= KEYS, method
        check_report(res["test"])
        assert (CSRL_KEYS <= set(res)) == (not method.startswith("linear")), method
        blends = method in ("sarb", "ilrb", "plrb")
        assert [h["blending"] for h in res["history"]] == [
            float(blends and e >= start) for e in range(len(res["history"]))], method
        assert res["prototype_epochs"] == ([start] if method in ("sarb", "plrb") else []), method
        last = res["history"][-1]
        assert (last["instance"] > 0) == (method in ("sarb", "ilrb")), method
        assert (last["prototype"] > 0) == (method in ("sarb", "plrb")), method
        if method in ("ssgrl", "linear", "linear-negative"):  # the partial BCE alone
            assert all(h["loss"] == pytest.approx(h["cls"]) for h in res["history"]), method
    # SARB's loss without a blend keeps the contrastive term
    for h in by["sarb-no-blend"]["history"]:
        assert h["contrastive"] > 0
        assert h["loss"] == pytest.approx(h["cls"] + 0.05 * h["contrastive"])
    # unknowns as negatives is another loss on the same model
    assert by["linear-negative"]["steps"] != by["linear"]["steps"]
    assert all(r["cached"] for r in run_many(runs, workers=1))


def test_blend_sweep_covers_the_chapter() -> None:
    sizes = profile.get("quick").blend
    runs = blend_sweep(seeds=(0,))
    assert all(isinstance(r, BlendRun) and r.num_images == sizes.num_images for r in runs)
    got = sorted((r.method, r.known) for r in runs)
    want = sorted([(m, k) for k in sizes.known
                   for m in ("sarb", "ssgrl", "linear", "linear-negative")]
                  + [("ssgrl", 1.0), ("linear", 1.0)]
                  + [(m, min(sizes.known)) for m in ("ilrb", "plrb", "sarb-no-blend")])
    assert got == want
    assert {r.seed for r in blend_sweep(known=(0.5,), seeds=(3, 4))} == {3, 4}
