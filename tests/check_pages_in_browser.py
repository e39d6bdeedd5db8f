"""Open every page of a built book in headless Chromium and report what a reader
would find broken.

    python tests/check_pages_in_browser.py _build/quick/_build/html --screenshots _build/screenshots

Each page is served from a local HTTP server and loaded in Chromium (Debian's
``/usr/bin/chromium``, or the browser ``HMG_CHROMIUM`` names), driven by
Playwright. A page fails on:

* ``image``: an image that did not load (failed request, or ``naturalWidth`` 0);
* ``link``: a link to a page, or to an ``#anchor``, of the site that does not exist;
* ``console``: a console error, or an uncaught exception in the page;
* ``math``: LaTeX that MathJax did not typeset (a math element without MathJax
  output, a TeX error, or TeX delimiters left in the visible text);
* ``widget``: an ipywidgets view with no static figure (an image output) before
  it in its section, so that a reader without a kernel sees nothing;
* ``code``: a code cell wider than the page's column, which scrolls sideways;
* ``request``: any other request that failed, or an external request with no
  local copy to serve (there is no network to a CDN).

A font that did not load is printed as a warning: the page still reads.

External scripts the pages load from CDNs (MathJax, require.js, the widgets'
html-manager) are answered from local copies of the same npm packages
(``make setup-browser`` installs them into ``.venv/browser/packages``). A
full-page screenshot of every page is saved under ``--screenshots`` (the first
:data:`MAX_SHOT_PX` pixels of a taller page).

Where Chromium, Playwright or the local packages are missing, the check is
skipped with a message saying how to enable it; under ``CI`` it fails instead.
Run by ``make test`` after the quick build (``make browser-check``).
"""

from __future__ import annotations

import argparse
import functools
import json
import mimetypes
import os
import re
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ASSETS = ROOT / ".venv" / "browser" / "packages"
DEFAULT_CHROMIUM = "/usr/bin/chromium"

ENABLE_CHROMIUM = (
    "install Chromium (apt install chromium, which `make setup-browser` does as root) "
    "or set HMG_CHROMIUM=/path/to/chrome"
)
ENABLE_PLAYWRIGHT = "install Playwright for Python (pip install playwright; no browser download)"
ENABLE_ASSETS = "run `make setup-browser` (it needs npm) to install local copies of the CDN scripts"

LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
#: The tallest screenshot taken, in CSS pixels: a taller page (the API reference)
#: is shot from its top down to this height, since Chromium's full-page capture of
#: a page tens of thousands of pixels tall takes longer than a page's timeout.
MAX_SHOT_PX = 16000

# Folders of a Sphinx build that hold assets, not pages.
NOT_PAGES = {"_static", "_sources", "_images", "_downloads"}

KINDS = ("image", "link", "console", "math", "widget", "code", "request")

# CDN addresses whose files come from npm packages: <package>@<version>/<file>.
CDN_URL = re.compile(
    r"^https?://(?:cdn\.jsdelivr\.net/npm|unpkg\.com)/"
    r"(?P<pkg>(?:@[^/@]+/)?[^/@]+)(?:@(?P<spec>[^/]+))?/(?P<path>[^?#]*)"
)
CDNJS_URL = re.compile(
    r"^https?://cdnjs\.cloudflare\.com/ajax/libs/(?P<pkg>[^/]+)/(?P<spec>[^/]+)/(?P<path>[^?#]*)"
)
# cdnjs names that differ from the npm package of the same files
CDNJS_TO_NPM = {"require.js": "requirejs"}

CONTENT_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".eot": "application/vnd.ms-fontobject",
}


class Unavailable(RuntimeError):
    """The browser check cannot run here; the message says how to enable it."""


@dataclass(frozen=True)
class Failure:
    """One defect of one page."""

    page: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.page}: {self.kind}: {self.detail}"


