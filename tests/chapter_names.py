"""The library names each chapter uses, linked to their entries on the API page.

    python tests/chapter_names.py [--write] [book/01_label_trees.ipynb ...]

Reads the code cells of each chapter (every notebook chapter of ``_toc.yml`` when
none is named), collects the fully qualified ``hmglib`` names its code uses, and
renders them as a final markdown cell, tagged ``library-names``, of MyST
cross-references to the API page. Without ``--write`` it prints what differs
and exits 1 when a chapter's cell is missing or stale; with ``--write`` it
inserts or replaces the cell, leaving the rest of the notebook byte for byte.
Either way it exits 1 when a chapter uses a name the API page does not document.

The public API is read from the code, never from a list: every module of
``hmglib`` whose dotted path has no component starting with ``_`` (``__main__``
excluded) and the names of its ``__all__``. Each public object is documented
once, at its home (:func:`public_api`), and a chapter's names link there.
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import importlib
import inspect
import pkgutil
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "hmglib"
TAG = "library-names"
CELL_ID = "library-names"
HEADING = "## Library names used in this chapter"
INTRO = ("The names of `hmglib` that this chapter's code uses, each linked to its entry "
         "on the {doc}`API page <api>`.")

# ---------------------------------------------------------------------------
# The public API


def is_public_module(name: str) -> bool:
    """A module is public when no component of its dotted path starts with ``_``."""
    return not any(part.startswith("_") for part in name.split("."))


def _raise(name: str) -> None:
    """``pkgutil.walk_packages`` ignores a package that fails to import; do not."""
    raise ImportError(f"cannot import {name} while listing the modules of {PACKAGE}") \
        from sys.exc_info()[1]


def public_modules(package: str = PACKAGE) -> list[str]:
    """Every public module of ``package`` (itself included), sorted."""
    root = importlib.import_module(package)
    found = [package]
    for info in pkgutil.walk_packages(root.__path__, package + ".", onerror=_raise):
        if is_public_module(info.name):
            found.append(info.name)
    return sorted(found)


def exported_names(module: ModuleType) -> list[str]:
    """A module's public names: its ``__all__``, or else its public top-level
    functions and classes defined in it."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [name for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
            and obj.__module__ == module.__name__]


