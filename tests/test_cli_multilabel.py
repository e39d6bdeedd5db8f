"""The `hmg` command's multi-label runs: SARB and its baselines with partial labels."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from fixtures_real import write_coco, write_voc
from hmglib import cli, profile
from hmglib.data import MultiShapes, drop_labels, empirical_cooccurrence
from hmglib.data.embeddings import name_words
from hmglib.data.voc import CLASSES
from hmglib.recipes import SARB_RECIPES

QUICK = ["--epochs", "2", "--num-images", "64", "--quiet"]
REAL = ["--backbone", "small_cnn", "--weights", "none", "--epochs", "1", "--batch-size", "2",
        "--image-size", "32", "--quiet"]
REPORT_KEYS = {"mAP", "OP", "OR", "OF1", "CP", "CR", "CF1", "classes_scored"}


@pytest.fixture(autouse=True)
def _quick(monkeypatch):
    monkeypatch.setenv("HMG_QUICK", "1")


def read(run: Path, name: str) -> dict:
    return json.loads((run / name).read_text())


def recomputed_report(run: Path) -> dict[str, float]:
    """mAP, OP and OR of a run's checkpoint on its test split, recomputed without
    hmglib.metrics: the model's sigmoid scores of every test image, scikit-learn's
    average precision per class with a positive, and the counts at threshold 0.5."""
    cfg = read(run, "config.json")
    _, test, names = cli.build_multilabel_datasets(cfg, train=False)
    model = cli.build_multilabel_model(cfg, names, pretrained=False)
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=True)["model"]
    model.load_state_dict(state)
    model.eval()
    images = torch.stack([test[i][0] for i in range(len(test))])  # (N, 3, S, S)
    truth = torch.stack([torch.as_tensor(test[i][1]) for i in range(len(test))]).numpy()
    with torch.no_grad():
        scores = torch.sigmoid(model(images).logits).numpy()  # (N, C)
    scored = truth.sum(0) > 0  # (C,)
    ap = [average_precision_score(truth[:, c], scores[:, c]) for c in np.flatnonzero(scored)]
    predicted = scores >= 0.5
    tp = float((predicted & (truth == 1)).sum())
    return {"mAP": 100.0 * float(np.mean(ap)),
            "OP": 100.0 * tp / max(float(predicted.sum()), 1.0),
            "OR": 100.0 * tp / float(truth.sum()),
            "classes_scored": float(scored.sum())}


def assert_metrics_are_the_checkpoints(run: Path) -> dict[str, float]:
    """metrics.json holds the checkpoint's test report, and `hmg eval` reproduces it."""
    report = read(run, "metrics.json")["test"]
    assert set(report) == REPORT_KEYS
    for key, value in recomputed_report(run).items():
        assert report[key] == pytest.approx(value, abs=1e-4), key
    again = cli.evaluate_multilabel_run(run, read(run, "config.json"))
    assert again == pytest.approx(report, abs=1e-9)
    return report


