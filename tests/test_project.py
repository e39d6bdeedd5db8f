"""Checks that keep the project healthy: dependencies in step, stripped
notebooks, the Colab cell, the packaged hierarchies, the layout."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from hmglib import colab

NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def test_layout() -> None:
    for name in ["README.md", "_config.yml", "_toc.yml", "environment.yml", "pyproject.toml",
                 "Makefile", "LICENSE", ".gitignore", ".ci/run", "book/index.md",
                 "book/references.bib", "hmglib/__init__.py", "benchmarks"]:
        assert (ROOT / name).exists(), name
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme and "Colab" in readme
    assert "make test" in (ROOT / ".ci/run").read_text()


def test_readme_module_map_names_every_module() -> None:
    """The README's table of modules covers the whole package."""
    import hmglib

    readme = (ROOT / "README.md").read_text()
    table = [line for line in readme.splitlines() if line.startswith("| `")]
    named = {name for line in table for name in re.findall(r"`(\w+)`", line.split("|")[1])}
    assert set(hmglib.SUBMODULES) <= named, (
        f"README.md's module map misses {sorted(set(hmglib.SUBMODULES) - named)}")


def test_colab_installs_the_slim_extra() -> None:
    """Colab gets the library, the widgets and the Grad-CAM package, not the book
    builder."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert "hmglib[colab]" in colab.INSTALL_SOURCE
    assert not any("jupyter-book" in d for d in extras["colab"])
    assert any(d.startswith("ipywidgets") for d in extras["colab"])
    assert any(d.startswith("grad-cam") for d in extras["colab"])  # the Grad-CAM chapter


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared |= set(extra)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {p for p in pip if not p.startswith("-e")}
    assert listed == declared, (
        f"only in pyproject.toml: {sorted(declared - listed)}; "
        f"only in environment.yml: {sorted(listed - declared)}"
    )
    assert "python=3.11" in env["dependencies"]
    assert any("jupyter-book" in d and "<2" in d for d in declared)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stripped(path: Path) -> None:
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name} cell {i} has outputs"
            assert cell["execution_count"] is None, f"{path.name} cell {i} has a count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_starts_with_the_colab_cell(path: Path) -> None:
    nb = json.loads(path.read_text())
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert "".join(first["source"]) == colab.install_cell(), (
        f"{path.name}: run `python -m hmglib.colab book` to update its install cell"
    )


def test_colab_cell_runs_as_a_no_op_outside_colab(monkeypatch) -> None:
    monkeypatch.setenv("HMG_PROFILE", "unset below")  # restored after the test
    monkeypatch.delenv("HMG_PROFILE")
    namespace: dict = {}
    exec(compile(colab.install_cell(), "<install cell>", "exec"), namespace)
    assert namespace["os"].environ["HMG_PROFILE"] == "cpu"  # the profile it chooses
    assert colab.INSTALL_SOURCE in colab.install_cell()
    # the preface shows the very cell the chapters start with
    assert colab.install_cell() in (ROOT / "book" / "index.md").read_text()


def test_colab_sync_rewrites_a_stale_cell(tmp_path) -> None:
    nb = {"cells": [{"cell_type": "code", "source": ["print(1)"], "metadata": {},
                     "outputs": [], "execution_count": None}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "x.ipynb").write_text(json.dumps(nb))
    assert colab.sync(tmp_path) == [tmp_path / "x.ipynb"]
    assert colab.sync(tmp_path) == []


def test_wheel_carries_the_hierarchies_and_weights(tmp_path) -> None:
    """A non-editable install (as Colab does from a git URL) finds the tables and
    the pretrained weights of the small backbone."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True,
    )
    (wheel,) = (tmp_path / "dist").glob("hmglib-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for table in ("cub200", "aircraft", "cars"):
        assert f"hmglib/_hierarchies/{table}.csv" in names
    for suffix in (".pt", ".json"):
        assert f"hmglib/models/weights/small_cnn_hiershapes_v1{suffix}" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True)
    code = (
        "import hashlib, hmglib, sys; from importlib import resources; "
        "from hmglib import hierarchies as h; "
        "from hmglib.models import SmallCNN_Weights, small_cnn; "
        "assert hmglib.__file__.startswith(sys.argv[1]), hmglib.__file__; "
        "print(h.path_of('cub200')); print(h.load('cars').level_sizes); "
        "w = SmallCNN_Weights.DEFAULT; "
        "f = resources.files('hmglib.models').joinpath('weights', w.meta['file']); "
        "assert str(f).startswith(sys.argv[1]), f; "
        "print('sha', hashlib.sha256(f.read_bytes()).hexdigest() == w.meta['sha256']); "
        "print('tensors', len(w.get_state_dict()), small_cnn(weights='DEFAULT').out_channels)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(target)], check=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True).stdout
    assert "_hierarchies" in out and "(9, 196)" in out
    assert "sha True" in out and "tensors 18 64" in out
