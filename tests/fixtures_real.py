"""Miniature copies of the real datasets' on-disk formats, for the loader tests.

Each ``write_*`` function writes, under a folder, the files one real dataset
ships, with the real file names, columns and formats (whitespace tables, MATLAB
struct arrays, VOC XML, COCO instances json) but a handful of small JPEGs.
Class-name lists (``classes.txt``, ``variants.txt``, ``cars_meta.mat`` …) hold the
dataset's full lists, which are exactly the leaf names of the shipped
hierarchies (``data/hierarchies/*.csv`` were built from them), so the loaders'
name checks pass on an unmodified fixture. Each function returns the facts the
tests assert (the split members, their class ids, boxes), written here by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import savemat

from hmglib import hierarchies

__all__ = [
    "jpeg", "truncate", "garbage",
    "write_cub", "write_aircraft", "write_cars", "write_voc", "write_coco",
    "CUB_PARTS",
]


def jpeg(path: Path, size: tuple[int, int] = (48, 40), seed: int = 0) -> Path:
    """Write a small RGB JPEG (a colour ramp, distinct per ``seed``) of ``size`` (w, h)."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 200, size=3)
    ramp = np.linspace(0, 55, w, dtype=np.float64)[None, :, None]  # (1, W, 1)
    pixels = np.broadcast_to(base[None, None, :] + ramp, (h, w, 3)).astype(np.uint8)  # (H, W, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG", quality=85)
    return path


def truncate(path: Path) -> Path:
    """Cut a JPEG to its first 60 % of bytes (a truncated download)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


def garbage(path: Path) -> Path:
    """Replace a file's bytes with bytes that are no image."""
    path.write_bytes(b"this is not a JPEG file\x00\x01\x02" * 8)
    return path


def _leaf_names(name: str, level: int | str = -1) -> list[str]:
    tree = hierarchies.load(name)
    return [tree.names[n] for n in tree.nodes_at(level).tolist()]


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


# ------------------------------------------------------------------------ CUB
CUB_PARTS = ["back", "beak", "belly", "breast", "crown", "forehead", "left eye", "left leg",
             "left wing", "nape", "right eye", "right leg", "right wing", "tail", "throat"]


def write_cub(root: Path) -> dict:
    """Write ``root/CUB_200_2011/`` with 6 images of 3 species (3 train, 3 test).

    Returns:
        ``{"base", "train", "test"}``: the folder, and per split a list of
        ``(image_id, relative file, class_id, (x, y, w, h))``.
    """
    base = root / "CUB_200_2011"
    classes = _leaf_names("cub200")
    _write(base / "classes.txt", [f"{k + 1} {c}" for k, c in enumerate(classes)])
    images = [  # (id, file, class id, is_train, box x y w h)
        (1, "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg", 1, 1,
         (4.0, 3.0, 30.0, 25.0)),
        (2, "001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg", 1, 0,
         (2.0, 5.0, 20.0, 30.0)),
        (3, "084.Red_legged_Kittiwake/Red_Legged_Kittiwake_0001_795.jpg", 84, 1,
         (10.0, 8.0, 35.0, 28.0)),
        (4, "084.Red_legged_Kittiwake/Red_Legged_Kittiwake_0002_796.jpg", 84, 0,
         (0.0, 0.0, 47.0, 39.0)),
        (5, "200.Common_Yellowthroat/Common_Yellowthroat_0003_190521.jpg", 200, 1,
         (6.0, 6.0, 12.0, 14.0)),
        (6, "200.Common_Yellowthroat/Common_Yellowthroat_0005_190703.jpg", 200, 0,
         (1.0, 2.0, 3.0, 4.0)),
    ]
    _write(base / "images.txt", [f"{i} {f}" for i, f, *_ in images])
    _write(base / "image_class_labels.txt", [f"{i} {c}" for i, _, c, *_ in images])
    _write(base / "train_test_split.txt", [f"{i} {t}" for i, _, _, t, _ in images])
    _write(base / "bounding_boxes.txt",
           [f"{i} {b[0]} {b[1]} {b[2]} {b[3]}" for i, _, _, _, b in images])
    _write(base / "parts" / "parts.txt", [f"{k + 1} {p}" for k, p in enumerate(CUB_PARTS)])
    locs = []
    for i, *_ in images:
        for p in range(1, 16):
            visible = int((i + p) % 3 == 0)  # a third of the parts visible
            x, y = (float(i + p), float(2 * p)) if visible else (0.0, 0.0)
            locs.append(f"{i} {p} {x} {y} {visible}")
    _write(base / "parts" / "part_locs.txt", locs)
    for i, f, *_ in images:
        jpeg(base / "images" / f, seed=i)
    return {
        "base": base,
        "train": [(i, f, c, b) for i, f, c, t, b in images if t == 1],
        "test": [(i, f, c, b) for i, f, c, t, b in images if t == 0],
    }


