"""Self-contained HTML reports of :func:`chexp.explain.explain`.

One page per image (``report.html``): every image is inlined as a ``data:`` URI and the lambda
slider is a plain ``<input type="range">`` with a few lines of inline JavaScript, so the page
works opened from disk with no kernel and no network (it makes no request). ``index.html`` links
the pages of a run and lists the files that could not be read.
"""

from __future__ import annotations

import base64
import html
import io
import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..latentshift.slider import slider_data

if TYPE_CHECKING:
    from .run import ExplainRun, ImageResult, LatentShiftResult

__all__ = ["versions", "write_index", "write_report"]

_STYLE = """
body{font-family:sans-serif;margin:1.5em;max-width:1100px;color:#222}
table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
.maps{display:flex;flex-wrap:wrap;gap:8px}.maps figure{margin:0}.warn{color:#a40}
.slider img{image-rendering:pixelated;width:320px}figcaption{font-size:0.85em}
"""

_SLIDER_JS = """
document.querySelectorAll('.slider').forEach(function (box) {
  var data = JSON.parse(box.querySelector('script[type="application/json"]').textContent);
  var img = box.querySelector('img'), caption = box.querySelector('.caption');
  var range = box.querySelector('input[type=range]');
  function show() { var i = +range.value; img.src = data.frames[i]; caption.textContent = data.labels[i]; }
  range.addEventListener('input', show); show();
});
"""


def versions() -> dict[str, str]:
    """Versions of chexp, Python and the numerical libraries behind a report."""
    import torch

    from .. import __version__
    from ..models._xrv_import import xrv

    return {"chexp": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchxrayvision": xrv.__version__, "numpy": np.__version__}


def _png_uri(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _file_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def _slider(result: LatentShiftResult) -> str:
    frames, labels = slider_data(result.explanation, 0)
    data = json.dumps({"frames": [_png_uri(f) for f in frames], "labels": labels}).replace("</", "<\\/")
    e = result.explanation
    converged = ["converged" if bool(c) else "NOT converged (bound = best evaluated lambda)" for c in e.converged[0]]
    bounds = e.bounds[0].tolist()
    return f"""
<h3>Latent Shift: {html.escape(result.target)}</h3>
<p>search <code>{html.escape(e.search.name)}</code>; lambda bounds [{bounds[0]:+.4g}, {bounds[1]:+.4g}];
lower bound {converged[0]}, upper bound {converged[1]}; prediction {float(e.initial_prediction[0]):.3f} at lambda 0,
{float(e.predictions[0, 0]):.3f} at the lower bound, {float(e.predictions[0, -1]):.3f} at the upper bound.</p>
<div class="slider"><script type="application/json">{data}</script>
<input type="range" min="0" max="{len(labels) - 1}" value="0" step="1" aria-label="lambda">
<div class="caption"></div><img alt="Latent Shift frame"></div>
<div class="maps"><figure><img src="{_file_uri(result.gif, 'image/gif')}" alt="animation" width="400">
<figcaption>animation (input | frame)</figcaption></figure>
<figure><img src="{_file_uri(result.curve, 'image/png')}" alt="prediction versus lambda" width="400">
<figcaption>prediction versus lambda</figcaption></figure></div>"""


def write_report(result: ImageResult, run: ExplainRun) -> Path:
    """Write ``result.folder / "report.html"`` and return its path."""
    preds = sorted(result.predictions.items(), key=lambda kv: -kv[1])
    rows = "".join(
        f"<tr><td>{html.escape(t)}</td><td>{p:.4f}</td><td>{'explained' if t in result.targets else ''}</td></tr>"
        for t, p in preds
    )
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in [*result.warnings, *run.notes])
    sections = []
    for target in result.targets:
        parts = [_slider(result.latentshift[target])] if target in result.latentshift else []
        figures = "".join(
            f'<figure><img src="{_file_uri(m.png, "image/png")}" alt="{html.escape(m.display)}" width="240">'
            f"<figcaption>{html.escape(m.display)} (<code>{html.escape(m.npy.name)}</code>)</figcaption></figure>"
            for m in result.maps if m.target == target
        )
        parts.append(f'<h3>Maps: {html.escape(target)}</h3><div class="maps">{figures}</div>')
        sections.append("".join(parts))
    version_rows = "".join(f"<tr><td>{k}</td><td>{html.escape(v)}</td></tr>" for k, v in versions().items())
    image_uri = _png_uri(np.clip((result.image + 1024) / 2048 * 255 + 0.5, 0, 255).astype(np.uint8))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>chexp explain: {html.escape(result.path.name)}</title>
<style>{_STYLE}</style></head><body>
<h1>{html.escape(result.path.name)}</h1>
<p>model <code>{html.escape(run.model)}</code>; methods {', '.join(run.methods)};
{result.seconds:.1f} s on this machine.</p>
<img src="{image_uri}" alt="input" width="256">
{f'<h2>Warnings and notes</h2><ul class="warn">{warn}</ul>' if warn else ''}
<h2>Predictions</h2><table><tr><th>target</th><th>prediction</th><th></th></tr>{rows}</table>
<h2>Explanations</h2>{''.join(sections)}
<h2>Versions</h2><table>{version_rows}</table>
<script>{_SLIDER_JS}</script>
</body></html>
"""
    path = result.folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_index(run: ExplainRun) -> Path:
    """Write ``run.out / "index.html"``: a link per report, the predictions, the unreadable files."""
    rows = "".join(
        f'<tr><td><a href="{html.escape(r.report.relative_to(run.out).as_posix())}">{html.escape(r.path.name)}</a></td>'
        f"<td>{html.escape(', '.join(f'{t} {r.predictions[t]:.3f}' for t in r.targets))}</td>"
        f"<td>{r.seconds:.1f}</td></tr>"
        for r in run.images if r.report is not None
    )
    failed = "".join(f"<li><code>{html.escape(p)}</code>: {html.escape(m)}</li>" for p, m in run.failures.items())
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>chexp explain</title><style>{_STYLE}</style></head><body>
<h1>chexp explain: {len(run.images)} image(s)</h1>
<p>model <code>{html.escape(run.model)}</code>; methods {', '.join(run.methods)};
predictions of every target in <a href="predictions.csv">predictions.csv</a>.</p>
<table><tr><th>image</th><th>explained targets</th><th>seconds</th></tr>{rows}</table>
{f'<h2>Not explained</h2><ul class="warn">{failed}</ul>' if failed else ''}
</body></html>
"""
    path = run.out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