@dataclass
class Report:
    """What a check of a built site found."""

    pages: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    warnings: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def kinds(self, page: str | None = None) -> set[str]:
        """The kinds of failure found (on ``page`` only, if given)."""
        return {f.kind for f in self.failures if page is None or f.page == page}


# ---------------------------------------------------------------- availability


def find_chromium() -> str:
    """The Chromium to drive: ``HMG_CHROMIUM``, else Debian's, else one on PATH."""
    named = os.environ.get("HMG_CHROMIUM")
    if named:
        if not (os.path.isfile(named) and os.access(named, os.X_OK)):
            raise Unavailable(f"HMG_CHROMIUM={named} is not an executable file: "
                              f"{ENABLE_CHROMIUM}")
        return named
    for candidate in (DEFAULT_CHROMIUM, "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(candidate)
        if found:
            return found
    raise Unavailable(f"no Chromium found: {ENABLE_CHROMIUM}")


def require_playwright() -> None:
    """Raise :class:`Unavailable` when Playwright for Python is not installed."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as err:
        raise Unavailable(f"Playwright is not installed ({err}): {ENABLE_PLAYWRIGHT}") from err


def require_assets(assets: Path) -> None:
    """Raise :class:`Unavailable` when the local copies of CDN scripts are missing."""
    if not (assets / "mathjax" / "package.json").is_file():
        raise Unavailable(f"no local MathJax in {assets}: {ENABLE_ASSETS}")


def unavailable_reason(assets: Path = DEFAULT_ASSETS) -> str | None:
    """Why the browser check cannot run here, or None when it can."""
    try:
        find_chromium()
        require_playwright()
        require_assets(assets)
    except Unavailable as err:
        return str(err)
    return None


# ------------------------------------------------------ local copies of CDN files


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text)[:3])


def satisfies(version: str, spec: str | None) -> bool:
    """Whether ``version`` (``3.2.2``) meets an npm-style ``spec`` as CDN addresses
    write it: none or ``latest``, a prefix (``3``, ``3.2``), an exact version,
    ``^1.0.1`` or ``~1.0.1``."""
    if not spec or spec == "latest":
        return True
    have = _version_tuple(version)
    op = spec[0] if spec[0] in "^~" else ""
    want = tuple(int(p) for p in spec.lstrip("^~=v").split(".") if p.isdigit())
    if not want:
        return False
    if op == "":
        return have[: len(want)] == want
    padded = want + (0,) * (3 - len(want))
    if op == "~":
        fixed = 2 if len(want) >= 2 else 1
    else:  # caret: everything up to the first non-zero part is fixed
        fixed = next((i + 1 for i, p in enumerate(padded) if p != 0), 3)
    return have[:fixed] == padded[:fixed] and have >= padded


class NotServed(Exception):
    """A request for an external file that has no local copy."""


@dataclass
class LocalPackages:
    """npm packages unpacked as ``<root>/<package>/`` (scoped: ``@scope/name``)."""

    root: Path
    _versions: dict[str, str | None] = field(default_factory=dict, repr=False)

    def version(self, package: str) -> str | None:
        """The installed version of ``package``, or None when it is not there."""
        if package not in self._versions:
            meta = self.root / package / "package.json"
            self._versions[package] = (
                str(json.loads(meta.read_text(encoding="utf-8")).get("version", ""))
                if meta.is_file() else None
            )
        return self._versions[package]

    def file_for(self, url: str) -> Path:
        """The local file that answers ``url``; :class:`NotServed` says why none does."""
        match = CDN_URL.match(url) or CDNJS_URL.match(url)
        if match is None:
            raise NotServed("external request with no local copy (no network here)")
        package = match["pkg"]
        if match.re is CDNJS_URL:
            package = CDNJS_TO_NPM.get(package, package)
        spec = match["spec"]
        version = self.version(package)
        if version is None:
            raise NotServed(
                f"no local copy of the npm package {package!r} in {self.root}: "
                "add it to BROWSER_NPM in the Makefile"
            )
        if not satisfies(version, spec):
            raise NotServed(
                f"the page asks for {package}@{spec}, the local copy is {version}: "
                "change its pin in BROWSER_NPM in the Makefile"
            )
        base = (self.root / package).resolve()
        path = (base / unquote(match["path"])).resolve()
        if not path.is_relative_to(base) or not path.is_file():
            raise NotServed(f"{package}@{version} has no file {match['path']!r}")
        return path


def content_type(path: Path) -> str:
    """The Content-Type to answer ``path`` with."""
    return CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or (
        "application/octet-stream"
    )


# ----------------------------------------------------------------- the site


class _Anchors(HTMLParser):
    """Collects the ids and ``<a name>`` anchors of an HTML file."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: set[str] = set()
        self.refresh: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.anchors.add(values["id"] or "")
        if tag == "a" and values.get("name"):
            self.anchors.add(values["name"] or "")
        if tag == "meta" and (values.get("http-equiv") or "").lower() == "refresh":
            target = re.search(r"url\s*=\s*(\S+)", values.get("content") or "", re.I)
            if target:
                self.refresh = target.group(1).strip("'\"")


@functools.lru_cache(maxsize=4096)
def _parse(path: Path) -> _Anchors:
    parser = _Anchors()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def pages_of(html_dir: Path) -> list[str]:
    """The pages of a built site, as paths relative to ``html_dir``."""
    found = []
    for path in sorted(html_dir.rglob("*.html")):
        parts = path.relative_to(html_dir).parts
        if any(p in NOT_PAGES or p.startswith(".") for p in parts[:-1]):
            continue
        found.append("/".join(parts))
    return found


def target_file(html_dir: Path, url_path: str) -> Path | None:
    """The file of the site a URL path names (``index.html`` of a folder), or None."""
    path = (html_dir / unquote(url_path).lstrip("/")).resolve()
    if not path.is_relative_to(html_dir.resolve()):
        return None
    if path.is_dir():
        path = path / "index.html"
    return path if path.is_file() else None


def link_problem(html_dir: Path, base: str, page: str, href: str,
                 page_ids: Callable[[], set[str]]) -> str | None:
    """What is wrong with the link ``href`` (absolute, as the browser resolved it)
    on ``page``, or None when it is fine or leaves the site."""
    parts = urlsplit(href)
    if parts.scheme not in ("http", "https") or not href.startswith(base):
        return None
    target = target_file(html_dir, parts.path)
    if target is None:
        return f"broken link to {unquote(parts.path).lstrip('/') or '/'} (no such page)"
    fragment = unquote(parts.fragment)
    if not fragment or target.suffix != ".html":
        return None
    same_page = target == (html_dir / page).resolve()
    anchors = page_ids() if same_page else _parse(target).anchors
    if fragment not in anchors:
        where = "this page" if same_page else target.relative_to(html_dir.resolve()).as_posix()
        return f"broken link to #{fragment} (no such anchor in {where})"
    return None


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@contextmanager
def serve(html_dir: Path) -> Iterator[str]:
    """Serve ``html_dir`` on a free port of 127.0.0.1; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------ in the browser

# Resolves when MathJax has typeset the page (at once when there is none).
WAIT_FOR_PAGE_JS = """
async (timeoutMs) => {
  const settle = async () => {
    for (const img of document.images) {
      if (img.loading === 'lazy') img.loading = 'eager';
    }
    await Promise.all(Array.from(document.images, (img) => img.decode().catch(() => null)));
    const mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) await mj.startup.promise;
  };
  await Promise.race([settle(), new Promise((r) => setTimeout(r, timeoutMs))]);
}
"""

INSPECT_JS = r"""
() => {
  const widgetSelector = '.widget-subarea, .jupyter-widgets, .lm-Widget, .p-Widget';
  const images = Array.from(document.images, (img) => ({
    src: img.currentSrc || img.getAttribute('src') || '',
    ok: img.complete && img.naturalWidth > 0,
  }));
  const links = Array.from(document.querySelectorAll('a[href], area[href]'), (a) => a.href);
  const ids = Array.from(document.querySelectorAll('[id]'), (e) => e.id)
    .concat(Array.from(document.querySelectorAll('a[name]'), (e) => e.name));

  const math = [];
  const snippet = (t) => t.replace(/\s+/g, ' ').trim().slice(0, 80);
  for (const el of document.querySelectorAll('.math')) {
    if (!el.querySelector('mjx-container')) {
      math.push(`not typeset by MathJax: ${snippet(el.textContent)}`);
    }
  }
  for (const err of document.querySelectorAll('mjx-merror')) {
    const text = err.getAttribute('data-mjx-error') || err.textContent;
    math.push(`TeX error: ${snippet(text)}`);
  }
  const raw = /\\\(|\\\[|\$\$|\\begin\{|\$[^$\n]*\\[A-Za-z]+[^$\n]*\$/;
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, .math';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const parent = node.parentElement;
    if (!parent || parent.closest(skip) || !raw.test(node.data)) continue;
    if (parent.checkVisibility && !parent.checkVisibility()) continue;
    math.push(`LaTeX left as text: ${snippet(node.data)}`);
  }

  const widgets = [];
  const views = document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"]');
  views.forEach((view, i) => {
    const scope = view.closest('section') || document.querySelector('main') || document.body;
    const figure = Array.from(scope.querySelectorAll('img')).some((img) =>
      (img.compareDocumentPosition(view) & Node.DOCUMENT_POSITION_FOLLOWING)
      && !img.closest(widgetSelector)
      && img.closest('.cell_output, .output, figure'));
    if (!figure) {
      let model = '';
      try { model = JSON.parse(view.textContent).model_id || ''; } catch (e) {}
      const heading = scope.querySelector('h1, h2, h3, h4, h5, h6');
      const where = heading ? `in section "${snippet(heading.textContent.replace(/#$/, ''))}"`
                            : 'on the page';
      widgets.push(`widget ${i + 1} (model ${model}) ${where} has no static figure before it`);
    }
  });

  const code = [];
  for (const pre of document.querySelectorAll('div.cell_input pre')) {
    if (pre.scrollWidth > pre.clientWidth + 1) {
      const longest = pre.textContent.split('\n')
        .reduce((a, b) => (b.length > a.length ? b : a), '');
      code.push(`a code cell scrolls sideways (${pre.scrollWidth} px in ${pre.clientWidth}): ` +
                `${snippet(longest)}`);
    }
  }
  return {images, links, ids, math, widgets, code};
}
"""


class PageChecker:
    """A headless Chromium, driven by Playwright, that checks built sites.

    Use as a context manager; :meth:`check` may be called for several sites.
    """

    def __init__(self, chromium: str | None = None, assets: Path = DEFAULT_ASSETS,
                 timeout_s: float = 30.0) -> None:
        self.chromium = chromium or find_chromium()
        require_playwright()
        require_assets(assets)
        self.packages = LocalPackages(assets)
        self.timeout_ms = int(timeout_s * 1000)
        self._playwright: Any = None
        self._browser: Any = None

    def __enter__(self) -> PageChecker:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=self.chromium, headless=True, args=LAUNCH_ARGS,
                chromium_sandbox=False,
            )
        except Exception:
            self._playwright.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._browser is not None:
                self._browser.close()
        finally:
            if self._playwright is not None:
                self._playwright.stop()

    def check(self, html_dir: Path, screenshots: Path | None = None,
              log: Callable[[str], None] | None = None) -> Report:
        """Check every page of the site in ``html_dir``; screenshots into ``screenshots``."""
        html_dir = html_dir.resolve()
        report = Report()
        start = time.monotonic()
        if screenshots is not None:
            for old in screenshots.rglob("*.png") if screenshots.is_dir() else []:
                old.unlink()
        with serve(html_dir) as base:
            for page_path in pages_of(html_dir):
                began = time.monotonic()
                # a fresh profile for each page: it is seen as a first-time reader
                # sees it, whatever page was checked before
                context = self._browser.new_context(viewport=VIEWPORT, service_workers="block")
                try:
                    failures = self._check_page(context, base, html_dir, page_path,
                                                screenshots, report)
                finally:
                    context.close()
                report.failures.extend(failures)
                if log is not None:
                    log(f"{page_path}: {len(failures) or 'no'} failure(s) "
                        f"({time.monotonic() - began:.1f} s)")
        report.seconds = time.monotonic() - start
        return report

    def _check_page(self, context: Any, base: str, html_dir: Path, page_path: str,
                    screenshots: Path | None, report: Report) -> list[Failure]:
        found: list[Failure] = []
        seen: set[tuple[str, str]] = set()
        failed_urls: set[str] = set()

        def fail(kind: str, detail: str) -> None:
            if (kind, detail) not in seen:
                seen.add((kind, detail))
                found.append(Failure(page_path, kind, detail))

        def warn(kind: str, detail: str) -> None:
            if (kind, detail) not in seen:
                seen.add((kind, detail))
                report.warnings.append(Failure(page_path, kind, detail))

        def failed_request(request: Any, detail: str) -> None:
            """A request that failed: an image or a script fails the page; a font
            only changes how some glyphs look, so it is a warning."""
            failed_urls.add(request.url)
            kind = request.resource_type
            if kind == "font":
                warn("font", detail)
            else:
                fail("image" if kind == "image" else "request", detail)

        refresh = _parse(html_dir / page_path).refresh
        if refresh is not None:
            # A redirect page (Jupyter Book's root index.html): its target must exist.
            target = urljoin(base + page_path, refresh)
            problem = link_problem(html_dir, base, page_path, target, lambda: set())
            if problem:
                fail("link", f"redirect: {problem}")
            report.notes.append(f"{page_path}: redirects to {refresh} (checked as a link)")
            return found

        report.pages.append(page_path)
        page = context.new_page()
        page.set_default_timeout(self.timeout_ms)

        def external(route: Any) -> None:
            url = route.request.url
            try:
                path = self.packages.file_for(url)
                body = path.read_bytes()
            except (NotServed, OSError) as why:
                failed_request(route.request, f"{url}: {why}")
                route.abort("blockedbyclient")
                return
            route.fulfill(status=200, body=body, headers={
                "content-type": content_type(path),
                "access-control-allow-origin": "*",
            })

        def on_response(response: Any) -> None:
            if response.url.startswith(base) and response.status >= 400:
                failed_request(response.request, f"{_local(base, response.url)} did not load "
                                                 f"(HTTP {response.status})")

        def on_request_failed(request: Any) -> None:
            if request.url not in failed_urls:
                failed_request(request, f"{_local(base, request.url)} did not load "
                                        f"({request.failure})")

        def on_console(message: Any) -> None:
            if message.type != "error":
                return
            if message.text.startswith("Failed to load resource"):
                return  # the failed request itself is reported, with its address
            fail("console", message.text.strip()[:300])

        def on_page_error(error: Any) -> None:
            fail("console", f"uncaught {error.name or 'error'}: {error.message}"[:300])

        page.route(lambda url: not url.startswith(base) and not url.startswith("data:"),
                   external)
        page.on("response", on_response)
        page.on("requestfailed", on_request_failed)
        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        try:
            page.goto(base + page_path, wait_until="load")
            try:
                page.wait_for_load_state("networkidle", timeout=10_000)
            except Exception:  # noqa: BLE001 - a page that never idles still gets checked
                report.notes.append(f"{page_path}: network never idle within 10 s")
            page.evaluate(WAIT_FOR_PAGE_JS, 10_000)
            seen_dom = page.evaluate(INSPECT_JS)
            for image in seen_dom["images"]:
                url = image["src"]
                if not image["ok"] and url not in failed_urls:
                    fail("image", f"{_local(base, url) or '(empty src)'} did not load")
            page_ids = set(seen_dom["ids"])
            for href in dict.fromkeys(seen_dom["links"]):
                problem = link_problem(html_dir, base, page_path, href, lambda: page_ids)
                if problem:
                    fail("link", problem)
            for text in seen_dom["math"]:
                fail("math", text)
            for text in seen_dom["widgets"]:
                fail("widget", text)
            for text in seen_dom["code"]:
                fail("code", text)
            if screenshots is not None:
                shot = screenshots / Path(page_path).with_suffix(".png")
                shot.parent.mkdir(parents=True, exist_ok=True)
                height = page.evaluate("document.documentElement.scrollHeight")
                clip = ({"x": 0, "y": 0, "width": VIEWPORT["width"], "height": MAX_SHOT_PX}
                        if height > MAX_SHOT_PX else None)
                page.screenshot(path=str(shot), full_page=True, clip=clip)
        except Exception as err:  # noqa: BLE001 - a page that cannot be opened is a failure
            fail("request", f"the page could not be checked: {type(err).__name__}: {err}")
        finally:
            page.close()
        return found


def _local(base: str, url: str) -> str:
    """``url`` relative to the site when it is on it."""
    return unquote(url[len(base):]) if url.startswith(base) else url


def check_site(html_dir: Path, screenshots: Path | None = None,
               chromium: str | None = None, assets: Path = DEFAULT_ASSETS) -> Report:
    """Check every page of the built site in ``html_dir`` (see the module docstring)."""
    with PageChecker(chromium, assets) as checker:
        return checker.check(html_dir, screenshots)


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def main(argv: list[str] | None = None) -> int:
    """Command line: check a built site, print each failure, exit 1 on any."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", type=Path, nargs="?", default=Path("_build/html"))
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="folder for a full-page PNG of every page")
    parser.add_argument("-v", "--verbose", action="store_true", help="a line per page")
    parser.add_argument("--assets", type=Path,
                        default=Path(os.environ.get("HMG_BROWSER_ASSETS", DEFAULT_ASSETS)),
                        help="unpacked npm packages that answer CDN requests")
    args = parser.parse_args(argv)

    if not args.html_dir.is_dir():
        print(f"{args.html_dir}: no built site here", file=sys.stderr)
        return 1
    reason = unavailable_reason(args.assets)
    if reason is not None:
        if _truthy("CI"):
            print(f"browser check cannot run in CI: {reason}", file=sys.stderr)
            return 1
        print(f"browser check SKIPPED: {reason}")
        return 0

    with PageChecker(assets=args.assets) as checker:
        report = checker.check(args.html_dir, args.screenshots,
                               log=print if args.verbose else None)
    for note in report.notes:
        print(f"note: {note}")
    for warning in report.warnings:
        print(f"warning: {warning}")
    for failure in report.failures:
        print(failure, file=sys.stderr)
    causes = Counter((f.kind, f.detail) for f in report.failures)
    if len(causes) < len(report.failures):
        print("by cause:", file=sys.stderr)
        for (kind, detail), pages in causes.most_common():
            print(f"  {pages:3d} page(s)  {kind}: {detail}", file=sys.stderr)
    summary = (f"{args.html_dir}: {len(report.pages)} pages opened in Chromium in "
               f"{report.seconds:.0f} s")
    if args.screenshots is not None:
        summary += f", screenshots in {args.screenshots}"
    if report.failures:
        print(f"{summary}: {len(report.failures)} failure(s)", file=sys.stderr)
        return 1
    print(f"{summary}: no broken images, links, console errors, math or widgets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