# ------------------------------------------------------------------- Aircraft
AIRCRAFT_IMAGES = {  # split -> [(image id, manufacturer, family, variant)]
    "train": [("1025794", "Boeing", "Boeing 707", "707-320"),
              ("0056978", "Airbus", "A310", "A310"),
              ("1340192", "Lockheed Martin", "F-16", "F-16A/B")],
    "val": [("2233285", "Cessna", "Cessna 172", "Cessna 172"),
            ("0451331", "Boeing", "Boeing 707", "707-320")],
    "test": [("1514522", "Yakovlev", "Yak-42", "Yak-42"),
             ("0062765", "de Havilland", "DHC-1", "DHC-1")],
}


def write_aircraft(root: Path) -> dict:
    """Write ``root/fgvc-aircraft-2013b/data/`` with 7 images (train 3, val 2, test 2;
    trainval = train + val) and the boxes of ``images_box.txt``.

    Returns:
        ``{"base", "images": {split: [(id, manufacturer, family, variant)]}, "boxes"}``.
    """
    base = root / "fgvc-aircraft-2013b"
    data = base / "data"
    _write(data / "variants.txt", _leaf_names("aircraft"))
    _write(data / "families.txt", sorted(_leaf_names("aircraft", "family")))
    _write(data / "manufacturers.txt", sorted(_leaf_names("aircraft", "manufacturer")))
    splits = dict(AIRCRAFT_IMAGES)
    splits["trainval"] = AIRCRAFT_IMAGES["train"] + AIRCRAFT_IMAGES["val"]
    for split, rows in splits.items():
        _write(data / f"images_variant_{split}.txt", [f"{i} {v}" for i, _, _, v in rows])
        _write(data / f"images_family_{split}.txt", [f"{i} {f}" for i, _, f, _ in rows])
        _write(data / f"images_manufacturer_{split}.txt", [f"{i} {m}" for i, m, _, _ in rows])
    boxes = {}
    for k, (i, *_) in enumerate(splits["trainval"] + AIRCRAFT_IMAGES["test"]):
        boxes[i] = (3.0 + k, 2.0, 40.0, 15.0 + k)
        jpeg(data / "images" / f"{i}.jpg", size=(48, 40), seed=100 + k)
    _write(data / "images_box.txt", [f"{i} {int(b[0])} {int(b[1])} {int(b[2])} {int(b[3])}"
                                     for i, b in boxes.items()])
    return {"base": base, "images": splits, "boxes": boxes}


# ----------------------------------------------------------------------- Cars
CARS_ANNOTATIONS = {  # split -> [(fname, class id, (x1, y1, x2, y2))]
    "train": [("00001.jpg", 14, (3, 4, 40, 30)),
              ("00002.jpg", 1, (1, 1, 47, 39)),
              ("00003.jpg", 196, (5, 6, 25, 20))],
    "test": [("00001.jpg", 181, (2, 3, 44, 35)),
             ("00002.jpg", 103, (7, 8, 30, 31))],
}


def _struct_array(rows: list[tuple[str, int, tuple[int, int, int, int]]],
                  with_class: bool = True) -> np.ndarray:
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", *(["class"] if with_class else []),
              "fname"]
    arr = np.zeros((1, len(rows)), dtype=[(f, "O") for f in fields])  # a 1 x N MATLAB struct
    for k, (fname, cls, box) in enumerate(rows):
        values = [np.array([[v]], dtype=np.uint16) for v in box]
        if with_class:
            values.append(np.array([[cls]], dtype=np.uint8))
        values.append(np.array([fname]))
        arr[0, k] = tuple(values)
    return arr


def write_cars(root: Path) -> dict:
    """Write ``root/stanford_cars/`` in the devkit layout: 3 train and 2 test images,
    ``.mat`` files with the devkit's variables and struct fields.

    Returns:
        ``{"base", "annotations": {split: [(fname, class id, (x1, y1, x2, y2))]}}``.
    """
    base = root / "stanford_cars"
    names = np.empty((1, 196), dtype=object)  # a 1 x 196 MATLAB cell array
    for k, name in enumerate(_leaf_names("cars")):
        names[0, k] = name
    (base / "devkit").mkdir(parents=True, exist_ok=True)
    savemat(str(base / "devkit" / "cars_meta.mat"), {"class_names": names})
    savemat(str(base / "devkit" / "cars_train_annos.mat"),
            {"annotations": _struct_array(CARS_ANNOTATIONS["train"])})
    savemat(str(base / "devkit" / "cars_test_annos.mat"),
            {"annotations": _struct_array(CARS_ANNOTATIONS["test"], with_class=False)})
    savemat(str(base / "cars_test_annos_withlabels.mat"),
            {"annotations": _struct_array(CARS_ANNOTATIONS["test"])})
    for split, rows in CARS_ANNOTATIONS.items():
        for k, (fname, *_) in enumerate(rows):
            jpeg(base / f"cars_{split}" / fname, seed=200 + k + (10 if split == "test" else 0))
    return {"base": base, "annotations": CARS_ANNOTATIONS}


