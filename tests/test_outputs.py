"""Tests of chexp.outputs' download links and of their staging into the book (chexp.book.stage_notebook)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from nbformat.v4 import new_code_cell, new_notebook, new_output  # noqa: E402

from chexp.book import stage_notebook  # noqa: E402
from chexp.outputs import (  # noqa: E402
    DOWNLOADS_KEY,
    PAGE_DIR_ENV,
    download_markdown,
    relative_links,
    save_figure,
    save_table,
)


def test_links_are_relative_to_the_page_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    files = [run / "outputs" / "nb" / "fig 1.png", run / "outputs" / "nb" / "t.csv"]
    monkeypatch.setenv(PAGE_DIR_ENV, str(run / "notebooks"))
    assert relative_links(files) == ["../outputs/nb/fig 1.png", "../outputs/nb/t.csv"]
    monkeypatch.delenv(PAGE_DIR_ENV)
    monkeypatch.chdir(run.parent)  # a notebook opened by hand: relative to its working directory
    assert relative_links(files[:1]) == ["run/outputs/nb/fig 1.png"]
    expected = "Download: [a.png](<../o/a.png>) · [a b.svg](<../o/a b.svg>)"
    assert download_markdown(["../o/a.png", "../o/a b.svg"]) == expected


def test_saving_outside_a_notebook_shows_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    paths = save_figure(fig, tmp_path, "curve")
    plt.close(fig)
    path = save_table(pd.DataFrame({"a": [1, 2]}), tmp_path, "table")
    assert [p.name for p in paths] == ["curve.png", "curve.svg"] and path.read_text() == "a\n1\n2\n"
    assert capsys.readouterr().out == ""


def _link_output(links: list[str]) -> nbformat.NotebookNode:
    return new_output("display_data", data={"text/markdown": download_markdown(links)},
                      metadata={"chexp": {DOWNLOADS_KEY: links}})


def test_staging_moves_links_under_the_outputs_and_copies_their_files(tmp_path: Path) -> None:
    run, stage = tmp_path / "run", tmp_path / "book" / "stage"
    (run / "outputs" / "nb").mkdir(parents=True)
    (run / "outputs" / "nb" / "fig.png").write_bytes(b"png-bytes")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.png").write_bytes(b"not for the book")
    (run / "notebooks").mkdir()
    (stage / "notebooks").mkdir(parents=True)
    image = new_output("display_data", data={"image/png": "aGk=", "text/plain": "<Figure>"})
    table = new_output("execute_result", data={"text/plain": "table"}, execution_count=1)
    cell = new_code_cell("save_figure(...)", outputs=[_link_output(["../outputs/nb/fig.png"]), table, image])
    # a link that leaves the stage (its file exists) and one whose file is missing: nothing copied
    escaping = new_code_cell("x", outputs=[_link_output(["../../elsewhere/secret.png", "../outputs/nb/missing.png"])])
    nbformat.write(new_notebook(cells=[cell, escaping]), run / "notebooks" / "nb.ipynb")

    staged = stage_notebook(run / "notebooks" / "nb.ipynb", stage / "notebooks", run / "notebooks", stage)

    cells = nbformat.read(staged, as_version=4).cells
    assert [o.output_type for o in cells[0].outputs] == ["execute_result", "display_data", "display_data"]
    assert "image/png" in cells[0].outputs[1].data and DOWNLOADS_KEY in cells[0].outputs[2].metadata["chexp"]
    assert (stage / "outputs" / "nb" / "fig.png").read_bytes() == b"png-bytes"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")) == [
        "book/stage/outputs/nb/fig.png", "elsewhere/secret.png", "run/outputs/nb/fig.png"]
