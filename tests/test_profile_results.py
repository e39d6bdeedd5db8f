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
    assert q.time_budget_s == 45 and c.time_budget_s == 240


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
