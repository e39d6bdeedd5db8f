"""Run profiles and reproduction records."""

from __future__ import annotations

import json

import pytest

from hmglib import profile, results


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "cpu"),
    ({"HMG_QUICK": "1"}, "quick"),
    ({"HMG_QUICK": "0"}, "cpu"),
    ({"HMG_PROFILE": "gpu"}, "gpu"),
    ({"HMG_PROFILE": "quick"}, "quick"),
    ({"HMG_PROFILE": "gpu", "HMG_QUICK": "1"}, "quick"),
])
def test_profile_selection(monkeypatch, env, expected) -> None:
    monkeypatch.delenv("HMG_QUICK", raising=False)
    monkeypatch.delenv("HMG_PROFILE", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert profile.current().name == expected
    assert profile.current() is profile.get(expected)


def test_profiles_grow_from_quick_to_gpu() -> None:
    q, c, g = (profile.get(n) for n in ("quick", "cpu", "gpu"))
    for field in ("epochs", "samples_per_class", "image_size"):
        assert getattr(q, field) < getattr(c, field) < getattr(g, field), field
    for field in ("epochs", "samples_per_class"):
        assert getattr(q.run, field) < getattr(c.run, field) < getattr(g.run, field), field
    assert q.time_budget_s == 45 and c.time_budget_s == 240
    assert len(q.seeds) == 2 and 3 <= len(c.seeds) <= len(g.seeds)


def test_every_size_of_a_run_comes_from_its_profile(monkeypatch) -> None:
    """The sizes of the HRN chapters' runs and the seeds live in the profile; the
    experiments read them there. The values are pinned: a change would change
    every cached run of the book."""
    from hmglib import experiments

    pinned = {
        "quick": (profile.RunSizes(1, 6, 32, 16), (0, 1)),
        "cpu": (profile.RunSizes(5, 30, 32, 32), (0, 1, 2)),
        "gpu": (profile.RunSizes(30, 400, 32, 128), (0, 1, 2, 3, 4)),
    }
    monkeypatch.delenv("HMG_QUICK", raising=False)
    for name, (sizes, seeds) in pinned.items():
        prof = profile.get(name)
        assert (prof.run, prof.seeds) == (sizes, seeds)
        monkeypatch.setenv("HMG_PROFILE", name)
        run = experiments.profile_run()
        assert (run.epochs, run.samples_per_class, run.image_size, run.batch_size) == (
            sizes.epochs, sizes.samples_per_class, sizes.image_size, sizes.batch_size)
        assert experiments.profile_seeds() == seeds
        assert experiments.PROFILE_SIZES[name] == {
            "epochs": sizes.epochs, "samples_per_class": sizes.samples_per_class,
            "image_size": sizes.image_size, "batch_size": sizes.batch_size}
        assert experiments.PROFILE_SEEDS[name] == seeds


def test_gpu_profile_caches_fit_in_host_memory() -> None:
    """Six streaming caches of the data chapter, at most cache_mib each, stay far
    below 16 GB in every profile."""
    for prof in profile.PROFILES.values():
        assert prof.cache_mib > 0 and 6 * prof.cache_mib * 2**20 <= 4 * 2**30


def test_bad_profile_names(monkeypatch) -> None:
    monkeypatch.delenv("HMG_QUICK", raising=False)
    monkeypatch.setenv("HMG_PROFILE", "tpu")
    with pytest.raises(ValueError, match=r"HMG_PROFILE='tpu' is not a profile"):
        profile.current()
    monkeypatch.setenv("HMG_QUICK", "yes")
    with pytest.raises(ValueError, match=r"HMG_QUICK='yes'"):
        profile.current()
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        profile.get("fast")


def test_record_writes_json_and_table(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HMG_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("HMG_QUICK", "1")
    df = results.record(
        "demo",
        measured=[{"level": "order", "metric": "OA", "value": 91.5}],
        paper=[{"level": "order", "metric": "OA", "value": 98.67, "source": "repo README"}],
        notes="tiny run",
        chapter="00",
    )
    rec = json.loads((tmp_path / "demo.json").read_text())
    assert rec == {
        "name": "demo", "chapter": "00", "profile": "quick",
        "measured": [{"level": "order", "metric": "OA", "value": 91.5}],
        "paper": [{"level": "order", "metric": "OA", "value": 98.67, "source": "repo README"}],
        "notes": "tiny run",
    }
    assert results.load("demo") == rec
    assert list(df.columns) == ["level", "metric", "source", "value"]
    assert df["source"].tolist() == ["this run (quick)", "repo README"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "a b", "measured": []}, "only letters"),
    ({"name": "x", "measured": [{"metric": "OA"}]}, r"measured\[0\].*has no 'value'"),
    ({"name": "x", "measured": [{"value": "high"}]}, "value 'high'"),
    ({"name": "x", "measured": [{"value": float("nan")}]}, "value nan"),
    ({"name": "x", "measured": [{"value": 1, "per": [1, 2]}]}, r"keys \['per'\] hold containers"),
    ({"name": "x", "measured": [], "paper": [{"value": 1.0}]}, r"paper\[0\].*no 'source'"),
    ({"name": "x", "measured": [{"value": 1.0, "seed": object()}]},
     r"measured\[0\] holds \{'seed': 'object'\}.*float\(\) or int\(\)"),
])
def test_record_rejects_bad_rows(monkeypatch, tmp_path, kwargs, message) -> None:
    monkeypatch.setenv("HMG_RESULTS_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=message):
        results.record(**kwargs)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"notes": 3}, "notes must be a string, got int"),
    ({"chapter": 3}, "chapter must be a string such as '03' or None, got int"),
])
def test_record_rejects_bad_notes_and_chapter(monkeypatch, tmp_path, kwargs, message) -> None:
    monkeypatch.setenv("HMG_RESULTS_DIR", str(tmp_path))
    with pytest.raises(TypeError, match=message):
        results.record("x", [{"value": 1.0}], **kwargs)
    assert not list(tmp_path.iterdir())


