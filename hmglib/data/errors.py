"""The errors the datasets raise, importable from one public place.

Every one derives from the built-in exception a caller would catch for it
anyway (a missing folder is a :class:`FileNotFoundError`, a damaged annotation
file a :class:`ValueError`), so ``except FileNotFoundError`` keeps working.

>>> from hmglib.data import DatasetNotFoundError
>>> issubclass(DatasetNotFoundError, FileNotFoundError)
True
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "DatasetNotFoundError",
    "CorruptImageError",
    "DatasetFormatError",
    "DatasetMismatchError",
    "DownloadUnavailableError",
    "MissingExtraError",
]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder is missing or incomplete; the message names the missing
    files, the expected layout and how to obtain the data."""


class CorruptImageError(OSError):
    """An image file of a dataset exists but does not decode (truncated, not an
    image); the message and ``.path`` name the file."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(
            f"corrupt image '{self.path}': {reason}. Delete the file and restore it from the "
            "dataset's archive (re-extract it, or build the dataset with download=True)."
        )

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:
        # rebuilt from its own two arguments (by default pickle would pass the message
        # alone), so that it crosses between processes intact
        return type(self), (self.path, self.reason)


class DatasetFormatError(ValueError):
    """An annotation file exists but a line does not have the dataset's format."""


class DatasetMismatchError(ValueError):
    """The names a dataset's own files give disagree with the label tree (or with the
    class list the dataset is known to have); the message lists every disagreement."""


class DownloadUnavailableError(RuntimeError):
    """``download=True`` for a dataset whose archive has no working public address."""


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""
