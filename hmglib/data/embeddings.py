"""Word embeddings of class names, the semantic input of SARB.

SARB's semantic decoupling (Pu et al., AAAI 2022, after SSGRL) learns one
attention map per class over the backbone's feature map, and what makes map
``c`` attend to class ``c`` is a word vector of the class name, fixed before
training: a ``(C, d)`` matrix, row ``c`` for class ``c``. The paper uses the
300-d GloVe vectors; a name of several words ("dining table") gets the mean of
its words' vectors.

* :data:`GLOVE` describes the vectors once: ``glove.6B.300d.txt`` of
  ``glove.6B.zip`` (Stanford NLP), and where the file is expected,
  ``<data root>/glove/glove.6B.300d.txt``.
* :func:`read_glove` streams the text file and keeps only the words asked for;
  :func:`name_words` splits a class name into words (with the :data:`ALIASES`
  of VOC's glued names); :func:`word_embeddings` averages the words' vectors
  into the ``(C, d)`` matrix.
* :func:`glove_class_embeddings` does all three for a dataset's class names and
  caches the result.
* :func:`onehot_word_embeddings` is the offline analog for the synthetic worlds.

**The download is opt-in and by hand.** Nothing here touches the network. The
real-data experiments need ``glove.6B.zip`` (822 MB) from
https://nlp.stanford.edu/data/glove.6B.zip, unpacked so that
``<data root>/glove/glove.6B.300d.txt`` exists (:data:`GLOVE` ``.how``); a
missing file raises :class:`~hmglib.data.errors.DatasetNotFoundError` (a
``FileNotFoundError``) saying exactly that.

**The cache.** Reading the 1 GB text file takes seconds, and a dataset needs
only a few hundred of its 400,000 words. :func:`glove_class_embeddings` writes
the ``(C, 300)`` result, with the class names and the source file's name, to
``<root>/glove/cache/<dataset>.npz`` (atomically, :mod:`hmglib.atomic`); a
later call with the same names reads that small file and never opens the text
file, so the big file may be deleted once every dataset's cache is written. A
cache made for other names, other words or another vector file is rebuilt,
never used.

**The synthetic worlds.** MultiShapes names its classes by a colour and a
silhouette ("red ellipse"), words GloVe has, but a synthetic world should not
need an 822 MB download. It has two offline choices: fixed one-hot word
embeddings (:func:`onehot_word_embeddings`: each word a one-hot vector, each
class the mean of its words', so two classes that share a colour or a
silhouette get related rows, as GloVe's means relate two names with a
common word), or learned ones, made inside the model (the SARB model takes
``embeddings=None`` to learn a ``(C, d)`` parameter in their place).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hmglib.atomic import writing
from hmglib.data._io import data_root
from hmglib.data.errors import DatasetFormatError, DatasetNotFoundError

__all__ = [
    "WordVectorSource",
    "GLOVE",
    "ALIASES",
    "read_glove",
    "name_words",
    "word_embeddings",
    "glove_class_embeddings",
    "onehot_word_embeddings",
]


# -------------------------------------------------------------------- source
@dataclass(frozen=True)
class WordVectorSource:
    """One file of pretrained word vectors, and where it comes from.

    Attributes:
        title: the vectors' name and paper.
        home: their home page.
        url: the archive's download address.
        archive: the archive's file name.
        filename: the vector file inside the archive (one ``word v1 ... vd`` line
            per word).
        folder: the folder, relative to the data root, that holds ``filename``.
        dim: the vectors' dimension ``d``.
        how: how to obtain the file by hand and where to put it.
    """

    title: str
    home: str
    url: str
    archive: str
    filename: str
    folder: str
    dim: int
    how: str

    def path(self, root: str | Path | None = None) -> Path:
        """The expected place of the vector file: ``<root>/<folder>/<filename>``,
        ``root`` None for :func:`~hmglib.data.data_root`. The file need not exist."""
        base = data_root() if root is None else Path(root).expanduser()
        return base / self.folder / self.filename


#: The 300-d GloVe vectors SARB uses: ``glove.6B.300d.txt`` of ``glove.6B.zip``
#: (Wikipedia 2014 + Gigaword 5, 6 billion tokens, 400,000 lowercase words), expected
#: at ``<data root>/glove/glove.6B.300d.txt``. The one place that names this source.
#: Stanford publishes no checksum for the zip and none could be verified offline, so
#: none is given; :func:`read_glove` checks the file's format line by line instead.
GLOVE = WordVectorSource(
    title="GloVe 6B (Pennington, Socher and Manning, EMNLP 2014), 300-d",
    home="https://nlp.stanford.edu/projects/glove/",
    url="https://nlp.stanford.edu/data/glove.6B.zip",
    archive="glove.6B.zip",
    filename="glove.6B.300d.txt",
    folder="glove",
    dim=300,
    how=(
        "download glove.6B.zip (822 MB) from https://nlp.stanford.edu/data/glove.6B.zip and "
        "unpack glove.6B.300d.txt from it (the zip also holds the 50-, 100- and 200-d files, "
        "which are not needed) into <data root>/glove/, e.g. "
        "'unzip glove.6B.zip glove.6B.300d.txt -d <data root>/glove'; hmglib never downloads "
        "it"
    ),
)


def _missing_file(owner: str, path: Path) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"{owner}: the word-vector file '{path}' does not exist. It is not downloaded "
        f"automatically: download {GLOVE.archive} (822 MB) from {GLOVE.url} and unpack "
        f"{GLOVE.filename} from it into '{path.parent}' (e.g. 'unzip {GLOVE.archive} "
        f"{GLOVE.filename} -d {path.parent}'), so that '{path}' exists. Or pass path= the "
        f"vector file you have, root= the data folder that holds {GLOVE.folder}/"
        f"{GLOVE.filename}, or set HMG_DATA_ROOT (default {data_root()})."
    )


# --------------------------------------------------------------------- reading
def _shown(line: bytes) -> str:
    text = line.decode("utf-8", errors="replace")
    return repr(text if len(text) <= 60 else text[:60] + " ...")


def read_glove(path: str | Path, words: Iterable[str]) -> dict[str, np.ndarray]:
    """The vectors of ``words`` in a GloVe text file.

    The file has one word per line, ``word v1 v2 ... vd``, fields separated by
    single spaces, UTF-8 (the format of every ``glove.*.txt``). It is streamed (never
    held in memory) and only the lines of the requested words are parsed; reading
    stops once every requested word is found. The file's words are compared
    exactly with the requested words lowercased (GloVe 6B's vocabulary is
    lowercase). No network is used.

    Args:
        path: the text file, e.g. ``GLOVE.path()``.
        words: the words wanted (lowercased here; repeats are harmless).

    Returns:
        ``{word: (d,) float32 array}`` for each requested (lowercased) word the file
        has; a word the file lacks is absent (:func:`word_embeddings` names it).

    Raises:
        DatasetNotFoundError: (a ``FileNotFoundError``) ``path`` is not a file; the
            message names it, the URL to download and that the zip must be unpacked
            there.
        DatasetFormatError: (a ``ValueError``) a line read has another number of
            fields than the first line (so another dimension ``d``), or a requested
            word's line holds a value that is not a finite number; the message names
            the file and the 1-based line number.
        TypeError: ``words`` is a single string, or holds something other than strings.
        ValueError: a requested word is empty or holds a space.
    """
    owner = "read_glove"
    path = Path(path).expanduser()
    if isinstance(words, str | bytes):
        raise TypeError(f"{owner}: words={words!r} is one string; pass a list of words.")
    wanted: dict[bytes, str] = {}
    for word in words:
        if not isinstance(word, str):
            raise TypeError(f"{owner}: the word {word!r} is not a string.")
        if not word or " " in word:
            raise ValueError(f"{owner}: the word {word!r} is empty or holds a space (a GloVe "
                             "word never does; split names with name_words).")
        wanted[word.lower().encode("utf-8")] = word.lower()
    if not path.is_file():
        raise _missing_file(owner, path)
    found: dict[str, np.ndarray] = {}
    if not wanted:
        return found
    dim, first = 0, 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.rstrip(b"\r\n ")
            if not line:
                continue
            values = line.count(b" ")  # fields - 1
            if not dim:
                dim, first = values, lineno
                if dim < 1:
                    raise DatasetFormatError(
                        f"{owner}: '{path}' line {lineno}: a word without a vector "
                        f"({_shown(line)}); expected 'word v1 v2 ... vd'. The file is damaged "
                        "or not a GloVe text file.")
            elif values != dim:
                raise DatasetFormatError(
                    f"{owner}: '{path}' line {lineno}: {values + 1} fields, expected {dim + 1} "
                    f"(a word and {dim} values, as line {first} has): {_shown(line)}. The file "
                    "is damaged (e.g. cut off) or not a GloVe text file; unpack it again. (A "
                    "word2vec-format file starts with a '<count> <dim>' line: remove it.)")
            word = wanted.get(line[:line.find(b" ")])
            if word is None or word in found:
                continue
            try:
                with np.errstate(over="ignore"):  # a value beyond float32 is refused below
                    vector = np.array(line.split(b" ")[1:], dtype=np.float64).astype(np.float32)
            except ValueError as err:
                raise DatasetFormatError(
                    f"{owner}: '{path}' line {lineno}: the vector of {word!r} holds a value "
                    f"that is not a number ({err}). The file is damaged; unpack it again."
                ) from err
            if not np.isfinite(vector).all():
                raise DatasetFormatError(
                    f"{owner}: '{path}' line {lineno}: the vector of {word!r} holds a value "
                    "that is not finite (nan or inf in float32). The file is damaged; unpack "
                    "it again.")
            found[word] = vector
            if len(found) == len(wanted):
                break
    return found


# ----------------------------------------------------------------------- names
#: Class names that are several words glued together, as ``{word: its words}``.
#: :func:`name_words` replaces a word found here by its words. It holds PASCAL VOC
#: 2007's three glued names; every other VOC name, and all 80 COCO names
#: (``"hair drier"``, ``"cell phone"`` ...), split into plain words as they are
#: (``"aeroplane"`` and ``"motorbike"`` are words of their own).
ALIASES: dict[str, tuple[str, ...]] = {
    "diningtable": ("dining", "table"),
    "pottedplant": ("potted", "plant"),
    "tvmonitor": ("tv", "monitor"),
}

_SEPARATORS = re.compile(r"[\s_\-]+")


def name_words(name: str) -> list[str]:
    """The words of a class name, as looked up in the word vectors.

    The name is lowercased and split on spaces, underscores and hyphens; a word of
    :data:`ALIASES` is replaced by its words. Other characters are kept.

    >>> name_words("diningtable"), name_words("Hair_drier"), name_words("t-shirt")
    (['dining', 'table'], ['hair', 'drier'], ['t', 'shirt'])

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: ``name`` has no word (empty, or only separators).
    """
    if not isinstance(name, str):
        raise TypeError(f"name_words: the class name {name!r} is not a string.")
    words: list[str] = []
    for word in _SEPARATORS.split(name.lower()):
        if word:
            words.extend(ALIASES.get(word, (word,)))
    if not words:
        raise ValueError(f"name_words: the class name {name!r} has no word.")
    return words


def _check_names(owner: str, class_names: Sequence[str]) -> list[str]:
    """``class_names`` as a list, or an error naming the first bad one."""
    if isinstance(class_names, str | bytes):
        raise TypeError(f"{owner}: class_names={class_names!r} is one string; pass a list of "
                        "class names (e.g. hmglib.data.voc.CLASSES).")
    try:
        names = list(class_names)
    except TypeError as err:
        raise TypeError(f"{owner}: class_names must be a list of strings, got "
                        f"{type(class_names).__name__}.") from err
    if not names:
        raise ValueError(f"{owner}: class_names is empty; pass at least one class name.")
    for c, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(f"{owner}: class {c} has the name {name!r}, not a string.")
        if not _SEPARATORS.sub("", name):
            raise ValueError(f"{owner}: class {c} has the name {name!r}, which has no word; "
                             "every class needs a name.")
    return names


# ------------------------------------------------------------------ embeddings
def word_embeddings(class_names: Sequence[str],
                    vectors: Mapping[str, np.ndarray | torch.Tensor]) -> torch.Tensor:
    """One row per class: the mean of the vectors of the words of its name.

    Args:
        class_names: ``C`` class names (e.g. :data:`hmglib.data.voc.CLASSES`).
        vectors: ``{word: (d,) vector}`` with lowercase words, e.g. from
            :func:`read_glove`; every word of every name (:func:`name_words`) must
            be there, all with one ``d``.

    Returns:
        ``(C, d)`` float32: row ``c`` the mean over ``name_words(class_names[c])``
        of their vectors (a word repeated in a name counts twice).

    Raises:
        ValueError: ``class_names`` is empty or a name has no word; a word of a name
            has no vector (the message names every such class and word, and the
            fix); the vectors needed have different dimensions, or one is not a
            non-empty 1-D vector.
        TypeError: ``class_names`` is a single string or holds a non-string.
    """
    owner = "word_embeddings"
    names = _check_names(owner, class_names)
    words = [name_words(n) for n in names]
    missing = [(n, w) for n, ws in zip(names, words, strict=True) for w in ws if w not in vectors]
    if missing:
        shown = "; ".join(f"class {n!r}: word {w!r}" for n, w in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise ValueError(
            f"{owner}: {len(missing)} word(s) of the class names have no vector: {shown}{more}. "
            "Fix: map a glued or unusual word to words the vectors hold in "
            "hmglib.data.embeddings.ALIASES (or rename the class), or use another vector "
            "file that has the word.")
    table: dict[str, torch.Tensor] = {}
    for w in dict.fromkeys(w for ws in words for w in ws):
        vec = torch.as_tensor(vectors[w]).detach().to("cpu", torch.float32)
        if vec.ndim != 1 or vec.numel() == 0:
            raise ValueError(f"{owner}: the vector of {w!r} has shape {tuple(vec.shape)}; "
                             "every vector must be 1-D (d,) with d >= 1.")
        table[w] = vec
    dims: dict[int, str] = {}
    for w, vec in table.items():
        dims.setdefault(vec.numel(), w)
    if len(dims) > 1:
        shown = ", ".join(f"{w!r}: d={d}" for d, w in dims.items())
        raise ValueError(f"{owner}: the word vectors have different dimensions ({shown}); "
                         "take all of them from one vector file.")
    rows = [torch.stack([table[w] for w in ws]).mean(dim=0) for ws in words]  # C x (d,)
    return torch.stack(rows).contiguous()  # (C, d)


def onehot_word_embeddings(class_names: Sequence[str]) -> torch.Tensor:
    """The offline analog of GloVe class embeddings: mean one-hot word vectors.

    The vocabulary is the sorted set of all words of the names
    (``sorted({w for n in class_names for w in name_words(n)})``), each word is a
    one-hot vector over it, and each class is the mean of its words' one-hots, as
    :func:`word_embeddings` averages GloVe vectors. For MultiShapes' names (a colour
    and a silhouette, e.g. ``"red ellipse"``) two classes that share a word, the same
    colour or the same silhouette, get rows with a positive dot product (1/4) and
    others orthogonal rows: the relation GloVe's means give classes with a common
    word, fixed and known, and nothing is downloaded.

    >>> onehot_word_embeddings(["red ellipse", "blue ellipse"])  # blue, ellipse, red
    tensor([[0.0000, 0.5000, 0.5000],
            [0.5000, 0.5000, 0.0000]])

    Returns:
        ``(C, V)`` float32, ``V`` the vocabulary's size; each row sums to 1.

    Raises:
        ValueError, TypeError: as :func:`word_embeddings` (empty list, a name with
            no word, a non-string).
    """
    names = _check_names("onehot_word_embeddings", class_names)
    vocabulary = sorted({w for n in names for w in name_words(n)})
    eye = torch.eye(len(vocabulary))  # (V, V)
    return word_embeddings(names, {w: eye[v] for v, w in enumerate(vocabulary)})


# ----------------------------------------------------------------------- cache
_DATASET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def _read_cache(cache: Path, names: list[str], words: list[str],
                source: str) -> torch.Tensor | None:
    """The cached ``(C, d)`` embeddings when ``cache`` was made for exactly these
    names, words and source file; None otherwise (missing, other, or unreadable)."""
    if not cache.is_file():
        return None
    try:
        with np.load(cache, allow_pickle=False) as npz:
            same = (npz["names"].tolist() == names and npz["words"].tolist() == words
                    and str(npz["source"]) == source)
            vectors = np.asarray(npz["vectors"]) if same else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if (vectors is None or vectors.dtype != np.float32 or vectors.ndim != 2
            or vectors.shape[0] != len(names) or vectors.shape[1] < 1
            or not np.isfinite(vectors).all()):
        return None
    return torch.from_numpy(np.ascontiguousarray(vectors))


def glove_class_embeddings(class_names: Sequence[str], dataset: str, *,
                           path: str | Path | None = None,
                           root: str | Path | None = None) -> torch.Tensor:
    """The GloVe embeddings of a dataset's class names, through a small cache.

    The first call reads the vector file once, keeping only the words of the names
    (:func:`read_glove`), averages them per class (:func:`word_embeddings`) and
    writes ``<root>/glove/cache/<dataset>.npz`` atomically: ``vectors`` ``(C, d)``
    float32, ``names`` (the class names), ``words`` (each name's words joined by
    spaces) and ``source`` (the vector file's name). A later call whose names, words
    and file name equal the cache's returns the cached vectors without opening the
    vector file; a cache made for anything else (or unreadable) is rebuilt from
    the file, never used.

    Args:
        class_names: ``C`` class names (e.g. :data:`hmglib.data.voc.CLASSES`, or the
            names of :data:`hmglib.data.coco.CATEGORIES`).
        dataset: the cache's name, e.g. ``"voc2007"`` (letters, digits, ``_ . -``).
        path: the vector file; None for ``GLOVE.path(root)``
            (``<root>/glove/glove.6B.300d.txt``).
        root: the data folder holding ``glove/``; None for
            :func:`~hmglib.data.data_root`.

    Returns:
        ``(C, d)`` float32, ``d = 300`` for :data:`GLOVE`'s file (another file's
        dimension otherwise).

    Raises:
        DatasetNotFoundError: no usable cache and the vector file is missing; the
            message names the path and the URL to download.
        DatasetFormatError: the vector file has a malformed line (file and line named).
        ValueError: a word of a name is not in the file (class and word named); bad
            ``class_names`` or ``dataset``.
        TypeError: ``class_names`` is a single string or holds a non-string.
    """
    owner = "glove_class_embeddings"
    names = _check_names(owner, class_names)
    if not isinstance(dataset, str) or not _DATASET.fullmatch(dataset):
        raise ValueError(f"{owner}: dataset={dataset!r} must be a plain file name such as "
                         "'voc2007' (letters, digits, '_', '.', '-'; it names the cache file).")
    base = data_root() if root is None else Path(root).expanduser()
    source_path = GLOVE.path(base) if path is None else Path(path).expanduser()
    cache = base / GLOVE.folder / "cache" / f"{dataset}.npz"
    words = [" ".join(name_words(n)) for n in names]
    cached = _read_cache(cache, names, words, source_path.name)
    if cached is not None:
        return cached
    vectors = read_glove(source_path, {w for ws in words for w in ws.split(" ")})
    embeddings = word_embeddings(names, vectors)  # (C, d)
    with writing(cache, binary=True) as fh:
        np.savez(fh, vectors=embeddings.numpy(), names=np.array(names, dtype=str),
                 words=np.array(words, dtype=str), source=np.array(source_path.name))
    return embeddings
