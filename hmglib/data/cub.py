"""CUB-200-2011 birds with the order → family → species tree, boxes and part locations.

The official folder ``CUB_200_2011/`` is read as the dataset ships it (see
:data:`LAYOUT`). A sample is ``(image, target)``: the RGB image (through
``transform``) and the species' **node index** in ``.tree``
(``hierarchies.load("cub200")``: leaf ``k`` is class id ``k + 1`` of
``classes.txt``). Samples keep the order of ``images.txt``, the list order HRN's
relabelling rule counts in.

Every image also carries its bird's box and the 15 part locations, in pixels
of the original image (before any transform), so heat maps on real birds can be
scored against them:

* ``box(i)``: ``(4,)`` float ``(x1, y1, x2, y2)`` = ``(x, y, x + width, y + height)``
  of ``bounding_boxes.txt``;
* ``parts(i)``: ``(15, 3)`` float ``(x, y, visible)`` from ``parts/part_locs.txt``
  (``visible`` in {0, 1}; an invisible part has ``x = y = 0``), rows in the order of
  ``parts/parts.txt`` (``.part_names``);
* ``part_boxes(i)``: ``(15, 4)`` float pixel ``xyxy``: a square around each visible
  part (half side :data:`PART_HALF_SIDE` of the bird box's longer side), NaN rows for
  the invisible ones, so that a map can be scored against parts that are points;
* ``evidence_boxes(i)``: the bird's box and the part boxes moved through the
  dataset's ``transform`` onto the image a sample holds (:func:`hmglib.data.boxes.transform_boxes`),
  ready for :func:`hmglib.cam.localisation_scores`.

Scoring Grad-CAM maps of a model's test images against the birds and their parts::

    from hmglib.cam import level_cam, localisation_scores
    test = CUB200(root, split="test", transform=pipeline)  # a v2 pipeline, as the model's
    images = torch.stack([test[i][0] for i in range(8)])  # (8, 3, S, S)
    boxes = [test.evidence_boxes(i) for i in range(8)]
    cams = level_cam(model, images, "species")  # (8, S, S) in [0, 1]
    scores = localisation_scores(cams, {
        "object": torch.stack([b["object"] for b in boxes]),  # (8, 1, 4)
        "part": torch.stack([b["part"] for b in boxes])})  # (8, 15, 4), NaN rows skipped

An image whose parts are all invisible has no part box to score against (all its
rows are NaN): its ``"part"`` scores are NaN, left out of a ``nanmean``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from hmglib import hierarchies
from hmglib.checks import check_real
from hmglib.data._io import (
    ImageFiles,
    check_files,
    check_layout,
    check_split,
    download_source,
    mismatch_report,
    read_rows,
    resolve_base,
)
from hmglib.data.boxes import point_boxes, transform_boxes
from hmglib.data.errors import DatasetFormatError, DatasetMismatchError
from hmglib.hierarchy import LabelTree

__all__ = ["CUB200", "LAYOUT", "PART_HALF_SIDE"]

#: The files :class:`CUB200` reads, as ``CUB_200_2011.tgz`` extracts them.
LAYOUT = """\
  <root>/CUB_200_2011/
    classes.txt              '<class_id> <class_name>'  (200, e.g. '1 001.Black_footed_Albatross')
    images.txt               '<image_id> <class_folder>/<file>.jpg'
    image_class_labels.txt   '<image_id> <class_id>'
    train_test_split.txt     '<image_id> <is_training_image>'   (1 = train, 0 = test)
    bounding_boxes.txt       '<image_id> <x> <y> <width> <height>'
    parts/parts.txt          '<part_id> <part_name>'   (15 parts)
    parts/part_locs.txt      '<image_id> <part_id> <x> <y> <visible>'
    images/<class_folder>/<file>.jpg"""

#: Half the side of a part's square (:meth:`CUB200.part_boxes`), as a share of the
#: longer side of the bird's box: each part is scored against a square whose side is
#: a fifth of the bird's length.
PART_HALF_SIDE = 0.1

_REQUIRED = (
    "classes.txt", "images.txt", "image_class_labels.txt", "train_test_split.txt",
    "bounding_boxes.txt", "parts/parts.txt", "parts/part_locs.txt", "images",
)


class CUB200(ImageFiles):
    """CUB-200-2011 (11,788 images: 5,994 train, 5,794 test; 200 species).

    Args:
        root: the folder holding ``CUB_200_2011/`` (or that folder itself); None for
            :func:`hmglib.data.data_root` (``data/datasets/`` or ``$HMG_DATA_ROOT``).
        split: ``"train"`` or ``"test"`` (the official ``train_test_split.txt``).
        transform: applied to the PIL RGB image (e.g. torchvision transforms).
        target_transform: applied to the target (an int node index).
        download: fetch and extract ``CUB_200_2011.tgz`` (address and MD5 in
            ``hmglib.data.SOURCES["cub200"]``) when the folder is missing or incomplete.
        tree: the label tree; default ``hierarchies.load("cub200")``. A table of your own
            (e.g. the paper's 38-family one) must list the same 200 species in the same order.

    Attributes:
        tree: the LabelTree; targets are its node indices.
        classes: the 200 class names of ``classes.txt``, in class-id order.
        image_ids: ``N`` ``images.txt`` ids of the split's samples.
        paths: ``N`` image paths.
        labels: ``(N,)`` int64 class index in ``[0, 200)`` (``class_id - 1``).
        targets: ``(N,)`` int64 node index in ``[tree.offset(-1), tree.num_nodes)``.
        bboxes: ``(N, 4)`` float32 boxes ``(x1, y1, x2, y2)`` in original-image pixels.
        part_names: the 15 part names of ``parts/parts.txt``.
        part_locs: ``(N, 15, 3)`` float32 ``(x, y, visible)`` per part.

    Raises:
        DatasetNotFoundError: the folder is missing or incomplete (names the missing
            files, the layout and how to obtain it).
        DatasetFormatError: an annotation line has the wrong number of fields, or the
            annotation files do not cover the same images.
        DatasetMismatchError: the names of ``classes.txt`` disagree with the tree's
            species (lists every disagreement).
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
        self.split = check_split("CUB200", split, ("train", "test"))
        self.root = resolve_base(root, ("CUB_200_2011", "."), "images.txt")
        if download and not all((self.root / rel).exists() for rel in _REQUIRED):
            download_source("cub200", self.root.parent, split)
            self.root = resolve_base(self.root.parent, ("CUB_200_2011", "."), "images.txt")
        check_layout("CUB200", self.root, _REQUIRED, LAYOUT, "cub200")
        self.tree = hierarchies.load("cub200") if tree is None else tree
        self.classes = self._read_classes()
        self._read_annotations()
        check_files("CUB200", self.root, [f"images/{p}" for p in self._files], LAYOUT, "cub200")

    # ------------------------------------------------------------ reading
    def _read_classes(self) -> list[str]:
        rows = read_rows(self.root / "classes.txt", 2, "<class_id> <class_name>",
                         last_rest=True)
        by_id = {int(i): name for i, name in rows}
        leaves = [self.tree.names[n] for n in self.tree.leaves.tolist()]
        if sorted(by_id) != list(range(1, len(leaves) + 1)):
            raise DatasetMismatchError(
                f"CUB200: '{self.root / 'classes.txt'}' has class ids {min(by_id)}..{max(by_id)} "
                f"({len(by_id)} classes) but the tree has {len(leaves)} species; the dataset's "
                "classes.txt must list ids 1..200, one per species of the tree."
            )
        classes = [by_id[k] for k in range(1, len(leaves) + 1)]
        report = mismatch_report(
            f"CUB200: classes.txt vs the tree's species (leaf k = class id k + 1; tree "
            f"{self.tree!r})",
            ((f"class id {k + 1}", c, leaf) for k, (c, leaf) in
             enumerate(zip(classes, leaves, strict=True))),
        )
        if report:
            raise DatasetMismatchError(
                report + "\nUse the dataset's own classes.txt, or a tree whose leaves are these "
                "names in class-id order (tree=LabelTree.from_csv(...))."
            )
        return classes

    def _read_annotations(self) -> None:
        base = self.root
        images = {int(i): f for i, f in read_rows(
            base / "images.txt", 2, "<image_id> <class_folder>/<file>.jpg", last_rest=True)}
        labels = {int(i): int(c) for i, c in read_rows(
            base / "image_class_labels.txt", 2, "<image_id> <class_id>")}
        is_train = {int(i): t == "1" for i, t in read_rows(
            base / "train_test_split.txt", 2, "<image_id> <is_training_image>")}
        boxes = {int(r[0]): [float(v) for v in r[1:]] for r in read_rows(
            base / "bounding_boxes.txt", 5, "<image_id> <x> <y> <width> <height>")}
        self.part_names = [name for _, name in sorted(
            ((int(i), n) for i, n in read_rows(
                base / "parts/parts.txt", 2, "<part_id> <part_name>", last_rest=True)))]
        n_parts = len(self.part_names)
        locs: dict[int, list[list[float]]] = {}
        for r in read_rows(base / "parts/part_locs.txt", 5,
                           "<image_id> <part_id> <x> <y> <visible>"):
            rows = locs.setdefault(int(r[0]), [[0.0, 0.0, 0.0] for _ in range(n_parts)])
            part = int(r[1])
            if not 1 <= part <= n_parts:
                raise DatasetFormatError(
                    f"CUB200: '{base / 'parts/part_locs.txt'}' names part {part} of image "
                    f"{r[0]}, but parts/parts.txt has parts 1..{n_parts}."
                )
            rows[part - 1] = [float(r[2]), float(r[3]), float(r[4])]

        for name, table in (("image_class_labels.txt", labels),
                            ("train_test_split.txt", is_train),
                            ("bounding_boxes.txt", boxes), ("parts/part_locs.txt", locs)):
            lacking = sorted(set(images) - set(table))
            if lacking:
                raise DatasetFormatError(
                    f"CUB200: '{base / name}' has no line for {len(lacking)} image id(s) of "
                    f"images.txt (e.g. {lacking[:5]}); the annotation files must cover the "
                    "same images. Restore the file from the dataset's archive."
                )
        bad = sorted({c for c in labels.values() if not 1 <= c <= len(self.classes)})
        if bad:
            raise DatasetFormatError(
                f"CUB200: '{base / 'image_class_labels.txt'}' has class ids {bad[:5]} outside "
                f"1..{len(self.classes)} of classes.txt."
            )

        want_train = self.split == "train"
        ids = [i for i in images if is_train[i] == want_train]  # images.txt order
        self.image_ids: list[int] = ids
        self._files = [images[i] for i in ids]
        self.paths = [base / "images" / f for f in self._files]
        self.labels = torch.tensor([labels[i] - 1 for i in ids], dtype=torch.long)  # (N,)
        self.targets = self.labels + self.tree.offset(-1)  # (N,) node indices
        xywh = torch.tensor([boxes[i] for i in ids], dtype=torch.float32).reshape(-1, 4)
        self.bboxes = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)  # (N, 4) xyxy
        self.part_locs = torch.tensor(
            [locs[i] for i in ids], dtype=torch.float32).reshape(-1, n_parts, 3)  # (N, P, 3)

    # ------------------------------------------------------------ samples
    def target(self, index: int) -> int:
        """The species' node index of sample ``index`` (an int)."""
        return int(self.targets[index])

    def box(self, index: int) -> torch.Tensor:
        """``(4,)`` float32 ``(x1, y1, x2, y2)``: the bird's box in original-image pixels."""
        return self.bboxes[self._check_index(index)].clone()

    def parts(self, index: int) -> torch.Tensor:
        """``(15, 3)`` float32 ``(x, y, visible)`` per part of ``.part_names``, in
        original-image pixels; ``visible`` in {0, 1}."""
        return self.part_locs[self._check_index(index)].clone()

    def part_boxes(self, index: int, half_side: float | None = None) -> torch.Tensor:
        """``(15, 4)`` float32 pixel ``xyxy``: a square around each part of
        ``.part_names``, on the original image's pixel grid.

        Parts are annotated as points; a map is scored against a square centred on
        each point (:func:`hmglib.data.boxes.point_boxes`). The squares are not clipped to
        the image.

        Args:
            index: the sample.
            half_side: half the square's side in original-image pixels; default
                :data:`PART_HALF_SIDE` times the longer side of the bird's box.

        Returns:
            ``(15, 4)`` float32; the rows of invisible parts are NaN (padding for
            :func:`~hmglib.cam.pointing_game` and :func:`~hmglib.cam.energy_in_box`).
        """
        index = self._check_index(index)
        if half_side is None:
            box = self.bboxes[index]
            half_side = PART_HALF_SIDE * float(torch.maximum(box[2] - box[0], box[3] - box[1]))
            if half_side <= 0:
                raise ValueError(f"CUB200.part_boxes: the bird box of sample {index} is empty "
                                 f"({box.tolist()}); pass half_side= in pixels.")
        else:
            half_side = check_real("CUB200.part_boxes", "half_side", half_side, 0.0,
                                   closed_low=False)
        return point_boxes(self.part_locs[index][None], half_side)[0]  # (15, 4)

    def original_size(self, index: int) -> tuple[int, int]:
        """``(H, W)``: the height and width in pixels of image ``index`` as stored (before
        any transform), the canvas of :meth:`box`, :meth:`parts` and :meth:`part_boxes`."""
        width, height = self.image(self._check_index(index)).size
        return height, width

    def evidence_boxes(self, index: int, half_side: float | None = None,
                       ) -> dict[str, torch.Tensor]:
        """The bird's box and its part boxes on the image sample ``index`` holds: moved
        through the dataset's ``transform`` (:func:`hmglib.data.boxes.transform_boxes`), the same
        resize and crop as the image.

        Args:
            index: the sample.
            half_side: the parts' half side in original-image pixels (see
                :meth:`part_boxes`).

        Returns:
            ``{"object": (1, 4), "part": (15, 4)}`` float32 pixel ``xyxy`` on the
            transformed image (clipped to it; NaN rows for invisible parts), the
            ``boxes`` of :func:`hmglib.cam.localisation_scores` once stacked over images.

        Raises:
            TypeError, ValueError: the dataset's transform cannot move boxes (not a
                deterministic torchvision v2 pipeline).
        """
        size = self.original_size(index)
        return {"object": transform_boxes(self.box(index)[None], self.transform, size),
                "part": transform_boxes(self.part_boxes(index, half_side), self.transform,
                                        size)}

    def __repr__(self) -> str:
        return f"CUB200(split={self.split!r}, {len(self)} images, root='{self.root}')"