# ------------------------------------------------------------------------ VOC
VOC_OBJECTS = {  # image id -> [(class, difficult, (xmin, ymin, xmax, ymax))]
    "000005": [("chair", 0, (3, 4, 20, 30)), ("chair", 1, (22, 5, 30, 25)),
               ("pottedplant", 1, (31, 2, 45, 20))],
    "000007": [("car", 0, (1, 10, 47, 38))],
    "000001": [("dog", 0, (5, 8, 30, 35)), ("person", 0, (2, 1, 20, 39))],
    "000004": [("car", 0, (1, 1, 20, 15)), ("car", 0, (25, 20, 46, 38))],
}
VOC_SPLITS = {"trainval": ["000005", "000007"], "test": ["000001", "000004"]}


def _voc_xml(image_id: str, objects: list[tuple[str, int, tuple[int, ...]]]) -> str:
    objs = "".join(
        f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n"
        f"\t\t<truncated>0</truncated>\n\t\t<difficult>{diff}</difficult>\n"
        f"\t\t<bndbox>\n\t\t\t<xmin>{b[0]}</xmin>\n\t\t\t<ymin>{b[1]}</ymin>\n"
        f"\t\t\t<xmax>{b[2]}</xmax>\n\t\t\t<ymax>{b[3]}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        for name, diff, b in objects
    )
    return (
        f"<annotation>\n\t<folder>VOC2007</folder>\n\t<filename>{image_id}.jpg</filename>\n"
        "\t<source>\n\t\t<database>The VOC2007 Database</database>\n"
        "\t\t<annotation>PASCAL VOC2007</annotation>\n\t\t<image>flickr</image>\n\t</source>\n"
        "\t<size>\n\t\t<width>48</width>\n\t\t<height>40</height>\n\t\t<depth>3</depth>\n"
        f"\t</size>\n\t<segmented>0</segmented>\n{objs}</annotation>\n"
    )


def write_voc(root: Path) -> dict:
    """Write ``root/VOCdevkit/VOC2007/`` with 2 trainval and 2 test images.

    Returns:
        ``{"base", "splits": {split: [ids]}, "objects": {id: [(class, difficult, box)]}}``.
    """
    base = root / "VOCdevkit" / "VOC2007"
    for split, ids in VOC_SPLITS.items():
        _write(base / "ImageSets" / "Main" / f"{split}.txt", ids)
    for k, (image_id, objects) in enumerate(VOC_OBJECTS.items()):
        path = base / "Annotations" / f"{image_id}.xml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_voc_xml(image_id, objects), encoding="utf-8")
        jpeg(base / "JPEGImages" / f"{image_id}.jpg", seed=300 + k)
    return {"base": base, "splits": VOC_SPLITS, "objects": VOC_OBJECTS}


