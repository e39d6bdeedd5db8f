"""Two small fixes to the rendered pages, so that they load without a console error.

* Sphinx 7.4 can list an inline script of an extension twice in a page's head
  (sphinx-thebe's ``const THEBE_JS_URL = ...`` among them); the second copy throws
  "Identifier has already been declared". Each page keeps one copy of each script.
* The ipywidgets embedder (``@jupyter-widgets/html-manager``) typesets widget
  labels with MathJax 2's ``MathJax.Hub.Queue``, while the book loads MathJax 3.
  A shim maps that call to MathJax 3's ``typesetPromise``.
"""

from __future__ import annotations

from typing import Any

# Before the widget scripts (priority 500 by default); defined once the page has
# loaded, when MathJax 3 has replaced its configuration object.
MATHJAX2_SHIM = """
window.addEventListener("load", function () {
  if (window.MathJax && !window.MathJax.Hub) {
    window.MathJax.Hub = {
      Queue: function () {
        return window.MathJax.typesetPromise ? window.MathJax.typesetPromise() : undefined;
      },
    };
  }
});
"""


def _script_key(script: Any) -> tuple:
    """What makes two scripts the same: the file, or an inline script's text (whose
    filename is sometimes ``None``, sometimes ``""``), with its attributes."""
    attributes = dict(getattr(script, "attributes", {}) or {})
    filename = getattr(script, "filename", str(script)) or ""
    return (filename, tuple(sorted(attributes.items())))


def _one_copy_of_each_script(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app) -> dict[str, Any]:
    app.add_js_file(None, body=MATHJAX2_SHIM, priority=400)
    app.connect("html-page-context", _one_copy_of_each_script)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
