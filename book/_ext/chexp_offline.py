"""Sphinx extension of the chexp book: keep pages free of references to other hosts.

Jupyter Book 1 always loads sphinx-thebe, which writes ``const THEBE_JS_URL =
"https://unpkg.com/..."`` into every page, twice (a redeclaration error in the browser
console), plus a ``sphinx-thebe.js`` loader that would fetch Thebe from unpkg if live code
were ever switched on. The book has no live code (``launch_buttons.thebe: false``), so
both are dropped from every page, and identical inline scripts are kept only once.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx

_DROP_FILES = ("sphinx-thebe.js",)
_DROP_BODY_MARKERS = ("THEBE_JS_URL",)


def _filename(script: Any) -> str:
    return str(getattr(script, "filename", script) or "")


def _body(script: Any) -> str:
    return str(getattr(script, "attributes", {}).get("body", ""))


def _clean_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    kept: list[Any] = []
    seen_bodies: set[str] = set()
    for script in scripts:
        name, body = _filename(script), _body(script)
        if name.endswith(_DROP_FILES) or any(marker in body for marker in _DROP_BODY_MARKERS):
            continue
        if not name and body:
            if body in seen_bodies:
                continue
            seen_bodies.add(body)
        kept.append(script)
    context["script_files"] = kept


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("html-page-context", _clean_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