# ----------------------------------------------------------------------- COCO
# The 80 categories of instances_*2014.json: (id, name, supercategory).
COCO_CATEGORIES = [
    (1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"),
    (4, "motorcycle", "vehicle"), (5, "airplane", "vehicle"), (6, "bus", "vehicle"),
    (7, "train", "vehicle"), (8, "truck", "vehicle"), (9, "boat", "vehicle"),
    (10, "traffic light", "outdoor"), (11, "fire hydrant", "outdoor"),
    (13, "stop sign", "outdoor"), (14, "parking meter", "outdoor"), (15, "bench", "outdoor"),
    (16, "bird", "animal"), (17, "cat", "animal"), (18, "dog", "animal"),
    (19, "horse", "animal"), (20, "sheep", "animal"), (21, "cow", "animal"),
    (22, "elephant", "animal"), (23, "bear", "animal"), (24, "zebra", "animal"),
    (25, "giraffe", "animal"), (27, "backpack", "accessory"), (28, "umbrella", "accessory"),
    (31, "handbag", "accessory"), (32, "tie", "accessory"), (33, "suitcase", "accessory"),
    (34, "frisbee", "sports"), (35, "skis", "sports"), (36, "snowboard", "sports"),
    (37, "sports ball", "sports"), (38, "kite", "sports"), (39, "baseball bat", "sports"),
    (40, "baseball glove", "sports"), (41, "skateboard", "sports"), (42, "surfboard", "sports"),
    (43, "tennis racket", "sports"), (44, "bottle", "kitchen"), (46, "wine glass", "kitchen"),
    (47, "cup", "kitchen"), (48, "fork", "kitchen"), (49, "knife", "kitchen"),
    (50, "spoon", "kitchen"), (51, "bowl", "kitchen"), (52, "banana", "food"),
    (53, "apple", "food"), (54, "sandwich", "food"), (55, "orange", "food"),
    (56, "broccoli", "food"), (57, "carrot", "food"), (58, "hot dog", "food"),
    (59, "pizza", "food"), (60, "donut", "food"), (61, "cake", "food"),
    (62, "chair", "furniture"), (63, "couch", "furniture"), (64, "potted plant", "furniture"),
    (65, "bed", "furniture"), (67, "dining table", "furniture"), (70, "toilet", "furniture"),
    (72, "tv", "electronic"), (73, "laptop", "electronic"), (74, "mouse", "electronic"),
    (75, "remote", "electronic"), (76, "keyboard", "electronic"),
    (77, "cell phone", "electronic"), (78, "microwave", "appliance"), (79, "oven", "appliance"),
    (80, "toaster", "appliance"), (81, "sink", "appliance"), (82, "refrigerator", "appliance"),
    (84, "book", "indoor"), (85, "clock", "indoor"), (86, "vase", "indoor"),
    (87, "scissors", "indoor"), (88, "teddy bear", "indoor"), (89, "hair drier", "indoor"),
    (90, "toothbrush", "indoor"),
]

COCO_IMAGES = {  # split -> [(image id, [(category id, iscrowd, [x, y, w, h])])]
    "train": [
        (9, [(1, 0, [1.0, 2.0, 20.0, 30.0]), (18, 0, [20.0, 5.0, 25.0, 30.0]),
             (1, 0, [30.0, 1.0, 10.0, 10.0])]),
        (25, [(1, 1, [0.0, 0.0, 48.0, 20.0]), (90, 0, [10.0, 10.0, 5.0, 5.0])]),
        (30, []),
    ],
    "val": [
        (42, [(62, 0, [2.0, 2.0, 10.0, 10.0]), (67, 0, [0.0, 20.0, 48.0, 20.0])]),
        (73, [(5, 0, [4.0, 4.0, 30.0, 12.0])]),
    ],
}


def coco_file_name(split: str, image_id: int) -> str:
    """The official file name of a COCO 2014 image, e.g. ``COCO_train2014_000000000009.jpg``."""
    return f"COCO_{split}2014_{image_id:012d}.jpg"


def write_coco(root: Path) -> dict:
    """Write a COCO 2014 folder at ``root`` (``annotations/instances_{train,val}2014.json``
    in the real schema, ``train2014/``, ``val2014/``): 3 train images (one with a crowd
    annotation, one without annotations) and 2 val images.

    Returns:
        ``{"base", "images": COCO_IMAGES}``.
    """
    ann_id = 1
    for split, images in COCO_IMAGES.items():
        image_rows, ann_rows = [], []
        for k, (image_id, anns) in enumerate(images):
            name = coco_file_name(split, image_id)
            jpeg(root / f"{split}2014" / name, seed=400 + image_id)
            image_rows.append({
                "license": 3, "file_name": name,
                "coco_url": f"http://images.cocodataset.org/{split}2014/{name}",
                "height": 40, "width": 48, "date_captured": "2013-11-14 11:18:45",
                "flickr_url": f"http://farm{k + 1}.staticflickr.com/{image_id}.jpg",
                "id": image_id,
            })
            for cat, crowd, box in anns:
                x, y, w, h = box
                seg = ({"counts": [0, 4, 10], "size": [40, 48]} if crowd
                       else [[x, y, x + w, y, x + w, y + h, x, y + h]])
                ann_rows.append({"segmentation": seg, "area": w * h, "iscrowd": crowd,
                                 "image_id": image_id, "bbox": box, "category_id": cat,
                                 "id": ann_id})
                ann_id += 1
        instances = {
            "info": {"description": "This is stable 1.0 version of the 2014 MS COCO dataset.",
                     "url": "http://mscoco.org", "version": "1.0", "year": 2014,
                     "contributor": "Microsoft COCO group", "date_created": "2015-01-27"},
            "images": image_rows,
            "licenses": [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 3,
                          "name": "Attribution-NonCommercial-ShareAlike License"}],
            "annotations": ann_rows,
            "categories": [{"supercategory": s, "id": i, "name": n}
                           for i, n, s in COCO_CATEGORIES],
        }
        path = root / "annotations" / f"instances_{split}2014.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(instances), encoding="utf-8")
    return {"base": root, "images": COCO_IMAGES}
