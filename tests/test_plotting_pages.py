"""Figure pages read at page width: the book's stylesheet wraps long code lines instead of
cutting them off, and the shown code cells of every notebook keep their lines short."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
#: Notebooks whose shown code cells keep lines within :data:`MAX_LINE` characters: all of them.
SHORT_LINES = tuple(sorted(path.stem for path in (REPO / "notebooks").glob("*.ipynb")))
#: Characters of a code line that fit the page's code column at 1300 px (measured in Chromium:
#: 668 px at about 8.4 px per character of the theme's 14 px monospace); longer lines wrap.
MAX_LINE = 79
#: Cells the book does not show (the parameters cell is hidden, its values injected).
HIDDEN = {"remove-cell", "parameters"}


def _rules(css: str) -> dict[str, str]:
    """Selector -> declarations of a stylesheet (comments dropped; one entry per selector)."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    rules = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", css):
        for selector in selectors.split(","):
            rules[" ".join(selector.split())] = body
    return rules


def test_the_book_stylesheet_wraps_code_cells_and_their_output():
    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))["sphinx"]["config"]
    sheets = [REPO / static / name for static in config["html_static_path"] for name in config["html_css_files"]]
    rules = {}
    for sheet in sheets:
        if sheet.is_file():
            rules.update(_rules(sheet.read_text(encoding="utf-8")))
    for selector in ("div.cell_input pre", "div.cell_output pre"):
        assert selector in rules, f"no rule for {selector} in {sheets}"
        assert re.search(r"white-space:\s*pre-wrap", rules[selector]), rules[selector]


@pytest.mark.parametrize("stem", SHORT_LINES)
def test_shown_code_lines_are_short(stem: str):
    nb = nbformat.read(REPO / "notebooks" / f"{stem}.ipynb", as_version=4)
    long = [line for cell in nb.cells if cell.cell_type == "code"
            and not HIDDEN & set(cell.metadata.get("tags", []))
            for line in cell.source.splitlines() if len(line) > MAX_LINE]
    assert not long, long
