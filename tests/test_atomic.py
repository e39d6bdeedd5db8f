"""Atomic writes: the content arrives whole, or the old file stays as it was and no
temporary file is left behind."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest
import torch

from hmglib import atomic


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# ---------------------------------------------------------------- content
def test_write_text_and_bytes(tmp_path: Path) -> None:
    path = atomic.write_text(tmp_path / "a.txt", "héllo\nworld\n")
    assert path == tmp_path / "a.txt"
    assert path.read_bytes() == "héllo\nworld\n".encode()  # utf-8, "\n" kept as is
    assert atomic.write_bytes(tmp_path / "b.bin", b"\x00\x01\xff").read_bytes() == b"\x00\x01\xff"
    assert _leftovers(tmp_path, {"a.txt", "b.bin"}) == []


def test_write_json_matches_json_dumps_with_a_newline(tmp_path: Path) -> None:
    obj = {"name": "x", "rows": [{"value": 1.5}], "none": None}
    path = atomic.write_json(tmp_path / "r.json", obj)
    assert path.read_text(encoding="utf-8") == json.dumps(obj, indent=1) + "\n"
    atomic.write_json(path, [1, 2], indent=None)
    assert path.read_text() == "[1, 2]\n"


def test_torch_save_round_trip_and_equal_bytes_whatever_the_name(tmp_path: Path) -> None:
    state = {"w": torch.arange(6.0).reshape(2, 3), "step": 3}
    a = atomic.torch_save(state, tmp_path / "a.pt")
    b = atomic.torch_save(state, tmp_path / "other_name.pt")
    back = torch.load(a, weights_only=True)
    assert torch.equal(back["w"], state["w"]) and back["step"] == 3
    assert a.read_bytes() == b.read_bytes()  # the archive does not carry the file's name


def test_parent_folders_are_created(tmp_path: Path) -> None:
    path = atomic.write_text(tmp_path / "x" / "y" / "z.txt", "deep")
    assert path.read_text() == "deep"


def test_replacing_keeps_the_file_mode_and_a_new_file_gets_the_usual_one(tmp_path: Path) -> None:
    new = atomic.write_text(tmp_path / "new.txt", "a")
    plain = tmp_path / "plain.txt"
    plain.write_text("a")
    assert stat.S_IMODE(new.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    if os.name == "posix":
        os.chmod(new, 0o640)
        atomic.write_text(new, "b")
        assert stat.S_IMODE(new.stat().st_mode) == 0o640 and new.read_text() == "b"


def test_writing_streams_into_a_handle(tmp_path: Path) -> None:
    with atomic.writing(tmp_path / "t.csv") as fh:
        fh.write("a,b\n")
        assert not (tmp_path / "t.csv").exists()  # nothing visible before the end
        fh.write("1,2\n")
    assert (tmp_path / "t.csv").read_text() == "a,b\n1,2\n"


# --------------------------------------------------------------- failures
def test_a_json_failure_mid_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = atomic.write_json(tmp_path / "r.json", {"v": 1})
    before = path.read_bytes()
    # json.dump writes the first keys before it meets the tensor
    with pytest.raises(TypeError, match="not JSON serializable"):
        atomic.write_json(path, {"a": "x" * 10_000, "v": torch.tensor(2.0)})
    assert path.read_bytes() == before
    assert _leftovers(tmp_path, {"r.json"}) == []


def test_a_failure_on_a_new_file_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        atomic.write_json(tmp_path / "sub" / "r.json", {"v": object()})
    assert not (tmp_path / "sub" / "r.json").exists()
    assert _leftovers(tmp_path / "sub", set()) == []


def test_bad_data_types_raise_and_leave_the_old_file(tmp_path: Path) -> None:
    path = atomic.write_text(tmp_path / "a.txt", "old")
    with pytest.raises(TypeError):
        atomic.write_bytes(path, "text, not bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        atomic.write_text(path, b"bytes, not text")  # type: ignore[arg-type]
    assert path.read_text() == "old" and _leftovers(tmp_path, {"a.txt"}) == []


def test_torch_save_of_an_unpicklable_object_keeps_the_old_file(tmp_path: Path) -> None:
    path = atomic.torch_save({"w": torch.ones(2)}, tmp_path / "c.pt")
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - pickle's error type varies by version
        atomic.torch_save({"w": torch.zeros(1000), "f": lambda x: x}, path)
    assert path.read_bytes() == before and _leftovers(tmp_path, {"c.pt"}) == []


def test_an_exception_inside_writing_keeps_the_old_file(tmp_path: Path) -> None:
    path = atomic.write_text(tmp_path / "a.txt", "old")
    with pytest.raises(KeyboardInterrupt), atomic.writing(path) as fh:
        fh.write("half")
        raise KeyboardInterrupt
    assert path.read_text() == "old" and _leftovers(tmp_path, {"a.txt"}) == []


def test_parallel_writers_never_leave_half_a_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    payloads = [{"writer": k, "data": [k] * 5000} for k in range(8)]
    threads = [threading.Thread(target=atomic.write_json, args=(path, p)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert json.loads(path.read_text()) in payloads  # one whole payload, the last to land
    assert _leftovers(tmp_path, {"shared.json"}) == []
