"""A book of two profiles (``chexp reproduce --profile phantom --profile cohen``, ``make book-real``):
staging from fake run folders (no notebook is executed), the command line, the Makefile target,
the scorecard's per-profile columns, and one real (offline, warnings-as-errors) build."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from chexp.book import PART_CAPTIONS, build_book, profile_run_dirs, stage_book
from chexp.errors import InvalidParameterError, UnknownNameError
from chexp.outputs import DOWNLOADS_KEY, download_markdown
from chexp.reproduce import add_arguments, profile_names, reproduce_profiles
from chexp.scorecard import CLAIMS, NOT_REPRODUCED, NOT_RUNNABLE, REPRODUCED, scorecard_page

REPO = Path(__file__).resolve().parents[1]
PROFILES = ("phantom", "cohen")
REAL = PART_CAPTIONS["cohen"]
#: A chapter's text, with relative links to chapters and to a page outside notebooks/.
TEXT = "Text; see {doc}`01_a`, {doc}`02_b` and {doc}`the intro <../book/intro>`."


def _source(root: Path) -> Path:
    """A tiny book source: the real ``_config.yml``, two notebook chapters and a last part."""
    (root / "book").mkdir(parents=True)
    for name in ("_config.yml", "references.bib"):
        shutil.copy2(REPO / name, root / name)
    shutil.copytree(REPO / "book" / "_ext", root / "book" / "_ext")
    shutil.copytree(REPO / "book" / "assets", root / "book" / "assets",
                    ignore=shutil.ignore_patterns("ipywidgets", "mathjax"))
    (root / "book" / "intro.md").write_text("# Intro\n\nA tiny book.\n", encoding="utf-8")
    (root / "book" / "about.md").write_text("# About\n\nThe last part.\n", encoding="utf-8")
    toc = {"format": "jb-book", "root": "book/intro",
           "parts": [{"caption": "Chapters", "chapters": [{"file": "notebooks/01_a"}, {"file": "notebooks/02_b"}]},
                     {"caption": "About", "chapters": [{"file": "book/about"}]}]}
    (root / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf-8")
    return root


def _executed(run: Path, stem: str, profile: str, pixel: bytes, seconds: float) -> None:
    """An executed notebook as ``chexp reproduce`` leaves it: papermill's parameters and duration, a
    printed line, and a saved file with its download link (relative to ``<run>/notebooks``)."""
    link = f"../outputs/{stem}/fig.png"
    (run / "outputs" / stem).mkdir(parents=True, exist_ok=True)
    (run / "outputs" / stem / "fig.png").write_bytes(pixel)
    links = new_output("display_data", data={"text/markdown": download_markdown([link])},
                       metadata={"chexp": {DOWNLOADS_KEY: [link]}})
    code = new_code_cell("print(profile)", execution_count=1,
                         outputs=[new_output("stream", name="stdout", text=f"ran under {profile}\n"), links])
    colab = new_code_cell("!pip install chexp", metadata={"tags": ["remove-cell"]}, execution_count=0)
    nb = new_notebook(cells=[colab, new_markdown_cell(f"# Chapter {stem}\n\n{TEXT}"), code])
    nb.metadata["papermill"] = {"parameters": {"profile": profile, "device": "cpu"}, "duration": seconds}
    nb.metadata["chexp"] = {"profiles": list(PROFILES)}
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    (run / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, run / "notebooks" / f"{stem}.ipynb")


def _skipped(run: Path, stem: str) -> None:
    """The text page ``chexp reproduce`` saves for a notebook that does not support the profile."""
    nb = new_notebook(cells=[new_markdown_cell(f"# Chapter {stem}"), new_markdown_cell("not run")])
    nb.metadata["chexp"] = {"profiles": ["phantom"]}
    (run / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, run / "notebooks" / f"{stem}.ipynb")


@pytest.fixture()
def two_profile_run(tmp_path: Path) -> tuple[Path, Path]:
    """(book source, run folder): phantom ran both chapters; cohen ran 01_a and skipped 02_b."""
    source = _source(tmp_path / "src")
    run = tmp_path / "run"
    runs = profile_run_dirs(run, PROFILES)
    _executed(runs["phantom"], "01_a", "phantom", b"phantom-a", 12.0)
    _executed(runs["phantom"], "02_b", "phantom", b"phantom-b", 3.0)
    _executed(runs["cohen"], "01_a", "cohen", b"cohen-a", 95.4)
    _skipped(runs["cohen"], "02_b")
    return source, run


def _cells(path: Path) -> list[str]:
    return [cell.source for cell in nbformat.read(path, as_version=4).cells]


def test_staging_adds_a_part_per_further_profile_and_links_the_versions(two_profile_run: tuple[Path, Path]) -> None:
    source, run = two_profile_run
    stage = stage_book(run, source, profiles=PROFILES)
    assert stage == run / ".book-src"
    toc = yaml.safe_load((stage / "_toc.yml").read_text(encoding="utf-8"))
    assert [part["caption"] for part in toc["parts"]] == ["Chapters", REAL, "About"]
    assert toc["parts"][1]["chapters"] == [{"file": "cohen/index"}, {"file": "cohen/notebooks/01_a"}]
    assert toc["parts"][0]["chapters"] == [{"file": "notebooks/01_a"}, {"file": "notebooks/02_b"}]
    # The book's page of 01_a links its cohen version; that of 02_b says why there is none.
    # (right under the title, before the chapter's text; the Colab setup cell before it is kept)
    book_a, book_b = _cells(stage / "notebooks" / "01_a.ipynb"), _cells(stage / "notebooks" / "02_b.ipynb")
    assert book_a[0] == "!pip install chexp"
    tip = r"```\{tip\}\n.*\{doc\}`/cohen/notebooks/01_a`.*\n```"
    assert re.fullmatch(rf"# Chapter 01_a\n\n{tip}\n\n{re.escape(TEXT)}", book_a[1], re.S), book_a[1]
    assert "no version of this chapter under the `cohen` profile" in book_b[1]
    assert "skipped for this profile (it supports phantom)" in book_b[1]
    # The cohen page: its title says so, it links back, and it keeps its own outputs and files.
    cohen_a = nbformat.read(stage / "cohen" / "notebooks" / "01_a.ipynb", as_version=4)
    assert cohen_a.cells[1].source.startswith("# Chapter 01_a (cohen)\n\n```{note}")
    assert "{doc}`/notebooks/01_a`" in cohen_a.cells[1].source
    # its links lead to this part's chapters where they are in it, else to the book's pages
    assert cohen_a.cells[1].source.endswith(
        "Text; see {doc}`/cohen/notebooks/01_a`, {doc}`/notebooks/02_b` and {doc}`the intro </book/intro>`.")
    assert cohen_a.cells[2].outputs[0]["text"] == "ran under cohen\n"
    assert (stage / "cohen" / "outputs" / "01_a" / "fig.png").read_bytes() == b"cohen-a"
    assert (stage / "outputs" / "01_a" / "fig.png").read_bytes() == b"phantom-a"
    assert not (stage / "cohen" / "notebooks" / "02_b.ipynb").exists()
    # The part's page lists each chapter with its run time, or why it is missing.
    index = (stage / "cohen" / "index.md").read_text(encoding="utf-8")
    assert index.startswith(f"# {REAL}\n")
    # (by title, linking the part's page, and by notebook)
    assert "| {doc}`Chapter 01_a </cohen/notebooks/01_a>` | `01_a` | 95 | ran |" in index
    assert "| Chapter 02_b | `02_b` | - | the notebook was skipped for this profile (it supports phantom) |" in index
    assert "Run time of these 1 chapters under `cohen`: 1.6 minutes" in index
    # The provenance page lists the runs of both profiles.
    provenance = (stage / "book" / "provenance.md").read_text(encoding="utf-8")
    assert "| 01_a | phantom | cpu | 12 |" in provenance and "| 01_a | cohen | cpu | 95 |" in provenance
    # The scorecard has a column per profile.
    scorecard = (stage / "book" / "scorecard.md").read_text(encoding="utf-8")
    assert "| id | claim | where | paper's number | phantom | cohen | notebook |" in scorecard


def test_failed_and_unavailable_chapters_of_a_further_profile(two_profile_run: tuple[Path, Path]) -> None:
    """A chapter that failed under cohen is in the part (its page shows the error); one whose data
    were unavailable is not, and the book's page says so."""
    source, run = two_profile_run
    cohen = run / "cohen"
    (cohen / "failed").mkdir()
    shutil.move(cohen / "notebooks" / "01_a.ipynb", cohen / "failed" / "01_a.ipynb")
    nb = new_notebook(cells=[new_markdown_cell("# Chapter 02_b"), new_markdown_cell("download failed")])
    nb.metadata["chexp"] = {"profiles": list(PROFILES)}
    nbformat.write(nb, cohen / "notebooks" / "02_b.ipynb")
    stage = stage_book(run, source, profiles=PROFILES)
    toc = yaml.safe_load((stage / "_toc.yml").read_text(encoding="utf-8"))
    assert toc["parts"][1]["chapters"][1:] == [{"file": "cohen/notebooks/01_a"}]
    index = (stage / "cohen" / "index.md").read_text(encoding="utf-8")
    assert "| 95 | failed (the page shows the error) |" in index
    assert "could not be downloaded" in _cells(stage / "notebooks" / "02_b.ipynb")[1]


