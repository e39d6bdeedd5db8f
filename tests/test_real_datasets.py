"""The real-dataset classes on miniature copies of their on-disk formats.

No network: the fixtures of ``fixtures_real`` write each dataset's real file
layout with a few tiny JPEGs, and ``download=True`` is tested with the archive
fetcher replaced by one that writes the fixture.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import loadmat, savemat
from torch.utils.data import DataLoader
from torchvision import transforms

import fixtures_real as fx
from hmglib import hierarchies
from hmglib.data import (
    CorruptImageError,
    DatasetFormatError,
    DatasetMismatchError,
    DatasetNotFoundError,
    DownloadUnavailableError,
    _io,
)
from hmglib.data.aircraft import BANNER_PX, FGVCAircraft3
from hmglib.data.cars import StanfordCars
from hmglib.data.coco import CATEGORIES, COCO2014, MissingExtraError
from hmglib.data.cub import CUB200
from hmglib.data.voc import CLASSES, VOC2007


def _fake_fetch(monkeypatch: pytest.MonkeyPatch, write) -> list[_io.Archive]:
    """Replace the network fetch by one that writes a fixture into the download root."""
    calls: list[_io.Archive] = []

    def fetch(archive: _io.Archive, root: Path) -> None:
        if not calls:
            write(root)
        calls.append(archive)

    monkeypatch.setattr(_io, "fetch_archive", fetch)
    return calls


def _no_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    def fetch(archive: _io.Archive, root: Path) -> None:
        raise AssertionError(f"download attempted ({archive.url}) although the data is there")

    monkeypatch.setattr(_io, "fetch_archive", fetch)


# ========================================================================= _io
def test_open_image_reads_rgb_and_names_corrupt_files(tmp_path: Path) -> None:
    good = fx.jpeg(tmp_path / "a.jpg", size=(20, 10))
    img = _io.open_image(good)
    assert img.mode == "RGB" and img.size == (20, 10)
    for name, damage in (("t.jpg", fx.truncate), ("g.jpg", fx.garbage)):
        bad = damage(fx.jpeg(tmp_path / name, size=(64, 64), seed=3))
        with pytest.raises(CorruptImageError, match=str(bad)) as info:
            _io.open_image(bad)
        assert info.value.path == bad and isinstance(info.value, OSError)
    with pytest.raises(DatasetNotFoundError, match="missing.jpg"):
        _io.open_image(tmp_path / "missing.jpg")


def test_data_root_env_override_and_repository_default(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    monkeypatch.setenv("HMG_DATA_ROOT", str(tmp_path / "elsewhere"))
    assert _io.data_root() == (tmp_path / "elsewhere").resolve()
    monkeypatch.delenv("HMG_DATA_ROOT")
    repo = Path(__file__).resolve().parents[1]
    assert _io.data_root() == repo / "data" / "datasets"
    ignored = (repo / ".gitignore").read_text().splitlines()
    assert "data/datasets/" in ignored


def test_sources_hold_addresses_and_checksums() -> None:
    assert set(_io.SOURCES) == {"cub200", "aircraft", "cars", "voc2007", "coco2014"}
    for name, src in _io.SOURCES.items():
        assert src.how and src.home.startswith("http"), name
        for archive in src.archives:
            assert archive.url.startswith("http") and len(archive.md5) == 32, archive
            int(archive.md5, 16)  # hexadecimal
    assert _io.SOURCES["cars"].archives == ()  # no working address
    assert "kaggle" in _io.SOURCES["cars"].how


def test_read_rows_names_file_and_line_of_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("1 2\n\n3 4 5\n")
    with pytest.raises(DatasetFormatError, match=r"t.txt' line 3.*<a> <b>"):
        _io.read_rows(path, 2, "<a> <b>")
    assert _io.read_rows(path, 2, "<a> <rest>", last_rest=True) == [["1", "2"], ["3", "4 5"]]


@pytest.mark.parametrize(("cls", "bad"), [
    (CUB200, "val"), (FGVCAircraft3, "training"), (StanfordCars, "val"), (VOC2007, "train"),
    (COCO2014, "test"),
])
def test_unknown_split_is_refused(cls, bad: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"unknown split='{bad}'"):
        cls(tmp_path, split=bad)


# ========================================================================= CUB
@pytest.fixture
def cub(tmp_path: Path) -> dict:
    return fx.write_cub(tmp_path)


def test_cub_loads_splits_with_tree_targets_boxes_and_parts(cub: dict, tmp_path: Path) -> None:
    tree = hierarchies.load("cub200")
    for split in ("train", "test"):
        ds = CUB200(tmp_path, split=split)
        rows = cub[split]
        assert len(ds) == 3 and ds.image_ids == [r[0] for r in rows]
        assert ds.classes[0] == "001.Black_footed_Albatross" and len(ds.classes) == 200
        assert ds.tree == tree
        for k, (image_id, file, class_id, (x, y, w, h)) in enumerate(rows):
            image, target = ds[k]
            assert isinstance(image, Image.Image) and image.size == (48, 40)
            assert target == tree.offset(-1) + class_id - 1
            assert tree.names[target] == file.split("/")[0]  # the folder names the species
            assert torch.equal(ds.box(k), torch.tensor([x, y, x + w, y + h]))
            parts = ds.parts(k)
            assert parts.shape == (15, 3)
            for p in range(15):
                visible = (image_id + p + 1) % 3 == 0
                want = [image_id + p + 1, 2 * (p + 1), 1.0] if visible else [0.0, 0.0, 0.0]
                assert parts[p].tolist() == want
    ds = CUB200(tmp_path, split="train")
    assert ds.part_names == fx.CUB_PARTS
    assert [tree.path_names(t)[:2] for t in ds.targets.tolist()] == [
        ["Procellariiformes", "Diomedeidae"], ["Charadriiformes", "Laridae"],
        ["Passeriformes", "Parulidae"]]
    assert ds.bboxes.shape == (3, 4) and ds.part_locs.shape == (3, 15, 3)


def test_cub_transforms_and_dataloader(cub: dict, tmp_path: Path) -> None:
    tf = transforms.Compose([transforms.Resize((16, 16)), transforms.ToTensor()])
    ds = CUB200(tmp_path, transform=tf, target_transform=lambda t: t - 250)
    image, target = ds[-1]
    assert image.shape == (3, 16, 16) and 0.0 <= image.min() and image.max() <= 1.0
    assert target == 249 - 250  # node 249 (class id 200), shifted by the target transform
    images, targets = next(iter(DataLoader(CUB200(tmp_path, transform=tf), batch_size=3)))
    assert images.shape == (3, 3, 16, 16) and targets.tolist() == [50, 133, 249]
    with pytest.raises(IndexError, match="outside the 3 samples"):
        ds[3]


def test_cub_root_may_be_the_dataset_folder_or_the_data_root(
        cub: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(CUB200(cub["base"], split="test")) == 3
    monkeypatch.setenv("HMG_DATA_ROOT", str(tmp_path))
    assert CUB200(split="test").root == cub["base"].resolve()


def test_cub_missing_folder_names_layout_and_source(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        CUB200(tmp_path / "nothing")
    msg = str(info.value)
    for part in ("images.txt", "parts/part_locs.txt", "Expected layout", "bounding_boxes.txt",
                 "data.caltech.edu", "download=True", "HMG_DATA_ROOT"):
        assert part in msg
    assert isinstance(info.value, FileNotFoundError)


def test_cub_incomplete_folder_names_the_missing_files(cub: dict, tmp_path: Path) -> None:
    (cub["base"] / "parts" / "part_locs.txt").unlink()
    with pytest.raises(DatasetNotFoundError,
                       match=r"incomplete: parts/part_locs.txt is missing"):
        CUB200(tmp_path)
    fx.write_cub(tmp_path)
    missing = cub["base"] / "images" / cub["test"][1][1]
    missing.unlink()
    with pytest.raises(DatasetNotFoundError, match="Red_Legged_Kittiwake_0002_796.jpg"):
        CUB200(tmp_path, split="test")
    assert len(CUB200(tmp_path, split="train")) == 3  # the other split is complete


@pytest.mark.parametrize("damage", [fx.truncate, fx.garbage])
def test_cub_corrupt_image_names_the_file(cub: dict, tmp_path: Path, damage) -> None:
    bad = damage(cub["base"] / "images" / cub["train"][1][1])
    ds = CUB200(tmp_path)
    ds[0]  # the others still load
    with pytest.raises(CorruptImageError, match="Red_Legged_Kittiwake_0001_795.jpg") as info:
        ds[1]
    assert info.value.path == bad


def test_cub_class_names_disagreeing_with_the_tree_are_listed(cub: dict, tmp_path: Path) -> None:
    path = cub["base"] / "classes.txt"
    text = path.read_text().replace("084.Red_legged_Kittiwake", "084.Red_Legged_Kittiwake")
    path.write_text(text.replace("141.Artic_Tern", "141.Arctic_Tern"))
    with pytest.raises(DatasetMismatchError) as info:
        CUB200(tmp_path)
    msg = str(info.value)
    assert "2 disagreement(s)" in msg and "class id 84" in msg and "class id 141" in msg
    assert "'141.Arctic_Tern' vs expected '141.Artic_Tern'" in msg


def test_cub_malformed_or_inconsistent_annotations(cub: dict, tmp_path: Path) -> None:
    boxes = cub["base"] / "bounding_boxes.txt"
    boxes.write_text(boxes.read_text().replace("3 10.0 8.0 35.0 28.0", "3 10.0 8.0 35.0"))
    with pytest.raises(DatasetFormatError, match=r"bounding_boxes.txt' line 3"):
        CUB200(tmp_path)
    fx.write_cub(tmp_path)
    labels = cub["base"] / "image_class_labels.txt"
    labels.write_text("\n".join(labels.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DatasetFormatError, match=r"image_class_labels.txt' has no line.*\[6\]"):
        CUB200(tmp_path)


def test_cub_download_fetches_the_official_archive_only_when_needed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_fetch(monkeypatch, fx.write_cub)
    ds = CUB200(tmp_path / "root", split="test", download=True)
    assert len(ds) == 3 and [a.filename for a in calls] == ["CUB_200_2011.tgz"]
    assert calls[0].md5 == "97eceeb196236b17998738112f37df78"
    assert "data.caltech.edu" in calls[0].url
    _no_fetch(monkeypatch)
    assert len(CUB200(tmp_path / "root", download=True)) == 3


# ==================================================================== Aircraft
@pytest.fixture
def aircraft(tmp_path: Path) -> dict:
    return fx.write_aircraft(tmp_path)


@pytest.mark.parametrize(("split", "n"), [("train", 3), ("val", 2), ("trainval", 5),
                                          ("test", 2)])
def test_aircraft_joins_three_levels_into_tree_targets(aircraft: dict, tmp_path: Path,
                                                       split: str, n: int) -> None:
    tree = hierarchies.load("aircraft")
    ds = FGVCAircraft3(tmp_path, split=split)
    rows = aircraft["images"][split]
    assert len(ds) == n and ds.image_ids == [r[0] for r in rows]
    assert ds.annotations == [r[1:] for r in rows]
    for k, (_, man, fam, var) in enumerate(rows):
        image, target = ds[k]
        assert image.size == (48, 40)
        assert target == tree.index(var, level="variant")
        assert target - tree.offset(-1) == ds.classes.index(var)
        assert tree.names[int(tree.lift(torch.tensor(target), "family"))] == fam
        assert tree.names[int(tree.lift(torch.tensor(target), "manufacturer"))] == man


def test_aircraft_matches_torchvision_and_exposes_boxes_and_file_hierarchy(
        aircraft: dict, tmp_path: Path) -> None:
    from torchvision.datasets import FGVCAircraft

    ds = FGVCAircraft3(tmp_path, split="trainval")
    for level in ("variant", "family", "manufacturer"):
        ref = FGVCAircraft(str(tmp_path), split="trainval", annotation_level=level)
        assert [ref.classes[y] for y in ref._labels] == [
            a[("manufacturer", "family", "variant").index(level)] for a in ds.annotations]
    ref = FGVCAircraft(str(tmp_path), split="trainval")
    assert ds.labels.tolist() == list(ref._labels)  # class ids agree with torchvision's
    first = aircraft["images"]["trainval"][0][0]
    assert ds.box(0).tolist() == list(aircraft["boxes"][first])
    files_tree = ds.hierarchy_from_files()
    assert files_tree.level_sizes == (4, 4, 4)
    assert files_tree.path_names(files_tree.index("F-16A/B")) == [
        "Lockheed Martin", "F-16", "F-16A/B"]


def test_aircraft_crop_banner(aircraft: dict, tmp_path: Path) -> None:
    full = FGVCAircraft3(tmp_path, split="test")[0][0]
    cropped = FGVCAircraft3(tmp_path, split="test", crop_banner=True)[0][0]
    assert full.size == (48, 40) and cropped.size == (48, 40 - BANNER_PX)
    assert np.array_equal(np.asarray(cropped), np.asarray(full)[: 40 - BANNER_PX])


def test_aircraft_names_disagreeing_with_the_tree_are_listed(aircraft: dict,
                                                             tmp_path: Path) -> None:
    data = aircraft["base"] / "data"
    fam = data / "images_family_train.txt"
    fam.write_text(fam.read_text().replace("1025794 Boeing 707", "1025794 Boeing 727"))
    fams = data / "families.txt"
    fams.write_text(fams.read_text().replace("Yak-42\n", "Yak-42D\n"))
    with pytest.raises(DatasetMismatchError) as info:
        FGVCAircraft3(tmp_path, split="train")
    msg = str(info.value)
    assert "variant '707-320'" in msg and "family 'Boeing 727'" in msg
    assert "'Boeing 707'" in msg
    assert "families.txt" in msg and "'Yak-42D'" in msg and "'Yak-42'" in msg
    variants = data / "variants.txt"
    fx.write_aircraft(tmp_path)
    variants.write_text(variants.read_text().replace("A310\n", "A-310\n"))
    with pytest.raises(DatasetMismatchError, match=r"line 23: dataset 'A-310' vs expected"):
        FGVCAircraft3(tmp_path, split="test")


def test_aircraft_inconsistent_annotation_files(aircraft: dict, tmp_path: Path) -> None:
    data = aircraft["base"] / "data"
    man = data / "images_manufacturer_val.txt"
    man.write_text(man.read_text().splitlines()[0] + "\n")
    with pytest.raises(DatasetFormatError, match=r"list different images.*0451331"):
        FGVCAircraft3(tmp_path, split="val")
    fam = data / "images_family_trainval.txt"
    fam.write_text(fam.read_text().replace("0451331 Boeing 707", "0451331 Boeing 727"))
    with pytest.raises(DatasetFormatError, match=r"variant '707-320' has two parents"):
        FGVCAircraft3(tmp_path, split="trainval")


def test_aircraft_missing_and_corrupt(aircraft: dict, tmp_path: Path) -> None:
    data = aircraft["base"] / "data"
    (data / "images_family_test.txt").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        FGVCAircraft3(tmp_path, split="test")
    msg = str(info.value)
    assert "data/images_family_test.txt is missing" in msg and "robots.ox.ac.uk" in msg
    assert "images_manufacturer_<split>.txt" in msg  # the layout
    assert len(FGVCAircraft3(tmp_path, split="train")) == 3
    fx.truncate(data / "images" / "0056978.jpg")
    ds = FGVCAircraft3(tmp_path, split="train")
    with pytest.raises(CorruptImageError, match="0056978.jpg"):
        ds[1]
    (data / "images_box.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="images_box.txt"):
        ds.box(0)
    (data / "images" / "1340192.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match="data/images/1340192.jpg"):
        FGVCAircraft3(tmp_path, split="train")


def test_aircraft_download_fetches_torchvisions_archive(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import FGVCAircraft

    calls = _fake_fetch(monkeypatch, fx.write_aircraft)
    assert len(FGVCAircraft3(tmp_path, split="val", download=True)) == 2
    assert [a.url for a in calls] == [FGVCAircraft._URL]
    _no_fetch(monkeypatch)
    assert len(FGVCAircraft3(tmp_path, split="test", download=True)) == 2


# ======================================================================== Cars
@pytest.fixture
def cars(tmp_path: Path) -> dict:
    return fx.write_cars(tmp_path)


@pytest.mark.parametrize("split", ["train", "test"])
def test_cars_loads_devkit_with_tree_targets_and_boxes(cars: dict, tmp_path: Path,
                                                       split: str) -> None:
    from torchvision.datasets import StanfordCars as TorchvisionCars

    tree = hierarchies.load("cars")
    ds = StanfordCars(tmp_path, split=split)
    rows = cars["annotations"][split]
    assert len(ds) == len(rows) and len(ds.classes) == 196
    assert ds.classes[-1] == "smart fortwo Convertible 2012"
    for k, (fname, class_id, box) in enumerate(rows):
        image, target = ds[k]
        assert image.size == (48, 40) and ds.paths[k].name == fname
        assert target == tree.offset(-1) + class_id - 1
        assert ds.box(k).tolist() == list(box)
    ref = TorchvisionCars(str(tmp_path), split=split)
    assert [t for _, t in ref._samples] == ds.labels.tolist()
    assert ref.classes == ds.classes
    types = [tree.names[int(n)] for n in tree.lift(ds.targets, "type")]
    assert types == {"train": ["Coupe", "SUV", "Convertible"],
                     "test": ["Sedan", "Convertible"]}[split]


def test_cars_download_is_refused_with_instructions(cars: dict, tmp_path: Path) -> None:
    with pytest.raises(DownloadUnavailableError) as info:
        StanfordCars(tmp_path, download=True)
    msg = str(info.value)
    assert "kaggle.com" in msg and "car_devkit.tgz" in msg and "cars_test_annos_withlabels" in msg


def test_cars_missing_files_and_unlabelled_test_annotations(cars: dict, tmp_path: Path) -> None:
    base = cars["base"]
    (base / "cars_test_annos_withlabels.mat").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        StanfordCars(tmp_path, split="test")
    assert "cars_test_annos_withlabels.mat is missing" in str(info.value)
    assert "kaggle" in str(info.value)
    assert len(StanfordCars(tmp_path, split="train")) == 3
    shutil.copy(base / "devkit" / "cars_test_annos.mat", base / "cars_test_annos_withlabels.mat")
    with pytest.raises(DatasetFormatError, match=r"lack the field\(s\) \['class'\]"):
        StanfordCars(tmp_path, split="test")
    (base / "devkit" / "cars_meta.mat").write_bytes(b"not a mat file")
    with pytest.raises(DatasetFormatError, match="cars_meta.mat' is not a readable"):
        StanfordCars(tmp_path)


def test_cars_class_names_disagreeing_with_the_tree_are_listed(cars: dict,
                                                               tmp_path: Path) -> None:
    path = cars["base"] / "devkit" / "cars_meta.mat"
    names = loadmat(str(path))["class_names"]  # (1, 196) cell
    names[0, 1] = np.array(["Acura RL 2012"])
    savemat(str(path), {"class_names": names})
    with pytest.raises(DatasetMismatchError) as info:
        StanfordCars(tmp_path)
    assert "class id 2: dataset 'Acura RL 2012' vs expected 'Acura RL Sedan 2012'" in str(
        info.value)


def test_cars_corrupt_and_missing_images(cars: dict, tmp_path: Path) -> None:
    fx.garbage(cars["base"] / "cars_train" / "00002.jpg")
    ds = StanfordCars(tmp_path)
    with pytest.raises(CorruptImageError, match="cars_train/00002.jpg"):
        ds[1]
    (cars["base"] / "cars_test" / "00002.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match="cars_test/00002.jpg"):
        StanfordCars(tmp_path, split="test")


# ========================================================================= VOC
@pytest.fixture
def voc(tmp_path: Path) -> dict:
    return fx.write_voc(tmp_path)


def _vector(*names: str) -> list[float]:
    return [1.0 if c in names else 0.0 for c in CLASSES]


def test_voc_multilabel_vectors_difficult_rule_and_objects(voc: dict, tmp_path: Path) -> None:
    ds = VOC2007(tmp_path)
    assert ds.image_ids == ["000005", "000007"] and len(CLASSES) == 20
    image, target = ds[0]
    assert image.size == (48, 40) and target.dtype == torch.float32 and target.shape == (20,)
    # chair: one plain and one difficult object -> 1; pottedplant: difficult only -> 0
    assert target.tolist() == _vector("chair")
    assert ds.difficult_only[0].nonzero().flatten().tolist() == [CLASSES.index("pottedplant")]
    assert ds[1][1].tolist() == _vector("car")
    positive = VOC2007(tmp_path, difficult="positive")
    assert positive[0][1].tolist() == _vector("chair", "pottedplant")
    assert torch.equal(positive.difficult_only, ds.difficult_only)
    objects = ds.objects(0)
    assert objects["boxes"].tolist() == [[3, 4, 20, 30], [22, 5, 30, 25], [31, 2, 45, 20]]
    assert [CLASSES[c] for c in objects["labels"]] == ["chair", "chair", "pottedplant"]
    assert objects["difficult"].tolist() == [False, True, True]
    test = VOC2007(tmp_path, split="test")
    assert test.targets.tolist() == [_vector("dog", "person"), _vector("car")]
    assert test.objects(1)["boxes"].shape == (2, 4)
    assert len(VOC2007(voc["base"])) == 2  # root may be VOC2007/ itself


def test_voc_agrees_with_torchvision_parser(voc: dict, tmp_path: Path) -> None:
    from torchvision.datasets import VOCDetection

    ref = VOCDetection(str(tmp_path), year="2007", image_set="test")
    ds = VOC2007(tmp_path, split="test")
    for k in range(len(ds)):
        objs = ref[k][1]["annotation"]["object"]
        assert [CLASSES[c] for c in ds.objects(k)["labels"]] == [o["name"] for o in objs]
        assert ds.objects(k)["boxes"].tolist() == [
            [float(o["bndbox"][key]) for key in ("xmin", "ymin", "xmax", "ymax")] for o in objs]


def test_voc_bad_inputs(voc: dict, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="difficult='ignore'"):
        VOC2007(tmp_path, difficult="ignore")
    base = voc["base"]
    xml = base / "Annotations" / "000007.xml"
    xml.write_text(xml.read_text().replace("<name>car</name>", "<name>automobile</name>"))
    with pytest.raises(DatasetMismatchError, match=r"000007.xml' has an object of class "
                                                       r"'automobile'"):
        VOC2007(tmp_path)
    xml.write_text("<annotation><object>")
    with pytest.raises(DatasetFormatError, match="000007.xml' is not valid XML"):
        VOC2007(tmp_path)
    xml.unlink()
    with pytest.raises(DatasetNotFoundError, match="Annotations/000007.xml"):
        VOC2007(tmp_path)
    with pytest.raises(DatasetNotFoundError) as info:
        VOC2007(tmp_path / "empty")
    msg = str(info.value)
    assert "ImageSets/Main/trainval.txt" in msg and "VOCtrainval_06-Nov-2007.tar" in msg
    fx.garbage(base / "JPEGImages" / "000004.jpg")
    with pytest.raises(CorruptImageError, match="JPEGImages/000004.jpg"):
        VOC2007(tmp_path, split="test")[1]


def test_voc_download_fetches_only_the_splits_archive(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_fetch(monkeypatch, fx.write_voc)
    assert len(VOC2007(tmp_path, split="test", download=True)) == 2
    assert [a.filename for a in calls] == ["VOCtest_06-Nov-2007.tar"]
    assert calls[0].md5 == "b6e924de25625d8de591ea690078ad9f"


# ======================================================================== COCO
@pytest.fixture
def coco(tmp_path: Path) -> dict:
    return fx.write_coco(tmp_path / "coco")


def _coco_vector(*category_ids: int) -> list[float]:
    return [1.0 if cid in category_ids else 0.0 for cid, _ in CATEGORIES]


def test_coco_categories_are_the_80_in_id_order() -> None:
    ids = [cid for cid, _ in CATEGORIES]
    assert len(ids) == 80 and ids == sorted(ids) and ids[0] == 1 and ids[-1] == 90
    assert sorted(set(range(1, 91)) - set(ids)) == [12, 26, 29, 30, 45, 66, 68, 69, 71, 83]
    assert CATEGORIES[0] == (1, "person") and CATEGORIES[79] == (90, "toothbrush")
    assert [(i, n) for i, n, _ in fx.COCO_CATEGORIES] == list(CATEGORIES)


def test_coco_json_backend_multilabel_vectors(coco: dict, tmp_path: Path) -> None:
    ds = COCO2014(tmp_path / "coco", backend="json")
    assert ds.backend == "json" and ds.image_ids == [9, 25, 30] and len(ds.classes) == 80
    image, target = ds[0]
    assert image.size == (48, 40) and target.shape == (80,) and target.dtype == torch.float32
    assert target.tolist() == _coco_vector(1, 18)
    assert ds[1][1].tolist() == _coco_vector(1, 90)  # the crowd 'person' counts
    assert ds[2][1].tolist() == _coco_vector()  # kept, without annotations
    assert ds.paths[0].name == "COCO_train2014_000000000009.jpg"
    objects = ds.objects(1)
    assert objects["boxes"].tolist() == [[0, 0, 48, 20], [10, 10, 15, 15]]
    assert objects["labels"].tolist() == [0, 79] and objects["iscrowd"].tolist() == [True, False]
    no_crowd = COCO2014(tmp_path / "coco", backend="json", include_crowd=False)
    assert no_crowd[1][1].tolist() == _coco_vector(90)
    assert COCO2014(tmp_path / "coco", backend="json", skip_empty=True).image_ids == [9, 25]
    val = COCO2014(tmp_path / "coco", split="val", backend="json")
    assert val.targets.tolist() == [_coco_vector(62, 67), _coco_vector(5)]
    assert val.category_ids[val.targets[1].argmax()] == 5


def test_coco_pycocotools_backend_agrees_with_json(coco: dict, tmp_path: Path) -> None:
    pytest.importorskip("pycocotools", reason="the optional 'coco' extra is not installed")
    for split in ("train", "val"):
        ref = COCO2014(tmp_path / "coco", split=split, backend="json")
        ds = COCO2014(tmp_path / "coco", split=split, backend="pycocotools")
        assert ds.image_ids == ref.image_ids and torch.equal(ds.targets, ref.targets)
        for k in range(len(ds)):
            assert all(torch.equal(ds.objects(k)[key], ref.objects(k)[key])
                       for key in ("boxes", "labels", "iscrowd"))
    assert COCO2014(tmp_path / "coco").backend == "pycocotools"


def test_coco_missing_extra_names_it(coco: dict, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pycocotools", None)  # import pycocotools -> ImportError
    monkeypatch.setitem(sys.modules, "pycocotools.coco", None)
    with pytest.raises(MissingExtraError, match=r'pip install "hmglib\[coco\]"') as info:
        COCO2014(tmp_path / "coco", backend="pycocotools")
    assert isinstance(info.value, ImportError)
    assert COCO2014(tmp_path / "coco").backend == "json"  # auto falls back
    with pytest.raises(ValueError, match="backend='coco'"):
        COCO2014(tmp_path / "coco", backend="coco")


def test_coco_bad_inputs(coco: dict, tmp_path: Path) -> None:
    root = tmp_path / "coco"
    with pytest.raises(DatasetNotFoundError) as info:
        COCO2014(tmp_path / "nothing", backend="json")
    msg = str(info.value)
    assert "annotations/instances_train2014.json" in msg and "train2014" in msg
    assert "cocodataset.org" in msg
    path = root / "annotations" / "instances_val2014.json"
    path.write_text(path.read_text().replace('"name": "toothbrush"', '"name": "tooth brush"'))
    with pytest.raises(DatasetMismatchError, match=r"unexpected \[\(90, 'tooth brush'\)\]"):
        COCO2014(root, split="val", backend="json")
    path.write_text("{not json")
    with pytest.raises(DatasetFormatError, match="instances_val2014.json' is not valid json"):
        COCO2014(root, split="val", backend="json")
    fx.truncate(root / "train2014" / fx.coco_file_name("train", 25))
    with pytest.raises(CorruptImageError, match="COCO_train2014_000000000025.jpg"):
        COCO2014(root, backend="json")[1]
    (root / "train2014" / fx.coco_file_name("train", 30)).unlink()
    with pytest.raises(DatasetNotFoundError, match="COCO_train2014_000000000030.jpg"):
        COCO2014(root, backend="json")


def test_coco_download_fetches_annotations_and_the_splits_images(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_fetch(monkeypatch, fx.write_coco)
    ds = COCO2014(tmp_path / "c", split="val", download=True, backend="json")
    assert len(ds) == 2
    assert [a.filename for a in calls] == ["annotations_trainval2014.zip", "val2014.zip"]
