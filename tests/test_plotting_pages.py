"""Figure pages read at page width: the book's stylesheet wraps long code lines instead of
cutting them off, and the shown code cells of every notebook keep their lines short."""

from __future__ import annotations

import ast
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


def _book_stylesheet_rules() -> dict[str, str]:
    """Selector -> declarations of the book's own stylesheets (``_config.yml``'s html_css_files)."""
    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))["sphinx"]["config"]
    sheets = [REPO / static / name for static in config["html_static_path"] for name in config["html_css_files"]]
    rules = {}
    for sheet in sheets:
        if sheet.is_file():
            rules.update(_rules(sheet.read_text(encoding="utf-8")))
    return rules


def test_the_book_stylesheet_wraps_code_cells_and_their_output():
    rules = _book_stylesheet_rules()
    for selector in ("div.cell_input pre", "div.cell_output pre"):
        assert selector in rules, f"no rule for {selector}"
        assert re.search(r"white-space:\s*pre-wrap", rules[selector]), rules[selector]


def test_the_book_stylesheet_wraps_long_words_in_the_text():
    """A URL in a paragraph or list item (the note of a chapter whose download failed) wraps."""
    rules = _book_stylesheet_rules()
    for selector in (".bd-article p", ".bd-article li"):
        assert re.search(r"overflow-wrap:\s*(break-word|anywhere)", rules.get(selector, "")), selector


def test_the_book_stylesheet_sets_output_tables_small():
    """pandas tables in cell outputs use a smaller font and tighter cells than the theme's (16 px),
    so that tables of up to about ten short columns fit the 704 px text column at 1300 px."""
    rules = _book_stylesheet_rules()
    table = rules.get("div.cell_output table.dataframe", "")
    size = re.search(r"font-size:\s*([\d.]+)rem", table)
    assert size and float(size.group(1)) <= 0.85, table
    cell = rules.get("div.cell_output table.dataframe td", "")
    assert cell == rules.get("div.cell_output table.dataframe th") and "padding" in cell


@pytest.mark.parametrize("stem", SHORT_LINES)
def test_shown_code_lines_are_short(stem: str):
    nb = nbformat.read(REPO / "notebooks" / f"{stem}.ipynb", as_version=4)
    long = [line for cell in nb.cells if cell.cell_type == "code"
            and not HIDDEN & set(cell.metadata.get("tags", []))
            for line in cell.source.splitlines() if len(line) > MAX_LINE]
    assert not long, long


@pytest.mark.parametrize("stem", SHORT_LINES)
def test_saving_cells_show_no_file_list(stem: str):
    """A cell that ends with ``save_figure(...)`` or ``save_table(...)`` ends with ``;``: else the
    page shows the list of saved paths (absolute paths of the machine that built the book)."""
    nb = nbformat.read(REPO / "notebooks" / f"{stem}.ipynb", as_version=4)
    bare = []
    for cell in nb.cells:
        body = ast.parse(cell.source).body if cell.cell_type == "code" else []
        last = body[-1] if body else None
        if (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
                and getattr(last.value.func, "id", "") in ("save_figure", "save_table")
                and not cell.source.rstrip().endswith(";")):
            bare.append(cell.id)
    assert not bare, f"cells ending with a bare save call: {bare}"