def test_a_chapter_absent_from_a_further_profiles_folder(two_profile_run: tuple[Path, Path]) -> None:
    """A cohen folder of ``--only`` runs holds no page for a chapter: one that does not support cohen
    (its phantom page's ``chexp.profiles``) was skipped for the profile, one that does was not run."""
    source, run = two_profile_run
    (run / "cohen" / "notebooks" / "02_b.ipynb").unlink()
    phantom_b = run / "phantom" / "notebooks" / "02_b.ipynb"
    nb = nbformat.read(phantom_b, as_version=4)
    nb.metadata["chexp"] = {"profiles": ["phantom"]}
    nbformat.write(nb, phantom_b)
    index = (stage_book(run, source, profiles=PROFILES) / "cohen" / "index.md").read_text(encoding="utf-8")
    assert "| Chapter 02_b | `02_b` | - | the notebook was skipped for this profile (it supports phantom) |" in index
    nb.metadata["chexp"] = {"profiles": list(PROFILES)}
    nbformat.write(nb, phantom_b)
    shutil.rmtree(run / ".book-src")
    index = (stage_book(run, source, profiles=PROFILES) / "cohen" / "index.md").read_text(encoding="utf-8")
    assert "| Chapter 02_b | `02_b` | - | the notebook was not run |" in index


