"""The API page documents every public name of ``hmglib`` once, from its
docstring; every chapter links the library names its code uses.

The page (``book/api.md``) documents each public object at its home, the module
that defines it (:func:`chapter_names.public_api`), with autodoc directives; a
package that re-exports names documents only itself and links each re-exported
name to its home. The checks are functions that return what is wrong, so that
a script can run them on a built book too:

    python tests/test_api_page.py [_build/html]
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import chapter_names
import nbformat
import pytest
from chapter_names import PACKAGE, PublicAPI, has_qualname, public_api
from sphinx.pycode import ModuleAnalyzer

ROOT = Path(__file__).resolve().parents[1]
API_PAGE = ROOT / "book" / "api.md"
API_DOCNAME = "book/api"
# where `make book` and `make test` (the quick profile) build the book
BUILT_HTML = (ROOT / "_build" / "html", ROOT / "_build" / "quick" / "_build" / "html")

AUTODOC = ("automodule", "autoclass", "autoexception", "autofunction", "autodecorator",
           "autodata", "automethod", "autoattribute", "autoproperty")

# ---------------------------------------------------------------------------
# What the page's directives document


@dataclass
class Directive:
    """One autodoc directive of the page."""

    kind: str  # "automodule", "autoclass", ...
    name: str  # the dotted name, without a signature
    options: dict[str, str] = field(default_factory=dict)
    line: int = 0

    @property
    def indexed(self) -> bool:
        return "no-index" not in self.options and "noindex" not in self.options

    def listed(self, option: str) -> list[str] | None:
        """A list option (``:members: a, b``): ``None`` when absent, ``[]`` when bare."""
        if option not in self.options:
            return None
        return [n.strip() for n in self.options[option].split(",") if n.strip()]


_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$")
_RST = re.compile(r"^(?P<indent> *)\.\. (?P<name>[\w:-]+)::\s*(?P<arg>.*)$")
_OPTION = re.compile(r"^\s*:(?P<key>[\w-]+):\s*(?P<value>.*)$")


def _bare(name: str) -> str:
    return name.split("(", 1)[0].strip()


def directives(text: str) -> list[Directive]:
    """The autodoc directives of a MyST page: MyST ones (```` ```{automodule} ````)
    and reST ones inside ```` ```{eval-rst} ```` blocks."""
    lines = text.splitlines()
    found: list[Directive] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, name = match["fence"], match["name"]
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        body = lines[i + 1:end]
        if name in AUTODOC:
            options = {}
            for line in body:
                option = _OPTION.match(line)
                if not option:
                    break
                options[option["key"]] = option["value"].strip()
            found.append(Directive(name, _bare(match["arg"]), options, i + 1))
        elif name == "eval-rst":
            found.extend(_rst_directives(body, i + 2))
        i = end + 1
    return found


def _rst_directives(lines: list[str], first_line: int) -> list[Directive]:
    found = []
    for i, line in enumerate(lines):
        match = _RST.match(line)
        if not match or match["name"] not in AUTODOC:
            continue
        options, key = {}, None
        for more in lines[i + 1:]:
            if not more.strip():
                break
            option = _OPTION.match(more)
            if option:
                key = option["key"]
                options[key] = option["value"].strip()
            elif key and len(more) - len(more.lstrip()) > len(match["indent"]) + 3:
                options[key] += " " + more.strip()  # a continued option value
            else:
                break
        found.append(Directive(match["name"], _bare(match["arg"]), options, first_line + i))
    return found


def _attr_docs(module_name: str) -> dict[str, list[str]]:
    """The documentation comments (``#:``) and strings of a module's top-level names."""
    try:
        docs = ModuleAnalyzer.for_module(module_name).find_attr_docs()
    except Exception:  # no source: nothing to read
        return {}
    return {name: lines for (scope, name), lines in docs.items() if scope == ""}


def own_docstring(obj: object) -> str:
    """The docstring an object carries itself ("" when none): not a class's that an
    instance shows, not the ``Name(field, ...)`` line dataclasses make up."""
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return ""
    if not has_qualname(obj) and doc == getattr(type(obj), "__doc__", None):
        return ""
    if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and \
            doc == f"{obj.__name__}{inspect.signature(obj)}".replace(" -> None", ""):
        return ""
    return doc


def _autodoc_has_doc(obj: object) -> bool:
    """What autodoc counts as documented (it also falls back to inherited docstrings)."""
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str) and has_qualname(obj):
        doc = inspect.getdoc(obj)
    if not isinstance(doc, str) or doc == getattr(type(obj), "__doc__", None):
        return False
    return bool(doc.strip())


def module_members(directive: Directive, module: ModuleType) -> list[str]:
    """The members ``automodule`` documents, as autodoc chooses them: the listed
    ones, or ``__all__``, or else the module's own; without the excluded ones,
    submodules, dunder and private names unless asked for, and the undocumented
    ones unless ``:undoc-members:`` (a value is documented by a ``#:`` comment or
    string in the module's own source, the only place autodoc reads)."""
    listed = directive.listed("members")
    if listed is None:
        return []
    want_all = not listed
    if listed:
        names = listed
    elif hasattr(module, "__all__"):
        names = list(module.__all__)
    else:
        imported = "imported-members" in directive.options
        names = [n for n, o in vars(module).items() if imported or not has_qualname(o)
                 or getattr(o, "__module__", None) == module.__name__]
    attr_docs = _attr_docs(module.__name__)
    excluded = set(directive.listed("exclude-members") or [])
    special = set(directive.listed("special-members") or [])
    private = set(directive.listed("private-members") or [])
    undoc = "undoc-members" in directive.options
    kept = []
    for name in names:
        if name in excluded or not hasattr(module, name):
            continue
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            continue  # autodoc documents no module as a member
        if not has_qualname(obj) and name not in attr_docs:
            continue  # a value autodoc finds no comment for is no data it can document
        if want_all and name.startswith("__") and name.endswith("__"):
            if name not in special:
                continue
        elif want_all and name.startswith("_") and name not in private:
            continue
        if name in attr_docs or _autodoc_has_doc(obj) or undoc:
            kept.append(name)
    return kept


def documented(page: list[Directive]) -> dict[str, list[Directive]]:
    """Every anchor the directives make (``module.name``, or the module's own
    dotted name for ``automodule``), with the directives that make it."""
    anchors: dict[str, list[Directive]] = {}
    for d in page:
        if not d.indexed:
            continue
        if d.kind == "automodule":
            try:
                module = importlib.import_module(d.name)
            except ImportError:
                continue  # reported by directive_problems
            anchors.setdefault(d.name, []).append(d)
            for name in module_members(d, module):
                anchors.setdefault(f"{d.name}.{name}", []).append(d)
        else:
            anchors.setdefault(d.name, []).append(d)
    return anchors


def _resolve(dotted: str) -> object:
    """The object at a dotted path (a module, or attributes below one)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


# ---------------------------------------------------------------------------
# The checks: each returns what is wrong (empty when nothing is)


def docstring_problems(api: PublicAPI) -> list[str]:
    """Every public module has ``__all__``; each of its names exists and has a
    docstring (a value: a ``#:`` comment or string where it is assigned)."""
    found = []
    for modname in api.modules:
        module = importlib.import_module(modname)
        if not own_docstring(module):
            found.append(f"{modname}: no module docstring")
        if not hasattr(module, "__all__"):
            found.append(f"{modname}: no __all__")
            continue
        for name in module.__all__:
            if not hasattr(module, name):
                found.append(f"{modname}.{name}: in __all__ but not defined")
                continue
            obj = getattr(module, name)
            if has_qualname(obj) or inspect.ismodule(obj):
                if not own_docstring(obj):
                    found.append(f"{modname}.{name}: no docstring")
            elif not any(name in _attr_docs(m) for m in _assigning_modules(name, obj, api)):
                found.append(f"{modname}.{name}: a value with no '#:' comment where it is "
                             "assigned (autodoc documents none without one)")
    return sorted(set(found))


def _assigning_modules(name: str, obj: object, api: PublicAPI) -> list[str]:
    """The loaded modules of the package (private ones too) that assign ``name`` to ``obj``."""
    return [m for m, module in sorted(sys.modules.items())
            if isinstance(module, ModuleType) and chapter_names._in_package(m, api.package)
            and getattr(module, name, None) is obj
            and name in chapter_names.assigned_names(module)]


def directive_problems(page: list[Directive]) -> list[str]:
    """Every directive names something that can be imported, and a value named
    by ``autodata`` has its comment where autodoc reads it (else autodoc shows
    the docstring of the value's type, ``dict`` or ``tuple``, as its own)."""
    found = []
    for d in page:
        try:
            obj = _resolve(d.name)
        except (ImportError, AttributeError) as exc:
            found.append(f"line {d.line}: {d.kind}:: {d.name} cannot be imported ({exc})")
            continue
        module, _, name = d.name.rpartition(".")
        if d.kind == "autodata" and not has_qualname(obj) and \
                name not in _attr_docs(module) and not own_docstring(obj):
            found.append(f"line {d.line}: autodata:: {d.name} has no '#:' comment in {module}, "
                         f"so autodoc would show the docstring of {type(obj).__name__}")
    return found


def coverage_problems(page: list[Directive], api: PublicAPI) -> list[str]:
    """Every public module has an ``automodule`` and every public object an anchor
    at its home."""
    anchors = documented(page)
    modules = {d.name for d in page if d.kind == "automodule" and d.indexed}
    found = [f"{m}: no `automodule:: {m}` directive" for m in api.modules if m not in modules]
    by_target: dict[str, list[str]] = {}
    for path, entry in api.exports.items():
        if entry.role != "py:mod":
            by_target.setdefault(entry.target, []).append(path)
    for target, paths in sorted(by_target.items()):
        if target in anchors:
            continue
        home, name = target.rsplit(".", 1)
        also = sorted(set(paths) - {target})
        why = f" (also exported as {', '.join(also)})" if also else ""
        obj = api.exports[paths[0]].obj
        if has_qualname(obj):
            hint = f"add `automodule:: {home}` with `:members:` covering {name}"
        else:
            commented = [m for m in _assigning_modules(name, obj, api) if name in _attr_docs(m)]
            if not commented:
                hint = ("autodoc skips a value without a '#:' comment where it is assigned; "
                        "add one")
            elif home not in commented:
                hint = (f"its '#:' comment is in {', '.join(commented)}, but autodoc reads "
                        f"{home}'s source only: assign it in {home} with a comment")
            else:
                hint = f"add `automodule:: {home}` with `:members:` covering {name}"
        found.append(f"{target}{why}: not documented: {hint}")
    return found


def duplicate_problems(page: list[Directive], api: PublicAPI) -> list[str]:
    """No anchor made twice ("duplicate object description"), and no object
    documented anywhere but its home (a second description of it)."""
    found = []
    targets = api.targets() | set(api.modules)
    for anchor, makers in sorted(documented(page).items()):
        if len(makers) > 1:
            lines = ", ".join(f"line {d.line}" for d in makers)
            found.append(f"{anchor}: documented {len(makers)} times ({lines}); "
                         "add :no-index: or :exclude-members: to all but one")
        if anchor not in targets:
            home = _home_of(anchor, api)
            found.append(f"{anchor}: documented away from its home "
                         f"({home or 'not a public name'}); link it there instead")
    return found


def _home_of(anchor: str, api: PublicAPI) -> str | None:
    entry = api.exports.get(anchor)
    if entry is not None:
        return entry.target
    try:
        obj = _resolve(anchor)
    except (ImportError, AttributeError):
        return None
    entry = api.by_object.get(id(obj))
    return entry.target if entry else None


_ROLE = re.compile(r"\{py:(?P<role>\w+)\}`(?P<text>[^`]+)`")


def page_links(text: str) -> list[tuple[str, str]]:
    """The ``{py:role}`target``` links of a MyST page, as ``(role, target)``."""
    links = []
    for match in _ROLE.finditer(text):
        inner = match["text"]
        target = inner.rsplit("<", 1)[1].rstrip(">") if inner.endswith(">") else inner
        links.append((match["role"], target.lstrip("~!.")))
    return links


def reexport_problems(text: str, page: list[Directive], api: PublicAPI) -> list[str]:
    """Each package that re-exports names links every one of them to its home, and
    every Python link on the page reaches something the page documents."""
    anchors = documented(page)
    linked = {target for _, target in page_links(text)}
    found = []
    for path, entry in api.exports.items():
        if entry.role == "py:mod" or entry.target == path:
            continue
        if entry.target not in linked:
            found.append(f"{path.rsplit('.', 1)[0]} re-exports {path.rsplit('.', 1)[1]} but "
                         f"the page does not link it: add {{{entry.role}}}`~{entry.target}`")
    for role, target in page_links(text):
        if target not in anchors:
            found.append(f"{{py:{role}}}`{target}` links to nothing the page documents")
    return found


def page_problems(page_path: Path = API_PAGE, api: PublicAPI | None = None) -> list[str]:
    """Everything wrong with the API page's source (empty when nothing is)."""
    api = api or public_api()
    text = page_path.read_text(encoding="utf-8")
    page = directives(text)
    return (directive_problems(page) + coverage_problems(page, api) + duplicate_problems(page, api)
            + reexport_problems(text, page, api))


def built_page_problems(html_dir: Path, api: PublicAPI | None = None) -> list[str]:
    """The built API page has an anchor for every public module and object."""
    api = api or public_api()
    page = html_dir / f"{API_DOCNAME}.html"
    if not page.is_file():
        return [f"{page}: missing"]
    ids = set(re.findall(r'\bid="([^"]+)"', page.read_text(encoding="utf-8")))
    wanted = sorted(api.targets()) + [f"module-{m}" for m in api.modules]
    return [f"{page}: no anchor id=\"{anchor}\"" for anchor in wanted if anchor not in ids]


# ---------------------------------------------------------------------------
# Tests of the page


@pytest.fixture(scope="module")
def api() -> PublicAPI:
    return public_api()


def test_every_public_module_has_all_and_every_name_a_docstring(api: PublicAPI) -> None:
    found = docstring_problems(api)
    assert not found, f"{len(found)} public names without documentation:\n" + "\n".join(found)


def test_the_api_page_documents_every_public_name(api: PublicAPI) -> None:
    page = directives(API_PAGE.read_text(encoding="utf-8"))
    assert page, f"{API_PAGE}: no autodoc directive found"
    found = directive_problems(page) + coverage_problems(page, api)
    assert not found, f"{API_PAGE}: {len(found)} problems:\n" + "\n".join(found)


def test_the_api_page_documents_each_object_once_at_its_home(api: PublicAPI) -> None:
    found = duplicate_problems(directives(API_PAGE.read_text(encoding="utf-8")), api)
    assert not found, f"{API_PAGE}:\n" + "\n".join(found)


def test_packages_link_what_they_re_export(api: PublicAPI) -> None:
    text = API_PAGE.read_text(encoding="utf-8")
    found = reexport_problems(text, directives(text), api)
    assert not found, f"{API_PAGE}:\n" + "\n".join(found)


@pytest.mark.parametrize("html", BUILT_HTML, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_built_page_has_an_anchor_for_every_public_name(html: Path, api: PublicAPI) -> None:
    page = html / f"{API_DOCNAME}.html"
    if not page.is_file():
        pytest.skip(f"{page.relative_to(ROOT)} not built (make book, or make test)")
    sources = [API_PAGE, *(ROOT / PACKAGE).rglob("*.py")]
    newest = max(sources, key=lambda p: p.stat().st_mtime)
    if newest.stat().st_mtime > page.stat().st_mtime:
        pytest.skip(f"{page.relative_to(ROOT)} was built before {newest.relative_to(ROOT)} "
                    "last changed; rebuild to check it")
    found = built_page_problems(html, api)
    assert not found, "\n".join(found)


# ---------------------------------------------------------------------------
# Tests of the parsing, on a synthetic page


def test_directives_are_read_from_myst_and_eval_rst_blocks() -> None:
    text = "\n".join([
        "# Page", "",
        "```{eval-rst}",
        ".. automodule:: a.b",
        "   :members:",
        "   :exclude-members: x,",
        "      y",
        "",
        ".. autoclass:: a.b.C(value)",
        "   :no-index:",
        "```", "",
        "```{autofunction} a.f",
        ":noindex:",
        "```", "",
        "```python",
        ".. automodule:: not.a.directive",
        "```",
    ])
    found = directives(text)
    assert [(d.kind, d.name) for d in found] == [
        ("automodule", "a.b"), ("autoclass", "a.b.C"), ("autofunction", "a.f")]
    assert found[0].listed("members") == []
    assert found[0].listed("exclude-members") == ["x", "y"]
    assert found[0].indexed and not found[1].indexed and not found[2].indexed
    assert found[0].line == 4


def test_page_links_read_targets_behind_tildes_and_titles() -> None:
    text = "{py:func}`~a.b.f`, {py:class}`the class <a.C>` and {py:mod}`a`"
    assert page_links(text) == [("func", "a.b.f"), ("class", "a.C"), ("mod", "a")]


FAKE = {
    "fakelib/__init__.py": '''"""A fake library."""
from fakelib._hidden import SECRET_TABLE, helper
from fakelib.core import Tree, grow

__all__ = ["Tree", "grow", "helper", "SECRET_TABLE"]
''',
    "fakelib/_hidden.py": '''"""Private."""

#: A table defined in a private module.
SECRET_TABLE = {"a": 1}


def helper():
    """Help."""
''',
    "fakelib/core.py": '''"""The core."""
import dataclasses

__all__ = ["Tree", "grow", "LIMIT", "PLAIN", "Bare"]

#: The most nodes.
LIMIT = 12345

PLAIN = {"undocumented": True}


class Tree:
    """A tree."""


@dataclasses.dataclass
class Bare:
    size: int


def grow(tree):
    """Grow a tree."""
    return tree


def extra():
    """Not in __all__."""
''',
    "fakelib/__main__.py": "raise SystemExit('never imported')\n",
}


@pytest.fixture
def fakelib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PublicAPI]:
    for name, source in FAKE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "fakelib" or m.startswith("fakelib.")]:
        monkeypatch.delitem(sys.modules, name)
    yield public_api("fakelib")
    for name in [m for m in sys.modules if m == "fakelib" or m.startswith("fakelib.")]:
        del sys.modules[name]


def test_public_api_puts_each_object_at_its_home(fakelib: PublicAPI) -> None:
    assert fakelib.modules == ["fakelib", "fakelib.core"]
    homes = {path: e.target for path, e in fakelib.exports.items()}
    assert homes["fakelib.Tree"] == homes["fakelib.core.Tree"] == "fakelib.core.Tree"
    assert homes["fakelib.grow"] == "fakelib.core.grow"
    # defined in a private module: documented where it is re-exported
    assert homes["fakelib.helper"] == "fakelib.helper"
    assert homes["fakelib.SECRET_TABLE"] == "fakelib.SECRET_TABLE"
    assert homes["fakelib.core.LIMIT"] == "fakelib.core.LIMIT"
    roles = {path: e.role for path, e in fakelib.exports.items()}
    assert roles["fakelib.Tree"] == "py:class" and roles["fakelib.grow"] == "py:func"
    assert roles["fakelib.core.LIMIT"] == "py:data"


def test_docstring_problems_name_every_offender(fakelib: PublicAPI) -> None:
    found = docstring_problems(fakelib)
    assert found == [
        "fakelib.core.Bare: no docstring",
        "fakelib.core.PLAIN: a value with no '#:' comment where it is assigned "
        "(autodoc documents none without one)",
    ]


def _fake_page(*blocks: str) -> list[Directive]:
    return directives("\n".join(["```{eval-rst}", *blocks, "```"]))


def test_coverage_follows_what_autodoc_would_document(fakelib: PublicAPI) -> None:
    page = _fake_page(".. automodule:: fakelib", "   :members: helper", "",
                      ".. automodule:: fakelib.core", "   :members:")
    found = coverage_problems(page, fakelib)
    # PLAIN has no comment and Bare only its dataclass line: autodoc skips PLAIN;
    # Bare (a class) is documented; SECRET_TABLE's comment is in the private module
    assert [f.split(":")[0] for f in found] == ["fakelib.SECRET_TABLE", "fakelib.core.PLAIN"]
    assert "its '#:' comment is in fakelib._hidden, but autodoc reads fakelib's" in found[0]
    assert "autodoc skips a value without a '#:' comment" in found[1]
    assert directive_problems(page) == []
    # named explicitly they get anchors, but with the docstring of dict: reported
    page += _fake_page(".. autodata:: fakelib.SECRET_TABLE", ".. autodata:: fakelib.core.PLAIN",
                       ".. autodata:: fakelib.core.LIMIT", ".. autofunction:: fakelib.gone")
    assert coverage_problems(page, fakelib) == []
    found = directive_problems(page)
    assert [f.split(" has no")[0] for f in found[:2]] == [
        "line 2: autodata:: fakelib.SECRET_TABLE", "line 3: autodata:: fakelib.core.PLAIN"]
    assert found[2].startswith("line 5: autofunction:: fakelib.gone cannot be imported")
    assert len(found) == 3


def test_an_object_documented_twice_is_reported(fakelib: PublicAPI) -> None:
    page = _fake_page(".. automodule:: fakelib", "   :members:", "",
                      ".. automodule:: fakelib.core", "   :members:", "",
                      ".. autofunction:: fakelib.core.grow")
    found = duplicate_problems(page, fakelib)
    assert any(f.startswith("fakelib.core.grow: documented 2 times") for f in found)
    assert any(f.startswith("fakelib.Tree: documented away from its home (fakelib.core.Tree)")
               for f in found)
    page = _fake_page(".. automodule:: fakelib", "   :members: helper", "",
                      ".. automodule:: fakelib.core", "   :members:", "",
                      ".. autofunction:: fakelib.core.grow", "   :no-index:")
    assert duplicate_problems(page, fakelib) == []


def test_reexports_must_be_linked(fakelib: PublicAPI) -> None:
    blocks = (".. automodule:: fakelib", "   :members: helper", "",
              ".. automodule:: fakelib.core", "   :members:")
    text = "\n".join(["```{eval-rst}", *blocks, "```"])
    found = reexport_problems(text, directives(text), fakelib)
    assert sorted(f.split(" but")[0] for f in found) == [
        "fakelib re-exports Tree", "fakelib re-exports grow"]
    text += "\n{py:class}`~fakelib.core.Tree`, {py:func}`~fakelib.core.grow`, {py:func}`~a.b`\n"
    assert reexport_problems(text, directives(text), fakelib) == [
        "{py:func}`a.b` links to nothing the page documents"]


def test_built_page_problems_read_anchor_ids(fakelib: PublicAPI, tmp_path: Path) -> None:
    html = tmp_path / "html"
    (html / "book").mkdir(parents=True)
    ids = ["module-fakelib", "module-fakelib.core", "fakelib.core.Tree", "fakelib.core.grow",
           "fakelib.helper", "fakelib.SECRET_TABLE", "fakelib.core.LIMIT", "fakelib.core.PLAIN"]
    (html / "book" / "api.html").write_text("".join(f'<dt id="{i}"></dt>' for i in ids))
    assert built_page_problems(html, fakelib) == [
        f'{html / "book" / "api.html"}: no anchor id="fakelib.core.Bare"']


# ---------------------------------------------------------------------------
# Every chapter links the library names it uses


@pytest.mark.parametrize("chapter", chapter_names.toc_notebooks(), ids=lambda p: p.name)
def test_the_chapter_links_the_library_names_it_uses(chapter: Path, api: PublicAPI) -> None:
    report = chapter_names.check(chapter, api)
    found = report.problems()
    assert not found, "\n".join(found) + "\n" + report.diff()


# ---------------------------------------------------------------------------
# Tests of the chapter tool, on synthetic notebooks


def _notebook(path: Path, *cells: str | tuple[str, str]) -> Path:
    """Code cells (a string) and other cells (``(cell_type, source)``), saved as
    the chapters are."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python",
                                  "name": "python3"}}
    for n, cell in enumerate(cells):
        kind, source = ("code", cell) if isinstance(cell, str) else cell
        new = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        nb.cells.append(new(source, id=f"cell{n}"))
    nbformat.write(nb, path)
    return path


def test_used_names_follow_imports_through_modules(fakelib: PublicAPI, tmp_path: Path) -> None:
    path = _notebook(
        tmp_path / "c.ipynb",
        "%pip install -q fakelib\n!ls\nimport numpy as np\nfrom os import path\n"
        "from fakelib import Tree\nimport fakelib.core as core",
        "%%bash\necho fakelib.core.grow",
        "this is not python: fakelib.grow(",
        "t = core.grow(Tree())\nprint(core.LIMIT + np.zeros(3).sum(), path.sep)\n"
        "t.grow().fakelib",
        "import fakelib\nfakelib.helper()\nfakelib.core.Tree.__name__",
        "for _ in range(2):\n    %timeit fakelib.grow(1)\nprint(core.PLAIN)",
    )
    nb = nbformat.read(path, as_version=4)
    assert chapter_names.used_paths(nb, "fakelib") == [
        "fakelib.Tree", "fakelib.core.grow", "fakelib.core.LIMIT", "fakelib.helper",
        "fakelib.core.Tree", "fakelib.core.PLAIN"]
    links = chapter_names.chapter_links(nb, fakelib)
    assert [(link.target, link.role) for link in links] == [
        ("fakelib.helper", "py:func"),
        ("fakelib.core.grow", "py:func"),
        ("fakelib.core.LIMIT", "py:data"),
        ("fakelib.core.PLAIN", "py:data"),
        ("fakelib.core.Tree", "py:class"),
    ]
    assert all(not link.problem for link in links)


def test_names_outside_the_public_api_are_reported(fakelib: PublicAPI, tmp_path: Path) -> None:
    path = _notebook(tmp_path / "c.ipynb",
                     "from fakelib._hidden import helper\nfrom fakelib.core import extra\n"
                     "from fakelib.core import gone")
    links = chapter_names.chapter_links(nbformat.read(path, as_version=4), fakelib)
    problems = {link.path: link.problem for link in links}
    assert problems["fakelib._hidden.helper"] == ""  # the same object as fakelib.helper
    assert "not public" in problems["fakelib.core.extra"]
    assert "cannot be imported" in problems["fakelib.core.gone"]
    cell = chapter_names.render(links)
    assert "{py:func}`~fakelib.helper`" in cell
    assert "extra" not in cell and "gone" not in cell  # reported, not linked


def test_hmglib_names_resolve_to_their_defining_module(api: PublicAPI, tmp_path: Path) -> None:
    """Against the real library: a class re-exported by a package links to the
    module that defines it, and a function read on a module links to its home."""
    reexported = [(path, e) for path, e in api.exports.items() if e.role == "py:class"
                  and e.target != path and has_qualname(e.obj)
                  and e.obj.__module__ in api.modules]
    assert reexported, "no package of hmglib re-exports a class"
    path, entry = reexported[0]
    module, name = path.rsplit(".", 1)
    function = next(p for p, e in api.exports.items() if e.role == "py:func" and e.target == p)
    fmodule, fname = function.rsplit(".", 1)
    nb = nbformat.read(_notebook(tmp_path / "c.ipynb",
                                 f"from {module} import {name}\nimport {fmodule} as m\nm.{fname}"),
                       as_version=4)
    links = chapter_names.chapter_links(nb, api)
    targets = {link.target for link in links}
    assert targets == {f"{entry.obj.__module__}.{entry.obj.__qualname__}", function}
    for link in links:
        assert chapter_names._import_path(link.target) is not None
        assert link.markdown() in chapter_names.render(links)


def test_write_inserts_the_cell_then_replaces_it(fakelib: PublicAPI, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(chapter_names, "PACKAGE", "fakelib")
    monkeypatch.setattr(chapter_names, "public_api", lambda package="fakelib": fakelib)
    path = _notebook(tmp_path / "c.ipynb", ("markdown", "# A chapter"),
                     "from fakelib import Tree")
    original = path.read_text()
    assert chapter_names.main([str(path)]) == 1
    assert "no 'library-names' cell" in capsys.readouterr().out
    assert path.read_text() == original  # a check writes nothing

    assert chapter_names.main(["--write", str(path)]) == 0
    text = path.read_text()
    nb = nbformat.reads(text, as_version=4)
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and last.metadata == {"tags": ["library-names"]}
    assert last.source.startswith(chapter_names.HEADING + "\n")
    assert "{py:class}`~fakelib.core.Tree`" in last.source
    # the rest of the file is as it was, in the same JSON formatting
    nb.cells.pop()
    assert nbformat.writes(nb) + "\n" == original
    assert json.loads(text) and text.endswith("\n") and '\n "cells": [\n  {\n' in text
    assert chapter_names.main([str(path)]) == 0

    # the code changes: the cell is stale, then replaced, not added again
    nb = nbformat.reads(text, as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell("from fakelib import grow", id="more"))
    nb.cells.append(nbformat.v4.new_markdown_cell("A cell after the names.", id="after"))
    nbformat.write(nb, path)
    capsys.readouterr()
    assert chapter_names.main([str(path)]) == 1
    assert "\n+- {py:mod}`fakelib.core`: {py:func}`~fakelib.core.grow`, " \
        "{py:class}`~fakelib.core.Tree`\n" in capsys.readouterr().out
    assert chapter_names.main(["--write", str(path)]) == 0
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if chapter_names.is_names_cell(c)]
    assert len(tagged) == 1 and nb.cells[-1] is tagged[0]
    assert tagged[0].id == chapter_names.CELL_ID
    assert "{py:func}`~fakelib.core.grow`, {py:class}`~fakelib.core.Tree`" in tagged[0].source
    assert nb.cells[-2].id == "after"
    assert chapter_names.main([str(path)]) == 0


def test_a_notebook_saved_otherwise_is_not_rewritten(fakelib: PublicAPI, tmp_path: Path) -> None:
    path = _notebook(tmp_path / "c.ipynb", "from fakelib import Tree")
    path.write_text(json.dumps(json.loads(path.read_text()), indent=2))
    with pytest.raises(ValueError, match="not saved as nbformat saves it"):
        chapter_names.check(path, fakelib)


if __name__ == "__main__":
    html_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "_build/html")
    bad = page_problems() + built_page_problems(html_dir)
    for line in bad:
        print(line, file=sys.stderr)
    sys.exit(1 if bad else 0)
