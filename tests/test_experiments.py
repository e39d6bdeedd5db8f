"""Cached, seeded, parallel experiment runs of the HRN chapters."""

from __future__ import annotations

import json

import pytest
import torch

from hmglib import experiments
from hmglib.experiments import (
    ZOOM_METHODS,
    HierRun,
    ZoomRun,
    gradient_norms,
    profile_run,
    profile_seeds,
    profile_zoom,
    run_hier,
    run_key,
    run_many,
    run_zoom,
)

# a random small CNN (no weights) keeps these runs to a fraction of a second
TINY = dict(epochs=1, samples_per_class=2, image_size=16, batch_size=16, width=4, feature_dim=8,
            weights=None)


@pytest.fixture(autouse=True)
def _cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HMG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_profile_run_follows_the_profile(monkeypatch) -> None:
    monkeypatch.setenv("HMG_QUICK", "1")
    assert profile_run().samples_per_class == 6 and len(profile_seeds()) >= 2
    monkeypatch.setenv("HMG_QUICK", "0")
    monkeypatch.setenv("HMG_PROFILE", "cpu")
    assert profile_run(relabel=0.5).epochs == 5 and profile_run(relabel=0.5).relabel == 0.5
    assert profile_run().bn_momentum == 0.1 and profile_run().weights == "DEFAULT"
    assert len(profile_seeds()) >= 3


def test_profile_run_reads_its_sizes_and_seeds_from_the_profile(monkeypatch) -> None:
    import dataclasses

    from hmglib import profile

    monkeypatch.delenv("HMG_QUICK", raising=False)
    monkeypatch.setenv("HMG_PROFILE", "cpu")
    cpu = profile.get("cpu")
    changed = dataclasses.replace(cpu, run=profile.RunSizes(2, 3, 16, 8), seeds=(7, 8, 9))
    monkeypatch.setitem(profile.PROFILES, "cpu", changed)
    run = profile_run(relabel=0.5)
    assert (run.epochs, run.samples_per_class, run.image_size, run.batch_size) == (2, 3, 16, 8)
    assert run.relabel == 0.5 and profile_seeds() == (7, 8, 9)


def test_recipe_follows_the_official_choice() -> None:
    assert HierRun(relabel=0.9).recipe_name == "synthetic-90"
    assert HierRun(relabel=0.7).recipe_name == "synthetic"
    assert HierRun(relabel=0.9, weights=None).recipe_name == "synthetic-scratch"
    assert HierRun(relabel=0.9, recipe="synthetic").recipe_name == "synthetic"


def test_run_is_cached_and_keyed_on_the_run(_cache) -> None:
    first = run_hier(HierRun(relabel=0.5, **TINY))
    assert not first["cached"] and len(first["history"]) == 1
    assert set(first["test"]) >= {"OA/order", "OA/species", "AU(PRC)", "OA-marginal/species"}
    assert set(first["train_relabelled"]) >= {"OA/order", "OA/family"}
    assert set(first["train"]) >= {"OA/order", "OA/species"}
    assert first["recipe"] == "synthetic-scratch" and first["key"] == run_key(HierRun(relabel=0.5,
                                                                                     **TINY))
    again = run_hier(HierRun(relabel=0.5, **TINY))
    assert again["cached"] and again["test"] == first["test"]
    other = run_hier(HierRun(relabel=0.5, method="flat", **TINY))
    assert not other["cached"] and "OA-marginal/species" not in other["test"]
    assert len(list(_cache.glob("*.json"))) == 2
    saved = json.loads(next(_cache.glob("*.json")).read_text())
    assert saved["run"]["samples_per_class"] == 2
    assert "train_relabelled" not in run_hier(HierRun(relabel=0.0, **TINY))