def test_single_profile_staging_is_unchanged(two_profile_run: tuple[Path, Path]) -> None:
    """Without ``profiles`` a run folder stages as before: no part, no note, one scorecard column."""
    source, run = two_profile_run
    stage = stage_book(run / "phantom", source)
    toc = yaml.safe_load((stage / "_toc.yml").read_text(encoding="utf-8"))
    assert [part["caption"] for part in toc["parts"]] == ["Chapters", "About"]
    assert _cells(stage / "notebooks" / "01_a.ipynb")[1] == f"# Chapter 01_a\n\n{TEXT}"
    assert "| this build | profile | verdict |" in (stage / "book" / "scorecard.md").read_text(encoding="utf-8")


def test_profile_run_dirs_refuses_repeats() -> None:
    assert profile_run_dirs(Path("r"), ["phantom", "cohen"]) == {"phantom": Path("r/phantom"), "cohen": Path("r/cohen")}
    for bad in ([], ["cohen", "cohen"]):
        with pytest.raises(InvalidParameterError):
            profile_run_dirs(Path("r"), bad)


# ----------------------------------------------------------------------------- command line


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_profile_option_is_repeatable_and_comma_separated() -> None:
    assert profile_names(_parse().profile) == ["phantom"]
    assert profile_names(_parse("--profile", "cohen").profile) == ["cohen"]
    assert profile_names(_parse("--profile", "phantom,cohen").profile) == ["phantom", "cohen"]
    assert profile_names(_parse("--profile", "phantom", "--profile", " cohen ").profile) == ["phantom", "cohen"]


