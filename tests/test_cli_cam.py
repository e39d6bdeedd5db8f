"""`hmg cam`: class activation maps of a trained run, scored against its boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib import image as mpimg
from torchvision.transforms import v2

from fixtures_real import write_cub, write_voc
from hmglib import cam, cli

TINY = ["--epochs", "1", "--samples-per-class", "4", "--image-size", "16", "--batch-size", "16",
        "--quiet"]
SCORE_COLUMNS = ["pointing/object", "energy/object", "pointing/part", "energy/part"]


@pytest.fixture(scope="module")
def hrn_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hrn") / "run"
    assert cli.main(["train", "hrn", "--relabel", "0.5", "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture(scope="module")
def cub_run(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("cub")
    write_cub(base / "data")
    out = base / "run"
    assert cli.main(["train", "hrn", "--dataset", "cub200", "--root", str(base / "data"),
                     "--backbone", "small_cnn", "--epochs", "1", "--batch-size", "2",
                     "--quiet", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def sarb_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sarb") / "run"
    assert cli.main(["train", "sarb", "--epochs", "1", "--num-images", "32", "--quiet",
                     "--out", str(out)]) == 0
    return out


def load(run: Path) -> tuple[dict, torch.nn.Module, object]:
    cfg = cli.read_run_config(run)
    if cfg.get("kind") == "multilabel":
        model, test, _ = cli.load_multilabel_run(run, cfg)
    else:
        model, test, _, _ = cli.load_hierarchical_run(run, cfg)
    return cfg, model.eval(), test


def brute_force_scores(heat: np.ndarray, boxes: np.ndarray) -> tuple[float, float]:
    """(pointing, energy) of one (H, W) map against (K, 4) boxes, pixel by pixel: a pixel
    is in a box when its centre is; the peak is the first maximal pixel, row by row."""
    h, w = heat.shape
    inside = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in boxes[~np.isnan(boxes).all(1)]:
        for y in range(h):
            for x in range(w):
                inside[y, x] |= x0 <= x + 0.5 < x1 and y0 <= y + 0.5 < y1
    if heat.max() == heat.min():
        pointing = 0.0  # a flat map points nowhere
    else:
        pointing = float(inside.flat[int(np.argmax(heat))])
    energy = float(heat[inside].sum() / heat.sum()) if heat.sum() > 0 else float("nan")
    return pointing, energy


def check_scores_table(out: Path, columns: list[str]) -> pd.DataFrame:
    table = pd.read_csv(out / "scores.csv")
    assert list(table.columns) == ["index", "level", "class", "name", *columns]
    for c in columns:
        values = table[c].dropna()
        assert len(values) > 0 and values.between(0.0, 1.0).all(), c
        if c.startswith("pointing/"):
            assert set(values.unique()) <= {0.0, 1.0}
    return table


# ------------------------------------------------------------------ HierShapes (hrn)
def test_cam_on_hiershapes(hrn_run, tmp_path, capsys) -> None:
    out = tmp_path / "cams"
    assert cli.main(["cam", str(hrn_run), "--images", "5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    levels = ["order", "family", "species"]
    expected = {f"{i:03d}_{lv}.png" for i in range(5) for lv in levels}
    assert {p.name for p in out.glob("*.png")} == expected
    picture = mpimg.imread(out / "003_species.png")
    assert picture.shape[:2] == (128, 128) and picture.shape[2] in (3, 4)  # 16 px, x 8

    saved = np.load(out / "maps.npz")
    assert set(saved.files) == {"maps", "index", "level", "class", "name"}
    maps = saved["maps"]
    assert maps.shape == (15, 16, 16) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    assert saved["level"].tolist() == [lv for lv in levels for _ in range(5)]
    assert saved["index"].tolist() == list(range(5)) * 3

    # the true class at each level: the test label's ancestor, within its level
    cfg, model, test = load(hrn_run)
    tree = test.tree
    for row, (i, lv) in enumerate(zip(saved["index"], saved["level"], strict=True)):
        leaf = int(test[int(i)][1])
        node = int(tree.path(leaf)[levels.index(str(lv))])
        assert int(saved["class"][row]) == node - tree.offset(str(lv))
        assert saved["name"][row] == tree.names[node]

    # the maps are the library's level maps of those classes
    images = torch.stack([test[i][0] for i in range(5)])
    again = cam.level_cam(model, images, "family", torch.as_tensor(saved["class"][5:10]))
    torch.testing.assert_close(torch.from_numpy(maps[5:10]), again, atol=1e-5, rtol=0)

    # every score, recomputed pixel by pixel against the canvas boxes (no transform)
    table = check_scores_table(out, SCORE_COLUMNS)
    for row in table.itertuples():
        boxes = test.boxes(row.index)
        for kind, box in (("object", boxes.object), ("part", boxes.part)):
            pointing, energy = brute_force_scores(maps[row.Index], box[None].numpy())
            assert table.loc[row.Index, f"pointing/{kind}"] == pointing
            got = table.loc[row.Index, f"energy/{kind}"]
            assert got == pytest.approx(energy, abs=1e-5, nan_ok=True)

    assert "hrn on hiershapes, 5 test images, gradcam, true classes: 15 maps" in printed
    for name in (*levels, "(centre prior)", "(random map)", *SCORE_COLUMNS):
        assert name in printed
    summary = printed.split("per map in scores.csv\n", 1)[1]
    order_row = next(line for line in summary.splitlines() if line.startswith("order"))
    hits = 100.0 * table.loc[table["level"] == "order", "pointing/object"].mean()
    assert float(order_row.split()[2]) == pytest.approx(hits, abs=0.05)


def test_cam_levels_and_predicted_classes(hrn_run, tmp_path) -> None:
    out = tmp_path / "cams"
    assert cli.main(["cam", str(hrn_run), "--level", "species", "0", "--images", "2",
                     "--classes", "predicted", "--method", "gradcam++", "--out",
                     str(out)]) == 0
    assert {p.name for p in out.glob("*.png")} == {"000_species.png", "001_species.png",
                                                   "000_order.png", "001_order.png"}
    saved = np.load(out / "maps.npz")
    assert saved["level"].tolist() == ["species", "species", "order", "order"]
    _, model, test = load(hrn_run)
    with torch.no_grad():
        logits = model(torch.stack([test[i][0] for i in range(2)])).level_logits
    assert saved["class"].tolist() == [*logits[2].argmax(1).tolist(),
                                       *logits[0].argmax(1).tolist()]


def test_coarse_labelled_images_are_left_out_at_finer_levels(hrn_run) -> None:
    _, model, test = load(hrn_run)
    tree = test.tree
    leaf = int(test[1][1])
    family, order = (int(n) for n in tree.ancestors(leaf).flip(0))  # parent first
    labelled = [(test[0][0], order), (test[1][0], leaf), (test[2][0], family)]
    cams = cli._hierarchical_cams(model, labelled, tree, [0, 1, 2], 3, "gradcam", "true",
                             torch.device("cpu"))
    assert cams.level == ["order"] * 3 + ["family"] * 2 + ["species"]
    assert cams.index == [0, 1, 2, 1, 2, 1]
    assert cams.maps.shape == (6, 16, 16)
    assert cams.notes == [
        "level family: images [0] have a coarser label (no family class to explain): left "
        "out at this level.",
        "level species: images [0, 2] have a coarser label (no species class to explain): "
        "left out at this level."]
    assert not cams.has_boxes  # a plain list of samples has no boxes


# ------------------------------------------------------------------ CUB-200-2011
def test_cam_on_a_cub_copy_scores_the_bird_and_its_parts(cub_run, tmp_path, capsys) -> None:
    out = tmp_path / "cams"
    assert cli.main(["cam", str(cub_run), "--out", str(out)]) == 0  # 8 asked, 3 there
    printed = capsys.readouterr().out
    assert "hrn on cub200, 3 test images" in printed and "pointing/part" in printed
    levels = ["order", "family", "species"]
    assert {p.name for p in out.glob("*.png")} == {f"{i:03d}_{lv}.png" for i in range(3)
                                                   for lv in levels}
    assert mpimg.imread(out / "002_family.png").shape[:2] == (448, 448)
    maps = np.load(out / "maps.npz")["maps"]
    assert maps.shape == (9, 448, 448)
    table = check_scores_table(out, SCORE_COLUMNS)
    assert table["energy/part"].notna().sum() > 0

    # image 2's bird box (2, 5, 22, 35) moved by the test pipeline (x 13.75, crop corner
    # (106, 51)) is (0, 17.75, 196.5, 430.25): the pixels of columns 0..195, rows 18..429
    inside = np.zeros((448, 448), bool)
    inside[18:430, 0:196] = True
    for row in table[table["index"] == 0].itertuples():
        heat = maps[row.Index]
        share = heat[inside].sum() / heat.sum() if heat.sum() > 0 else float("nan")
        assert table.loc[row.Index, "energy/object"] == pytest.approx(share, abs=1e-5,
                                                                     nan_ok=True)
    # the parts: the union of the visible parts' squares, pixel by pixel
    _, _, test = load(cub_run)
    for row in table.itertuples():
        parts = test.evidence_boxes(row.index)["part"].numpy()
        pointing, energy = brute_force_scores(maps[row.Index], parts)
        assert table.loc[row.Index, "pointing/part"] == pointing
        assert table.loc[row.Index, "energy/part"] == pytest.approx(energy, abs=1e-5,
                                                                   nan_ok=True)


def test_the_overlays_show_the_image_the_model_saw(cub_run) -> None:
    _, _, test = load(cub_run)
    image, _ = test[1]  # (3, 448, 448) in [-1, 1]
    shown = cli._display_images(image[None], test.transform)[0]
    geometry = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                           v2.Resize(550, antialias=True), v2.CenterCrop(448)])
    torch.testing.assert_close(shown, geometry(test.image(1)).clamp(0, 1), atol=1e-5, rtol=0)


# ------------------------------------------------------------------ multi-label runs
def test_cam_on_a_multishapes_sarb_run(sarb_run, tmp_path, capsys) -> None:
    out = tmp_path / "cams"
    assert cli.main(["cam", str(sarb_run), "--images", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sarb on multishapes, 3 test images" in printed
    _, model, test = load(sarb_run)
    present = [(i, c) for i in range(3) for c in range(len(test.class_names))
               if float(test[i][1][c]) == 1.0]
    # "green diamond" -> 000_green-diamond.png
    names = {f"{i:03d}_{test.class_names[c].replace(' ', '-')}.png" for i, c in present}
    assert {p.name for p in out.glob("*.png")} == names
    saved = np.load(out / "maps.npz")
    assert list(zip(saved["index"].tolist(), saved["class"].tolist(), strict=True)) == present
    assert set(saved["level"].tolist()) == {"class"}
    table = check_scores_table(out, ["pointing/object", "energy/object"])
    for row in table.itertuples():  # the boxes of the explained class's objects only
        objects = test.boxes(row.index)
        mine = objects.boxes[objects.labels == table.loc[row.Index, "class"]].numpy()
        pointing, energy = brute_force_scores(saved["maps"][row.Index], mine)
        assert table.loc[row.Index, "pointing/object"] == pointing
        assert table.loc[row.Index, "energy/object"] == pytest.approx(energy, abs=1e-5,
                                                                     nan_ok=True)

    assert cli.main(["cam", str(sarb_run), "--images", "2", "--classes", "predicted",
                     "--out", str(tmp_path / "predicted")]) == 0
    with torch.no_grad():
        probs = model(torch.stack([test[i][0] for i in range(2)])).probabilities()
    chosen = [(i, c) for i in range(2) for c in range(probs.shape[1]) if probs[i, c] >= 0.5]
    for i in range(2):
        if not any(j == i for j, _ in chosen):
            chosen.append((i, int(probs[i].argmax())))
    saved = np.load(tmp_path / "predicted" / "maps.npz")
    assert sorted(zip(saved["index"].tolist(), saved["class"].tolist(), strict=True)) == sorted(
        chosen)


def test_cam_on_a_dataset_without_boxes_writes_no_scores(tmp_path, capsys) -> None:
    write_voc(tmp_path / "data")
    run = tmp_path / "run"
    assert cli.main(["train", "linear", "--dataset", "voc2007", "--root", str(tmp_path / "data"),
                     "--backbone", "small_cnn", "--weights", "none", "--epochs", "1",
                     "--batch-size", "2", "--image-size", "32", "--quiet", "--out",
                     str(run)]) == 0
    moved = tmp_path / "moved"
    (tmp_path / "data").rename(moved)
    out = tmp_path / "cams"
    assert cli.main(["cam", str(run), "--root", str(moved), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "no scores: --dataset voc2007 has no boxes" in printed
    # the copy's test images: 000001 (dog, person) and 000004 (car)
    assert {p.name for p in out.glob("*")} == {"000_dog.png", "000_person.png", "001_car.png",
                                               "maps.npz"}


# ------------------------------------------------------------------ bad command lines
def test_bad_cam_command_lines(hrn_run, sarb_run, tmp_path, capsys) -> None:
    out = tmp_path / "x"
    no_checkpoint = tmp_path / "empty"
    no_checkpoint.mkdir()
    (no_checkpoint / "config.json").write_text((hrn_run / "config.json").read_text())
    cases = [
        (["cam", "/nonexistent/run"], "hmg cam: '/nonexistent/run' has no config.json"),
        (["cam", str(no_checkpoint)], "has no checkpoint"),
        (["cam", str(hrn_run), "--level", "genus"],
         r"--level genus is not a level of the run's tree \['order', 'family', 'species'\]"),
        (["cam", str(hrn_run), "--level", "3"], "--level 3 is not a level"),
        (["cam", str(hrn_run), "--images", "0"], "--images 0 must be a positive integer"),
        (["cam", str(sarb_run), "--level", "class"], "--level applies to hierarchical runs"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit, match=message):
            cli.main([*argv, "--out", str(out)])
        assert not out.exists()  # nothing written for a command that cannot run
    with pytest.raises(SystemExit):
        cli.main(["cam", str(hrn_run), "--method", "lime", "--out", str(out)])
    assert "invalid choice: 'lime'" in capsys.readouterr().err


def test_the_command_names_the_librarys_methods() -> None:
    assert cli.CAM_METHODS == tuple(cam.METHODS)
