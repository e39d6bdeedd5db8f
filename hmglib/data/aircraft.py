"""FGVC-Aircraft with its three annotation levels joined into the aircraft tree.

torchvision's ``FGVCAircraft`` reads one annotation level at a time; the
hierarchy lives in the dataset's own per-image files: every image is listed in
``images_variant_<split>.txt``, ``images_family_<split>.txt`` and
``images_manufacturer_<split>.txt``. :class:`FGVCAircraft3` joins the three by
image id, derives the variant → family → manufacturer tree from them, and checks
it against the shipped table (``hierarchies.load("aircraft")``): the variants of
``variants.txt`` in order, the names of ``families.txt`` and
``manufacturers.txt``, and each variant's family and manufacturer. Any
disagreement raises :class:`~hmglib.data.errors.DatasetMismatchError` listing
every name that disagrees.

A sample is ``(image, target)``: the RGB image and the variant's **node index**
in ``.tree`` (leaf ``k`` = line ``k`` of ``variants.txt`` = torchvision's class
``k``). Coarser labels are ``tree.lift(target, "family")`` and so on.

**The banner.** Most images carry a 20-pixel copyright banner along the bottom
edge. torchvision keeps it, and so does this class by default
(``crop_banner=False``); ``crop_banner=True`` removes the bottom 20 rows before
``transform``, as some fine-grained pipelines do. Boxes (``box(i)``) are in the
original image's pixels either way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from hmglib import hierarchies
from hmglib.data._io import (
    ImageFiles,
    check_files,
    check_layout,
    check_split,
    download_source,
    mismatch_report,
    open_image,
    read_rows,
    resolve_base,
)
from hmglib.data.errors import (
    CorruptImageError,
    DatasetFormatError,
    DatasetMismatchError,
)
from hmglib.hierarchy import LabelTree

__all__ = ["FGVCAircraft3", "LAYOUT", "BANNER_PX"]

#: Height of the copyright banner at the bottom of the images, in pixels.
BANNER_PX = 20

LEVELS = ("manufacturer", "family", "variant")

#: The files :class:`FGVCAircraft3` reads, as ``fgvc-aircraft-2013b.tar.gz`` extracts them.
LAYOUT = """\
  <root>/fgvc-aircraft-2013b/data/
    variants.txt                          one variant name per line (100; class-id order)
    families.txt                          one family name per line (70)
    manufacturers.txt                     one manufacturer name per line (30)
    images_variant_<split>.txt            '<image_id> <variant name>'
    images_family_<split>.txt             '<image_id> <family name>'
    images_manufacturer_<split>.txt       '<image_id> <manufacturer name>'
    images_box.txt                        '<image_id> <xmin> <ymin> <xmax> <ymax>' (for box(i) only)
    images/<image_id>.jpg
  with <split> one of train, val, trainval, test"""


def _read_names(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class FGVCAircraft3(ImageFiles):
    """FGVC-Aircraft 2013b (10,000 images; 30 manufacturers, 70 families, 100 variants).

    Args:
        root: the folder holding ``fgvc-aircraft-2013b/`` (or that folder itself); None
            for :func:`hmglib.data.data_root`.
        split: ``"train"``, ``"val"``, ``"trainval"`` or ``"test"`` (3,334 / 3,333 /
            6,667 / 3,333 images).
        transform: applied to the PIL RGB image.
        target_transform: applied to the target (an int node index).
        download: fetch and extract ``fgvc-aircraft-2013b.tar.gz`` (torchvision's
            address; MD5 in ``hmglib.data.SOURCES["aircraft"]``) when the folder is missing.
        crop_banner: remove the bottom :data:`BANNER_PX` rows (the copyright banner).
        tree: the label tree; default ``hierarchies.load("aircraft")``.

    Attributes:
        tree: the LabelTree; targets are its node indices.
        classes: the 100 variant names of ``variants.txt``, in class-id order.
        image_ids: ``N`` image ids (file stems) in the order of ``images_variant_<split>.txt``.
        paths: ``N`` image paths.
        labels: ``(N,)`` int64 variant index in ``[0, 100)``.
        targets: ``(N,)`` int64 variant node index in ``.tree``.
        annotations: ``N`` tuples ``(manufacturer, family, variant)`` joined per image.
        paths_from_files: variant → ``(manufacturer, family)`` as the per-image files give it.

    Raises:
        DatasetNotFoundError: the folder is missing or incomplete.
        DatasetFormatError: the three per-image files do not list the same images, or
            give one variant two families (or one family two manufacturers).
        DatasetMismatchError: a name of the dataset's files disagrees with the tree
            (lists all of them).
        CorruptImageError: (on ``__getitem__``) an image does not decode.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "trainval",
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
        crop_banner: bool = False,
        tree: LabelTree | None = None,
    ) -> None:
        super().__init__(transform, target_transform)
        self.split = check_split("FGVCAircraft3", split, ("train", "val", "trainval", "test"))
        self.crop_banner = bool(crop_banner)
        candidates = ("fgvc-aircraft-2013b", ".")
        self.root = resolve_base(root, candidates, "data/variants.txt")
        required = [
            "data/variants.txt", "data/families.txt", "data/manufacturers.txt", "data/images",
            *(f"data/images_{level}_{self.split}.txt" for level in LEVELS),
        ]
        if download and not all((self.root / rel).exists() for rel in required):
            download_source("aircraft", self.root.parent, split)
            self.root = resolve_base(self.root.parent, candidates, "data/variants.txt")
        check_layout("FGVCAircraft3", self.root, required, LAYOUT, "aircraft")
        self.tree = hierarchies.load("aircraft") if tree is None else tree
        data = self.root / "data"
        self.classes = _read_names(data / "variants.txt")
        self._join(data)
        self._check_tree(data)
        check_files("FGVCAircraft3", self.root,
                    [f"data/images/{i}.jpg" for i in self.image_ids], LAYOUT, "aircraft")
        index = {name: k for k, name in enumerate(self.classes)}
        self.paths = [data / "images" / f"{i}.jpg" for i in self.image_ids]
        self.labels = torch.tensor([index[a[2]] for a in self.annotations],
                                   dtype=torch.long)  # (N,)
        self.targets = self.labels + self.tree.offset(-1)  # (N,) node indices
        self._boxes: torch.Tensor | None = None

    # ------------------------------------------------------------ reading
    def _join(self, data: Path) -> None:
        per_level: dict[str, dict[str, str]] = {}
        order: list[str] = []
        for level in LEVELS:
            path = data / f"images_{level}_{self.split}.txt"
            rows = read_rows(path, 2, f"<image_id> <{level} name>", last_rest=True)
            per_level[level] = {i: name for i, name in rows}
            if level == "variant":
                order = [i for i, _ in rows]
        ids = set(order)
        for level in ("manufacturer", "family"):
            only_var = sorted(ids - set(per_level[level]))
            only_lvl = sorted(set(per_level[level]) - ids)
            if only_var or only_lvl:
                raise DatasetFormatError(
                    f"FGVCAircraft3: images_variant_{self.split}.txt and "
                    f"images_{level}_{self.split}.txt list different images: "
                    f"{len(only_var)} only in the first (e.g. {only_var[:5]}), {len(only_lvl)} "
                    f"only in the second (e.g. {only_lvl[:5]}). Restore the files from the archive."
                )
        self.image_ids: list[str] = order
        self.annotations: list[tuple[str, str, str]] = [
            (per_level["manufacturer"][i], per_level["family"][i], per_level["variant"][i])
            for i in order
        ]
        # the hierarchy the files imply: each variant one family, each family one manufacturer
        fam_of: dict[str, tuple[str, str]] = {}
        man_of: dict[str, tuple[str, str]] = {}
        for i, (man, fam, var) in zip(order, self.annotations, strict=True):
            for child, up, seen, what in ((var, fam, fam_of, "variant"),
                                          (fam, man, man_of, "family")):
                first = seen.setdefault(child, (up, i))
                if first[0] != up:
                    raise DatasetFormatError(
                        f"FGVCAircraft3: the {what} '{child}' has two parents in the "
                        f"{self.split} files: '{first[0]}' (image {first[1]}) and '{up}' (image "
                        f"{i}); the dataset's files must give one hierarchy."
                    )
        self.paths_from_files: dict[str, tuple[str, str]] = {
            var: (man_of[fam][0], fam) for var, (fam, _) in fam_of.items()
        }

    def _check_tree(self, data: Path) -> None:
        tree = self.tree
        problems: list[str] = []
        leaves = [tree.names[n] for n in tree.leaves.tolist()]
        if len(self.classes) != len(leaves):
            problems.append(f"variants.txt has {len(self.classes)} names, the tree "
                            f"{len(leaves)} variants")
        report = mismatch_report(
            "variants.txt vs the tree's variants (leaf k = line k)",
            ((f"line {k + 1}", a, b) for k, (a, b) in enumerate(zip(self.classes, leaves,
                                                                     strict=False))),
        )
        if report:
            problems.append(report)
        for level, fname in (("family", "families.txt"), ("manufacturer", "manufacturers.txt")):
            in_file = set(_read_names(data / fname))
            in_tree = {tree.names[n] for n in tree.nodes_at(level).tolist()}
            if in_file != in_tree:
                problems.append(
                    f"{fname} vs the tree's {level} level: only in the file "
                    f"{sorted(in_file - in_tree)}, only in the tree {sorted(in_tree - in_file)}"
                )
        known = set(leaves)
        for var, (man, fam) in sorted(self.paths_from_files.items()):
            if var not in known:
                problems.append(f"variant '{var}' of images_variant_{self.split}.txt is not a "
                                "variant of the tree")
                continue
            path = tree.path_names(tree.index(var, level="variant"))
            if path[:2] != [man, fam]:
                problems.append(
                    f"variant '{var}': the dataset's files say manufacturer '{man}', family "
                    f"'{fam}'; the tree says '{path[0]}', '{path[1]}'"
                )
        unknown = sorted(set(self.paths_from_files) - set(self.classes))
        if unknown and not report:
            problems.append(f"variants of images_variant_{self.split}.txt not in variants.txt: "
                            f"{unknown}")
        if problems:
            raise DatasetMismatchError(
                f"FGVCAircraft3: the dataset's annotation files ('{data}') disagree with the "
                f"label tree {tree!r}:\n- " + "\n- ".join(problems)
                + "\nUse an unmodified fgvc-aircraft-2013b folder, or pass tree= a table that "
                "matches your files."
            )

    def hierarchy_from_files(self) -> LabelTree:
        """The variant → family → manufacturer tree the split's per-image files imply,
        over the variants they contain, in ``variants.txt`` order."""
        paths = [(*self.paths_from_files[v], v) for v in self.classes
                 if v in self.paths_from_files]
        return LabelTree.from_paths(paths, LEVELS)

    # ------------------------------------------------------------ samples
    def image(self, index: int) -> Image.Image:
        """The RGB image of sample ``index``, without its banner when ``crop_banner``."""
        img = open_image(self.paths[index])
        if self.crop_banner:
            w, h = img.size
            if h <= BANNER_PX:
                raise CorruptImageError(
                    self.paths[index], f"{h} px tall, too small to crop a {BANNER_PX}-px banner")
            img = img.crop((0, 0, w, h - BANNER_PX))
        return img

    def target(self, index: int) -> int:
        """The variant's node index of sample ``index`` (an int)."""
        return int(self.targets[index])

    def box(self, index: int) -> torch.Tensor:
        """``(4,)`` float32 ``(xmin, ymin, xmax, ymax)`` of ``images_box.txt``: the
        aircraft's box in original-image pixels (banner included).

        Raises:
            DatasetNotFoundError: ``data/images_box.txt`` is missing.
        """
        index = self._check_index(index)
        if self._boxes is None:
            path = self.root / "data" / "images_box.txt"
            check_layout("FGVCAircraft3", self.root, ["data/images_box.txt"], LAYOUT,
                         "aircraft")
            rows = {r[0]: [float(v) for v in r[1:]] for r in read_rows(
                path, 5, "<image_id> <xmin> <ymin> <xmax> <ymax>")}
            lacking = [i for i in self.image_ids if i not in rows]
            if lacking:
                raise DatasetFormatError(
                    f"FGVCAircraft3: '{path}' has no box for {len(lacking)} image(s) of the "
                    f"{self.split} split (e.g. {lacking[:5]})."
                )
            self._boxes = torch.tensor([rows[i] for i in self.image_ids],
                                       dtype=torch.float32).reshape(-1, 4)  # (N, 4)
        return self._boxes[index].clone()

    def __repr__(self) -> str:
        return (f"FGVCAircraft3(split={self.split!r}, {len(self)} images, "
                f"crop_banner={self.crop_banner}, root='{self.root}')")
