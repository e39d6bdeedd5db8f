"""The package's namespace: every submodule reachable from ``import hmglib`` (lazily),
and every exception class importable from a public module and from ``hmglib.errors``."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import hmglib
import hmglib.errors
from hmglib.data import CorruptImageError, DatasetNotFoundError

HEAVY = ("matplotlib", "ipywidgets", "hmglib.data", "hmglib.engine", "hmglib.viz",
         "hmglib.widgets", "hmglib.models", "hmglib.cli", "hmglib.experiments")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=Path(__file__).resolve().parents[1])


def _all_modules() -> list[ModuleType]:
    """Every module of the package, private ones included (``__main__`` would run the CLI)."""
    names = [info.name for info in pkgutil.walk_packages(hmglib.__path__, "hmglib.")
             if info.name != "hmglib.__main__"]
    return [hmglib, *(importlib.import_module(n) for n in names)]


def _is_public(dotted: str) -> bool:
    return not any(part.startswith("_") for part in dotted.split("."))


# ---------------------------------------------------------------- submodules
def test_import_hmglib_loads_no_plotting_widgets_or_heavy_submodules() -> None:
    code = ("import sys, hmglib\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"`import hmglib` loaded {done.stdout.strip()}"


def test_submodules_are_attributes_after_a_bare_import() -> None:
    done = _python("import hmglib\n"
                   "print(hmglib.data.HierShapes.__name__, hmglib.engine.__name__, "
                   "hmglib.viz.__name__, hmglib.models.HRN.__name__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["HierShapes", "hmglib.engine", "hmglib.viz", "HRN"]


def test_every_listed_name_resolves_to_its_module() -> None:
    for name in hmglib.SUBMODULES:
        module = getattr(hmglib, name)
        assert isinstance(module, ModuleType) and module.__name__ == f"hmglib.{name}", name


def test_every_public_module_of_the_package_is_listed() -> None:
    found = {info.name for info in pkgutil.iter_modules(hmglib.__path__)
             if not info.name.startswith("_")}
    assert found == set(hmglib.SUBMODULES), (
        f"missing from hmglib.SUBMODULES: {sorted(found - set(hmglib.SUBMODULES))}; "
        f"listed but absent: {sorted(set(hmglib.SUBMODULES) - found)}")


def test_dir_lists_submodules_and_the_light_names() -> None:
    names = dir(hmglib)
    assert set(hmglib.SUBMODULES) <= set(names)
    assert {"LabelTree", "LabelTreeError", "__version__"} <= set(names)
    assert "importlib" not in names  # helpers of the package are not its names


def test_unknown_attribute_names_the_submodules() -> None:
    with pytest.raises(AttributeError, match=r"no attribute 'vis'.*submodules are .*viz"):
        hmglib.vis  # noqa: B018
    assert not hasattr(hmglib, "not_a_module")


def test_from_import_of_a_submodule_still_works() -> None:
    from hmglib import checks, hierarchies

    assert checks is hmglib.checks and hierarchies.load("cars").num_levels == 2


# ---------------------------------------------------------------- exceptions
def _library_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in _all_modules():
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("hmglib"):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def test_the_walk_finds_the_known_exceptions() -> None:
    found = _library_exceptions()
    assert "hmglib.hierarchy.LabelTreeError" in found
    assert "hmglib.data.errors.DatasetNotFoundError" in found
    assert len(found) >= 7


def test_every_exception_is_in_hmglib_errors_and_defined_in_a_public_module() -> None:
    gathered = {obj for obj in vars(hmglib.errors).values()
                if isinstance(obj, type) and issubclass(obj, BaseException)}
    for dotted, cls in _library_exceptions().items():
        assert cls in gathered, f"{dotted} is not re-exported by hmglib.errors"
        assert getattr(hmglib.errors, cls.__name__) is cls
        assert cls.__name__ in hmglib.errors.__all__, dotted
        assert _is_public(cls.__module__), (
            f"{dotted} is defined in a private module; define it in a public one")
        assert getattr(importlib.import_module(cls.__module__), cls.__name__) is cls


def test_errors_all_holds_only_exception_classes() -> None:
    for name in hmglib.errors.__all__:
        obj = getattr(hmglib.errors, name)
        assert isinstance(obj, type) and issubclass(obj, Exception), name


def test_dataset_errors_are_exported_by_hmglib_data() -> None:
    for name in ("DatasetNotFoundError", "CorruptImageError", "DatasetFormatError",
                 "DatasetMismatchError", "DownloadUnavailableError", "MissingExtraError"):
        assert name in hmglib.data.__all__
        assert getattr(hmglib.data, name) is getattr(hmglib.errors, name)
        assert getattr(hmglib.data.errors, name) is getattr(hmglib.errors, name)


def test_errors_keep_their_builtin_bases() -> None:
    assert issubclass(DatasetNotFoundError, FileNotFoundError)
    assert issubclass(hmglib.errors.LabelTreeError, ValueError)
    assert issubclass(hmglib.errors.MissingExtraError, ImportError)


def test_corrupt_image_error_survives_pickling(tmp_path: Path) -> None:
    err = CorruptImageError(tmp_path / "a.jpg", "OSError: truncated")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is CorruptImageError
    assert back.path == err.path and back.reason == "OSError: truncated"
    assert str(back) == str(err) and "a.jpg" in str(back)
