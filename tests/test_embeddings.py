"""Class-name embeddings (hmglib.data.embeddings) on a miniature GloVe file.

No network: ``write_glove`` writes a GloVe text file in the real format (one
``word v1 ... vd`` line per word, single spaces, UTF-8) holding a few words and
the words of VOC's 20 class names, with random values written to 5 decimals as
GloVe's are; the expected vectors are parsed back from the written strings.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from hmglib.data import DatasetFormatError, DatasetNotFoundError
from hmglib.data import embeddings as emb
from hmglib.data.coco import CATEGORIES
from hmglib.data.embeddings import (
    ALIASES,
    GLOVE,
    glove_class_embeddings,
    name_words,
    onehot_word_embeddings,
    read_glove,
    word_embeddings,
)
from hmglib.data.synthetic.multi_shapes import class_cues
from hmglib.data.voc import CLASSES

VOC_WORDS = sorted({w for name in CLASSES for w in name_words(name)})
OTHER_WORDS = ["the", ",", "table", "café", "red", "ellipse"]  # "table" is also a VOC word


def write_glove(path: Path, words: list[str], dim: int = 300, seed: int = 0) -> dict:
    """Write ``words`` (each once, in order) as a GloVe text file at ``path``.

    Returns:
        ``{word: (dim,) float32}``, each parsed from the very strings written.
    """
    rng = np.random.default_rng(seed)
    expected, lines = {}, []
    for word in dict.fromkeys(words):
        values = [f"{v:.5f}" for v in rng.normal(0.0, 0.4, size=dim)]
        lines.append(" ".join([word, *values]))
        expected[word] = np.array([float(v) for v in values], dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return expected


@pytest.fixture
def glove(tmp_path: Path) -> dict:
    """A miniature ``glove.6B.300d.txt`` at its expected place under ``tmp_path``."""
    path = GLOVE.path(tmp_path)
    return {"root": tmp_path, "path": path,
            "vectors": write_glove(path, OTHER_WORDS + VOC_WORDS)}


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


# ---------------------------------------------------------------------- source
def test_glove_source_names_the_file_the_zip_and_its_place(tmp_path: Path,
                                                            monkeypatch) -> None:
    assert GLOVE.url == "https://nlp.stanford.edu/data/glove.6B.zip"
    assert (GLOVE.archive, GLOVE.filename, GLOVE.dim) == ("glove.6B.zip", "glove.6B.300d.txt", 300)
    assert GLOVE.path(tmp_path) == tmp_path / "glove" / "glove.6B.300d.txt"
    monkeypatch.setenv("HMG_DATA_ROOT", str(tmp_path / "data"))
    assert GLOVE.path() == (tmp_path / "data").resolve() / "glove" / "glove.6B.300d.txt"
    assert GLOVE.url in GLOVE.how and GLOVE.filename in GLOVE.how


# --------------------------------------------------------------------- reading
def test_read_glove_keeps_exactly_the_requested_words(glove: dict) -> None:
    got = read_glove(glove["path"], ["Cat", "dog", "café", ",", "cat", "unicorn"])
    assert set(got) == {"cat", "dog", "café", ","}  # lowercased; a missing word absent
    for word, vector in got.items():
        assert vector.dtype == np.float32 and vector.shape == (300,)
        np.testing.assert_array_equal(vector, glove["vectors"][word])
    assert read_glove(glove["path"], []) == {}


def test_read_glove_takes_the_first_line_s_dimension_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "vectors.txt"
    path.write_bytes(b"a 1.5 -2\r\n\r\nb 0.25 1e-3\r\n")  # Windows line ends, a blank line
    got = read_glove(path, ["b", "a"])
    np.testing.assert_array_equal(got["a"], np.array([1.5, -2.0], dtype=np.float32))
    np.testing.assert_array_equal(got["b"], np.array([0.25, 0.001], dtype=np.float32))


def test_missing_file_names_the_path_the_url_and_the_unpacking(tmp_path: Path) -> None:
    path = tmp_path / "glove" / "glove.6B.300d.txt"
    with pytest.raises(FileNotFoundError) as info:
        read_glove(path, ["cat"])
    assert isinstance(info.value, DatasetNotFoundError)
    message = str(info.value)
    assert str(path) in message and GLOVE.url in message
    assert "unpack" in message and str(path.parent) in message
    with pytest.raises(DatasetNotFoundError, match=re.escape(GLOVE.url)) as info:
        glove_class_embeddings(["cat"], "voc2007", root=tmp_path)  # no cache, no file
    assert str(path) in str(info.value)
    with pytest.raises(DatasetNotFoundError):
        read_glove(tmp_path, ["cat"])  # a folder is not the file


@pytest.mark.parametrize("text, words, line, what", [
    ("a 1 2 3\nb 1 2\nc 1 2 3\n", ["c"], 2, "3 fields, expected 4"),  # another dimension
    ("a 1 2 3\nb 1 2 3\n\nc 1 2 3 4\n", ["c"], 4, "5 fields, expected 4"),
    ("a 1 2\nb 1 x2\n", ["b"], 2, "not a number"),
    ("a 1 2\nb 1 nan\n", ["b"], 2, "not finite"),
    ("a 1 2\nb 1 1e39\n", ["b"], 2, "not finite"),  # beyond float32
    ("lonely\nb 1 2\n", ["b"], 1, "a word without a vector"),
    ("400000 300\nthe 1 2 3\n", ["the"], 2, "word2vec"),
])
def test_a_malformed_line_names_the_file_and_its_line(tmp_path: Path, text: str,
                                                      words: list[str], line: int,
                                                      what: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as info:
        read_glove(path, words)
    assert isinstance(info.value, DatasetFormatError)
    message = str(info.value)
    assert f"'{path}' line {line}:" in message and what in message


def test_read_glove_refuses_bad_word_lists(glove: dict) -> None:
    with pytest.raises(TypeError, match="one string"):
        read_glove(glove["path"], "cat")
    with pytest.raises(TypeError, match="not a string"):
        read_glove(glove["path"], ["cat", 3])
    with pytest.raises(ValueError, match="holds a space"):
        read_glove(glove["path"], ["dining table"])
    with pytest.raises(ValueError, match="empty"):
        read_glove(glove["path"], [""])


# ----------------------------------------------------------------------- names
def test_every_voc_and_coco_name_splits_into_plain_words() -> None:
    names = [*CLASSES, *(name for _, name in CATEGORIES)]
    assert len(names) == 100
    for name in names:
        words = name_words(name)
        assert words and all(re.fullmatch(r"[a-z]+", w) for w in words), (name, words)
    assert all(name in CLASSES for name in ALIASES)  # the table holds VOC's glued names
    assert name_words("diningtable") == ["dining", "table"] == name_words("dining table")
    assert name_words("pottedplant") == name_words("potted plant") == ["potted", "plant"]
    assert name_words("tvmonitor") == ["tv", "monitor"]
    assert name_words("hair drier") == ["hair", "drier"]


def test_name_words_splits_on_spaces_underscores_and_hyphens() -> None:
    assert name_words("  Red__Ellipse ") == ["red", "ellipse"]
    assert name_words("t-shirt") == ["t", "shirt"]
    assert name_words("Black_footed Albatross") == ["black", "footed", "albatross"]
    with pytest.raises(ValueError, match="has no word"):
        name_words(" _-")
    with pytest.raises(TypeError, match="not a string"):
        name_words(None)


# ------------------------------------------------------------------ embeddings
def test_word_embeddings_average_the_words_of_each_name(glove: dict) -> None:
    v = glove["vectors"]
    names = ["cat", "diningtable", "dining table", "Potted_Plant", "red red ellipse"]
    got = word_embeddings(names, v)
    assert got.dtype == torch.float32 and got.shape == (5, 300)
    by_hand = np.stack([
        v["cat"],
        (v["dining"] + v["table"]) / 2,
        (v["dining"] + v["table"]) / 2,
        (v["potted"] + v["plant"]) / 2,
        (2 * v["red"] + v["ellipse"]) / 3,  # a repeated word counts twice
    ])
    np.testing.assert_allclose(got.numpy(), by_hand, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(  # tensors as vectors give the same rows
        word_embeddings(names, {w: torch.from_numpy(x) for w, x in v.items()}), got)


def test_a_missing_word_names_the_class_the_word_and_the_fix(glove: dict) -> None:
    with pytest.raises(ValueError) as info:
        word_embeddings(["cat", "hair drier", "unicorn"], glove["vectors"])
    message = str(info.value)
    assert "class 'hair drier': word 'hair'" in message
    assert "class 'hair drier': word 'drier'" in message
    assert "class 'unicorn': word 'unicorn'" in message and "3 word(s)" in message
    assert "ALIASES" in message and "another vector file" in message
    with pytest.raises(ValueError, match="class 'hair drier': word 'hair'"):
        glove_class_embeddings(["cat", "hair drier"], "mini", root=glove["root"])
    assert not (glove["root"] / "glove" / "cache" / "mini.npz").exists()


def test_bad_class_name_lists_are_refused(glove: dict) -> None:
    v = glove["vectors"]
    for bad, error, match in [([], ValueError, "empty"),
                              ("cat", TypeError, "one string"),
                              (["cat", ""], ValueError, "class 1 has the name ''"),
                              (["cat", " _ "], ValueError, "class 1 .* no word"),
                              (["cat", 7], TypeError, "class 1 has the name 7"),
                              (5, TypeError, "list of strings")]:
        for fn in (lambda names: word_embeddings(names, v), onehot_word_embeddings,
                   lambda names: glove_class_embeddings(names, "x", root=glove["root"])):
            with pytest.raises(error, match=match):
                fn(bad)


def test_vectors_of_other_dimensions_or_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match=r"different dimensions \('cat': d=3, 'dog': d=2\)"):
        word_embeddings(["cat", "dog"], {"cat": np.ones(3), "dog": np.ones(2)})
    with pytest.raises(ValueError, match=r"'cat' has shape \(1, 3\)"):
        word_embeddings(["cat"], {"cat": np.ones((1, 3))})
    with pytest.raises(ValueError, match=r"'cat' has shape \(0,\)"):
        word_embeddings(["cat"], {"cat": np.ones(0)})


def test_onehot_embeddings_by_hand() -> None:
    got = onehot_word_embeddings(["red ellipse", "blue ellipse", "red triangle"])
    # vocabulary: blue, ellipse, red, triangle
    expected = torch.tensor([[0.0, 0.5, 0.5, 0.0],
                             [0.5, 0.5, 0.0, 0.0],
                             [0.0, 0.0, 0.5, 0.5]])
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected)
    # MultiShapes: 12 classes over 6 colours and 6 silhouettes; classes sharing a
    # colour or a silhouette overlap (dot 1/4), the others are orthogonal
    cues = class_cues(12)
    table = onehot_word_embeddings([f"{hue} {shape}" for shape, hue in cues])
    assert table.shape == (12, 12)
    torch.testing.assert_close(table.sum(dim=1), torch.ones(12))
    shared = torch.tensor([[len({*a} & {*b}) > 0 for b in cues] for a in cues])
    gram = table @ table.T
    off = ~torch.eye(12, dtype=torch.bool)
    assert torch.all(gram[off & shared] == 0.25) and torch.all(gram[off & ~shared] == 0)


# ----------------------------------------------------------------------- cache
def test_the_cache_is_written_then_read_without_the_text_file(glove: dict,
                                                              monkeypatch) -> None:
    root, path = glove["root"], glove["path"]
    first = glove_class_embeddings(CLASSES, "voc2007", root=root)
    assert first.dtype == torch.float32 and first.shape == (20, 300)
    torch.testing.assert_close(first, word_embeddings(CLASSES, glove["vectors"]))
    cache = root / "glove" / "cache" / "voc2007.npz"
    with np.load(cache, allow_pickle=False) as npz:
        assert npz["names"].tolist() == list(CLASSES)
        assert npz["words"].tolist()[10] == "dining table"
        assert str(npz["source"]) == "glove.6B.300d.txt"
        np.testing.assert_array_equal(npz["vectors"], first.numpy())
    assert sorted(p.name for p in cache.parent.iterdir()) == ["voc2007.npz"]  # no temp file
    path.rename(path.with_suffix(".moved"))

    def no_read(*args, **kwargs):
        raise AssertionError("the vector file was read although the cache holds the names")

    monkeypatch.setattr(emb, "read_glove", no_read)
    again = glove_class_embeddings(list(CLASSES), "voc2007", root=root)
    torch.testing.assert_close(again, first, rtol=0, atol=0)


def test_a_cache_for_other_names_is_rebuilt_never_used(glove: dict) -> None:
    root, path, v = glove["root"], glove["path"], glove["vectors"]
    cache = root / "glove" / "cache" / "voc2007.npz"
    glove_class_embeddings(CLASSES, "voc2007", root=root)
    fewer = list(CLASSES[:5])
    got = glove_class_embeddings(fewer, "voc2007", root=root)
    torch.testing.assert_close(got, word_embeddings(fewer, v))
    with np.load(cache, allow_pickle=False) as npz:
        assert npz["names"].tolist() == fewer
    # other names and no text file: the cache is not used, the file is asked for
    path.rename(path.with_suffix(".moved"))
    with pytest.raises(DatasetNotFoundError, match=re.escape(str(path))):
        glove_class_embeddings(list(reversed(fewer)), "voc2007", root=root)
    path.with_suffix(".moved").rename(path)
    # another vector file: rebuilt from it
    other = root / "other.txt"
    v2 = write_glove(other, VOC_WORDS, dim=300, seed=7)
    torch.testing.assert_close(glove_class_embeddings(fewer, "voc2007", path=other, root=root),
                               word_embeddings(fewer, v2))
    with np.load(cache, allow_pickle=False) as npz:
        assert str(npz["source"]) == "other.txt"
    # a damaged cache: rebuilt
    cache.write_bytes(b"not a zip")
    torch.testing.assert_close(glove_class_embeddings(fewer, "voc2007", root=root),
                               word_embeddings(fewer, v))
    # one cache per dataset
    glove_class_embeddings(["cat", "dog"], "mini", root=root)
    assert sorted(p.name for p in cache.parent.iterdir()) == ["mini.npz", "voc2007.npz"]


def test_the_cache_defaults_to_the_data_root(glove: dict, monkeypatch) -> None:
    monkeypatch.setenv("HMG_DATA_ROOT", str(glove["root"]))
    got = glove_class_embeddings(["cat", "tvmonitor"], "mini")
    assert (glove["root"] / "glove" / "cache" / "mini.npz").is_file()
    torch.testing.assert_close(got, word_embeddings(["cat", "tvmonitor"], glove["vectors"]))


@pytest.mark.parametrize("dataset", ["", "../voc", "a/b", ".hidden", None])
def test_the_dataset_name_must_be_a_plain_file_name(glove: dict, dataset) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        glove_class_embeddings(["cat"], dataset, root=glove["root"])