def test_cli_runs_several_profiles_into_one_book(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``--profile phantom,cohen`` calls reproduce_profiles with every other option; one profile
    calls reproduce as before."""
    import chexp.reproduce as module

    calls: list[tuple[str, object, dict[str, object]]] = []

    class _Done:
        build, exit_code = None, 0

        def summary(self) -> str:
            return "done"

    monkeypatch.setattr(module, "reproduce_profiles", lambda p, **kw: calls.append(("many", p, kw)) or _Done())
    monkeypatch.setattr(module, "reproduce", lambda **kw: calls.append(("one", kw.pop("profile"), kw)) or _Done())
    assert module.main(["--profile", "phantom,cohen", "--only", "1*", "-p", "n_samples=8",
                        "--output-dir", str(tmp_path), "--no-build"]) == 0
    assert module.main(["--profile", "cohen"]) == 0
    (kind, profiles, options), (kind1, profile1, _) = calls
    assert (kind, profiles, kind1, profile1) == ("many", ["phantom", "cohen"], "one", "cohen")
    assert options["only"] == ["1*"] and options["params"] == {"n_samples": 8}
    assert options["output_dir"] == tmp_path and options["build"] is False


def test_bad_profiles_fail_before_any_notebook_runs(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="nosuch"):
        reproduce_profiles(["phantom", "nosuch"], output_dir=tmp_path / "r")
    with pytest.raises(InvalidParameterError, match="distinct"):
        reproduce_profiles(["cohen", "cohen"], output_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_each_profile_runs_into_its_own_folder(tmp_path: Path) -> None:
    """Two profiles, one tiny notebook: each ran into ``<run>/<profile>/`` with its own parameters
    (its output_dir inside that folder); no book was asked for."""
    folder = tmp_path / "nbs"
    folder.mkdir()
    params = new_code_cell('profile = device = output_dir = "unset"', metadata={"tags": ["parameters"]})
    body = new_code_cell("import json, pathlib\npathlib.Path(output_dir).mkdir(parents=True)\n"
                         "(pathlib.Path(output_dir) / 'p.json').write_text(json.dumps([profile, device]))")
    nb = new_notebook(cells=[params, body])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "a.ipynb")
    result = reproduce_profiles(list(PROFILES), output_dir=tmp_path / "run", build=False, notebooks_dir=folder,
                                progress=False)
    assert result.exit_code == 0 and result.build is None and list(result.results) == list(PROFILES)
    for profile in PROFILES:
        run = tmp_path / "run" / profile
        assert (run / "notebooks" / "a.ipynb").is_file()
        assert json.loads((run / "outputs" / "a" / "p.json").read_text()) == [profile, "cpu"]
    assert "profile phantom (" in result.summary() and "profile cohen (" in result.summary()


def test_makefile_book_real_runs_both_profiles_and_book_stays_phantom() -> None:
    def recipe(target: str) -> str:
        out = subprocess.run(["make", "-n", "-C", str(REPO), target, "STAMP=Makefile"],
                             capture_output=True, text=True, check=True).stdout
        return [line for line in out.splitlines() if "chexp reproduce" in line][-1]

    assert recipe("book").endswith("chexp reproduce --profile phantom --jobs 2")
    real = recipe("book-real")
    assert re.search(r"chexp reproduce --profile phantom --profile cohen --output-dir \S+", real), real


# ----------------------------------------------------------------------------- scorecard


def test_scorecard_gives_each_profile_its_column(tmp_path: Path) -> None:
    """C1 (Inverse IBA finds the weaker side): a clear win on phantoms, none on the Cohen run."""
    claim = next(c for c in CLAIMS if c.id == "C1")
    for profile, inverse in (("phantom", 0.30), ("cohen", 0.05)):
        run = tmp_path / profile
        _executed(run, claim.notebook, profile, b"", 1.0)
        (run / claim.csv).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame([{"method": "IBA", "weaker side": 0.10},
                      {"method": "Inverse IBA", "weaker side": inverse}]).to_csv(run / claim.csv, index=False)
    page = scorecard_page({p: tmp_path / p for p in PROFILES}, claims=[claim, CLAIMS[0]])
    assert "Profiles of this run: cohen, phantom." in page
    row = next(line for line in page.splitlines() if line.startswith("| C1 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[4] == f"weaker side found: Inverse IBA 0.300, IBA 0.100: **{REPRODUCED}**"
    assert cells[5] == f"weaker side found: Inverse IBA 0.050, IBA 0.100: **{NOT_REPRODUCED}**"
    assert cells[6] == f"{{doc}}`{claim.notebook} <../notebooks/{claim.notebook}>`"
    g1 = next(line for line in page.splitlines() if line.startswith("| G1 |"))
    assert g1.count(f"**{NOT_RUNNABLE}**: the notebook was not run") == 2
    assert "phantom: " in page and "; cohen: " in page


# ----------------------------------------------------------------------------- one real build


def test_two_profile_book_builds_offline_without_warnings(two_profile_run: tuple[Path, Path]) -> None:
    source, run = two_profile_run
    result = build_book(run, source, profiles=PROFILES)
    assert result.ok, result.log[-6000:]
    html = result.html_dir
    book_a = (html / "notebooks" / "01_a.html").read_text(encoding="utf-8")
    cohen_a = (html / "cohen" / "notebooks" / "01_a.html").read_text(encoding="utf-8")
    assert re.search(r'href="\.\./cohen/notebooks/01_a\.html"', book_a)
    assert re.search(r'href="\.\./\.\./notebooks/01_a\.html"', cohen_a)
    assert "ran under cohen" in cohen_a and "ran under phantom" in book_a
    links = re.findall(r'href="([^"]*fig\.png)"', cohen_a)
    assert links and (html / "cohen" / "notebooks" / links[0]).resolve().read_bytes() == b"cohen-a"
    assert (html / "cohen" / "index.html").is_file()
    # "Open in Colab" opens the repository's notebook (the profile is a parameter), on both pages.
    colab = "colab.research.google.com/github/chexp-project/chexp/blob/main/notebooks/01_a.ipynb"
    assert colab in book_a and colab in cohen_a and "cohen/notebooks/01_a.ipynb" not in cohen_a
    print(f"\ntwo-profile toy book build: {result.seconds:.1f} s")
