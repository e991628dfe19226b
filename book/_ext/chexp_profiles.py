"""Sphinx extension of the chexp book: launch buttons of the chapters run under a further profile.

A book of several profiles (``chexp reproduce --profile phantom --profile cohen``) has, besides
its chapters ``notebooks/<stem>``, the same notebooks run under another profile as pages
``<profile>/notebooks/<stem>`` (:func:`chexp.book.stage_profile_part`). The repository has only
``notebooks/<stem>.ipynb`` (the profile is a parameter), so the theme's launch buttons ("Open in
Colab"), which name the page's own path in the repository, are pointed at that notebook instead.
"""

from __future__ import annotations

import re
from typing import Any

from sphinx.application import Sphinx

_PROFILE_PAGE = re.compile(r"^[^/]+/(notebooks/[^/]+)$")


def _retarget(buttons: list[dict[str, Any]], old: str, new: str) -> None:
    for button in buttons:
        if "url" in button:
            button["url"] = button["url"].replace(old, new)
        _retarget(button.get("buttons", []), old, new)


def _launch_the_repository_notebook(app: Sphinx, pagename: str, templatename: str, context: dict,
                                    doctree: Any) -> None:
    match = _PROFILE_PAGE.match(pagename)
    if match:
        _retarget(context.get("header_buttons", []), f"/{pagename}.ipynb", f"/{match.group(1)}.ipynb")


def setup(app: Sphinx) -> dict[str, Any]:
    # after sphinx-book-theme's add_launch_buttons (priority 501)
    app.connect("html-page-context", _launch_the_repository_notebook, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
