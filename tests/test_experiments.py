"""Cached experiment runs of the HRN chapters."""

from __future__ import annotations

import json

import pytest

from hmglib import experiments
from hmglib.experiments import HierRun, profile_run, run_hier

TINY = dict(epochs=1, samples_per_class=2, image_size=16, batch_size=16, width=4, feature_dim=8)


def test_profile_run_follows_the_profile(monkeypatch) -> None:
    monkeypatch.setenv("HMG_QUICK", "1")
    assert profile_run().samples_per_class == 6
    monkeypatch.setenv("HMG_QUICK", "0")
    monkeypatch.setenv("HMG_PROFILE", "cpu")
    assert profile_run(relabel=0.5).epochs == 10 and profile_run(relabel=0.5).relabel == 0.5
    assert profile_run().bn_momentum == 0.1


def test_run_is_cached_and_keyed_on_the_run(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HMG_CACHE_DIR", str(tmp_path))
    first = run_hier(HierRun(relabel=0.5, **TINY))
    assert not first["cached"] and len(first["history"]) == 1
    assert set(first["test"]) >= {"OA/order", "OA/species", "AU(PRC)", "OA-marginal/species"}
    again = run_hier(HierRun(relabel=0.5, **TINY))
    assert again["cached"] and again["test"] == first["test"]
    other = run_hier(HierRun(relabel=0.5, method="flat", **TINY))
    assert not other["cached"] and "OA-marginal/species" not in other["test"]
    assert len(list(tmp_path.glob("*.json"))) == 2
    saved = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert saved["run"]["samples_per_class"] == 2


@pytest.mark.parametrize("loss", ["hier", "ce"])
def test_hrn_loss_variants_train(monkeypatch, tmp_path, loss) -> None:
    monkeypatch.setenv("HMG_CACHE_DIR", str(tmp_path))
    res = run_hier(HierRun(loss=loss, relabel=0.9, **TINY), use_cache=False)
    part = res["history"][0]
    assert res["history"][0]["loss"] == pytest.approx(part[loss])


def test_source_change_invalidates_the_cache(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HMG_CACHE_DIR", str(tmp_path))
    run_hier(HierRun(**TINY))
    monkeypatch.setattr(experiments, "_source_digest", lambda: "changed")
    assert not run_hier(HierRun(**TINY))["cached"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"method": "svm"}, "method 'svm'"),
    ({"loss": "focal"}, "loss 'focal'"),
    ({"relabel": 1.2}, r"relabel=1.2 must be in \[0, 1\]"),
])
def test_bad_runs(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        HierRun(**kwargs)
