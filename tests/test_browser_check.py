"""The browser check of the built book (tests/check_pages_in_browser.py) on a tiny
site made here: it passes a good page and reports each kind of defect.

The tests that open pages need Chromium, Playwright and the local copies of the
CDN scripts (`make setup-browser`); without them they are skipped, saying how to
enable them. The others run everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import check_pages_in_browser as checker_module
import pytest
from check_pages_in_browser import (
    DEFAULT_ASSETS,
    LocalPackages,
    NotServed,
    PageChecker,
    Report,
    link_problem,
    main,
    pages_of,
    satisfies,
    unavailable_reason,
)
from PIL import Image

MATHJAX = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"
VIEW = "application/vnd.jupyter.widget-view+json"


def page(body: str, head: str = "", title: str = "page") -> str:
    """A small HTML page laid out as Sphinx lays out a chapter."""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>{head}"
            f"</head><body><main><article>{body}</article></main></body></html>")


def widget_view(model: str) -> str:
    """A widget output as myst-nb writes it into a page."""
    return (f'<div class="cell_output docutils container"><script type="{VIEW}">'
            + json.dumps({"version_major": 2, "version_minor": 0, "model_id": model})
            + "</script></div>")


FIGURE = '<div class="cell_output docutils container"><img alt="fig" src="_images/fig.png"/></div>'
MATH_HEAD = ('<script>window.MathJax = {"options": {"processHtmlClass": "math"}}</script>'
             f'<script defer src="{MATHJAX}"></script>')

SITE = {
    # everything right: math typeset, an image, links within the site, a widget
    # after its static figure, a font file that loads
    "good.html": page(
        '<section id="top"><h1>Good</h1>'
        '<p>Inline <span class="math notranslate nohighlight">\\(x^2 + 1\\)</span>.</p>'
        '<div class="math notranslate nohighlight">\\[\\sum_{i=1}^{N} p_i = 1\\]</div>'
        '<p><a href="#explore">down</a> <a href="sub/other.html#part">other</a> '
        '<a href="sub/">folder</a> '
        '<a href="#">top</a></p>'
        '<section id="explore"><h2>Explore</h2>' + FIGURE + widget_view("m1") + "</section>"
        "</section>",
        head=MATH_HEAD,
    ),
    "sub/other.html": page('<h1 id="part">Other</h1><p>prices from $5 to $10</p>'),
    "sub/index.html": page("<h1>Folder</h1>"),
    "index.html": '<meta http-equiv="Refresh" content="0; url=good.html" />',
    "missing_image.html": page('<h1>Image</h1><img alt="gone" src="_images/gone.png"/>'
                               '<img alt="bad" src="_images/corrupt.png"/>'),
    "broken_link.html": page(
        '<h1>Links</h1><a href="nowhere.html">page</a> <a href="good.html#no-such">anchor</a>'
        ' <a href="#also-missing">here</a>'
    ),
    "console_error.html": page(
        "<h1>Console</h1><script>console.error('something broke')</script>"
        "<script>setTimeout(() => { throw new Error('uncaught boom'); }, 0)</script>"
    ),
    "raw_latex.html": page(
        "<h1>Math</h1><p>The sum \\(\\sum_i x_i\\) and $$\\begin{aligned} a \\end{aligned}$$"
        " are left as text; so is $\\alpha$.</p>"
        '<span class="math notranslate nohighlight">\\(y\\)</span>'
    ),
    "widget_without_figure.html": page(
        '<section id="w"><h2>Explorer</h2>' + widget_view("m2") + FIGURE + "</section>"
        '<section id="v"><h2>Before</h2>' + FIGURE + "</section>"
        '<section id="u"><h2>Next</h2>' + widget_view("m3") + "</section>"
    ),
    "wide_code.html": page(
        '<h1>Code</h1><div class="cell_input"><pre style="width:300px;overflow:auto">'
        + "x = 1\n" + "y" * 200 + "</pre></div>"
        '<div class="cell_input"><pre style="width:300px;overflow:auto">z = 2</pre></div>'
    ),
    "external.html": page(
        '<h1>External</h1><script src="https://cdn.example.invalid/lib.js"></script>'
    ),
    "font.html": page(
        "<h1>Font</h1><p class='f'>text</p>",
        head="<style>@font-face{font-family:X;src:url(_static/missing.woff2)}"
             ".f{font-family:X}</style>",
    ),
    # not pages: assets of the build
    "_static/ignored.html": page("<h1>Not a page</h1>"),
}

BROKEN = {
    "missing_image.html": {"image"},
    "broken_link.html": {"link"},
    "console_error.html": {"console"},
    "raw_latex.html": {"math"},
    "widget_without_figure.html": {"widget"},
    "wide_code.html": {"code"},
    "external.html": {"request"},
}


def make_site(root: Path) -> Path:
    """Write the site above into ``root``."""
    for name, html in SITE.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    (root / "_images").mkdir()
    Image.new("RGB", (40, 30), (200, 40, 40)).save(root / "_images" / "fig.png")
    (root / "_images" / "corrupt.png").write_bytes(b"not a PNG")  # served, not drawn
    return root


# ---------------------------------------------------------------- no browser


@pytest.mark.parametrize(("version", "spec", "ok"), [
    ("3.2.2", "3", True), ("3.2.2", None, True), ("3.2.2", "latest", True),
    ("3.2.2", "3.2", True), ("3.2.2", "4", False), ("1.0.6", "1.0.6", True),
    ("1.0.7", "1.0.6", False), ("1.0.7", "^1.0.1", True), ("2.0.0", "^1.0.1", False),
    ("1.0.0", "^1.0.1", False), ("0.3.2", "^0.3.1", True), ("0.4.0", "^0.3.1", False),
    ("1.2.9", "~1.2.3", True), ("1.3.0", "~1.2.3", False),
])
def test_versions_match_cdn_specs(version: str, spec: str | None, ok: bool) -> None:
    assert satisfies(version, spec) is ok


def test_cdn_addresses_map_to_local_packages(tmp_path: Path) -> None:
    for name, version, files in [("mathjax", "3.2.2", ["es5/tex-mml-chtml.js"]),
                                 ("requirejs", "2.3.4", ["require.min.js"]),
                                 ("@jupyter-widgets/html-manager", "1.0.6",
                                  ["dist/embed-amd.js"])]:
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "package.json").write_text(json.dumps({"version": version}))
        for f in files:
            (tmp_path / name / f).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name / f).write_text("//")
    packages = LocalPackages(tmp_path)
    assert packages.file_for(MATHJAX) == (tmp_path / "mathjax/es5/tex-mml-chtml.js").resolve()
    assert packages.file_for(
        "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.4/require.min.js"
    ).name == "require.min.js"
    assert packages.file_for(
        "https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@1.0.6/dist/embed-amd.js?v=1"
    ).name == "embed-amd.js"
    for url, why in [
        ("https://cdn.jsdelivr.net/npm/mathjax@2/MathJax.js", "local copy is 3.2.2"),
        ("https://cdn.jsdelivr.net/npm/mathjax@3/es5/nothing.js", "no file"),
        ("https://cdn.jsdelivr.net/npm/mathjax@3/../../secret", "no file"),
        ("https://unpkg.com/thebe@0.8.2/lib/index.js", "no local copy of the npm package"),
        ("https://fonts.example.invalid/x.woff2", "no local copy"),
    ]:
        with pytest.raises(NotServed, match=why):
            packages.file_for(url)


def test_pages_and_links_of_a_site(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    assert "_static/ignored.html" not in pages_of(site)
    assert {"good.html", "sub/other.html", "index.html"} <= set(pages_of(site))
    base = "http://127.0.0.1:1/"

    def problem(href: str, ids: frozenset[str] = frozenset()) -> str | None:
        return link_problem(site, base, "good.html", base + href, lambda: set(ids))

    assert problem("sub/other.html#part") is None
    assert problem("sub/") is None
    assert problem("good.html#explore", frozenset({"explore"})) is None
    assert "no such page" in problem("nowhere.html")
    assert "no such anchor in sub/other.html" in problem("sub/other.html#gone")
    assert "no such anchor in this page" in problem("good.html#gone")
    assert link_problem(site, base, "good.html", "https://example.invalid/x", set) is None


# ---------------------------------------------------------------- in Chromium

REASON = unavailable_reason(DEFAULT_ASSETS)
needs_browser = pytest.mark.skipif(REASON is not None, reason=f"browser check: {REASON}")


@pytest.fixture(scope="module")
def checker() -> Iterator[PageChecker]:
    with PageChecker(timeout_s=15) as browser:
        yield browser


@pytest.fixture(scope="module")
def report(checker: PageChecker, tmp_path_factory: pytest.TempPathFactory) -> Report:
    site = make_site(tmp_path_factory.mktemp("site"))
    return checker.check(site, screenshots=site.parent / "shots")


@needs_browser
def test_a_good_page_passes(report: Report, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert not report.kinds("good.html"), [str(f) for f in report.failures]
    assert not report.kinds("sub/other.html") and not report.kinds("sub/index.html")
    assert "_static/ignored.html" not in report.pages
    assert any("index.html: redirects to good.html" in n for n in report.notes)
    shots = tmp_path_factory.getbasetemp() / "shots"
    assert (shots / "good.png").is_file() and (shots / "sub" / "other.png").is_file()
    with Image.open(shots / "good.png") as shot:
        assert shot.width == 1280


@needs_browser
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_each_defect_is_reported(report: Report, name: str) -> None:
    assert report.kinds(name) == BROKEN[name], [str(f) for f in report.failures]


@needs_browser
def test_failures_say_what_is_wrong(report: Report) -> None:
    text = "\n".join(str(f) for f in report.failures)
    for expected in [
        "missing_image.html: image: _images/gone.png did not load (HTTP 404)",
        "missing_image.html: image: _images/corrupt.png did not load",
        "broken_link.html: link: broken link to nowhere.html (no such page)",
        "broken_link.html: link: broken link to #no-such (no such anchor in good.html)",
        "broken_link.html: link: broken link to #also-missing (no such anchor in this page)",
        "console_error.html: console: something broke",
        "console_error.html: console: uncaught Error: uncaught boom",
        "raw_latex.html: math: not typeset by MathJax: \\(y\\)",
        "raw_latex.html: math: LaTeX left as text: The sum \\(\\sum_i x_i\\)",
        'widget_without_figure.html: widget: widget 1 (model m2) in section "Explorer"',
        'widget_without_figure.html: widget: widget 2 (model m3) in section "Next"',
        "external.html: request: https://cdn.example.invalid/lib.js: external request",
    ]:
        assert expected in text, f"{expected!r} not in\n{text}"
    assert [w.kind for w in report.warnings] == ["font"]
    assert report.warnings[0].page == "font.html"


@needs_browser
def test_the_command_line_fails_on_a_broken_site(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def run(*args: str) -> int:
        # a thread of its own: Playwright's sync API runs one instance per thread,
        # and this module's fixture may hold one here
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(main, list(args)).result()

    site = tmp_path / "site"
    site.mkdir()
    (site / "a.html").write_text(page('<a href="b.html">b</a>'), encoding="utf-8")
    assert run(str(site)) == 1
    assert "a.html: link: broken link to b.html" in capsys.readouterr().err
    (site / "b.html").write_text(page("<p>b</p>"), encoding="utf-8")
    assert run(str(site), "--screenshots", str(tmp_path / "shots")) == 0
    assert sorted(p.name for p in (tmp_path / "shots").glob("*.png")) == ["a.png", "b.png"]


@pytest.mark.parametrize("chromium", ["none on this machine", "HMG_CHROMIUM names none"])
def test_the_command_line_skips_without_a_browser(
    chromium: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if chromium.startswith("HMG"):
        monkeypatch.setenv("HMG_CHROMIUM", str(tmp_path / "no-chrome"))
    else:
        monkeypatch.delenv("HMG_CHROMIUM", raising=False)
        monkeypatch.setattr(checker_module.shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "browser check SKIPPED" in out
    assert "apt install chromium" in out and "HMG_CHROMIUM=/path/to/chrome" in out
    monkeypatch.setenv("CI", "true")  # CI must run it
    assert main([str(tmp_path)]) == 1
    assert "cannot run in CI" in capsys.readouterr().err