def test_pretrained_runs_start_from_the_shipped_weights() -> None:
    res = run_hier(HierRun(**{**TINY, "width": 16, "weights": "DEFAULT"}))
    assert res["recipe"] == "synthetic" and res["run"]["weights"] == "DEFAULT"
    with pytest.raises(ValueError, match="width"):
        run_hier(HierRun(**{**TINY, "width": 8, "weights": "DEFAULT"}))


@pytest.mark.parametrize(("loss", "part"), [("hier", "hier"), ("ce", "ce")])
def test_hrn_loss_variants_train(loss, part) -> None:
    res = run_hier(HierRun(loss=loss, relabel=0.9, **TINY), use_cache=False)
    assert res["history"][0]["loss"] == pytest.approx(res["history"][0][part])


def test_traditional_and_batch_reduced_losses_train() -> None:
    for run in (HierRun(loss="per-level", relabel=0.5, **TINY),
                HierRun(ce_reduction="batch", relabel=0.5, **TINY)):
        res = run_hier(run, use_cache=False)
        assert 0 <= res["test"]["OA/species"] <= 100


def test_sweep_in_worker_processes_matches_one_process(_cache) -> None:
    runs = [HierRun(seed=s, relabel=0.5, **TINY) for s in (0, 1)]
    parallel = run_many(runs + runs[:1], workers=2)  # a repeated run is trained once
    assert [r["cached"] for r in parallel] == [False, False, False]
    assert parallel[0]["test"] == parallel[2]["test"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a worker: the same kernels, the same bytes
    try:
        alone = [run_hier(run, use_cache=False) for run in runs]
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(parallel, alone, strict=False):
        assert a["test"] == b["test"]  # the same numbers, whichever process trained it
    assert all(r["cached"] for r in run_many(runs, workers=2))


def test_the_cache_keys_on_what_a_run_executes(monkeypatch, tmp_path) -> None:
    names = {p.name for p in experiments._dependency_files()}
    assert {"losses.py", "hrn.py", "hier_shapes.py", "engine.py"} <= names
    assert not names & {"viz.py", "cli.py", "results.py", "widgets.py", "experiments.py"}
    assert any(n.endswith(".pt") for n in names)  # the pretrained weights
    run = HierRun(**TINY)
    before = run_key(run)
    dep = tmp_path / "dep.py"
    dep.write_text("x = 1\n")
    monkeypatch.setattr(experiments, "_dependency_files", lambda: [dep])
    experiments._source_digest.cache_clear()
    key_1 = run_key(run)
    dep.write_text('"""A docstring."""\n\nx = 1  # a comment\n')  # documentation only
    experiments._source_digest.cache_clear()
    assert run_key(run) == key_1
    dep.write_text("x = 2\n")
    experiments._source_digest.cache_clear()
    assert run_key(run) != key_1 and key_1 != before
    experiments._source_digest.cache_clear()


def test_code_of_ignores_documentation_only() -> None:
    plain = experiments._code_of("def f(x):\n    return x + 1\n")
    documented = experiments._code_of(
        'def f(x):\n    """Add one."""\n    # the step\n    return x + 1  # done\n')
    assert plain == documented
    assert plain != experiments._code_of("def f(x):\n    return x + 2\n")
    assert experiments._code_of('def g():\n    """Only a docstring."""\n') == \
        experiments._code_of("def g():\n    pass\n")


def test_gradient_norms_measure_each_loss_part() -> None:
    at_0 = gradient_norms(HierRun(relabel=0.0, **{**TINY, "samples_per_class": 4}), batches=2)
    at_90 = gradient_norms(HierRun(relabel=0.9, **{**TINY, "samples_per_class": 4}), batches=2)
    for g in (at_0, at_90):
        assert g["hier"] > 0 and g["ratio"] == pytest.approx(g["ce"] / g["hier"])
    assert at_0["leaf_labelled"] == 1.0 and at_90["leaf_labelled"] < 0.5
    flat = gradient_norms(HierRun(method="flat", **{**TINY, "samples_per_class": 4}), batches=2)
    assert set(flat) == {"total", "leaf_labelled"} and flat["total"] > 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"method": "svm"}, "method 'svm'"),
    ({"loss": "focal"}, "loss 'focal'"),
    ({"recipe": "fast"}, "recipe 'fast'"),
    ({"relabel": 1.2}, r"relabel=1.2 must be in \[0, 1\]"),
])
def test_bad_runs(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        HierRun(**kwargs)


def test_default_workers(monkeypatch) -> None:
    monkeypatch.delenv("HMG_WORKERS", raising=False)
    monkeypatch.setattr(experiments.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(experiments.os, "cpu_count", lambda: 4)
    assert experiments._default_workers() == 4
    monkeypatch.setattr(experiments.torch.cuda, "is_available", lambda: True)
    assert experiments._default_workers() == 1  # runs take turns on the GPU, in this process
    monkeypatch.setenv("HMG_WORKERS", "3")
    assert experiments._default_workers() == 3


# the smallest RA-CNN runs: a 16-px canvas, 8-px scale inputs, a random small CNN
ZOOM_TINY = dict(canvas=16, input_sizes=(8, 8, 8), samples_per_class=2, scale_epochs=1,
                 cls_epochs=1, apn_epochs=1, rounds=1, apn_hidden=4, width=4, weights=None)


def test_profile_zoom_follows_the_profile(monkeypatch) -> None:
    monkeypatch.setenv("HMG_QUICK", "1")
    assert profile_zoom().canvas == 32
    monkeypatch.setenv("HMG_QUICK", "0")
    monkeypatch.setenv("HMG_PROFILE", "gpu")
    assert profile_zoom(seed=3).input_sizes == (448, 224, 224)
    assert profile_zoom(seed=3).seed == 3


def test_zoom_runs_report_every_scale_and_are_cached(_cache) -> None:
    runs = [ZoomRun(method=m, **ZOOM_TINY) for m in ZOOM_METHODS]
    results = run_many(runs + [HierRun(**TINY)], workers=1)  # both kinds in one sweep
    by = {r["run"]["method"]: r for r in results[:4]}
    for method in ("racnn", "racnn-no-rank"):
        report = by[method]["test"]
        assert {"OA/scale 3", "OA/fused", "rise/scale 2-3", "OA/scale 2/order",
                "IoU/part/scale 3", "hit/object/scale 2"} <= set(report)
        assert len(by[method]["regions"][0]) == 3  # 3 regions per shown image
    stages = {m: {row["stage"] for row in by[m]["history"]} for m in by}
    assert "apns" in stages["racnn"] and "apns" not in stages["racnn-no-rank"]
    for method in ("centre", "oracle"):  # one scale on a fixed crop, no fused layer
        report = by[method]["test"]
        assert "OA/scale 2" not in report and "OA/fused" not in report
        assert stages[method] == {"scale 1"}
    assert by["oracle"]["test"]["hit/object/scale 1"] == 100.0  # centred on the object
    assert by["centre"]["regions"][0] == [[0.5, 0.5, 0.25]]
    # a zoom run and an HRN run never share a key; a second sweep reads the cache
    assert len({r["key"] for r in results}) == 5
    assert all(r["cached"] for r in run_many(runs, workers=1))
    assert run_zoom(runs[0])["test"] == results[0]["test"]


def test_bad_zoom_runs() -> None:
    with pytest.raises(ValueError, match="method 'svm'"):
        ZoomRun(method="svm")
    with pytest.raises(ValueError, match="recipe 'fast'"):
        ZoomRun(recipe="fast")


def test_bad_sweeps() -> None:
    with pytest.raises(ValueError, match=r"runs\[1\] is a dict"):
        run_many([HierRun(**TINY), {"method": "hrn"}])
    with pytest.raises(ValueError, match="workers=0"):
        run_many([HierRun(**TINY)], workers=0)