def test_record_replaces_a_record_whole_and_leaves_no_temporary_file(monkeypatch,
                                                                   tmp_path) -> None:
    monkeypatch.setenv("HMG_RESULTS_DIR", str(tmp_path / "new" / "results"))
    results.record("demo", [{"metric": "OA", "value": 1.0}])
    results.record("demo", [{"metric": "OA", "value": 2.0}, {"metric": "MAP", "value": 3.0}])
    folder = tmp_path / "new" / "results"  # created with its parents
    assert [p.name for p in folder.iterdir()] == ["demo.json"]
    assert [r["value"] for r in results.load("demo")["measured"]] == [2.0, 3.0]


def test_record_missing(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HMG_RESULTS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no reproduction record 'nope'"):
        results.load("nope")


# ------------------------------------------------------------------ seeds and claims
def test_paired_gain_by_hand() -> None:
    treated = {0: 80.0, 1: 70.0, 2: 75.0}
    control = {0: 70.0, 1: 68.0, 2: 69.0, 5: 10.0}  # seed 5 has no partner: ignored
    g = results.paired_gain(treated, control)
    # gains 10, 2, 6: mean 6, sample std 4
    assert g == {"mean": 6.0, "spread": 4.0, "n": 3.0, "holds": 1.0}
    noisy = results.paired_gain({0: 80.0, 1: 60.0, 2: 75.0}, control)  # gains 10, -8, 6
    assert noisy["mean"] == pytest.approx(8 / 3) and noisy["holds"] == 0.0


def test_paired_gain_refuses_a_gain_that_is_not_a_number() -> None:
    with pytest.raises(ValueError, match=r"not a number .* seeds \[1\]"):
        results.paired_gain({0: 1.0, 1: float("nan"), 2: 3.0}, {0: 0.0, 1: 0.0, 2: 0.0})


def test_paired_gain_needs_two_seeds() -> None:
    with pytest.raises(ValueError, match=r"at least 2 seeds in common.*\[0\].*\[1\]"):
        results.paired_gain({0: 1.0}, {1: 2.0})


def test_over_seeds_mean_and_spread() -> None:
    import pandas as pd

    frame = pd.DataFrame({"method": ["a", "a", "a", "b"], "seed": [0, 1, 2, 0],
                          "value": [1.0, 2.0, 3.0, 5.0]})
    out = results.over_seeds(frame, ["method"])
    assert out.loc["a", "mean"] == 2.0 and out.loc["a", "spread"] == 1.0 and out.loc["a", "n"] == 3
    assert out.loc["b", "n"] == 1 and pd.isna(out.loc["b", "spread"])
    with pytest.raises(KeyError, match="no column.*'ratio'"):
        results.over_seeds(frame, ["ratio"])


def test_glue_hands_myst_nb_plain_numbers(monkeypatch) -> None:
    import numpy as np
    import torch
    from myst_nb.ext import glue as glue_module

    seen = {}
    monkeypatch.setattr(glue_module, "glue",
                        lambda name, value, display=True: seen.update({name: (value, display)}))
    results.glue("gain", np.float64(0.25))
    results.glue("count", torch.tensor([3]))
    results.glue("verdict", "holds")
    assert seen == {"gain": (0.25, False), "count": (3, False), "verdict": ("holds", False)}
    assert type(seen["gain"][0]) is float and type(seen["count"][0]) is int


def test_glue_refuses_a_name_the_prose_cannot_cite() -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        results.glue("best gain", 1.0)