def assigned_names(module: ModuleType) -> set[str]:
    """The names a module's own source assigns at top level (not those it imports)."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return set()
    names = set()
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    names.add(sub.id)
    return names


def has_qualname(obj: object) -> bool:
    """Classes and functions (wrapped ones too) know where they are defined; other
    values (instances, numbers, dicts) do not: an instance's ``__module__`` is its class's."""
    return isinstance(getattr(obj, "__qualname__", None), str) and \
        isinstance(getattr(obj, "__module__", None), str)


def role_of(obj: object) -> str:
    """The Python-domain role that links to ``obj`` as autodoc documents it."""
    if inspect.ismodule(obj):
        return "py:mod"
    if inspect.isclass(obj):
        return "py:exc" if issubclass(obj, BaseException) else "py:class"
    if callable(obj) and has_qualname(obj):
        return "py:func"
    return "py:data"


@dataclass(frozen=True)
class Entry:
    """One public object: where the API page documents it, and how to link it."""

    target: str  # "<module>.<name>": the object's anchor on the API page
    role: str
    obj: object


@dataclass
class PublicAPI:
    """The public modules, and every exported path (``module.name``) → its entry."""

    package: str
    modules: list[str]
    exports: dict[str, Entry]

    def targets(self) -> set[str]:
        """The anchors the API page must have, one per public object (modules aside)."""
        return {e.target for e in self.exports.values() if e.role != "py:mod"}

    @cached_property
    def by_object(self) -> dict[int, Entry]:
        """Entries of classes and functions, by identity (values such as numbers
        may be equal objects by chance, so they are found by path only)."""
        return {id(e.obj): e for e in self.exports.values() if has_qualname(e.obj)
                and not inspect.ismodule(e.obj)}


def public_api(package: str = PACKAGE) -> PublicAPI:
    """The public API and the home of each public object, one per object.

    An object's home is the public module that documents it: its defining module
    (``obj.__module__``) for a class or function exported there, the module whose
    source assigns it for a value, and otherwise (an object defined in a private
    module and re-exported by a package) the shallowest public module exporting it.
    A package re-exporting names defined in public submodules documents none of them.
    """
    names = public_modules(package)
    modules = {name: importlib.import_module(name) for name in names}
    exporters: dict[int, list[tuple[str, str]]] = {}
    values: dict[int, object] = {}
    for modname, module in modules.items():
        for name in exported_names(module):
            if not hasattr(module, name):
                continue  # reported by the API page's tests
            obj = getattr(module, name)
            exporters.setdefault(id(obj), []).append((modname, name))
            values[id(obj)] = obj
    assigned = {name: assigned_names(module) for name, module in modules.items()}
    exports: dict[str, Entry] = {}
    for key, pairs in exporters.items():
        obj = values[key]
        if inspect.ismodule(obj):
            entry = Entry(obj.__name__, "py:mod", obj)
            for modname, name in pairs:
                exports[f"{modname}.{name}"] = entry
            continue
        if not has_qualname(obj):
            # a value: equal values (small ints, short strings) can be one object
            # exported by unrelated modules, so each exporter that assigns it is a home
            for modname, name in pairs:
                home = (modname, name)
                if name not in assigned[modname]:
                    owners = [(m, n) for m, n in pairs if n == name and n in assigned[m]]
                    home = min(owners or [(m, n) for m, n in pairs if n == name],
                               key=lambda p: (p[0].count("."), p[0]))
                exports[f"{modname}.{name}"] = Entry(f"{home[0]}.{home[1]}", "py:data", obj)
            continue
        defining = [(m, n) for m, n in pairs if m == obj.__module__]
        home = defining[0] if defining else min(pairs, key=lambda p: (p[0].count("."), p[0]))
        entry = Entry(f"{home[0]}.{home[1]}", role_of(obj), obj)
        for modname, name in pairs:
            exports[f"{modname}.{name}"] = entry
    return PublicAPI(package, names, dict(sorted(exports.items())))


# ---------------------------------------------------------------------------
# The names a chapter uses


def toc_notebooks(root: Path = ROOT) -> list[Path]:
    """The chapters of ``_toc.yml`` that are notebooks, in book order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]] if "root" in toc else []

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    paths = [root / (f if f.endswith(".ipynb") else f + ".ipynb") for f in files]
    return [p for p in paths if p.is_file()]


