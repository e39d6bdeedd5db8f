"""The library's structure: one factory, no private imports across modules, one
argument order for functions that take a tree."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import hmglib

PACKAGE = Path(hmglib.__file__).parent


def public_modules() -> list[str]:
    """Every module of hmglib whose dotted path has no private component."""
    names = ["hmglib"]
    for info in pkgutil.walk_packages(hmglib.__path__, "hmglib."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def test_no_module_imports_a_private_name_of_another() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hmglib"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private:
                    offenders.append(f"{path.relative_to(PACKAGE)}: {node.module} {private}")
    assert not offenders, "private names imported across modules:\n" + "\n".join(offenders)


def test_cli_and_experiments_build_models_and_losses_through_the_factories() -> None:
    constructors = re.compile(
        r"\b(HRN|FlatClassifier|PerLevelClassifier|CHMCNN|HierarchicalBaseline|HRNLoss|"
        r"LeafCrossEntropyLoss|PerLevelCrossEntropyLoss|MaxConstraintLoss|hrn_loss|"
        r"leaf_cross_entropy|per_level_cross_entropy|max_constraint_loss|marginal_nll)\(")
    for name in ("cli.py", "experiments.py"):
        source = (PACKAGE / name).read_text()
        assert not constructors.findall(source), f"{name} builds {constructors.findall(source)}"
        assert "get_model(" in source and "get_loss(" in source


#: parameter names that hold data (tensors the function computes on)
DATA_NAMES = {"energies", "marginals", "logits", "node_logits", "leaf_logits", "level_logits",
              "grad", "scores", "targets", "predictions", "values", "images", "output", "nodes",
              "labels", "probabilities", "state_probs"}


def test_functions_take_their_data_first_and_the_tree_next() -> None:
    """Every public function or method with a required ``tree`` parameter takes
    its data first (parameters without defaults) and the tree next, positionally,
    before every option (a parameter with a default, or keyword-only). An
    optional tree (the datasets' ``tree=None``: the dataset's own) is an option
    like the others."""
    offenders = []
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
                continue
            members = [(name, obj)]
            if inspect.isclass(obj):
                members = [(f"{name}.{m}", f) for m, f in vars(obj).items()
                           if inspect.isfunction(f) and (not m.startswith("_") or m == "__init__")]
            for qual, fn in members:
                if not callable(fn):
                    continue
                try:
                    params = list(inspect.signature(fn).parameters.values())
                except (TypeError, ValueError):
                    continue
                names = [p.name for p in params]
                if "tree" not in names:
                    continue
                i = names.index("tree")
                before, tree = params[:i], params[i]
                if tree.default is not tree.empty:
                    continue  # an optional tree is an option
                data_first = all(p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD
                                 for p in before)
                data_after = [p.name for p in params[i + 1:]
                              if p.default is p.empty and p.name in DATA_NAMES]
                data_first = data_first and not data_after
                if not data_first or tree.kind is not tree.POSITIONAL_OR_KEYWORD:
                    offenders.append(f"{module_name}.{qual}{inspect.signature(fn)}")
    assert not offenders, "data first, then the tree:\n" + "\n".join(offenders)


def test_import_hmglib_reaches_every_subpackage() -> None:
    for name in ("data", "engine", "viz", "models", "losses", "metrics", "probability"):
        assert inspect.ismodule(getattr(hmglib, name))
