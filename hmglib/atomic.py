"""Atomic file writes: a file is either its old self or completely new, never half.

A record, a cache entry or a checkpoint that a crash, a full disk or an
exception cuts off mid-write would otherwise be read back later as a damaged
file. Every writer here writes into a temporary file in the destination's own
folder (unique per call, so parallel processes never share one), flushes it and
``fsync``\\ s it to disk, and only then renames it over the destination with
:func:`os.replace`, which is atomic on POSIX and Windows when both lie on one
file system. When writing fails, the temporary file is removed and the
destination is left as it was. Missing parent folders are created.

* :func:`writing` — the context manager behind them all, for writers that
  stream into a file handle.
* :func:`write_bytes`, :func:`write_text`, :func:`write_json` and
  :func:`torch_save` — the usual cases.

A new file gets the permissions an ordinary ``open(path, "w")`` would give it
(``0o666`` less the process's umask); a replaced file keeps its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["writing", "write_bytes", "write_text", "write_json", "torch_save"]


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it is to set it ...
    os.umask(mask)  # ... and put it back at once
    return mask


_UMASK = _read_umask()


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable where the platform allows it (POSIX)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a folder
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def writing(path: str | os.PathLike[str], binary: bool = False,
            encoding: str = "utf-8") -> Iterator[IO[Any]]:
    """A file handle whose content replaces ``path`` only if the ``with`` block succeeds.

    Args:
        path: the destination file; its parent folders are created.
        binary: open the handle in binary mode (``"wb"``) instead of text (``"w"``).
        encoding: the text encoding (ignored when ``binary``).

    Yields:
        a writable handle on a temporary file beside ``path``.

    Raises:
        BaseException: whatever the block raises, re-raised after the temporary
            file is removed; ``path`` is then unchanged.

    >>> with writing("out/table.csv") as fh:  # doctest: +SKIP
    ...     fh.write("a,b\\n")
    """
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, on every path
        mode="wb" if binary else "w", encoding=None if binary else encoding,
        newline=None if binary else "", dir=folder, prefix=f".{path.name}.", suffix=".tmp",
        delete=False)
    try:
        with tmp:
            yield tmp
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp.name, mode)
        os.replace(tmp.name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp.name)
        raise
    _fsync_folder(folder)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically write ``data`` to ``path`` (see the module docstring).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: ``data`` is not bytes-like (``path`` is then unchanged).
    """
    with writing(path, binary=True) as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Atomically write ``text`` to ``path`` in ``encoding`` (UTF-8 by default).

    Newlines are written as given (``"\\n"`` stays ``"\\n"`` on every platform).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: ``text`` is not a string (``path`` is then unchanged).
    """
    with writing(path, encoding=encoding) as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 1) -> Path:
    """Atomically write ``obj`` as JSON followed by a newline (UTF-8).

    Args:
        path: the destination file.
        obj: anything :func:`json.dump` serialises (dicts, lists, strings, numbers,
            booleans, None).
        indent: spaces per nesting level, or None for one line.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: ``obj`` holds something JSON cannot represent (e.g. a tensor);
            ``path`` is then unchanged.
    """
    with writing(path) as fh:
        json.dump(obj, fh, indent=indent)
        fh.write("\n")
    return Path(path)


def torch_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Atomically :func:`torch.save` ``obj`` to ``path`` (argument order as ``torch.save``).

    ``torch.save`` writes into the open handle, so the archive's inner folder is
    ``archive/`` whatever the file's name: equal objects give equal bytes.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        Exception: whatever pickling ``obj`` raises (e.g. for a lambda); ``path`` is
            then unchanged.
    """
    import torch  # only the writers of tensors pay for it

    with writing(path, binary=True) as fh:
        torch.save(obj, fh)
    return Path(path)
