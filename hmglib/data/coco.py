"""MS-COCO 2014 as a multi-label dataset: 80 classes, one {0, 1} vector per image.

The folder is the one the official archives give (see :data:`LAYOUT`). The
instance annotations ``annotations/instances_<split>2014.json`` are read with
``pycocotools`` (the optional extra ``pip install "hmglib[coco]"``) or, with
``backend="json"``, with the standard library: the multi-label vector only needs
the ``images``, ``annotations`` and ``categories`` lists, and both readers give
identical results (a test checks it where pycocotools is installed).

**Targets.** A sample is ``(image, target)`` with ``target`` a ``(80,)`` float32
vector in {0, 1}: class ``c`` is positive when the image has at least one
instance annotation of the ``c``-th category in category-id order (ids 1..90
with gaps map to 0..79, :data:`CATEGORIES`). As in SARB's official data loader:

* crowd annotations (``iscrowd = 1``) count (``include_crowd=True``);
* images without any annotation are kept, with an all-zero target
  (``skip_empty=False``; 82,783 train and 40,504 val images). ``skip_empty=True``
  keeps only annotated images (82,081 and 40,137), the protocol of ML-GCN.

Samples keep the order of the json's ``images`` list. ``objects(i)`` gives each
annotation's box as pixel ``(x1, y1, x2, y2)`` (from COCO's ``[x, y, w, h]``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hmglib.data._io import (
    ImageFiles,
    check_files,
    check_layout,
    check_split,
    data_root,
    download_source,
)
from hmglib.data.errors import DatasetFormatError, DatasetMismatchError, MissingExtraError

__all__ = ["COCO2014", "CATEGORIES", "LAYOUT", "MissingExtraError"]

#: The 80 COCO categories as ``(category_id, name)``, in id order; target index = position.
CATEGORIES: tuple[tuple[int, str], ...] = (
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"),
    (7, "train"), (8, "truck"), (9, "boat"), (10, "traffic light"), (11, "fire hydrant"),
    (13, "stop sign"), (14, "parking meter"), (15, "bench"), (16, "bird"), (17, "cat"),
    (18, "dog"), (19, "horse"), (20, "sheep"), (21, "cow"), (22, "elephant"), (23, "bear"),
    (24, "zebra"), (25, "giraffe"), (27, "backpack"), (28, "umbrella"), (31, "handbag"),
    (32, "tie"), (33, "suitcase"), (34, "frisbee"), (35, "skis"), (36, "snowboard"),
    (37, "sports ball"), (38, "kite"), (39, "baseball bat"), (40, "baseball glove"),
    (41, "skateboard"), (42, "surfboard"), (43, "tennis racket"), (44, "bottle"),
    (46, "wine glass"), (47, "cup"), (48, "fork"), (49, "knife"), (50, "spoon"), (51, "bowl"),
    (52, "banana"), (53, "apple"), (54, "sandwich"), (55, "orange"), (56, "broccoli"),
    (57, "carrot"), (58, "hot dog"), (59, "pizza"), (60, "donut"), (61, "cake"), (62, "chair"),
    (63, "couch"), (64, "potted plant"), (65, "bed"), (67, "dining table"), (70, "toilet"),
    (72, "tv"), (73, "laptop"), (74, "mouse"), (75, "remote"), (76, "keyboard"),
    (77, "cell phone"), (78, "microwave"), (79, "oven"), (80, "toaster"), (81, "sink"),
    (82, "refrigerator"), (84, "book"), (85, "clock"), (86, "vase"), (87, "scissors"),
    (88, "teddy bear"), (89, "hair drier"), (90, "toothbrush"),
)

#: The files :class:`COCO2014` reads, as the official archives extract them.
LAYOUT = """\
  <root>/                                   (default: <data root>/coco2014)
    annotations/instances_train2014.json    COCO instances json: 'images', 'annotations',
    annotations/instances_val2014.json      'categories' (80 categories, ids 1..90)
    train2014/COCO_train2014_<12-digit id>.jpg
    val2014/COCO_val2014_<12-digit id>.jpg"""

_BACKENDS = ("auto", "pycocotools", "json")


def _import_pycocotools() -> Any:
    try:
        from pycocotools.coco import COCO
    except ImportError as err:
        raise MissingExtraError(
            "COCO2014(backend='pycocotools') needs pycocotools, which is not installed: "
            "install the optional extra with  pip install \"hmglib[coco]\"  (or pip install "
            "pycocotools), or use backend='json', the standard-library reader."
        ) from err
    return COCO


def _has_pycocotools() -> bool:
    try:
        _import_pycocotools()
    except MissingExtraError:
        return False
    return True


def _read_json(path: Path) -> tuple[list[dict], list[dict], list[dict]]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as err:
        raise DatasetFormatError(
            f"COCO2014: '{path}' is not valid json ({err}); restore it from "
            "annotations_trainval2014.zip."
        ) from err
    lacking = [k for k in ("images", "annotations", "categories") if k not in data]
    if lacking:
        raise DatasetFormatError(
            f"COCO2014: '{path}' lacks the key(s) {lacking}; it is not a COCO instances file."
        )
    return data["images"], data["annotations"], data["categories"]


def _read_pycocotools(path: Path) -> tuple[list[dict], list[dict], list[dict]]:
    coco = _import_pycocotools()(str(path))
    images = [coco.imgs[i] for i in coco.imgs]  # json order (a dict keeps insertion order)
    anns = [coco.anns[i] for i in coco.anns]
    cats = [coco.cats[i] for i in coco.getCatIds()]
    return images, anns, cats


class COCO2014(ImageFiles):
    """MS-COCO 2014 multi-label classification (train 82,783 / val 40,504 images; 80 classes).

    Args:
        root: the COCO folder (holding ``annotations/`` and ``<split>2014/``); None for
            ``<data root>/coco2014`` (:func:`hmglib.data.data_root`).
        split: ``"train"`` or ``"val"``.
        transform: applied to the PIL RGB image.
        target_transform: applied to the ``(80,)`` target.
        download: fetch and extract the annotations and the split's images (addresses and
            MD5 in ``hmglib.data.SOURCES["coco2014"]``; 13 GB for train) when missing.
        backend: ``"pycocotools"``, ``"json"`` (standard library), or ``"auto"``
            (pycocotools when installed, else json).
        include_crowd: count crowd annotations as presence (SARB does).
        skip_empty: drop images without annotations (ML-GCN) instead of keeping them
            with an all-zero target (SARB).

    Attributes:
        classes: the 80 category names, in category-id order.
        category_ids: the 80 COCO category ids; ``category_ids[c]`` is target index ``c``.
        image_ids: ``N`` COCO image ids, in the json's order.
        paths: ``N`` image paths.
        targets: ``(N, 80)`` float32 in {0, 1}: every image's target (e.g. the
            input of ``drop_labels``).
        backend: the reader used, ``"pycocotools"`` or ``"json"``.

    Raises:
        MissingExtraError: ``backend="pycocotools"`` without pycocotools installed (the
            message names the ``coco`` extra).
        DatasetNotFoundError: the folder is missing or incomplete.
        DatasetFormatError: the json is damaged or not an instances file.
        DatasetMismatchError: its categories are not the 80 of :data:`CATEGORIES`, or an
            annotation names an unknown category or image.
        CorruptImageError: (on ``__getitem__``) an image does not decode.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
        backend: str = "auto",
        include_crowd: bool = True,
        skip_empty: bool = False,
    ) -> None:
        super().__init__(transform, target_transform)
        self.split = check_split("COCO2014", split, ("train", "val"))
        if backend not in _BACKENDS:
            raise ValueError(f"COCO2014: backend={backend!r}; use one of {list(_BACKENDS)}.")
        if backend == "auto":
            backend = "pycocotools" if _has_pycocotools() else "json"
        elif backend == "pycocotools":
            _import_pycocotools()  # fail before any file work when the extra is missing
        self.backend = backend
        self.root = (data_root() / "coco2014" if root is None
                     else Path(root).expanduser()).resolve()
        annotation = f"annotations/instances_{split}2014.json"
        folder = f"{split}2014"
        required = [annotation, folder]
        if download and not all((self.root / rel).exists() for rel in required):
            download_source("coco2014", self.root, split)
        check_layout("COCO2014", self.root, required, LAYOUT, "coco2014")

        reader = _read_pycocotools if backend == "pycocotools" else _read_json
        images, anns, cats = reader(self.root / annotation)
        self._check_categories(cats, self.root / annotation)
        self.category_ids: list[int] = [cid for cid, _ in CATEGORIES]
        self.classes: list[str] = [name for _, name in CATEGORIES]
        column = {cid: c for c, cid in enumerate(self.category_ids)}

        row = {int(img["id"]): n for n, img in enumerate(images)}
        present = torch.zeros(len(images), len(CATEGORIES), dtype=torch.bool)  # (N_all, C)
        objects: list[list[tuple[list[float], int, bool]]] = [[] for _ in images]
        for ann in anns:
            img_id, cid = int(ann["image_id"]), int(ann["category_id"])
            if img_id not in row or cid not in column:
                what = f"image id {img_id}" if img_id not in row else f"category id {cid}"
                raise DatasetMismatchError(
                    f"COCO2014: '{self.root / annotation}': annotation {ann.get('id')} names "
                    f"{what}, which the file's images/categories do not list."
                )
            crowd = bool(ann.get("iscrowd", 0))
            x, y, w, h = (float(v) for v in ann["bbox"])
            objects[row[img_id]].append(([x, y, x + w, y + h], column[cid], crowd))
            if include_crowd or not crowd:
                present[row[img_id], column[cid]] = True
        keep = [n for n in range(len(images)) if not skip_empty or objects[n]]
        self.include_crowd = include_crowd
        self.skip_empty = skip_empty
        self.image_ids: list[int] = [int(images[n]["id"]) for n in keep]
        files = [f"{folder}/{images[n]['file_name']}" for n in keep]
        check_files("COCO2014", self.root, files, LAYOUT, "coco2014")
        self.paths = [self.root / f for f in files]
        self.targets = present[keep].float()  # (N, C) in {0, 1}
        self._objects = [objects[n] for n in keep]

    @staticmethod
    def _check_categories(cats: list[dict], path: Path) -> None:
        found = sorted((int(c["id"]), str(c["name"])) for c in cats)
        if found != list(CATEGORIES):
            have, want = set(found), set(CATEGORIES)
            raise DatasetMismatchError(
                f"COCO2014: the categories of '{path}' are not the 80 COCO categories: "
                f"unexpected {sorted(have - want)[:10]}, missing {sorted(want - have)[:10]}. "
                "Use the official instances_<split>2014.json."
            )

    def target(self, index: int) -> torch.Tensor:
        """``(80,)`` float32 in {0, 1}: the categories present in image ``index``."""
        return self.targets[index].clone()

    def objects(self, index: int) -> dict[str, torch.Tensor]:
        """The annotations of image ``index``: ``boxes`` ``(K, 4)`` float32 pixel
        ``(x1, y1, x2, y2)``, ``labels`` ``(K,)`` int64 class index in ``[0, 80)``,
        ``iscrowd`` ``(K,)`` bool."""
        objs = self._objects[self._check_index(index)]
        return {
            "boxes": torch.tensor([o[0] for o in objs], dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor([o[1] for o in objs], dtype=torch.long),
            "iscrowd": torch.tensor([o[2] for o in objs], dtype=torch.bool),
        }

    def __repr__(self) -> str:
        return (f"COCO2014(split={self.split!r}, {len(self)} images, backend={self.backend!r}, "
                f"root='{self.root}')")
