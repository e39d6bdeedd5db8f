"""PASCAL VOC 2007 as a multi-label dataset: 20 classes, one {0, 1} vector per image.

The folder ``VOCdevkit/VOC2007/`` is read as the official archives extract it
(see :data:`LAYOUT`): the image ids of ``ImageSets/Main/<split>.txt``, and for
each image its ``Annotations/<id>.xml`` (objects with ``name``, ``difficult`` and
``bndbox``).

**Targets.** A sample is ``(image, target)`` with ``target`` a ``(20,)`` float32
vector in {0, 1}, classes in the standard order of :data:`CLASSES`. A class is
positive when the image holds at least one *non-difficult* object of it. A class
present *only* through objects marked difficult is handled by ``difficult``:

* ``"negative"`` (default): 0. This is what SARB's official data loader does (it
  skips difficult objects when building the label vector), so the partial-label
  experiments start from the same complete labels.
* ``"positive"``: 1 (ML-GCN-style training labels count difficult objects as present).

Either way ``.difficult_only`` (``(N, 20)`` bool) marks these entries, so an
evaluation can ignore them, as the VOC devkit's classification benchmark (label 0
in its per-class lists) does.

``objects(i)`` gives every object's box (pixel ``xmin, ymin, xmax, ymax`` as the
XML gives them, 1-based), class index and difficult flag.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import torch

from hmglib.data._io import (
    ImageFiles,
    check_files,
    check_layout,
    check_split,
    download_source,
    resolve_base,
)
from hmglib.data.errors import DatasetFormatError, DatasetMismatchError

__all__ = ["VOC2007", "CLASSES", "LAYOUT"]

#: The 20 VOC classes in the standard (alphabetical) order; target index = position.
CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)

#: The files :class:`VOC2007` reads, as the two VOC 2007 archives extract them.
LAYOUT = """\
  <root>/VOCdevkit/VOC2007/
    ImageSets/Main/<split>.txt     one image id per line (e.g. '000005'); split trainval or test
    Annotations/<id>.xml           <annotation> with one <object> per object:
                                   <name>, <difficult>, <bndbox><xmin>..<ymax></bndbox>
    JPEGImages/<id>.jpg"""

_DIFFICULT = ("negative", "positive")


class VOC2007(ImageFiles):
    """PASCAL VOC 2007 classification (5,011 trainval and 4,952 test images; 20 classes).

    Args:
        root: the folder holding ``VOCdevkit/`` (or ``VOCdevkit/`` or ``VOC2007/``
            itself); None for :func:`hmglib.data.data_root`.
        split: ``"trainval"`` or ``"test"``.
        transform: applied to the PIL RGB image.
        target_transform: applied to the ``(20,)`` target.
        download: fetch and extract the split's official archive (address and MD5 in
            ``hmglib.data.SOURCES["voc2007"]``) when the folder is missing or incomplete.
        difficult: ``"negative"`` or ``"positive"``: the target of a class present only
            as difficult objects (see the module docstring).

    Attributes:
        classes: :data:`CLASSES`.
        image_ids: ``N`` ids of ``ImageSets/Main/<split>.txt``.
        paths: ``N`` image paths.
        targets: ``(N, 20)`` float32 in {0, 1}: every image's target (e.g. the
            input of ``drop_labels``).
        difficult_only: ``(N, 20)`` bool: the class occurs only as difficult objects.

    Raises:
        DatasetNotFoundError: the folder is missing or incomplete (a listed image or
            annotation file included).
        DatasetFormatError: an annotation file is not valid VOC XML.
        DatasetMismatchError: an object names a class outside :data:`CLASSES`.
        CorruptImageError: (on ``__getitem__``) an image does not decode.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "trainval",
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
        difficult: str = "negative",
    ) -> None:
        super().__init__(transform, target_transform)
        self.split = check_split("VOC2007", split, ("trainval", "test"))
        if difficult not in _DIFFICULT:
            raise ValueError(
                f"VOC2007: difficult={difficult!r}; use 'negative' (a class present only as "
                "difficult objects is 0, as in SARB) or 'positive' (it is 1)."
            )
        self.difficult = difficult
        candidates = ("VOCdevkit/VOC2007", "VOC2007", ".")
        marker = "ImageSets/Main"
        self.root = resolve_base(root, candidates, marker)
        required = ["Annotations", "JPEGImages", f"ImageSets/Main/{split}.txt"]
        if download and not all((self.root / rel).exists() for rel in required):
            top = self.root.parents[1] if self.root.parts[-2:] == ("VOCdevkit", "VOC2007") \
                else self.root.parent
            download_source("voc2007", top, split)
            self.root = resolve_base(top, candidates, marker)
        check_layout("VOC2007", self.root, required, LAYOUT, "voc2007")
        self.classes: tuple[str, ...] = CLASSES
        ids = [line.strip() for line in
               (self.root / f"ImageSets/Main/{split}.txt").read_text().splitlines()
               if line.strip()]
        self.image_ids: list[str] = ids
        check_files("VOC2007", self.root, [f"Annotations/{i}.xml" for i in ids], LAYOUT,
                    "voc2007")
        check_files("VOC2007", self.root, [f"JPEGImages/{i}.jpg" for i in ids], LAYOUT,
                    "voc2007")
        self.paths = [self.root / "JPEGImages" / f"{i}.jpg" for i in ids]
        self._objects = [self._parse(self.root / "Annotations" / f"{i}.xml") for i in ids]
        present = torch.zeros(len(ids), len(CLASSES), dtype=torch.bool)  # (N, C)
        only_difficult = torch.zeros(len(ids), len(CLASSES), dtype=torch.bool)  # (N, C)
        for n, obj in enumerate(self._objects):
            easy = obj["labels"][~obj["difficult"]]
            hard = obj["labels"][obj["difficult"]]
            present[n, easy] = True
            only_difficult[n, hard] = True
        self.difficult_only = only_difficult & ~present  # (N, C)
        positive = present | self.difficult_only if difficult == "positive" else present
        self.targets = positive.float()  # (N, C) in {0, 1}

    @staticmethod
    def _parse(path: Path) -> dict[str, torch.Tensor]:
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as err:
            raise DatasetFormatError(
                f"VOC2007: '{path}' is not valid XML ({err}); restore it from the archive."
            ) from err
        boxes, labels, difficult = [], [], []
        for obj in root.iter("object"):
            name = (obj.findtext("name") or "").strip()
            if name not in CLASSES:
                raise DatasetMismatchError(
                    f"VOC2007: '{path}' has an object of class {name!r}, which is not one of the "
                    f"20 VOC classes {list(CLASSES)}."
                )
            box = obj.find("bndbox")
            try:
                coords = [float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]
            except (AttributeError, TypeError, ValueError) as err:
                raise DatasetFormatError(
                    f"VOC2007: '{path}': an object of class {name!r} has no complete "
                    "<bndbox><xmin/><ymin/><xmax/><ymax/></bndbox>."
                ) from err
            boxes.append(coords)
            labels.append(CLASSES.index(name))
            difficult.append((obj.findtext("difficult") or "0").strip() == "1")
        return {
            "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),  # (K, 4)
            "labels": torch.tensor(labels, dtype=torch.long),  # (K,)
            "difficult": torch.tensor(difficult, dtype=torch.bool),  # (K,)
        }

    def target(self, index: int) -> torch.Tensor:
        """``(20,)`` float32 in {0, 1}: the classes present in image ``index``."""
        return self.targets[index].clone()

    def objects(self, index: int) -> dict[str, torch.Tensor]:
        """The objects of image ``index``: ``boxes`` ``(K, 4)`` float32 pixel
        ``(xmin, ymin, xmax, ymax)`` as in the XML, ``labels`` ``(K,)`` int64 class index,
        ``difficult`` ``(K,)`` bool."""
        obj = self._objects[self._check_index(index)]
        return {k: v.clone() for k, v in obj.items()}

    def __repr__(self) -> str:
        return (f"VOC2007(split={self.split!r}, {len(self)} images, "
                f"difficult={self.difficult!r}, root='{self.root}')")
