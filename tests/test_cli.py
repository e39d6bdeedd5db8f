"""The `hmg` command: train and evaluate from a shell, in the quick profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from sklearn.metrics import average_precision_score

from conftest import ROOT
from fixtures_real import write_cub
from hmglib import cli, engine
from hmglib.models import get_model

TINY = ["--epochs", "1", "--samples-per-class", "4", "--image-size", "16", "--batch-size", "16",
        "--quiet"]


def recomputed_report(run: Path) -> dict[str, float]:
    """OA per level, consistency and AU(PRC) of a run's checkpoint on its test split,
    recomputed without hmglib.metrics: the per-level argmax of the model's node scores
    against each test label's root-to-leaf path, and scikit-learn's average precision
    over every (sample, node) pair."""
    cfg = json.loads((run / "config.json").read_text())
    _, _, test, tree = cli.build_datasets(cfg)
    shape_from = cfg["weights"] if cfg["backbone"] == "small_cnn" else None
    model = get_model(cfg["method"], tree, backbone=cfg["backbone"], weights=shape_from)
    ckpt = run / "best.pt" if (run / "best.pt").is_file() else run / "last.pt"
    model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True)["model"])
    out, y = engine.predict(model, test)
    scores = out.scores.detach().float()  # (B, N)
    paths = [tree.path(int(t)).tolist() for t in y]  # root-to-leaf node indices per sample
    report, start, preds = {}, 0, []
    for lv, (name, size) in enumerate(zip(tree.level_names, tree.level_sizes, strict=True)):
        pred = (scores[:, start:start + size].argmax(1) + start).tolist()  # (B,)
        hits = sum(p == path[lv] for p, path in zip(pred, paths, strict=True))
        report[f"OA/{name}"] = 100.0 * hits / len(paths)
        preds.append(pred)
        start += size
    parent = tree.parent.tolist()
    legal = [all(parent[preds[lv][b]] == preds[lv - 1][b] for lv in range(1, len(preds)))
             for b in range(len(paths))]
    report["consistency"] = 100.0 * sum(legal) / len(legal)
    truth = torch.zeros(scores.shape, dtype=torch.bool)
    for b, path in enumerate(paths):
        truth[b, path] = True
    report["AU(PRC)"] = 100.0 * average_precision_score(truth.flatten().numpy(),
                                                        scores.flatten().numpy())
    return report


def assert_report_matches(report: dict[str, float], run: Path) -> None:
    expected = recomputed_report(run)
    for key, value in expected.items():
        assert report[key] == pytest.approx(value, abs=1e-6), key
        assert 0.0 <= report[key] <= 100.0


def test_train_and_eval_hiershapes(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert cli.main(["train", "hrn", "--relabel", "0.7", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "hrn on hiershapes (relabel 70%, recipe synthetic)" in printed and "species" in printed
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["relabel"] == 0.7 and cfg["profile"] == "quick" and cfg["backbone"] == "small_cnn"
    report = json.loads((out / "metrics.json").read_text())["test"]
    assert set(report) >= {"OA/order", "OA/family", "OA/species", "AU(PRC)"}
    assert_report_matches(report, out)
    assert {p.name for p in out.iterdir()} >= {"last.pt", "best.pt", "history.json"}
    assert cli.main(["eval", str(out)]) == 0
    again = capsys.readouterr().out
    assert f"{report['OA/species']:.2f}" in again  # eval reproduces the test numbers


@pytest.mark.parametrize("method", ["flat", "per-level", "chmcnn"])
def test_train_baselines(tmp_path, method) -> None:
    assert cli.main(["train", method, "--relabel", "0.5", "--out", str(tmp_path), *TINY]) == 0
    report = json.loads((tmp_path / "metrics.json").read_text())["test"]
    assert_report_matches(report, tmp_path)


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
