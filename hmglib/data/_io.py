"""What every real-dataset class shares: where the data lives, where it comes from,
how its folder is checked, and how an image is opened.

* :func:`data_root` is the default folder for downloaded datasets:
  ``$HMG_DATA_ROOT`` if set, else ``data/datasets/`` of the repository (git-ignored)
  when ``hmglib`` runs from a source checkout, else ``data/datasets/`` under the
  working directory.
* :data:`SOURCES` is the one place that holds download addresses and checksums
  (MD5, as the archives' publishers and torchvision state them) and, for every
  dataset, how to obtain it by hand (the word vectors SARB reads are described
  by :data:`hmglib.data.embeddings.GLOVE`, which has no published checksum).
* :func:`check_layout` raises :class:`DatasetNotFoundError` naming the missing
  files, the expected layout and how to obtain the data; :func:`open_image` raises
  :class:`CorruptImageError` naming the file that does not decode.

No function here touches the network unless a dataset is built with
``download=True``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from hmglib.checks import check_choice, check_index
from hmglib.data.errors import (
    CorruptImageError,
    DatasetFormatError,
    DatasetNotFoundError,
    DownloadUnavailableError,
)

__all__ = [
    "Archive",
    "Source",
    "SOURCES",
    "data_root",
    "resolve_base",
    "check_layout",
    "check_files",
    "check_split",
    "read_rows",
    "open_image",
    "download_source",
    "fetch_archive",
    "mismatch_report",
    "ImageFiles",
]


# -------------------------------------------------------------------- sources
@dataclass(frozen=True)
class Archive:
    """One downloadable archive.

    Attributes:
        url: the address (the publisher's, or torchvision's copy of it).
        filename: the name to save it under.
        md5: its MD5 checksum, verified after the download.
        splits: the splits that need it (empty: every split).
        into: the folder, relative to the dataset's root, it is extracted into.
    """

    url: str
    filename: str
    md5: str
    splits: tuple[str, ...] = ()
    into: str = "."


@dataclass(frozen=True)
class Source:
    """Where a dataset comes from.

    Attributes:
        title: the dataset's name.
        home: its home page.
        archives: what ``download=True`` fetches (empty: no working address).
        how: how to obtain it by hand and where to put it.
    """

    title: str
    home: str
    archives: tuple[Archive, ...]
    how: str


#: Download addresses, checksums and manual instructions, one entry per dataset.
SOURCES: dict[str, Source] = {
    "cub200": Source(
        title="Caltech-UCSD Birds-200-2011 (CUB-200-2011)",
        home="https://www.vision.caltech.edu/datasets/cub_200_2011/",
        archives=(
            Archive(
                url="https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",
                filename="CUB_200_2011.tgz",
                md5="97eceeb196236b17998738112f37df78",
            ),
        ),
        how=(
            "download CUB_200_2011.tgz (1.1 GB) from https://data.caltech.edu/records/65de6-vp158 "
            "and extract it into the root, so that <root>/CUB_200_2011/images.txt exists; or "
            "build the dataset with download=True"
        ),
    ),
    "aircraft": Source(
        title="FGVC-Aircraft 2013b",
        home="https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/",
        archives=(
            Archive(
                # the address torchvision.datasets.FGVCAircraft downloads from
                url="https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/"
                "fgvc-aircraft-2013b.tar.gz",
                filename="fgvc-aircraft-2013b.tar.gz",
                md5="d4acdd33327262359767eeaa97a4f732",
            ),
        ),
        how=(
            "download fgvc-aircraft-2013b.tar.gz (2.6 GB) from "
            "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/ and extract it into the root, "
            "so that <root>/fgvc-aircraft-2013b/data/variants.txt exists (a copy downloaded by "
            "torchvision.datasets.FGVCAircraft(root, download=True) has this layout); or build "
            "the dataset with download=True"
        ),
    ),
    "cars": Source(
        title="Stanford Cars (Krause et al., 3dRR 2013)",
        home="https://ai.stanford.edu/~jkrause/cars/car_dataset.html",
        archives=(),
        how=(
            "the original addresses (ai.stanford.edu/~jkrause/cars/...) no longer serve the files, "
            "so the dataset cannot be downloaded automatically. Assemble the devkit layout by "
            "hand: the images cars_train/ and cars_test/ from the Kaggle mirror "
            "https://www.kaggle.com/datasets/jessicali9530/stanford-cars-dataset (flatten its "
            "nested cars_train/cars_train and cars_test/cars_test folders); devkit/ "
            "(cars_meta.mat, cars_train_annos.mat) from car_devkit.tgz, attached to "
            "https://github.com/pytorch/vision/issues/7545 as "
            "https://github.com/pytorch/vision/files/11644847/car_devkit.tgz; and "
            "cars_test_annos_withlabels.mat, linked from the same issue; all under "
            "<root>/stanford_cars/ (the layout torchvision.datasets.StanfordCars reads)"
        ),
    ),
    "voc2007": Source(
        title="PASCAL Visual Object Classes 2007",
        home="http://host.robots.ox.ac.uk/pascal/VOC/voc2007/",
        archives=(
            Archive(
                url="http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar",
                filename="VOCtrainval_06-Nov-2007.tar",
                md5="c52e279531787c972589f7e41ab4ae64",
                splits=("trainval",),
            ),
            Archive(
                url="http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar",
                filename="VOCtest_06-Nov-2007.tar",
                md5="b6e924de25625d8de591ea690078ad9f",
                splits=("test",),
            ),
        ),
        how=(
            "download VOCtrainval_06-Nov-2007.tar (439 MB) and VOCtest_06-Nov-2007.tar (431 MB) "
            "from http://host.robots.ox.ac.uk/pascal/VOC/voc2007/ (torchvision's mirror: "
            "https://thor.robots.ox.ac.uk/pascal/VOC/voc2007/) and extract both into the root, "
            "so that <root>/VOCdevkit/VOC2007/ImageSets/Main/trainval.txt exists; or build the "
            "dataset with download=True"
        ),
    ),
    "coco2014": Source(
        title="Microsoft COCO 2014",
        home="https://cocodataset.org/#download",
        archives=(
            Archive(
                url="http://images.cocodataset.org/annotations/annotations_trainval2014.zip",
                filename="annotations_trainval2014.zip",
                md5="0a379cfc70b0e71301e0f377548639bd",
            ),
            Archive(
                url="http://images.cocodataset.org/zips/train2014.zip",
                filename="train2014.zip",
                md5="0da8c0bd3d6becc4dcb32757491aca88",
                splits=("train",),
            ),
            Archive(
                url="http://images.cocodataset.org/zips/val2014.zip",
                filename="val2014.zip",
                md5="a3d79f5ed8d289b7a7554ce06a5782b3",
                splits=("val",),
            ),
        ),
        how=(
            "download annotations_trainval2014.zip (241 MB), train2014.zip (13 GB) and "
            "val2014.zip (6.2 GB) from https://cocodataset.org/#download and extract them into "
            "the root, so that <root>/annotations/instances_train2014.json and "
            "<root>/train2014/ exist; or build the dataset with download=True"
        ),
    ),
}


# ----------------------------------------------------------------------- root
def data_root() -> Path:
    """The default folder of downloaded datasets.

    ``$HMG_DATA_ROOT`` if set; else ``data/datasets/`` of the repository when
    ``hmglib`` is imported from a source checkout (that folder is git-ignored);
    else ``data/datasets/`` under the working directory. The folder need not exist.
    """
    env = os.environ.get("HMG_DATA_ROOT", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file() and (repo / "data" / "hierarchies").is_dir():
        return repo / "data" / "datasets"
    return Path.cwd() / "data" / "datasets"


def resolve_base(root: str | Path | None, candidates: Sequence[str], marker: str) -> Path:
    """The dataset folder under ``root``: the first of ``candidates`` (folders relative to
    ``root``; ``"."`` is ``root`` itself) that holds ``marker``, else the first candidate
    (where the dataset is expected, and where a download puts it).

    Args:
        root: a folder, or None for :func:`data_root`.
        candidates: relative folders to try, e.g. ``("CUB_200_2011", ".")``.
        marker: a file or folder, relative to a candidate, whose presence identifies it.
    """
    base_root = data_root() if root is None else Path(root).expanduser()
    for rel in candidates:
        folder = base_root / rel
        if (folder / marker).exists():
            return folder.resolve()
    return (base_root / candidates[0]).resolve()


def check_split(dataset: str, split: str, allowed: Sequence[str]) -> str:
    """``split`` itself, or a ValueError naming the splits ``dataset`` has."""
    return check_choice(dataset, "split", split, allowed)


def _not_found(dataset: str, base: Path, missing: Sequence[str], layout: str, source: str,
               extra: str = "") -> DatasetNotFoundError:
    shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    return DatasetNotFoundError(
        f"{dataset}: the dataset folder '{base}' is missing or incomplete: {shown} "
        f"{'is' if len(missing) == 1 else 'are'} missing.{extra}\n"
        f"Expected layout:\n{layout}\n"
        f"How to obtain it ({SOURCES[source].title}): {SOURCES[source].how}. "
        f"Pass root= the folder that holds it, or set HMG_DATA_ROOT (default {data_root()})."
    )


def check_layout(dataset: str, base: Path, required: Iterable[str], layout: str,
                 source: str) -> None:
    """Raise :class:`DatasetNotFoundError` unless every path of ``required`` (relative to
    ``base``) exists; the message lists the missing ones, ``layout`` and how to obtain
    the data (``SOURCES[source]``)."""
    missing = [rel for rel in required if not (base / rel).exists()]
    if missing:
        raise _not_found(dataset, base, missing, layout, source)


def check_files(dataset: str, base: Path, files: Sequence[str], layout: str,
                source: str) -> None:
    """Raise :class:`DatasetNotFoundError` unless every image of ``files`` (paths relative
    to ``base``) exists. Lists each folder once (one directory scan per folder, not
    one ``stat`` per file), so it stays fast on 100,000 images."""
    by_dir: dict[str, list[str]] = {}
    for rel in files:
        head, _, name = rel.rpartition("/")
        by_dir.setdefault(head, []).append(name)
    missing: list[str] = []
    for head, names in by_dir.items():
        folder = base / head if head else base
        try:
            present = set(os.listdir(folder))
        except (FileNotFoundError, NotADirectoryError):
            present = set()
        missing.extend(f"{head}/{n}" if head else n for n in names if n not in present)
    if missing:
        raise _not_found(
            dataset, base, missing, layout, source,
            extra=f" ({len(missing)} of the {len(files)} images the annotation files list)",
        )


def read_rows(path: Path, fields: int, what: str, *, last_rest: bool = False) -> list[list[str]]:
    """Split each non-empty line of a whitespace-separated annotation file.

    Args:
        path: the file.
        fields: the number of fields per line.
        what: the expected line format, for the error message (e.g. ``"<image_id> <class_id>"``).
        last_rest: the last field is the rest of the line (a name that may hold spaces).

    Raises:
        DatasetFormatError: a line has another number of fields (names the file and line).
    """
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(None, fields - 1) if last_rest else line.split()
            if len(parts) != fields:
                raise DatasetFormatError(
                    f"'{path}' line {lineno}: expected '{what}' ({fields} fields), got {line!r}. "
                    "The file is damaged or not from the dataset's archive; restore it."
                )
            rows.append(parts)
    return rows


def mismatch_report(what: str, pairs: Iterable[tuple[str, object, object]]) -> str | None:
    """A message listing every ``(key, dataset_value, expected_value)`` that differs, or None."""
    bad = [(k, a, b) for k, a, b in pairs if a != b]
    if not bad:
        return None
    lines = [f"  {k}: dataset {a!r} vs expected {b!r}" for k, a, b in bad[:30]]
    more = f"\n  ... and {len(bad) - 30} more" if len(bad) > 30 else ""
    return f"{what}: {len(bad)} disagreement(s):\n" + "\n".join(lines) + more


# --------------------------------------------------------------------- images
def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image as RGB.

    Returns:
        a PIL image, mode ``"RGB"``, of the file's size.

    Raises:
        DatasetNotFoundError: the file does not exist.
        CorruptImageError: the file does not decode (truncated, not an image); the
            message names the file.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            return img.convert("RGB")  # convert() forces the full decode
    except FileNotFoundError as err:
        raise DatasetNotFoundError(
            f"image file '{path}' is missing although the annotation files list it; the "
            "dataset folder is incomplete: re-extract the dataset's archive."
        ) from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise CorruptImageError(path, f"{type(err).__name__}: {err}") from err


# ------------------------------------------------------------------- download
def fetch_archive(archive: Archive, root: Path) -> None:
    """Download ``archive`` into ``root``, check its MD5, and extract it into
    ``root / archive.into`` (torchvision's downloader; the network is used here only)."""
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(
        archive.url, download_root=str(root), extract_root=str(root / archive.into),
        filename=archive.filename, md5=archive.md5,
    )


def download_source(source: str, root: Path, split: str) -> None:
    """Fetch and extract the archives of ``SOURCES[source]`` that ``split`` needs.

    Raises:
        DownloadUnavailableError: the source has no working address; the message says
            how to obtain the data by hand.
    """
    src = SOURCES[source]
    if not src.archives:
        raise DownloadUnavailableError(
            f"{src.title}: download=True is not possible: {src.how}."
        )
    root.mkdir(parents=True, exist_ok=True)
    for archive in src.archives:
        if not archive.splits or split in archive.splits:
            fetch_archive(archive, root)


# ----------------------------------------------------------------------- base
class ImageFiles(Dataset):
    """A list of image files with one target each: the base of the real datasets.

    Subclasses fill ``self.paths`` (``N`` image paths) and implement
    :meth:`target` (the target of sample ``i``), and may override :meth:`image`.
    """

    def __init__(self, transform: Callable | None, target_transform: Callable | None) -> None:
        self.transform = transform
        self.target_transform = target_transform
        self.paths: list[Path] = []

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, index: int) -> Image.Image:
        """The untransformed RGB image of sample ``index`` (a PIL image)."""
        return open_image(self.paths[index])

    def target(self, index: int) -> Any:
        """The untransformed target of sample ``index``."""
        raise NotImplementedError

    def _check_index(self, index: int) -> int:
        return check_index(type(self).__name__, index, len(self))

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        index = self._check_index(index)
        image: Any = self.image(index)
        target = self.target(index)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target
