"""The `hmg` command: train and evaluate from a shell, in the quick profile."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT
from fixtures_real import write_cub
from hmglib import cli

TINY = ["--epochs", "1", "--samples-per-class", "4", "--image-size", "16", "--batch-size", "16",
        "--quiet"]


def test_train_and_eval_hiershapes(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert cli.main(["train", "hrn", "--relabel", "0.7", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "hrn on hiershapes (relabel 70%, recipe synthetic)" in printed and "species" in printed
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["relabel"] == 0.7 and cfg["profile"] == "quick" and cfg["backbone"] == "small_cnn"
    report = json.loads((out / "metrics.json").read_text())["test"]
    assert set(report) >= {"OA/order", "OA/family", "OA/species", "AU(PRC)"}
    assert {p.name for p in out.iterdir()} >= {"last.pt", "best.pt", "history.json"}
    assert cli.main(["eval", str(out)]) == 0
    again = capsys.readouterr().out
    assert f"{report['OA/species']:.2f}" in again  # eval reproduces the test numbers


@pytest.mark.parametrize("method", ["flat", "per-level", "chmcnn"])
def test_train_baselines(tmp_path, method) -> None:
    assert cli.main(["train", method, "--relabel", "0.5", "--out", str(tmp_path), *TINY]) == 0
    report = json.loads((tmp_path / "metrics.json").read_text())["test"]
    assert 0 <= report["OA/species"] <= 100


def test_train_on_a_cub_copy(tmp_path) -> None:
    write_cub(tmp_path / "data")
    out = tmp_path / "run"
    assert cli.main(["train", "hrn", "--dataset", "cub200", "--root", str(tmp_path / "data"),
                     "--backbone", "small_cnn", "--epochs", "1", "--batch-size", "2",
                     "--relabel", "0.5", "--degrade", "--quiet", "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())["test"]
    assert "OA/order" in report and not (out / "best.pt").exists()  # no validation split


@pytest.mark.parametrize(("relabel", "recipe", "lr"),
                         [(0.9, "paper-90", 1e-4), (0.3, "paper", 2e-4)])
def test_the_relabel_ratio_selects_the_official_recipe(tmp_path, monkeypatch, relabel, recipe,
                                                       lr) -> None:
    write_cub(tmp_path / "data")
    seen = {}
    fit = cli.engine.fit

    def spy(model, loss_fn, train, **kw):
        seen["lrs"] = [g["lr"] for g in kw["optimizer"].param_groups]
        seen["scheduler"] = type(kw["scheduler"]).__name__
        return fit(model, loss_fn, train, **kw)

    monkeypatch.setattr(cli.engine, "fit", spy)
    out = tmp_path / "run"
    assert cli.main(["train", "hrn", "--dataset", "cub200", "--root", str(tmp_path / "data"),
                     "--backbone", "small_cnn", "--epochs", "1", "--batch-size", "2",
                     "--relabel", str(relabel), "--quiet", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["recipe"] == recipe and cfg["weights"] == "DEFAULT"
    assert seen["lrs"][0] == pytest.approx(lr)
    assert seen["scheduler"] == ("StepLR" if recipe == "paper-90" else "CosineAnnealingLR")


def test_console_script_runs_from_a_shell(tmp_path) -> None:
    run = subprocess.run([sys.executable, "-m", "hmglib", "train", "hrn", "--dataset",
                          "hiershapes", "--out", str(tmp_path), *TINY],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "OA (paper rule)" in run.stdout


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "hrn", "--relabel", "1.5", "--out", "x"], "must be in"),
    (["train", "hrn", "--dataset", "cub200", "--out", "x"], "needs --root"),
    (["eval", "/nonexistent/run"], "has no config.json"),
])
def test_bad_command_lines(argv, message, capsys) -> None:
    with pytest.raises(SystemExit, match=message):
        cli.main(argv)


def test_weights_by_name_or_none(tmp_path) -> None:
    out = tmp_path / "scratch"
    assert cli.main(["train", "flat", "--weights", "none", "--out", str(out), *TINY]) == 0
    assert json.loads((out / "config.json").read_text())["weights"] is None
    assert cli.main(["eval", str(out)]) == 0  # a random small CNN of the default width
    with pytest.raises(ValueError, match="unknown weights 'IMAGENET' for backbone 'small_cnn'"):
        cli.main(["train", "flat", "--weights", "IMAGENET", "--out", str(tmp_path / "x"), *TINY])


def test_unknown_method_is_rejected(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["train", "svm", "--out", "x"])
    assert "invalid choice: 'svm'" in capsys.readouterr().err
