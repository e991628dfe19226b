"""Tests of the book: offline build from papermill outputs, and the page in a real browser.

The book is built once per session from the real ``_config.yml`` and ``book/`` pages and
the real ``notebooks/00_phantom_gallery.ipynb`` (executed with 4 small phantoms), with
warnings as errors. The browser tests open it in headless Chromium (Debian package
``chromium``, driven by Playwright for Python with ``executable_path``), with every request
to another host blocked and counted. Without Chromium they are skipped, or fail when
``CHEXP_REQUIRE_BROWSER=1`` (CI).
"""

from __future__ import annotations

import functools
import hashlib
import html as html_lib
import http.server
import json
import os
import platform
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
import yaml

from chexp.book import (
    MATHJAX,
    WIDGET_JS,
    NpmAsset,
    fetch_npm_tarball,
    install_npm_asset,
    install_widget_js,
    stage_book,
    toc_notebooks,
)
from chexp.errors import ChecksumError, DataUnavailableError
from chexp.provenance import package_version, source_commit
from chexp.reproduce import reproduce

REPO = Path(__file__).resolve().parents[1]
GALLERY = "00_phantom_gallery"
CHROMIUM = os.environ.get("CHEXP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_SCHEMES = ("data:", "blob:", "about:")
#: Math added to the gallery page of the test book, beside its slider.
SLIDER_MATH = r"Sample $i$ of the slider is the phantom $x_i \in [0, 1]^{S \times S}$."


def _book_source(root: Path) -> Path:
    """Copy the book source, keeping only the gallery among the toc's notebooks."""
    for name in ("_config.yml", "references.bib"):
        shutil.copy2(REPO / name, root / name)
    shutil.copytree(REPO / "book", root / "book", ignore=shutil.ignore_patterns("ipywidgets", "mathjax"))
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))

    def keep(entry: object) -> bool:
        file = entry.get("file", "") if isinstance(entry, dict) else ""
        return not file.startswith("notebooks/") or file == f"notebooks/{GALLERY}"

    for part in toc.get("parts", []):
        part["chapters"] = [chapter for chapter in part["chapters"] if keep(chapter)]
    toc["parts"] = [part for part in toc.get("parts", []) if part["chapters"]]
    (root / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf-8")
    # the chapter pages link to the notebooks left out: keep their names as plain text
    dropped = re.compile(r"\{doc\}`\.\./notebooks/(?!" + GALLERY + r"`)([^`]+)`")
    for page in (root / "book").glob("*.md"):
        page.write_text(dropped.sub(r"`\1`", page.read_text(encoding="utf-8")), encoding="utf-8")
    (root / "notebooks").mkdir()
    # The chapters that show λ sliders also have math (notebooks 10, 12); so does this copy
    # of the gallery: on such a page the widget manager typesets every widget label with
    # MathJax (book/assets/chexp/mathjax2-hub.js).
    gallery = nbformat.read(REPO / "notebooks" / f"{GALLERY}.ipynb", as_version=4)
    gallery.cells.append(nbformat.v4.new_markdown_cell(SLIDER_MATH))
    nbformat.write(gallery, root / "notebooks" / f"{GALLERY}.ipynb")
    return root


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    source = _book_source(tmp_path_factory.mktemp("book-src"))
    run_dir = tmp_path_factory.mktemp("book-run")
    start = time.perf_counter()
    result = reproduce(
        profile="phantom",
        device="cpu",
        params={"n_samples": 4, "image_size": 64, "seed": 3},
        output_dir=run_dir,
        build=True,
        notebooks_dir=source / "notebooks",
        source_root=source,
        progress=False,
    )
    seconds = time.perf_counter() - start
    log = result.build.log if result.build is not None else ""
    assert not result.failed, result.summary()
    assert result.build is not None and result.build.ok, log[-8000:]
    print(f"\nnotebook + book build: {seconds:.1f} s (book build alone {result.build.seconds:.1f} s)")
    return {"html": result.build.html_dir, "run": run_dir, "log": log, "seconds": seconds}


def test_book_builds_offline_without_warnings(built_book: dict[str, object]) -> None:
    html_dir = Path(built_book["html"])
    page = html_dir / "notebooks" / f"{GALLERY}.html"
    assert (html_dir / "index.html").is_file() and page.is_file()
    text = page.read_text(encoding="utf-8")
    # Saved widget state is embedded and the local widget manager is loaded exactly once.
    assert text.count('type="application/vnd.jupyter.widget-state+json"') == 1
    assert len(re.findall(r'<script[^>]+src="[^"]*_static/ipywidgets/embed\.js', text)) == 1
    assert (html_dir / "_static" / "ipywidgets" / "embed.js").stat().st_size > 1_000_000
    assert list((html_dir / "_static" / "ipywidgets").glob("*.woff2"))
    # The Font Awesome setting is loaded, as a plain (not deferred) script.
    assert re.search(r'<script src="[^"]*_static/chexp/fa-config\.js', text)
    # Parameter cells are hidden; their values are not on the page.
    plain = html_lib.unescape(re.sub(r"<[^>]+>", "", text))
    assert "n_samples = 16" not in plain and "n_samples = 4" not in plain
    # No page loads a script, stylesheet, image or font from another host, nor names one
    # in an inline script (sphinx-thebe's unpkg loader is removed by book/_ext).
    for html in html_dir.rglob("*.html"):
        content = html.read_text(encoding="utf-8")
        inline = re.findall(r"<script>(.*?)</script>", content, flags=re.S)
        assert not [body for body in inline if re.search(r"https?://", body)], html.name
        for tag, attr in (("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src")):
            for match in re.finditer(rf"<{tag}\b[^>]*\b{attr}=\"(https?:)?//[^\"]+\"", content):
                if tag == "link" and not re.search(r'rel="(stylesheet|preload|icon|modulepreload)"', match.group(0)):
                    continue
                pytest.fail(f"{html.relative_to(html_dir)} loads from another host: {match.group(0)}")
    # The generated provenance page is in the book, with this environment's versions.
    prov_html = (html_dir / "book" / "provenance.html").read_text(encoding="utf-8")
    prov = html_lib.unescape(re.sub(r"<[^>]+>", " ", prov_html))
    assert "Build provenance" in prov and package_version("torch") in prov and GALLERY in prov
    # The notebook saved its files in its own output folder.
    outputs = Path(built_book["run"]) / "outputs" / GALLERY
    assert {p.name for p in outputs.iterdir()} >= {"gallery.png", "gallery.svg", "label_counts.csv"}


def _links(html: Path) -> dict[str, Path]:
    """Link text -> the local file each relative ``href`` of ``html`` resolves to."""
    text = html.read_text(encoding="utf-8")
    found = {}
    for href, label in re.findall(r'<a [^>]*href="([^"#:]+)(?:#[^"]*)?"[^>]*>(.*?)</a>', text, flags=re.S):
        found[html_lib.unescape(re.sub(r"<[^>]+>", "", label)).strip()] = (html.parent / href).resolve()
    return found


def test_figures_and_tables_link_their_files(built_book: dict[str, object]) -> None:
    """Under the gallery figure and the label-count table: links to gallery.png, gallery.svg and
    label_counts.csv that resolve to byte-identical copies in the built HTML, placed after the
    figure and the table they belong to."""
    html_dir = Path(built_book["html"])
    page = html_dir / "notebooks" / f"{GALLERY}.html"
    links = _links(page)
    outputs = Path(built_book["run"]) / "outputs" / GALLERY
    for name in ("gallery.png", "gallery.svg", "label_counts.csv"):
        target = links[name]
        assert target.is_file() and html_dir in target.parents, (name, target)
        assert target.read_bytes() == (outputs / name).read_bytes(), name
    text = page.read_text(encoding="utf-8")
    # each link line comes after the output it belongs to (the table, then the figure's image)
    table_at = text.index("<table")
    csv_at = text.index(">label_counts.csv<")
    png_at = text.index(">gallery.png<")
    assert table_at < csv_at < png_at
    image_at = text.rindex("<img", 0, png_at)
    assert csv_at < image_at, "the figure's image comes before its download links"


def test_bibliography_citations_and_math_render_offline(built_book: dict[str, object]) -> None:
    """The References page lists references.bib's entries; a {cite} in a chapter page links to
    it; $...$ math is marked up for MathJax, which is served from the book itself."""
    html_dir = Path(built_book["html"])
    refs = html_dir / "book" / "references.html"
    plain = html_lib.unescape(re.sub(r"<[^>]+>", " ", refs.read_text(encoding="utf-8"))).lower()
    for entry in ("Cohen, Rupert Brooks", "Gifsplanation via Latent Shift", "Restricting the Flow",
                  "10.1007/978-3-030-87199-4_37", "Sanity Checks for Saliency Maps", "arXiv:2102.09475"):
        assert entry.lower() in plain, entry
    chapter = html_dir / "book" / "chexplain_iba.html"
    text = chapter.read_text(encoding="utf-8")
    cites = re.findall(r'<a [^>]*href="(references\.html#id\d+)"[^>]*>', text)
    assert cites, "no citation links to the References page"
    assert 'class="math notranslate nohighlight"' in text and "\\mathcal{L}_{CE}" in text
    scripts = re.findall(r'<script[^>]+src="([^"]*mathjax[^"]*)"', text)
    assert scripts and all(not src.startswith(("http:", "https:", "//")) for src in scripts), scripts
    mathjax = (chapter.parent / scripts[0].split("?")[0]).resolve()
    assert mathjax == (html_dir / "_static" / "mathjax" / "es5" / "tex-chtml-full.js").resolve()
    assert mathjax.stat().st_size > 1_000_000
    assert len(list((mathjax.parent / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))) >= 20


def test_citation_cff_cites_chexp_and_both_papers() -> None:
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software" and cff["authors"]
    assert {"message", "title", "version", "license"} <= set(cff)
    titles = {ref["title"] for ref in cff["references"]}
    assert any(title.startswith("Gifsplanation via Latent Shift") for title in titles)
    assert any(title.startswith("Explaining COVID-19 and Thoracic Pathology") for title in titles)
    bib = (REPO / "references.bib").read_text(encoding="utf-8")
    for ref in cff["references"]:
        assert all(ref[key] for key in ("authors", "year", "type"))
        if "doi" in ref:
            assert f"doi       = {{{ref['doi']}}}" in bib


def test_toc_lists_only_existing_pages() -> None:
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for file in files:
        candidates = [REPO / f"{file}.md", REPO / f"{file}.ipynb"]
        assert any(p.is_file() for p in candidates), f"_toc.yml lists {file}, which does not exist"
    assert GALLERY in toc_notebooks(REPO / "_toc.yml")


def test_widget_tarball_is_checked(tmp_path: Path) -> None:
    good = fetch_npm_tarball(WIDGET_JS)  # from the cache, or npm pack once
    assert hashlib.sha256(good.read_bytes()).hexdigest() == WIDGET_JS.sha256
    cache = tmp_path / "cache"
    cache.mkdir()
    tampered = cache / WIDGET_JS.tarball_name
    tampered.write_bytes(good.read_bytes()[:-1] + b"\0")
    with pytest.raises(ChecksumError, match="sha256"):
        fetch_npm_tarball(WIDGET_JS, cache)
    wrong_pin = NpmAsset(WIDGET_JS.package, WIDGET_JS.version, "0" * 64, WIDGET_JS.keep)
    shutil.copy2(good, tampered)
    with pytest.raises(ChecksumError):
        fetch_npm_tarball(wrong_pin, cache)


def test_fresh_fetch_uses_npm_pack(tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        if os.environ.get("CHEXP_REQUIRE_BROWSER") == "1":
            pytest.fail("npm is required to fetch the widget JavaScript (apt-get install -y npm)")
        pytest.skip("npm not installed")
    tarball = fetch_npm_tarball(WIDGET_JS, tmp_path / "fresh")
    assert tarball.parent == tmp_path / "fresh"
    assert hashlib.sha256(tarball.read_bytes()).hexdigest() == WIDGET_JS.sha256
    files = {p.name for p in install_widget_js(tmp_path / "js", cache=tmp_path / "fresh")}
    assert "embed.js" in files and any(name.endswith(".woff2") for name in files)
    assert not any(name.endswith((".map", "embed-amd.js")) for name in files)
    mathjax = fetch_npm_tarball(MATHJAX, tmp_path / "fresh")
    assert hashlib.sha256(mathjax.read_bytes()).hexdigest() == MATHJAX.sha256
    installed = install_npm_asset(MATHJAX, tmp_path / "mj", tmp_path / "fresh")
    kept = {p.relative_to(tmp_path / "mj").as_posix() for p in installed}
    assert {"LICENSE", "es5/tex-chtml-full.js", "es5/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff"} <= kept
    assert len(kept) == 2 + 23  # the component, its licence and its 23 woff fonts, nothing else


def test_staging_writes_the_provenance_page(tmp_path: Path) -> None:
    """The staged book gets a "Build provenance" page, listed last in its toc, whose values are
    this environment's (versions, commit) and each notebook's papermill parameters."""
    source = tmp_path / "src"
    (source / "book").mkdir(parents=True)
    for name in ("_config.yml", "references.bib"):
        shutil.copy2(REPO / name, source / name)
    (source / "book" / "intro.md").write_text("# Intro\n", encoding="utf-8")
    toc = {"format": "jb-book", "root": "book/intro",
           "parts": [{"caption": "A", "chapters": [{"file": "notebooks/01_a"}]},
                     {"caption": "B", "chapters": [{"file": "notebooks/02_b"}]}]}
    (source / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf-8")
    run = tmp_path / "run"
    (run / "notebooks").mkdir(parents=True)
    for stem, device, seconds in (("01_a", "cuda:0", 12.4), ("02_b", "cpu", 3.6)):
        papermill = {"parameters": {"profile": "phantom", "device": device}, "duration": seconds,
                     "end_time": "2026-01-02T03:04:05"}
        nb = {"cells": [], "metadata": {"papermill": papermill}, "nbformat": 4, "nbformat_minor": 5}
        (run / "notebooks" / f"{stem}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    stage = stage_book(run, source)
    staged_toc = yaml.safe_load((stage / "_toc.yml").read_text(encoding="utf-8"))
    assert staged_toc["parts"][-1]["chapters"][-2:] == [{"file": "book/scorecard"}, {"file": "book/provenance"}]
    scorecard = (stage / "book" / "scorecard.md").read_text(encoding="utf-8")
    assert scorecard.startswith("# Scorecard\n") and "not runnable here**: the notebook was not run" in scorecard
    assert toc_notebooks(stage / "_toc.yml") == ["01_a", "02_b"]
    page = (stage / "book" / "provenance.md").read_text(encoding="utf-8")
    assert page.startswith("# Build provenance\n")
    rows = dict(re.findall(r"^\| (\w+) \| (.*) \|$", page, flags=re.M))
    for name in ("torch", "torchvision", "torchxrayvision", "captum", "zennit", "numpy"):
        assert rows[name] == package_version(name), name
    assert rows["commit"] == (source_commit() or "-")
    assert rows["python"] == platform.python_version() and rows["cpu"]
    assert "| 01_a | phantom | cuda:0 | 12 | 2026-01-02T03:04:05 |" in page
    assert "| 02_b | phantom | cpu | 4 | 2026-01-02T03:04:05 |" in page


def test_staging_names_notebooks_never_executed(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match=GALLERY):
        stage_book(tmp_path / "empty-run")


# --------------------------------------------------------------------------- browser


def _require_browser() -> None:
    problem = None
    if not Path(CHROMIUM).is_file():
        problem = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium chromium-driver)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "Playwright for Python is not installed (pip install playwright)"
    if problem:
        if os.environ.get("CHEXP_REQUIRE_BROWSER") == "1":
            pytest.fail(problem + "; CHEXP_REQUIRE_BROWSER=1 requires it")
        pytest.skip(problem)


@pytest.fixture(scope="session")
def browser_ready() -> str:
    """Chromium's path; skips (or fails under CHEXP_REQUIRE_BROWSER=1) before any build."""
    _require_browser()
    return CHROMIUM


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass


@pytest.fixture(scope="module")
def served_book(built_book: dict[str, object]) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(built_book["html"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


_VISIBLE_FRAME_JS = """
() => {
  const imgs = Array.from(document.querySelectorAll('.widget-image'))
    .filter(img => img.offsetParent !== null && img.complete && img.naturalWidth > 0);
  if (imgs.length !== 1) return null;
  const img = imgs[0];
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0;
  for (let i = 0; i < data.length; i += 1) sum = (sum * 31 + data[i]) % 1000000007;
  const caption = Array.from(document.querySelectorAll('.widget-html'))
    .filter(el => el.offsetParent !== null).map(el => el.innerText.trim()).join(' | ');
  return {src: img.src, hash: sum, width: canvas.width, caption: caption};
}
"""


#: What embed.js does to a widget label on a page with math: MathJax.Hub.Queue(["Typeset", ...]).
_HUB_QUEUE_TYPESETS_JS = r"""
async () => {
  const label = document.createElement('span');
  label.textContent = '\\(\\lambda^2\\)';
  document.body.appendChild(label);
  MathJax.Hub.Queue(['Typeset', MathJax.Hub, label]);
  await MathJax.startup.promise;
  return label.querySelector('mjx-container') !== null;
}
"""


_ICONS_PER_BUTTON_JS = """
() => Array.from(document.querySelectorAll('.widget-play button')).map(button => {
  const icon = button.querySelector('i');
  const glyph = icon ? getComputedStyle(icon, '::before').content : 'none';
  const svgs = Array.from(button.querySelectorAll('svg'))
    .filter(svg => getComputedStyle(svg).display !== 'none');
  return (['none', 'normal', ''].includes(glyph) ? 0 : 1) + svgs.length;
})
"""


def _keep_offline(page: object, external: list[str], failed_local: list[str]) -> None:
    """Serve ``page`` only from this machine: a request to another host is aborted and recorded in
    ``external``; a local response with an error status is recorded in ``failed_local``."""

    def route(route_request: object) -> None:
        url = route_request.request.url
        if url.startswith(LOCAL_SCHEMES) or urlparse(url).hostname == "127.0.0.1":
            route_request.continue_()
        else:
            external.append(url)
            route_request.abort()

    page.route("**/*", route)
    page.on("response", lambda r: failed_local.append(f"{r.status} {r.url}") if r.status >= 400 else None)


def _record_errors(page: object, errors: list[str]) -> None:
    """Record in ``errors`` every uncaught exception or unhandled rejection of ``page`` and every
    message it logs to the console as an error."""
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)


@pytest.mark.browser
def test_slider_and_play_change_the_frame_offline(browser_ready: str, served_book: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    external: list[str] = []
    failed_local: list[str] = []
    errors: list[str] = []
    start = time.perf_counter()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=browser_ready, args=CHROMIUM_FLAGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})

            _keep_offline(page, external, failed_local)
            page.on("requestfailed",
                    lambda r: failed_local.append(f"failed {r.url}") if not r.url.startswith(LOCAL_SCHEMES) else None)
            _record_errors(page, errors)

            page.goto(f"{served_book}/notebooks/{GALLERY}.html", wait_until="load")
            page.wait_for_selector(".widget-slider .noUi-handle", timeout=20_000)
            page.wait_for_function(f"({_VISIBLE_FRAME_JS.strip()})() !== null", timeout=20_000)
            # The page's math is typeset beside the widgets (MathJax 3, served from the book).
            page.wait_for_function("document.querySelectorAll('mjx-container').length >= 2", timeout=20_000)
            assert not page.evaluate("document.body.innerText.includes('\\\\in [0')"), "TeX left untypeset"
            # ... and the widget manager's MathJax 2 call (Hub.Queue) typesets with MathJax 3.
            assert page.evaluate(_HUB_QUEUE_TYPESETS_JS)
            first = page.evaluate(_VISIBLE_FRAME_JS)
            assert first["width"] == 64 and first["caption"].startswith("sample 0")
            # Each Play-widget button shows exactly one icon (no blank, no doubled icon).
            assert page.evaluate(_ICONS_PER_BUTTON_JS) == [1, 1, 1]

            # Move the slider one step with the keyboard, as a reader would.
            page.locator(".widget-slider .noUi-handle").first.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_function(
                f"(() => {{ const f = ({_VISIBLE_FRAME_JS.strip()})(); return f && f.src !== {first['src']!r}; }})()",
                timeout=10_000,
            )
            second = page.evaluate(_VISIBLE_FRAME_JS)
            assert second["caption"].startswith("sample 1")
            assert page.evaluate(_ICONS_PER_BUTTON_JS) == [1, 1, 1]
            assert second["hash"] != first["hash"], "the visible image did not change"
            page.locator(".widget-slider").first.scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "book_slider.png"), full_page=False)
            if os.environ.get("CHEXP_BOOK_SCREENSHOT"):
                shutil.copy2(tmp_path / "book_slider.png", os.environ["CHEXP_BOOK_SCREENSHOT"])

            # The Play button (its icon is touched by the theme's Font Awesome) still drives
            # the slider and the image.
            page.locator(".widget-play button").first.click()
            page.wait_for_function(
                f"(() => {{ const f = ({_VISIBLE_FRAME_JS.strip()})(); "
                "return f && !f.caption.startsWith('sample 1'); })()",
                timeout=10_000,
            )
            played = page.evaluate(_VISIBLE_FRAME_JS)
            assert played["hash"] != second["hash"]
        finally:
            browser.close()
    print(f"\nbrowser test: {time.perf_counter() - start:.1f} s")
    assert external == [], f"the page asked for other hosts: {external}"
    assert failed_local == [], f"local requests failed: {failed_local}"
    assert errors == [], f"JavaScript errors on a page with math and widgets: {errors}"


@pytest.mark.browser
def test_math_renders_offline(browser_ready: str, served_book: str) -> None:
    """MathJax, served from the book, typesets the chapter's $...$ and $$...$$ math with its own
    fonts and no request to another host; the download link of a figure fetches the file."""
    from playwright.sync_api import sync_playwright

    external: list[str] = []
    failed_local: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_ready, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page()

            _keep_offline(page, external, failed_local)
            page.goto(f"{served_book}/book/chexplain_iba.html", wait_until="load")
            page.wait_for_selector("mjx-container", timeout=20_000)
            page.wait_for_function("document.fonts.status === 'loaded'", timeout=20_000)
            typeset = page.evaluate("document.querySelectorAll('mjx-container').length")
            display = page.evaluate("document.querySelectorAll('mjx-container[display=\"true\"]').length")
            raw_tex = page.evaluate("document.body.innerText.includes('\\\\mathcal')")
            fonts = page.evaluate("Array.from(document.fonts).filter(f => f.status === 'loaded' && "
                                  "f.family.startsWith('MJXTEX')).length")
            page.goto(f"{served_book}/notebooks/{GALLERY}.html", wait_until="load")
            links = page.evaluate("Array.from(document.querySelectorAll('a.reference.download')).map(a => a.href)")
            sizes = [len(page.request.get(link).body()) for link in links]
        finally:
            browser.close()
    assert typeset >= 8 and display >= 2, (typeset, display)
    assert not raw_tex, "TeX source left untypeset"
    assert fonts >= 1, "MathJax fonts not loaded"
    assert len(links) == 3 and all(size > 0 for size in sizes), (links, sizes)
    assert external == [], f"the page asked for other hosts: {external}"
    assert failed_local == [], f"local requests failed: {failed_local}"


@pytest.mark.browser
def test_scorecard_tables_show_every_column_at_1300px(browser_ready: str, served_book: str) -> None:
    """The scorecard's tables (8 columns) use the margin column too (``full-width``): at 1300 px
    none of them scrolls its verdict or notebook column out of sight."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_ready, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.goto(f"{served_book}/book/scorecard.html", wait_until="load")
            widths = page.evaluate(
                "Array.from(document.querySelectorAll('.pst-scrollable-table-container'))"
                ".map(e => [e.clientWidth, e.scrollWidth])"
            )
        finally:
            browser.close()
    assert len(widths) == 2, widths  # one table per paper
    assert all(scroll <= client for client, scroll in widths), f"tables scroll sideways: {widths}"
