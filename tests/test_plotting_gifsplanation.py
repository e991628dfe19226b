"""Gifsplanation Fig. 3: a panel whose prediction curve is flat says why (the rule in
:func:`chexp.plotting.gifsplanation.flat_curve_note`), on synthetic flat and moving curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from chexp.latentshift import PaperSearch
from chexp.models.base import Classifier
from chexp.plotting.gifsplanation import FLAT_RANGE, flat_curve_note, flat_curve_notes, plot_curves_by_task

MOVING = np.linspace(0.45, 0.99, 21)  # Cardiomegaly on the phantom example image
LOW = np.linspace(0.22, 0.38, 21)  # Mass there: p = 0.33 on the reconstruction
ZERO = np.full(21, 0.001)  # Pneumothorax there (the image has none)


def test_a_moving_curve_has_no_note():
    assert flat_curve_note(MOVING, 0.97, on_input=0.99, positive=True, search=PaperSearch()) is None
    assert flat_curve_note(np.linspace(0.3, 0.3 + FLAT_RANGE, 5), 0.4) is None


def test_a_flat_curve_says_how_little_it_moves_and_why():
    note = flat_curve_note(ZERO, 0.001, on_input=0.01, positive=False)
    assert note.startswith("flat: p moves only 0.00 → 0.00 (range 0.00 < 0.2)")
    assert "not labelled" in note and "saturated at 0.00" in note and "loses" not in note
    # a saturated start explains it; the search's asked change is not added
    assert flat_curve_note(ZERO, 0.001, positive=False, search=PaperSearch()) == note
    lost = flat_curve_note(ZERO, 0.02, on_input=0.96, positive=True)
    assert "the reconstruction loses the finding (p = 0.96 on x, 0.02 on D(E(x)))" in lost
    assert "not labelled" not in lost
    # a low start under the section 4.2 rule: a 30 % fall from 0.33 is 0.10
    low = flat_curve_note(LOW, 0.33, on_input=0.49, positive=True, search=PaperSearch())
    assert "range 0.16" in low and "30% fall" in low and "move by only 0.10 and 0.02" in low
    assert "saturated" not in low and "loses" not in low
    # no known cause
    assert flat_curve_note(LOW, 0.33).endswith("the latent shift changes this prediction little over the range shown")


class ConstantClassifier(Classifier):
    """Probabilities 0.96 (``"Pneumothorax"``), 0.99 (``"Cardiomegaly"``) on any image."""

    def __init__(self) -> None:
        super().__init__(["Pneumothorax", "Cardiomegaly"])

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logit(torch.tensor([[0.96, 0.99]])).expand(x.shape[0], 2)


def _curves() -> pd.DataFrame:
    rows = [{"model": "m", "task": task, "step": k, "lambda": k - 10.0, "prediction": p, "initial": p0}
            for task, values, p0 in (("Cardiomegaly", MOVING, 0.97), ("Pneumothorax", ZERO, 0.02))
            for k, p in enumerate(values)]
    return pd.DataFrame(rows)


def test_notes_are_computed_per_curve_and_written_in_the_flat_panel():
    curves = _curves()
    image = torch.zeros(1, 1, 8, 8)
    notes = flat_curve_notes(curves, {"m": ConstantClassifier()}, image,
                             {"Cardiomegaly": 1.0, "Pneumothorax": 1.0})
    assert list(notes) == [("m", "Pneumothorax")]
    assert "the reconstruction loses the finding (p = 0.96 on x, 0.02 on D(E(x)))" in notes[("m", "Pneumothorax")]
    assert "not labelled" in flat_curve_notes(curves, labels={"Pneumothorax": 0.0})[("m", "Pneumothorax")]
    assert "not labelled" not in flat_curve_notes(curves, labels={"Pneumothorax": np.nan})[("m", "Pneumothorax")]
    fig = plot_curves_by_task(curves, ["Cardiomegaly", "Pneumothorax"], notes=notes)
    moving, flat = fig.axes[:2]
    assert not moving.texts
    (text,) = flat.texts
    written = text.get_text().replace("\n", " ")
    assert written.startswith("flat: p moves only 0.00 → 0.00") and "loses the finding" in written
    plt.close(fig)