# ------------------------------------------------------------------ MultiShapes
def test_sarb_on_multishapes_trains_writes_and_evaluates(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert cli.main(["train", "sarb", "--dataset", "multishapes", "--known", "0.3", *QUICK,
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sarb on multishapes (known 30%, recipe synthetic), 2 epochs" in printed
    assert "mAP" in printed and "CF1" in printed
    assert {p.name for p in out.iterdir()} == {"config.json", "last.pt", "history.json",
                                               "metrics.json"}
    cfg = read(out, "config.json")
    sizes = profile.current().blend
    assert cfg["kind"] == "multilabel" and cfg["known"] == 0.3 and cfg["recipe"] == "synthetic"
    assert cfg["embeddings"] == "words" and cfg["backbone"] == "small_cnn"
    assert cfg["weights"] == "DEFAULT" and cfg["num_images"] == 64
    assert (cfg["test_images"], cfg["image_size"]) == (sizes.test_images, sizes.image_size)
    expected = dataclasses.replace(
        SARB_RECIPES["synthetic"], epochs=2, blend_start=sizes.blend_start,
        prototype_every=sizes.prototype_every, num_prototypes=sizes.num_prototypes,
        image_size=sizes.image_size, resize=sizes.image_size, crop_sizes=(sizes.image_size,))
    assert cli.multilabel_recipe(cfg) == expected
    assert (cfg["feature_dim"], cfg["hidden"]) == (sizes.feature_dim, sizes.hidden)

    # the checkpoint holds the graph of the partial training labels and the prototypes
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=True)["model"]
    world = MultiShapes("train", num_images=64, image_size=sizes.image_size, seed=0)
    partial = drop_labels(world.targets, 0.3, seed=0)
    graph = empirical_cooccurrence(partial).float() * (1 - torch.eye(12))
    assert torch.allclose(state["adjacency"], graph)
    assert tuple(state["prototypes"].shape) == (12, sizes.num_prototypes, sizes.feature_dim)
    assert int(state["prototype_counts"].sum()) > 0
    assert tuple(state["embeddings"].shape) == (12, cfg["embed_dim"])

    history = read(out, "history.json")
    assert [row["epoch"] for row in history["history"]] == [0, 1]
    assert [row["blending"] for row in history["history"]] == [
        float(e >= sizes.blend_start) for e in range(2)]
    assert history["prototype_epochs"] == [sizes.blend_start]
    assert len(history["step_losses"]) == 2 * (64 // 32)

    report = assert_metrics_are_the_checkpoints(out)
    assert read(out, "metrics.json")["known_share"] == pytest.approx(
        float((partial != 0).float().mean()))
    assert cli.main(["eval", str(out)]) == 0
    assert f"{report['mAP']:.2f}" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["ssgrl", "linear"])
def test_baselines_on_multishapes(tmp_path, method) -> None:
    assert cli.main(["train", method, *QUICK, "--out", str(tmp_path)]) == 0
    cfg = read(tmp_path, "config.json")
    assert cfg["dataset"] == "multishapes" and cfg["known"] == 0.1  # the defaults
    assert (cfg["embeddings"] is None) == (method == "linear")
    assert read(tmp_path, "history.json")["prototype_epochs"] == []
    assert_metrics_are_the_checkpoints(tmp_path)


def test_learned_embeddings_on_multishapes(tmp_path) -> None:
    assert cli.main(["train", "sarb", "--embeddings", "learned", *QUICK,
                     "--out", str(tmp_path)]) == 0
    cfg = read(tmp_path, "config.json")
    assert cfg["embeddings"] == "learned" and cfg["embed_dim"] == 12
    assert_metrics_are_the_checkpoints(tmp_path)


# ------------------------------------------------------------------ real datasets
def test_sarb_on_a_voc_copy_uses_the_papers_recipe(tmp_path, monkeypatch) -> None:
    write_voc(tmp_path / "data")
    seen = {}
    fit = cli.blending.fit_sarb

    def spy(model, train_data, recipe, **kw):
        seen["recipe"], seen["labels"] = recipe, train_data.labels
        return fit(model, train_data, recipe, **kw)

    monkeypatch.setattr(cli.blending, "fit_sarb", spy)
    out = tmp_path / "run"
    assert cli.main(["train", "sarb", "--dataset", "voc2007", "--root", str(tmp_path / "data"),
                     "--embeddings", "learned", "--known", "0.5", *REAL, "--out", str(out)]) == 0
    cfg = read(out, "config.json")
    paper = SARB_RECIPES["paper"]
    assert cfg["recipe"] == "paper" and cfg["embed_dim"] == 300
    assert (cfg["feature_dim"], cfg["hidden"]) == (1024, 512)
    recipe = seen["recipe"]
    assert recipe == cli.multilabel_recipe(cfg)
    assert (recipe.lr, recipe.weight_decay, recipe.step_size, recipe.frozen) == (1e-5, 5e-4, 10, 7)
    assert (recipe.epochs, recipe.batch_size) == (1, 2)
    assert (recipe.image_size, recipe.resize) == (32, round(paper.resize * 32 / 448))
    assert max(recipe.crop_sizes) <= recipe.resize and len(recipe.crop_sizes) > 1
    assert tuple(seen["labels"].shape) == (2, len(CLASSES))
    assert set(seen["labels"].unique().tolist()) <= {-1.0, 0.0, 1.0}
    report = assert_metrics_are_the_checkpoints(out)
    assert report["classes_scored"] == 3.0  # the copy's test images hold dog, person, car


def write_glove(path: Path, dim: int = 6) -> dict[str, np.ndarray]:
    """A miniature GloVe text file with the words of the 20 VOC class names."""
    rng = np.random.default_rng(0)
    words = sorted({w for name in CLASSES for w in name_words(name)})
    vectors = {w: rng.normal(size=dim).astype(np.float32) for w in words}
    path.write_text("".join(f"{w} {' '.join(f'{v:.6f}' for v in vec)}\n"
                            for w, vec in vectors.items()), encoding="utf-8")
    return vectors


def test_sarb_on_a_voc_copy_with_a_glove_file(tmp_path) -> None:
    write_voc(tmp_path / "data")
    vectors = write_glove(tmp_path / "mini-glove.txt")
    out = tmp_path / "run"
    assert cli.main(["train", "sarb", "--dataset", "voc2007", "--root", str(tmp_path / "data"),
                     "--glove", str(tmp_path / "mini-glove.txt"), *REAL,
                     "--out", str(out)]) == 0
    cfg = read(out, "config.json")
    assert cfg["embeddings"] == "glove" and cfg["embed_dim"] == 6
    assert cfg["glove"] == str(tmp_path / "mini-glove.txt")
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=True)["model"]
    table = CLASSES.index("diningtable")
    mean = (vectors["dining"] + vectors["table"]) / 2
    assert np.allclose(state["embeddings"][table].numpy(), mean, atol=1e-5)
    assert np.allclose(state["embeddings"][CLASSES.index("cat")].numpy(), vectors["cat"],
                       atol=1e-5)
    assert_metrics_are_the_checkpoints(out)


def test_glove_embeddings_without_a_file_name_it(tmp_path) -> None:
    write_voc(tmp_path / "data")
    out = tmp_path / "run"
    expected = tmp_path / "data" / "glove" / "glove.6B.300d.txt"
    with pytest.raises(SystemExit, match="--embeddings glove") as err:
        cli.main(["train", "sarb", "--dataset", "voc2007", "--root", str(tmp_path / "data"),
                  *REAL, "--out", str(out)])
    assert str(expected) in str(err.value) and "--glove FILE" in str(err.value)
    assert not out.exists()  # nothing written for a run that cannot start
    with pytest.raises(SystemExit, match="nowhere.txt"):
        cli.main(["train", "ssgrl", "--dataset", "voc2007", "--root", str(tmp_path / "data"),
                  "--glove", str(tmp_path / "nowhere.txt"), *REAL, "--out", str(out)])


def test_linear_on_a_coco_copy(tmp_path) -> None:
    write_coco(tmp_path / "coco")
    out = tmp_path / "run"
    assert cli.main(["train", "linear", "--dataset", "coco2014", "--root", str(tmp_path / "coco"),
                     *REAL, "--out", str(out)]) == 0
    cfg = read(out, "config.json")
    assert cfg["recipe"] == "paper" and cfg["embeddings"] is None
    report = assert_metrics_are_the_checkpoints(out)
    assert report["classes_scored"] == 3.0  # the copy's val images: chair, dining table, airplane
    # the run folder can move with its dataset: --root overrides the recorded folder
    moved = tmp_path / "moved"
    (tmp_path / "coco").rename(moved)
    assert cli.main(["eval", str(out), "--root", str(moved)]) == 0


def test_real_dataset_defaults_follow_the_paper() -> None:
    args = cli.parser().parse_args(["train", "sarb", "--dataset", "coco2014", "--root", "x",
                                    "--out", "y"])
    cfg = cli.multilabel_config(args)
    assert (cfg["backbone"], cfg["weights"], cfg["embeddings"]) == ("resnet101",
                                                                    "IMAGENET1K_V1", "glove")
    assert cli.multilabel_recipe(cfg) == SARB_RECIPES["paper"]
    assert (cfg["feature_dim"], cfg["hidden"], cfg["known"]) == (1024, 512, 0.1)


def test_scaled_recipe_keeps_the_crops_inside_the_resize() -> None:
    paper = SARB_RECIPES["paper"]
    assert cli.scaled_recipe(paper, 448) == paper
    small = cli.scaled_recipe(paper, 64)
    assert small.image_size == 64 and small.resize == round(512 * 64 / 448)
    assert small.crop_sizes == tuple(round(c * 64 / 448) for c in paper.crop_sizes)
    tiny = cli.scaled_recipe(paper, 4)
    assert all(1 <= c <= tiny.resize for c in tiny.crop_sizes)


# ------------------------------------------------------------------ bad command lines
VALID_PAIRS = "Valid pairs"


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "sarb", "--known", "0", "--out", "x"], r"--known 0.0 must be in \(0, 1\]"),
    (["train", "sarb", "--known", "1.5", "--out", "x"], r"--known 1.5 must be in \(0, 1\]"),
    (["train", "hrn", "--dataset", "voc2007", "--out", "x"], VALID_PAIRS),
    (["train", "sarb", "--dataset", "hiershapes", "--out", "x"], VALID_PAIRS),
    (["train", "linear", "--dataset", "cub200", "--out", "x"], VALID_PAIRS),
    (["train", "sarb", "--dataset", "voc2007", "--out", "x"], "voc2007 needs --root"),
    (["train", "ssgrl", "--dataset", "coco2014", "--out", "x"], "coco2014 needs --root"),
    (["train", "sarb", "--dataset", "voc2007", "--root", "r", "--num-images", "9", "--out", "x"],
     "--num-images applies to --dataset multishapes"),
    (["train", "sarb", "--relabel", "0.5", "--out", "x"], "--relabel applies to the hier"),
    (["train", "sarb", "--resume", "--out", "x"], "--resume applies to the hierarchical"),
    (["train", "hrn", "--known", "0.5", "--out", "x"], "--known applies to the multi-label"),
    (["train", "sarb", "--embeddings", "words", "--glove", "g.txt", "--out", "x"],
     "--glove applies to --embeddings glove"),
    (["train", "sarb", "--recipe", "paper-90", "--out", "x"], "not a SARB recipe"),
    (["train", "hrn", "--recipe", "paper", "--relabel", "0.2", "--out", "x"], None),
    (["train", "sarb", "--epochs", "0", "--out", "x"], "--epochs 0 must be a positive"),
])
def test_bad_command_lines(argv, message, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    if message is None:  # an HRN recipe name stays valid for the hierarchical models
        monkeypatch.setattr(cli, "_train", lambda args: 0)
        assert cli.main(argv) == 0
        return
    with pytest.raises(SystemExit, match=message) as err:
        cli.main(argv)
    if message == VALID_PAIRS:
        assert "hrn" in str(err.value) and "multishapes|voc2007|coco2014" in str(err.value)
    assert not (tmp_path / "x").exists()
