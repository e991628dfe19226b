"""``chexp explain`` / :func:`chexp.explain`: end to end on phantom images and a Cohen radiograph
(offline), a user's TorchScript and ``module:factory`` models, bad files in a folder, and the
HTML report in headless Chromium (the slider moves, no request leaves the page)."""

from __future__ import annotations

import csv
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import skimage.io
import torch
from torch import nn

import chexp
from chexp.cli import main
from chexp.errors import CorruptFileError, InvalidParameterError, UnknownNameError, UnknownTargetError

COHEN_IMAGE = (Path(os.environ.get("CHEXP_SHARED_DATA", "/work/shared/data"))
               / "covid-chestxray-dataset/images/000001-12.jpg")
CHROMIUM = os.environ.get("CHEXP_CHROMIUM", "/usr/bin/chromium")


def _phantom_pngs(folder: Path, n: int) -> list[Path]:
    from chexp.phantoms import PhantomConfig, generate

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(generate(n, seed=11, config=PhantomConfig(size=128)).images):
        path = folder / f"phantom{i}.png"
        skimage.io.imsave(path, np.clip((image[0] + 1024) / 2048 * 255 + 0.5, 0, 255).astype(np.uint8),
                          check_contrast=False)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def phantom_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """``chexp explain FOLDER`` on two phantoms and one broken file, Latent Shift + IBA + Grad-CAM."""
    root = tmp_path_factory.mktemp("explain")
    _phantom_pngs(root / "in", 2)
    (root / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot a png")
    status = main(["explain", str(root / "in"), "--model", "phantom", "--method", "latentshift,iba,gradcam",
                   "--target", "Cardiomegaly", "--out", str(root / "out"), "--json"])
    return root / "out", status


def test_folder_run_writes_every_file_and_skips_the_broken_one(phantom_run) -> None:
    out, status = phantom_run
    assert status == 1  # one file could not be read; the others were explained
    for stem in ("phantom0", "phantom1"):
        folder = out / stem / "Cardiomegaly"
        for name in ("latentshift.gif", "latentshift-curve.png", "latentshift-max.png", "latentshift-max.npy",
                     "iba.png", "iba.npy", "gradcam.png", "gradcam.npy"):
            assert (folder / name).stat().st_size > 0, name
        for method in ("latentshift-max", "iba", "gradcam"):
            heat = np.load(folder / f"{method}.npy")
            assert heat.shape == (128, 128) and np.isfinite(heat).all() and heat.max() > heat.min()
        assert (out / stem / "report.html").is_file()
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert [Path(r["file"]).name for r in rows] == ["phantom0.png", "phantom1.png", "broken.png"]
    assert rows[2]["status"].startswith("error: cannot decode") and "broken.png" in rows[2]["status"]
    assert 0 <= float(rows[0]["Cardiomegaly"]) <= 1
    index = (out / "index.html").read_text()
    assert "phantom0/report.html" in index and "broken.png" in index


def test_report_holds_everything_inline(phantom_run) -> None:
    out, _ = phantom_run
    page = (out / "phantom0" / "report.html").read_text()
    assert "http://" not in page and "https://" not in page and 'src="/' not in page
    assert page.count('src="data:image/') >= 5  # input, animation, curve, three maps (slider frames in JSON)
    for text in ("Latent Shift: Cardiomegaly", "lambda bounds", "converged", "torchxrayvision", "Grad-CAM", "IBA"):
        assert text in page


def test_python_call_returns_the_results(tmp_path: Path) -> None:
    paths = _phantom_pngs(tmp_path / "in", 1)
    run = chexp.explain(paths[0], model="phantom", targets="top2", methods=["latentshift-counterfactual", "grad"],
                        out=tmp_path / "out", progress=False)
    (image,) = run.images
    assert len(image.targets) == 2 and image.predictions[image.targets[0]] >= image.predictions[image.targets[1]]
    shift = image.latentshift[image.targets[0]].explanation
    assert shift.frames.shape == (1, 10, 1, 128, 128) and shift.bounds[0, 0] < 0 < shift.bounds[0, 1]
    assert {m.method for m in image.maps} == {"latentshift-counterfactual", "grad"} and len(image.maps) == 4
    assert run.failures == {} and image.report.is_file()


def test_a_cohen_radiograph_offline(tmp_path: Path) -> None:
    if not COHEN_IMAGE.is_file():
        pytest.skip(f"no Cohen image at {COHEN_IMAGE}")
    run = chexp.explain(COHEN_IMAGE, model="phantom", targets="Effusion", methods=["gradcam", "iba"],
                        out=tmp_path, progress=False)
    (image,) = run.images
    assert image.image.shape == (128, 128) and image.image.min() < -500 and image.image.max() > 500
    assert image.warnings == []  # a large JPEG: cropped and downsampled, nothing to warn about
    assert (tmp_path / "000001-12" / "Effusion" / "iba.npy").is_file()


class _Tiny(nn.Module):
    """A user's model: (B, 1, 32, 32) in [-1024, 1024] -> (B, 2) logits."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.targets = ["Nodule", "Effusion"]
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x / 1024).mean(dim=(2, 3)))


def test_a_torchscript_model_and_a_module_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scripted = tmp_path / "tiny.pt"
    torch.jit.trace(_Tiny(), torch.zeros(1, 1, 32, 32)).save(str(scripted))  # a trace keeps no `targets`
    image = _phantom_pngs(tmp_path / "in", 1)[0]
    status = main(["explain", str(image), "--model", str(scripted), "--input-size", "32", "--method", "grad,integrated",
                   "--model-targets", "Nodule,Effusion",
                   "--target", "Effusion", "--out", str(tmp_path / "ts"), "--json"])
    assert status == 0
    assert np.load(tmp_path / "ts" / "phantom0" / "Effusion" / "integrated.npy").shape == (32, 32)
    with pytest.raises(InvalidParameterError, match="gradcam hook"):  # no forward hooks on TorchScript
        chexp.explain(image, model=str(scripted), model_targets=["A", "B"], methods=["gradcam"], out=tmp_path)

    (tmp_path / "user_models.py").write_text(textwrap.dedent("""
        from tests.test_explain import _Tiny
        def build():
            return _Tiny()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    run = chexp.explain(image, model="user_models:build", targets="top", methods=["gradcam"], input_size=32,
                        out=tmp_path / "factory", progress=False)
    assert run.images[0].targets[0] in ("Nodule", "Effusion")
    with pytest.raises(InvalidParameterError, match="autoencoder"):
        chexp.explain(image, model="user_models:build", methods=["latentshift"], out=tmp_path / "x")
    sys.modules.pop("user_models", None)


def test_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert main(["explain", str(empty), "--model", "phantom", "--method", "grad", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "empty.png" in err and err.startswith("chexp: error:")
    with pytest.raises(CorruptFileError):
        chexp.explain(empty, model="phantom", methods=["grad"], out=tmp_path)
    image = _phantom_pngs(tmp_path / "in", 1)[0]
    with pytest.raises(UnknownTargetError):
        chexp.explain(image, model="phantom", targets="Pneumonia", methods=["grad"], out=tmp_path)
    with pytest.raises(UnknownNameError, match="lambda search rule"):
        chexp.explain(image, model="phantom", methods=["latentshift"], search="nope", out=tmp_path)


def test_a_small_image_is_explained_with_a_warning(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.png"
    skimage.io.imsave(tiny, (np.arange(64).reshape(8, 8) * 4).astype(np.uint8), check_contrast=False)
    with pytest.warns(UserWarning, match="smaller than the model's 128x128"):
        run = chexp.explain(tiny, model="phantom", methods=["grad"], out=tmp_path / "o", progress=False)
    assert "upsampled" in run.images[0].warnings[0]
    assert "upsampled" in run.images[0].report.read_text()


@pytest.mark.browser
def test_report_slider_moves_offline_in_chromium(phantom_run, tmp_path: Path) -> None:
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    out, _ = phantom_run
    report = out / "phantom0" / "report.html"
    requests: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--headless"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1400})
            page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(report.as_uri(), wait_until="load")
            slider = page.locator(".slider input[type=range]").first
            frame = page.locator(".slider img").first
            caption = page.locator(".slider .caption").first
            first_src, first_caption = frame.get_attribute("src"), caption.text_content()
            assert first_src.startswith("data:image/png") and first_caption.startswith("lambda=")
            slider.focus()
            for _ in range(3):
                page.keyboard.press("ArrowRight")
            assert slider.input_value() == "3"
            assert frame.get_attribute("src") != first_src and caption.text_content() != first_caption
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert requests == [] and errors == []
    assert (tmp_path / "report.png").stat().st_size > 10_000
    shot = os.environ.get("CHEXP_EXPLAIN_SCREENSHOT")
    if shot:
        Path(shot).write_bytes((tmp_path / "report.png").read_bytes())



def test_explain_help_imports_no_numerical_library() -> None:
    import subprocess

    probe = ("import sys\nfrom chexp.cli import main\ntry:\n    main(['explain', '--help'])\nexcept SystemExit as e:\n"
             "    assert e.code == 0\nimport chexp\nprint(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('torch', 'numpy', 'torchxrayvision', 'matplotlib', 'skimage', 'pandas')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert "IMAGE_OR_FOLDER" in result.stdout and "--statistics-images" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_iba_on_a_users_architecture_takes_the_layers_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """IBA needs a bottleneck layer: a model of no known family names it (``--iba-layer``), else the
    error lists the model's layers."""
    from chexp.errors import UnknownLayerError

    (tmp_path / "user_models_iba.py").write_text(textwrap.dedent("""
        from tests.test_explain import _Tiny
        def build():
            return _Tiny()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    image = _phantom_pngs(tmp_path / "in", 1)[0]
    _phantom_pngs(tmp_path / "train", 4)  # the user's training-like images for the IBA statistics
    common = {"model": "user_models_iba:build", "targets": "Effusion", "input_size": 32, "progress": False,
              "statistics_images": tmp_path / "train"}
    with pytest.raises(UnknownLayerError, match="features"):
        chexp.explain(image, methods=["iba"], out=tmp_path / "none", **common)
    run = chexp.explain(image, methods=["iba", "multilayer-iba"], out=tmp_path / "given", iba_layer="features.2",
                        iba_layers=["features.0", "features.2"], **common)
    maps = {m: np.load(tmp_path / "given" / "phantom0" / "Effusion" / f"{m}.npy") for m in ("iba", "multilayer-iba")}
    assert all(m.shape == (32, 32) and np.isfinite(m).all() and m.max() > m.min() for m in maps.values())
    assert run.images and not run.failures
    sys.modules.pop("user_models_iba", None)