def python_of_cell(source: str) -> ast.Module | None:
    """A code cell's syntax tree, IPython line magics (``%``) and shell lines (``!``)
    left out; ``None`` for a cell magic (``%%``) or a cell that is not Python."""
    if source.lstrip().startswith("%%"):
        return None
    lines = [line[:len(line) - len(line.lstrip())] + "pass"  # keeps a block a block
             if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def code_trees(nb: nbformat.NotebookNode) -> list[ast.Module]:
    """The syntax trees of a notebook's Python code cells, in order."""
    trees = [python_of_cell(cell.source) for cell in nb.cells if cell.cell_type == "code"]
    return [t for t in trees if t is not None]


def _in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _import_path(path: str) -> object:
    """The object at a dotted path: its longest importable module prefix, then
    attributes. Raises ``ImportError`` or ``AttributeError``."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"no module in {path}")


def used_paths(nb: nbformat.NotebookNode, package: str = PACKAGE) -> list[str]:
    """The dotted paths of the ``package`` names a notebook's code uses.

    ``from hmglib.x import y`` uses ``hmglib.x.y``; when ``y`` is a module (or
    with ``import hmglib.x as m``), the attributes read on it are used instead,
    through submodules (``hmglib.profile.current``). A module used bare is used
    itself. Attributes of classes and instances are out of scope.
    """
    trees = code_trees(nb)
    modules: dict[str, str] = {}  # local name → module path
    starred: dict[str, str] = {}  # local name → path, from "from m import *"
    used: list[str] = []

    def use(path: str) -> None:
        if path not in used:
            used.append(path)

    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if not _in_package(alias.name, package):
                        continue
                    if alias.asname:
                        modules[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        modules[top] = top
            elif isinstance(node, ast.ImportFrom):
                if node.level or not node.module or not _in_package(node.module, package):
                    continue
                for alias in node.names:
                    if alias.name == "*":
                        try:
                            module = importlib.import_module(node.module)
                        except ImportError:
                            use(node.module)  # reported as not importable
                            continue
                        for name in exported_names(module):
                            starred[name] = f"{node.module}.{name}"
                        continue
                    path = f"{node.module}.{alias.name}"
                    local = alias.asname or alias.name
                    try:
                        obj = _import_path(path)
                    except (ImportError, AttributeError):
                        use(path)  # reported as not importable
                        continue
                    if inspect.ismodule(obj):
                        modules[local] = obj.__name__
                    else:
                        use(path)

    class Uses(ast.NodeVisitor):
        def visit_Attribute(self, node: ast.Attribute) -> None:
            attrs = []
            base: ast.expr = node
            while isinstance(base, ast.Attribute):
                attrs.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in modules:
                use(follow(modules[base.id], attrs[::-1]))
            else:
                self.visit(base)

        def visit_Name(self, node: ast.Name) -> None:
            if not isinstance(node.ctx, ast.Load):
                return
            if node.id in modules:
                use(modules[node.id])
            elif node.id in starred:
                use(starred[node.id])

    def follow(path: str, attrs: list[str]) -> str:
        """From a module, through submodules, to the first object that is not one."""
        for attr in attrs:
            try:
                obj = _import_path(f"{path}.{attr}")
            except (ImportError, AttributeError):
                return f"{path}.{attr}"  # reported as not importable
            path = f"{path}.{attr}"
            if not inspect.ismodule(obj):
                break
        return path

    for tree in trees:
        Uses().visit(tree)
    return used


@dataclass(frozen=True)
class Link:
    """A name a chapter uses, and where it links to."""

    path: str  # as the chapter reaches it
    target: str  # the anchor on the API page
    role: str
    problem: str = ""  # why it cannot be linked, when it cannot

    def markdown(self) -> str:
        shown = self.target if self.role == "py:mod" else f"~{self.target}"
        return f"{{{self.role}}}`{shown}`"

    @property
    def module(self) -> str:
        return self.target if self.role == "py:mod" else self.target.rsplit(".", 1)[0]


def resolve(path: str, api: PublicAPI) -> Link:
    """Where a name a chapter uses is documented: its object's home on the API page."""
    try:
        obj = _import_path(path)
    except (ImportError, AttributeError) as exc:
        return Link(path, path, "py:obj", f"{path} cannot be imported ({exc})")
    if inspect.ismodule(obj):
        problem = "" if obj.__name__ in api.modules else \
            f"{path} is the module {obj.__name__}, which is not public"
        return Link(path, obj.__name__, "py:mod", problem)
    entry = api.exports.get(path)
    if entry is None and has_qualname(obj):
        entry = api.by_object.get(id(obj))
    if entry is None:
        where = f"{obj.__module__}.{obj.__qualname__}" if has_qualname(obj) else path
        return Link(path, where, role_of(obj),
                    f"{path} is not public (in no public module's __all__), "
                    "so the API page does not document it")
    return Link(path, entry.target, entry.role)


def chapter_links(nb: nbformat.NotebookNode, api: PublicAPI | None = None) -> list[Link]:
    """The names a chapter uses, resolved, one per target, sorted by target."""
    api = api or public_api()
    links: dict[str, Link] = {}
    for path in used_paths(nb, api.package):
        link = resolve(path, api)
        links.setdefault(link.target, link)
    return sorted(links.values(), key=lambda link: (link.module, link.target.casefold()))


def render(links: list[Link]) -> str:
    """The markdown of the chapter's last cell: the names grouped by module (a name
    that cannot be linked is left out; :class:`Report` reports it)."""
    groups: dict[str, list[Link]] = {}
    for link in links:
        if link.problem:
            continue
        groups.setdefault(link.module, [])
        if link.role != "py:mod":
            groups[link.module].append(link)
    lines = [HEADING, "", INTRO, ""]
    if not groups:
        lines[2:] = ["This chapter's code uses no name of `hmglib`."]
    for module, members in sorted(groups.items()):
        item = f"- {{py:mod}}`{module}`"
        if members:
            item += ": " + ", ".join(m.markdown() for m in members)
        lines.append(item)
    return "\n".join(lines).rstrip("\n")


def is_names_cell(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "markdown" and TAG in cell.get("metadata", {}).get("tags", [])


def with_names_cell(nb: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    """A copy of ``nb`` whose last cell, and only tagged one, is the names cell."""
    new = copy.deepcopy(nb)
    old = [c for c in new.cells if is_names_cell(c)]
    cell = old[0] if old else nbformat.v4.new_markdown_cell(
        source, id=CELL_ID, metadata={"tags": [TAG]})
    cell.source = source
    if (new.nbformat, new.nbformat_minor) < (4, 5):
        cell.pop("id", None)  # cell ids came with nbformat 4.5
    new.cells = [c for c in new.cells if not is_names_cell(c)] + [cell]
    return new


def notebook_text(nb: nbformat.NotebookNode, like: str) -> str:
    """A notebook as the repository saves it: nbformat's JSON (indent 1, sorted
    keys), ending with a newline when the file it replaces did."""
    text = nbformat.writes(nb)
    return text + "\n" if like.endswith("\n") and not text.endswith("\n") else text


@dataclass
class Report:
    """What the tool finds in one chapter."""

    path: Path
    links: list[Link]
    current: str  # the notebook file's text
    expected: str  # the text with an up-to-date names cell
    old_cell: str | None  # the source of the tagged cell now, if there is one

    @property
    def unlinkable(self) -> list[str]:
        return [link.problem for link in self.links if link.problem]

    @property
    def stale(self) -> bool:
        return self.current != self.expected

    def problems(self) -> list[str]:
        """Everything that keeps the chapter's names from being linked (empty when none)."""
        found = [f"{self.path.name}: {p}" for p in self.unlinkable]
        if self.old_cell is None:
            found.append(f"{self.path.name}: no '{TAG}' cell (run tests/chapter_names.py --write)")
        elif self.stale:
            found.append(f"{self.path.name}: its '{TAG}' cell is stale "
                         "(run tests/chapter_names.py --write)")
        return found

    def diff(self) -> str:
        """The difference between the names cell now and the one expected."""
        expected = nbformat.reads(self.expected, as_version=nbformat.NO_CONVERT).cells[-1].source
        lines = difflib.unified_diff((self.old_cell or "").splitlines(), expected.splitlines(),
                                     f"{self.path.name} (now)", f"{self.path.name} (expected)",
                                     lineterm="")
        text = "\n".join(lines)
        if not text and self.stale:
            text = f"{self.path.name}: the '{TAG}' cell is not the last cell, or there are several"
        return text


def check(path: Path, api: PublicAPI | None = None) -> Report:
    """Read a chapter and work out its names cell (nothing is written)."""
    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    links = chapter_links(nb, api)
    old = [c.source for c in nb.cells if is_names_cell(c)]
    expected = notebook_text(with_names_cell(nb, render(links)), text)
    if notebook_text(nb, text) != text:
        raise ValueError(f"{path}: not saved as nbformat saves it (indent 1, sorted keys); "
                         "writing the names cell would reformat the whole file")
    return Report(path, links, text, expected, old[0] if old else None)


def write(report: Report) -> bool:
    """Write the expected notebook when it differs; whether the file changed."""
    if not report.stale:
        return False
    report.path.write_text(report.expected, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true",
                        help="insert or replace each chapter's names cell")
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="chapters (default: every notebook chapter of _toc.yml)")
    args = parser.parse_args(argv)
    paths = args.notebooks or toc_notebooks()
    api = public_api()
    status = 0
    for path in paths:
        report = check(path, api)
        for problem in report.unlinkable:
            print(f"{path}: {problem}", file=sys.stderr)
            status = 1
        if args.write:
            print(f"{path}: {'written' if write(report) else 'up to date'} "
                  f"({len(report.links)} names)")
        elif report.stale:
            print(report.diff() if report.old_cell is not None
                  else f"{path}: no '{TAG}' cell; it would be:\n"
                  + render(report.links))
            status = 1
        else:
            print(f"{path}: up to date ({len(report.links)} names)")
    return status


if __name__ == "__main__":
    sys.exit(main())
