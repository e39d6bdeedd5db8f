"""Every exception class the library defines, importable from one place.

Each also lives in the public module of its idea (:mod:`hmglib.hierarchy`,
:mod:`hmglib.data.errors`); this module only gathers them, e.g. for
``except hmglib.errors.DatasetNotFoundError``. Every one derives from the
built-in exception a caller would catch anyway (:class:`ValueError`,
:class:`FileNotFoundError`, ...), so catching the built-in keeps working.

* :class:`~hmglib.hierarchy.LabelTreeError` (a ``ValueError``): an invalid label tree, or node
  indices outside it.
* :class:`~hmglib.data.errors.DatasetNotFoundError` (a ``FileNotFoundError``): a dataset folder is
  missing or incomplete.
* :class:`~hmglib.data.errors.CorruptImageError` (an ``OSError``): an image file does not decode.
* :class:`~hmglib.data.errors.DatasetFormatError` (a ``ValueError``): an annotation file is
  malformed.
* :class:`~hmglib.data.errors.DatasetMismatchError` (a ``ValueError``): a dataset's class names
  disagree with its label tree.
* :class:`~hmglib.data.errors.DownloadUnavailableError` (a ``RuntimeError``): ``download=True``
  for a dataset without a working public address.
* :class:`~hmglib.data.errors.MissingExtraError` (an ``ImportError``): an optional dependency is not
  installed.
"""

from hmglib.data.errors import (
    CorruptImageError,
    DatasetFormatError,
    DatasetMismatchError,
    DatasetNotFoundError,
    DownloadUnavailableError,
    MissingExtraError,
)
from hmglib.hierarchy import LabelTreeError

__all__ = [
    "LabelTreeError",
    "DatasetNotFoundError",
    "CorruptImageError",
    "DatasetFormatError",
    "DatasetMismatchError",
    "DownloadUnavailableError",
    "MissingExtraError",
]
