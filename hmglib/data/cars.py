"""Stanford Cars with the body type → model tree, from the devkit layout.

The layout is the one ``torchvision.datasets.StanfordCars`` reads (see
:data:`LAYOUT`); the annotations are MATLAB files read with ``scipy.io.loadmat``:
``devkit/cars_meta.mat`` holds ``class_names`` (196 names, class ids 1..196) and
each split's file holds ``annotations``, a struct array with the fields
``bbox_x1, bbox_y1, bbox_x2, bbox_y2, class, fname``.

**Obtaining the data.** The original addresses no longer serve the files, so
``download=True`` raises :class:`~hmglib.data.errors.DownloadUnavailableError`;
``hmglib.data.SOURCES["cars"].how`` says where the images, the devkit and the labelled
test annotations can be found.

A sample is ``(image, target)``: the RGB image and the model's **node index** in
``.tree`` (``hierarchies.load("cars")``: leaf ``k`` is class id ``k + 1``). The
body type is ``tree.lift(target, "type")``. ``box(i)`` gives the car's box.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from hmglib import hierarchies
from hmglib.data._io import (
    ImageFiles,
    check_files,
    check_layout,
    check_split,
    download_source,
    mismatch_report,
    resolve_base,
)
from hmglib.data.errors import (
    DatasetFormatError,
    DatasetMismatchError,
)
from hmglib.hierarchy import LabelTree

__all__ = ["StanfordCars", "LAYOUT"]

#: The files :class:`StanfordCars` reads (torchvision's StanfordCars layout).
LAYOUT = """\
  <root>/stanford_cars/
    devkit/cars_meta.mat               'class_names': 1x196 cell of model names (class ids 1..196)
    devkit/cars_train_annos.mat        'annotations': struct array, fields bbox_x1, bbox_y1,
                                       bbox_x2, bbox_y2, class, fname
    cars_test_annos_withlabels.mat     'annotations' of the test images, same fields
    cars_train/<fname>.jpg             (8,144 images)
    cars_test/<fname>.jpg              (8,041 images)"""

_FIELDS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")


def _loadmat(path: Path, key: str) -> np.ndarray:
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path), squeeze_me=True)
    except Exception as err:  # scipy raises several types for a damaged file
        raise DatasetFormatError(
            f"StanfordCars: '{path}' is not a readable MATLAB file ({type(err).__name__}: "
            f"{err}); restore it from the devkit."
        ) from err
    if key not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DatasetFormatError(
            f"StanfordCars: '{path}' has no variable '{key}' (it has {found}); it is not the "
            "devkit's file."
        )
    return np.atleast_1d(mat[key])


class StanfordCars(ImageFiles):
    """Stanford Cars (16,185 images: 8,144 train, 8,041 test; 9 types, 196 models).

    Args:
        root: the folder holding ``stanford_cars/`` (or that folder itself); None for
            :func:`hmglib.data.data_root`.
        split: ``"train"`` or ``"test"``.
        transform: applied to the PIL RGB image.
        target_transform: applied to the target (an int node index).
        download: must be False: there is no working download address (see the module
            docstring); True raises DownloadUnavailableError with instructions.
        tree: the label tree; default ``hierarchies.load("cars")``.

    Attributes:
        tree: the LabelTree; targets are its node indices.
        classes: the 196 ``class_names`` of ``cars_meta.mat``, in class-id order.
        paths: ``N`` image paths, in the order of the annotation file.
        labels: ``(N,)`` int64 model index in ``[0, 196)`` (``class - 1``).
        targets: ``(N,)`` int64 model node index in ``.tree``.
        bboxes: ``(N, 4)`` float32 ``(x1, y1, x2, y2)`` as the devkit gives them (pixels).

    Raises:
        DownloadUnavailableError: ``download=True``.
        DatasetNotFoundError: the folder is missing or incomplete.
        DatasetFormatError: a ``.mat`` file is not the devkit's.
        DatasetMismatchError: ``class_names`` disagree with the tree's models (lists them).
        CorruptImageError: (on ``__getitem__``) an image does not decode.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
        tree: LabelTree | None = None,
    ) -> None:
        super().__init__(transform, target_transform)
        self.split = check_split("StanfordCars", split, ("train", "test"))
        self.root = resolve_base(root, ("stanford_cars", "."), "devkit")
        annos = ("devkit/cars_train_annos.mat" if split == "train"
                 else "cars_test_annos_withlabels.mat")
        folder = f"cars_{split}"
        required = ["devkit/cars_meta.mat", annos, folder]
        if download:
            download_source("cars", self.root.parent, split)  # raises: no working address
        check_layout("StanfordCars", self.root, required, LAYOUT, "cars")
        self.tree = hierarchies.load("cars") if tree is None else tree
        self.classes = [str(c) for c in _loadmat(self.root / "devkit/cars_meta.mat",
                                                 "class_names").tolist()]
        self._check_tree()
        records = _loadmat(self.root / annos, "annotations")
        names = records.dtype.names or ()
        lacking = [f for f in _FIELDS if f not in names]
        if lacking:
            hint = (" (devkit/cars_test_annos.mat has no labels: use "
                    "cars_test_annos_withlabels.mat)" if lacking == ["class"] else "")
            raise DatasetFormatError(
                f"StanfordCars: the annotations of '{self.root / annos}' lack the field(s) "
                f"{lacking}; expected {list(_FIELDS)}{hint}."
            )
        fnames = [str(f) for f in records["fname"]]
        classes = np.asarray(records["class"], dtype=np.int64)  # (N,) class ids 1..196
        bad = sorted({int(c) for c in classes if not 1 <= c <= len(self.classes)})
        if bad:
            raise DatasetFormatError(
                f"StanfordCars: '{self.root / annos}' has class ids {bad[:5]} outside "
                f"1..{len(self.classes)} of cars_meta.mat."
            )
        check_files("StanfordCars", self.root, [f"{folder}/{f}" for f in fnames], LAYOUT,
                    "cars")
        self.paths = [self.root / folder / f for f in fnames]
        self.labels = torch.as_tensor(classes - 1, dtype=torch.long)  # (N,)
        self.targets = self.labels + self.tree.offset(-1)  # (N,) node indices
        coords = np.stack([np.asarray(records[f], dtype=np.float32) for f in _FIELDS[:4]],
                          axis=1)  # (N, 4)
        self.bboxes = torch.from_numpy(coords)  # (N, 4) xyxy

    def _check_tree(self) -> None:
        leaves = [self.tree.names[n] for n in self.tree.leaves.tolist()]
        problems = []
        if len(self.classes) != len(leaves):
            problems.append(f"cars_meta.mat has {len(self.classes)} class_names, the tree "
                            f"{len(leaves)} models")
        report = mismatch_report(
            "class_names vs the tree's models (leaf k = class id k + 1)",
            ((f"class id {k + 1}", a, b)
             for k, (a, b) in enumerate(zip(self.classes, leaves, strict=False))),
        )
        if report:
            problems.append(report)
        if problems:
            raise DatasetMismatchError(
                f"StanfordCars: '{self.root / 'devkit/cars_meta.mat'}' disagrees with the label "
                f"tree {self.tree!r}:\n- " + "\n- ".join(problems)
                + "\nUse the devkit's own cars_meta.mat, or pass tree= a table that matches it."
            )

    def target(self, index: int) -> int:
        """The model's node index of sample ``index`` (an int)."""
        return int(self.targets[index])

    def box(self, index: int) -> torch.Tensor:
        """``(4,)`` float32 ``(x1, y1, x2, y2)``: the car's box in original-image pixels."""
        return self.bboxes[self._check_index(index)].clone()

    def __repr__(self) -> str:
        return f"StanfordCars(split={self.split!r}, {len(self)} images, root='{self.root}')"
