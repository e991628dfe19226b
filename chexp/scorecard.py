"""The book's "Scorecard" page: every claim of the two papers against this build's numbers.

Each :class:`Claim` names where a paper makes it, the number the paper reports, the notebook
that tests it and the table (CSV) that notebook writes under ``<run>/outputs/<stem>/``, and a
small pure function that reads this build's number off that table and grades it (a
:class:`Finding`). :func:`scorecard_page` runs every claim of :data:`CLAIMS` on a run folder and
returns the page's Markdown; :func:`chexp.book.stage_book` writes it as ``book/scorecard.md``
when it stages the book, so a rerun of the notebooks updates it. Nothing on the page is typed by
hand except the papers' own numbers.

Verdicts (:data:`VERDICTS`): ``reproduced``, ``direction holds``, ``not reproduced``, ``not
runnable here``. A claim is either a *relation* between this build's own numbers (an ordering,
"A beats B", "A and B are about equal"), which may be ``reproduced`` under any profile, or a
*value* compared with the paper's number, which may be ``reproduced`` only on the paper's data
(:attr:`Claim.reproducible_on`); elsewhere its best verdict is ``direction holds``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = [
    "REPRODUCED",
    "DIRECTION_HOLDS",
    "NOT_REPRODUCED",
    "NOT_RUNNABLE",
    "VERDICTS",
    "PAPER_DATA",
    "SCORECARD_PAGE",
    "PAPERS",
    "Finding",
    "Claim",
    "Outcome",
    "CLAIMS",
    "evaluate_claim",
    "notebook_run",
    "scorecard_page",
]

REPRODUCED = "reproduced"
DIRECTION_HOLDS = "direction holds"
NOT_REPRODUCED = "not reproduced"
NOT_RUNNABLE = "not runnable here"
#: The only verdicts the page gives, strongest first.
VERDICTS = (REPRODUCED, DIRECTION_HOLDS, NOT_REPRODUCED, NOT_RUNNABLE)

#: Profiles whose data are the papers' own (value claims may be ``reproduced`` only there).
PAPER_DATA = ("paper",)

#: The generated page: its ``_toc.yml`` entry in the staged tree (the file is ``<entry>.md``).
SCORECARD_PAGE = "book/scorecard"

#: Section title of each paper, by the key :attr:`Claim.paper` uses, in page order.
PAPERS = {
    "gifsplanation": "Gifsplanation via Latent Shift (Cohen et al., MIDL 2021)",
    "chexplain": "CheXplain-IBA (Khakzar et al., MICCAI 2021)",
}

# ----------------------------------------------------------------------------- the papers' numbers

#: Gifsplanation Table 1, XRV-all model: AUC and mean IoU of the four 2D methods per task.
GS_TABLE1_AUC = {"Atelectasis": 0.78, "Cardiomegaly": 0.90, "Effusion": 0.87, "Mass": 0.82,
                 "Lung Opacity": 0.84, "Pneumothorax": 0.78}
GS_TABLE1_IOU = {
    "grad": {"Atelectasis": 0.07, "Cardiomegaly": 0.35, "Effusion": 0.12, "Mass": 0.16,
             "Lung Opacity": 0.21, "Pneumothorax": 0.01},
    "guided": {"Atelectasis": 0.09, "Cardiomegaly": 0.28, "Effusion": 0.15, "Mass": 0.19,
               "Lung Opacity": 0.21, "Pneumothorax": 0.03},
    "integrated": {"Atelectasis": 0.05, "Cardiomegaly": 0.27, "Effusion": 0.11, "Mass": 0.13,
                   "Lung Opacity": 0.17, "Pneumothorax": 0.01},
    "latentshift-max": {"Atelectasis": 0.11, "Cardiomegaly": 0.33, "Effusion": 0.16, "Mass": 0.14,
                        "Lung Opacity": 0.20, "Pneumothorax": 0.02},
}
GS_METHODS = tuple(GS_TABLE1_IOU)
#: CheXplain-IBA Table 1: mean IoU on NIH ChestX-ray8 (all pathologies).
CI_TABLE1_IOU = {"Grad-CAM": 0.077, "Integrated gradients": 0.076, "LRP": 0.025, "Gradients": 0.114,
                 "IBA": 0.114, "Inverse IBA": 0.088, "Multi-layer IBA": 0.189}
#: CheXplain-IBA section 3.2, Pearson correlation of Regression IBA maps with the severity map (the
#: text names the losses MSE, RM, MSE: the third, the only one left, is taken as the deviation loss).
CI_SEVERITY_R = {"MSE": 0.4766, "Regression maximization": 0.4766, "Deviation": 0.4404, "random": 0.0004}


def _ranked(values: Mapping[str, float], digits: int = 2) -> str:
    """``"a 0.30 > b 0.20 > ..."``, largest first."""
    order = sorted(values, key=lambda k: -values[k])
    return " > ".join(f"{k} {values[k]:.{digits}f}" for k in order)


def _gs_table1_means() -> dict[str, float]:
    return {m: sum(row.values()) / len(row) for m, row in GS_TABLE1_IOU.items()}


# ----------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Finding:
    """What a claim's function reads off its table.

    Attributes:
        value: this build's number(s), as shown on the page.
        verdict: one of :data:`VERDICTS` other than :data:`NOT_RUNNABLE`, as the claim's rule
            gives it (before any cap for data that are not the paper's).
    """

    value: str
    verdict: str


class _MissingColumn(KeyError):
    """A column (or row) a claim needs is not in its table (an older or newer notebook)."""


@dataclass(frozen=True)
class Claim:
    """One quantitative or directional claim of a paper and how this build tests it.

    Attributes:
        id: short label shown on the page (``"G1"``, ``"C3"``).
        paper: a key of :data:`PAPERS`.
        where: where the paper makes the claim (table, figure, section).
        statement: the claim, in a sentence.
        paper_value: what the paper reports, as text.
        notebook: stem of the notebook that tests it (``notebooks/<stem>.ipynb``).
        table: name of the CSV that notebook writes (``<run>/outputs/<notebook>/<table>.csv``).
        rule: the thresholds for each verdict, shown on the page.
        evaluate: pure function ``table -> Finding``; raises :class:`KeyError` when a column it
            needs is missing.
        reproducible_on: profiles under which ``reproduced`` may be given; ``None``: any (a
            relation between this build's own numbers, or data that do not depend on the
            profile). Under other profiles ``reproduced`` becomes ``direction holds``.
    """

    id: str
    paper: str
    where: str
    statement: str
    paper_value: str
    notebook: str
    table: str
    rule: str
    evaluate: Callable[[pd.DataFrame], Finding]
    reproducible_on: tuple[str, ...] | None = None

    @property
    def csv(self) -> str:
        """The table's path relative to the run folder."""
        return f"outputs/{self.notebook}/{self.table}.csv"


def _grade(strong: bool, weak: bool) -> str:
    """``reproduced`` when ``strong``, else ``direction holds`` when ``weak``, else ``not reproduced``."""
    return REPRODUCED if strong else DIRECTION_HOLDS if weak else NOT_REPRODUCED


def _require(table: pd.DataFrame, *names: str) -> pd.DataFrame:
    """``table``, after checking that it has the columns ``names``."""
    for name in names:
        if name not in table.columns:
            raise _MissingColumn(f"column {name!r} missing")
    return table


def _column(table: pd.DataFrame, name: str) -> pd.Series:
    return _require(table, name)[name]


def _indexed(table: pd.DataFrame, key: str, value: str) -> pd.Series:
    """Column ``value`` of ``table`` indexed by column ``key`` (``key=""``: the first column)."""
    index = _column(table, key) if key else table.iloc[:, 0]
    return pd.Series(_column(table, value).to_numpy(dtype=float), index=index.astype(str).to_numpy())


def _entry(series: pd.Series, name: str) -> float:
    if name not in series.index:
        raise _MissingColumn(f"row {name!r} missing")
    return float(series[name])


def _first_classifier(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the table's first classifier (XRV-all under the paper profile, whose numbers the
    paper's Table 1 claims quote); a table without a ``classifier`` column (one classifier) whole."""
    if "classifier" not in table.columns:
        return table
    return table[table["classifier"] == table["classifier"].iloc[0]]


def _gs_low_iou(table: pd.DataFrame) -> Finding:
    by_task = _require(_first_classifier(table), "task", "auc", "mean").groupby("task")
    best, auc = by_task["mean"].max(), by_task["auc"].first()
    high = best[auc >= 0.75]
    if high.empty:
        return Finding(f"no task with AUC >= 0.75 (AUC {auc.min():.2f}-{auc.max():.2f})", NOT_REPRODUCED)
    value = (f"AUC {auc[high.index].min():.2f}-{auc[high.index].max():.2f}; best IoU per task "
             f"{high.min():.2f}-{high.max():.2f} (highest: {high.idxmax()})")
    return Finding(value, _grade(bool((high <= 0.35).all()), bool((high <= 0.5).all())))


def _gs_iou_ordering(table: pd.DataFrame) -> Finding:
    means = _require(_first_classifier(table), "method", "mean").groupby("method")["mean"].mean()
    means = {m: _entry(means, m) for m in GS_METHODS}
    others = [v for m, v in means.items() if m != "latentshift-max"]
    ls = means["latentshift-max"]
    return Finding(_ranked(means), _grade(ls > max(others), ls >= min(others)))


def _bottleneck_trend(table: pd.DataFrame, column: str, increasing: bool) -> Finding:
    ordered = _require(table, "latent_size", column).sort_values("latent_size")
    values = _column(ordered, column).to_numpy(dtype=float)
    sizes = ordered["latent_size"].to_numpy()
    steps = values[1:] - values[:-1] if increasing else values[:-1] - values[1:]
    ends = values[-1] - values[0] if increasing else values[0] - values[-1]
    text = ", ".join(f"{s}: {v:.3g}" for s, v in zip(sizes, values, strict=True))
    return Finding(f"{column} by latent size {text}", _grade(bool((steps > 0).all()), bool(ends > 0)))


def _gs_bottleneck_mae(table: pd.DataFrame) -> Finding:
    return _bottleneck_trend(table, "mae", increasing=False)


def _gs_bottleneck_iou(table: pd.DataFrame) -> Finding:
    return _bottleneck_trend(table, "iou_mean", increasing=True)


def _randomization_means(table: pd.DataFrame) -> dict[str, float]:
    """Mean Spearman correlation with the original map over the randomized steps (step > 0)."""
    table = _require(table, "method", "step", "metric", "mean")
    rows = table[(table["metric"] == "spearman") & (table["step"] > 0)]
    means = rows.groupby("method")["mean"].mean()
    return {m: _entry(means, m) for m in GS_METHODS}


def _gs_randomization_latentshift(table: pd.DataFrame) -> Finding:
    means = _randomization_means(table)
    ranked = sorted(means, key=means.__getitem__)
    rank = ranked.index("latentshift-max")
    return Finding(_ranked(means, 3), _grade(rank == 0, rank < len(ranked) / 2))


def _gs_randomization_guided(table: pd.DataFrame) -> Finding:
    means = _randomization_means(table)
    ranked = sorted(means, key=lambda m: -means[m])
    rank = ranked.index("guided")
    return Finding(_ranked(means, 3), _grade(rank == 0, rank < len(ranked) / 2))


def _reader_confidence(table: pd.DataFrame, predictions: str, paper: tuple[float, float, float],
                       significant: bool) -> Finding:
    table = _require(table, "question", "predictions", "mean", "std", "p")
    rows = table[(table["question"] == "confidence") & (table["predictions"] == predictions)]
    if rows.empty:
        raise _MissingColumn(f"row confidence / {predictions!r} missing")
    mean, std, p = (float(rows.iloc[0][c]) for c in ("mean", "std", "p"))
    close = all(abs(a - b) <= 0.01 for a, b in zip((mean, std, p), paper, strict=True))
    direction = mean > 0 and p < 0.05 if significant else p >= 0.05
    return Finding(f"{mean:.3f} ± {std:.3f} (p = {p:.3f})", _grade(close, direction))


def _gs_reader_true_positive(table: pd.DataFrame) -> Finding:
    return _reader_confidence(table, "true positive", (0.15, 0.95, 0.01), significant=True)


def _gs_reader_false_positive(table: pd.DataFrame) -> Finding:
    return _reader_confidence(table, "false positive", (0.04, 1.06, 0.57), significant=False)


def _gs_reconstruction_drop(table: pd.DataFrame) -> Finding:
    drop = _require(table, "label", "diff").groupby("label")["diff"].mean()  # over tasks, as Table K.1's rows
    pos, neg = _entry(drop, "positive"), _entry(drop, "negative")
    close = abs(pos - 0.12) <= 0.03 and abs(neg - 0.04) <= 0.03
    return Finding(f"positive {pos:+.3f}, negative {neg:+.3f}", _grade(close, pos > 0 and pos > neg))


def _ci_inverse_both_regions(table: pd.DataFrame) -> Finding:
    side = _indexed(table, "method", "weaker side")
    gain = _entry(side, "Inverse IBA") - _entry(side, "IBA")
    value = f"weaker side found: Inverse IBA {side['Inverse IBA']:.3f}, IBA {side['IBA']:.3f}"
    return Finding(value, _grade(gain >= 0.05, gain > 0))


def _ci_inverse_deletion(table: pd.DataFrame) -> Finding:
    deletion = _indexed(table, "method", "deletion AUC")
    gain = _entry(deletion, "IBA") - _entry(deletion, "Inverse IBA")
    value = f"deletion AUC: Inverse IBA {deletion['Inverse IBA']:.3f}, IBA {deletion['IBA']:.3f}"
    return Finding(value, _grade(gain >= 0.01, gain > 0))


def _ci_severity_correlation(table: pd.DataFrame) -> Finding:
    r = _indexed(table, "map", "mean r")
    maps = [m for m in CI_SEVERITY_R if m != "random"]
    ours = {m: _entry(r, m) for m in [*maps, "random"]}
    close = all(abs(ours[m] - CI_SEVERITY_R[m]) <= 0.05 for m in maps) and ours["random"] <= 0.05
    above = all(ours[m] >= ours["random"] + 0.2 for m in maps)
    return Finding(", ".join(f"{m} {v:.3f}" for m, v in ours.items()), _grade(close, above))


def _ci_multilayer_best(table: pd.DataFrame) -> Finding:
    iou = _indexed(table, "method", "mean IoU")
    ml, iba = _entry(iou, "Multi-layer IBA"), _entry(iou, "IBA")
    others = iou.drop("Multi-layer IBA")
    return Finding(_ranked(iou.to_dict(), 3), _grade(bool(ml > others.max()), ml > iba))


def _ci_multilayer_examples(table: pd.DataFrame) -> Finding:
    mean = table.set_index(table.columns[0]).astype(float)
    if "mean" not in mean.index:
        raise _MissingColumn("row 'mean' missing")
    row = mean.loc["mean"]
    ml, iba = _entry(row, "Multi-layer IBA"), _entry(row, "IBA")
    return Finding(f"mean IoU: Multi-layer IBA {ml:.3f}, IBA {iba:.3f}", _grade(ml - iba >= 0.02, ml > iba))


def _by_model(table: pd.DataFrame, column: str) -> tuple[float, float]:
    """``(BCE, Weighted BCE)`` values of ``column`` of Table 3."""
    values = _indexed(table, "model", column)
    return _entry(values, "BCE"), _entry(values, "Weighted BCE")


def _ci_weighted_iou(table: pd.DataFrame) -> Finding:
    bce, weighted = _by_model(table, "mean IoU")
    tasks = [c for c in table.columns if c.endswith(" IoU") and c != "mean IoU"]
    higher = sum(w > b for b, w in (_by_model(table, c) for c in tasks))
    value = f"mean IoU: BCE {bce:.3f}, W. BCE {weighted:.3f}; W. BCE higher in {higher}/{len(tasks)} tasks"
    return Finding(value, _grade(weighted > bce and 2 * higher >= len(tasks), weighted > bce))


def _about_equal(table: pd.DataFrame, column: str, close: float, near: float) -> Finding:
    bce, weighted = _by_model(table, column)
    gap = abs(bce - weighted)
    return Finding(f"{column}: BCE {bce:.3f}, W. BCE {weighted:.3f} (|Δ| {gap:.3f})", _grade(gap <= close, gap <= near))


def _ci_weighted_auc(table: pd.DataFrame) -> Finding:
    return _about_equal(table, "mean AUC", 0.01, 0.03)


def _ci_weighted_ap(table: pd.DataFrame) -> Finding:
    return _about_equal(table, "mean AP", 0.02, 0.05)


_GS_MEANS = _gs_table1_means()

#: Every claim on the page, in page order within each paper.
CLAIMS: tuple[Claim, ...] = (
    Claim("G1", "gifsplanation", "Table 1, §4.4, §5",
          "Attribution maps overlap the masks little even where the classifier's AUC is high.",
          f"XRV-all: AUC {min(GS_TABLE1_AUC.values()):.2f}-{max(GS_TABLE1_AUC.values()):.2f}, "
          f"IoU {min(min(r.values()) for r in GS_TABLE1_IOU.values()):.2f}-"
          f"{max(max(r.values()) for r in GS_TABLE1_IOU.values()):.2f}",
          "14_gs_table1_iou", "table1_iou_auc",
          "the first classifier (XRV-all), over tasks with AUC ≥ 0.75, the best method's mean IoU: "
          "reproduced if ≤ 0.35 (the paper's largest XRV-all IoU) on every task; direction holds if ≤ 0.5 on "
          "every task",
          _gs_low_iou, PAPER_DATA),
    Claim("G2", "gifsplanation", "Table 1, §4.4",
          "latentshift-max localizes as well as the traditional maps (grad, guided, integrated).",
          f"XRV-all mean IoU over 6 tasks: {_ranked(_GS_MEANS, 3)}",
          "14_gs_table1_iou", "table1_iou_auc",
          "the first classifier's (XRV-all's) mean IoU over tasks of the four methods: reproduced if "
          "latentshift-max is first; direction holds if it is at least the lowest of the other three",
          _gs_iou_ordering),
    Claim("G3", "gifsplanation", "§3.5, Fig. D.2",
          "A larger autoencoder bottleneck reconstructs better (smaller MAE).",
          "MAE falls as the bottleneck grows (Fig. D.2, no numbers given)",
          "11_gs_fig2_bottleneck", "bottleneck",
          "reproduced if MAE falls at every step of latent size; direction holds if the largest "
          "bottleneck's MAE is below the smallest's",
          _gs_bottleneck_mae),
    Claim("G4", "gifsplanation", "§3.5, Fig. 2",
          "Larger bottlenecks give a higher IoU (\"unexpectedly\"), though not better explanations.",
          "IoU rises with bottleneck size (text; Fig. D.2 says no strong trend)",
          "11_gs_fig2_bottleneck", "bottleneck",
          "reproduced if the mean IoU rises at every step of latent size; direction holds if the "
          "largest bottleneck's IoU is above the smallest's",
          _gs_bottleneck_iou),
    Claim("G5", "gifsplanation", "§4.5, Fig. 5, App. H",
          "Under cascading randomization latentshift-max decorrelates from its original map fastest.",
          "latentshift-max drops off most rapidly (Fig. 5, Spearman)",
          "15_gs_fig5_randomization", "fig5_randomization",
          "mean Spearman correlation over the randomized steps, among grad, guided, integrated, "
          "latentshift-max: reproduced if latentshift-max is lowest; direction holds if it is in the "
          "lower half",
          _gs_randomization_latentshift),
    Claim("G6", "gifsplanation", "§4.5, Fig. 5",
          "Guided backprop stays very similar to its original map as layers are randomized.",
          "guided stays highest (Fig. 5, after Adebayo et al.)",
          "15_gs_fig5_randomization", "fig5_randomization",
          "same means as G5: reproduced if guided is highest; direction holds if it is in the upper half",
          _gs_randomization_guided),
    Claim("G7", "gifsplanation", "§4.6, Fig. 6",
          "Latent Shift raises readers' confidence in true positive predictions.",
          "0.15 ± 0.95 (p = 0.01, Wilcoxon)",
          "16_gs_fig6_reader_study", "section4_6_wilcoxon",
          "released ratings (the same data under every profile): reproduced if mean, std and p are "
          "each within 0.01 of the paper's; direction holds if the mean is > 0 with p < 0.05",
          _gs_reader_true_positive),
    Claim("G8", "gifsplanation", "§4.6, Fig. 6",
          "For false positive predictions the confidence increase is small and not significant.",
          "0.04 ± 1.06 (p = 0.57)",
          "16_gs_fig6_reader_study", "section4_6_wilcoxon",
          "reproduced if mean, std and p are each within 0.01 of the paper's; direction holds if p ≥ 0.05",
          _gs_reader_false_positive),
    Claim("G9", "gifsplanation", "App. K, Limitations",
          "Classifying the autoencoder's reconstruction lowers the prediction, more for positive images.",
          "mean drop 0.12 (positive labels), 0.04 (negative labels)",
          "19_gs_appK_reconstruction", "tableK1_reconstruction_impact",
          "f(x) - f(reconstruction), mean over the tasks' rows per label: reproduced if within 0.03 of 0.12 and "
          "0.04; direction holds if the positive drop is > 0 and larger than the negative one",
          _gs_reconstruction_drop, PAPER_DATA),
    Claim("C1", "chexplain", "Fig. 1, §4",
          "Inverse IBA finds all informative regions (both sides), IBA a sufficient subset.",
          "qualitative (Fig. 1): Inverse IBA marks both sides / all score-3 zones",
          "20_ci_inverse_iba", "fig1_redundancy_summary",
          "fraction of the weaker of two lesions found: reproduced if Inverse IBA's exceeds IBA's by "
          "≥ 0.05; direction holds if it exceeds it",
          _ci_inverse_both_regions),
    Claim("C2", "chexplain", "§4, Fig. 2",
          "Removing Inverse IBA's regions changes the output more than removing IBA's (deletion).",
          "Inverse IBA deletion AUC below IBA's (Fig. 2, no numbers given)",
          "21_ci_insertion_deletion", "fig2_auc",
          "reproduced if Inverse IBA's deletion AUC is below IBA's by ≥ 0.01; direction holds if below",
          _ci_inverse_deletion),
    Claim("C3", "chexplain", "§3.2 (correlation analysis)",
          "Regression IBA maps correlate with the severity score map; random maps do not.",
          ", ".join(f"{m} {v}" for m, v in CI_SEVERITY_R.items())
          + " (the paper prints the third as L_MSE again; read here as the deviation loss)",
          "26_ci_severity_correlation", "severity_correlation",
          "reproduced if each loss's r is within 0.05 of the paper's and random's r ≤ 0.05; direction "
          "holds if each loss's r exceeds random's by ≥ 0.2",
          _ci_severity_correlation, PAPER_DATA),
    Claim("C4", "chexplain", "Table 1",
          "Multi-layer IBA has the best mean IoU of all methods.",
          _ranked(CI_TABLE1_IOU, 3),
          "23_ci_localization", "iou_summary",
          "reproduced if Multi-layer IBA's mean IoU is the highest; direction holds if it beats IBA",
          _ci_multilayer_best),
    Claim("C5", "chexplain", "Fig. 4",
          "Multi-layer IBA's maps are finer than IBA's (measured here as IoU on the figure's examples).",
          "qualitative (Fig. 4)",
          "25_ci_multilayer_iba", "fig4_iou",
          "reproduced if Multi-layer IBA's mean IoU exceeds IBA's by ≥ 0.02; direction holds if it exceeds it",
          _ci_multilayer_examples),
    Claim("C6", "chexplain", "Table 3, §4",
          "Weighted BCE training gives Inverse IBA maps a higher IoU than plain BCE.",
          "mean IoU 0.024 (BCE) vs 0.065 (W. BCE); higher in 7 of 8 tasks",
          "24_ci_weighted_bce", "table3_bce_vs_weighted",
          "reproduced if W. BCE's mean IoU is higher and it is higher in at least half of the tasks; "
          "direction holds if only the mean is higher",
          _ci_weighted_iou),
    Claim("C7", "chexplain", "§4 (Table 3 models)",
          "The two models' AUCs are about equal.",
          "AUC 0.790 (BCE) vs 0.788 (W. BCE)",
          "24_ci_weighted_bce", "table3_bce_vs_weighted",
          "|mean AUC difference|: reproduced if ≤ 0.01; direction holds if ≤ 0.03",
          _ci_weighted_auc),
    Claim("C8", "chexplain", "§4 (Table 3 models)",
          "The two models' average precisions are about equal.",
          "AP 0.243 (BCE) vs 0.236 (W. BCE)",
          "24_ci_weighted_bce", "table3_bce_vs_weighted",
          "|mean AP difference|: reproduced if ≤ 0.02; direction holds if ≤ 0.05",
          _ci_weighted_ap),
)

# ----------------------------------------------------------------------------- the page


@dataclass(frozen=True)
class Outcome:
    """A claim graded on one run folder.

    Attributes:
        claim: the claim.
        profile: the profile its notebook ran under (``None``: it did not run).
        value: this build's number(s), or ``"-"``.
        verdict: one of :data:`VERDICTS`.
        note: why the verdict is capped or the claim not runnable (empty when neither).
    """

    claim: Claim
    profile: str | None
    value: str
    verdict: str
    note: str = ""


def _skipped(supported: Sequence[str] | None) -> str:
    return "the notebook was skipped for this profile" + (f" (it supports {', '.join(supported)})" if supported else "")


def notebook_run(run_dir: Path, stem: str, profile: str | None = None,
                 source: Path | None = None) -> tuple[str | None, str]:
    """``(profile, "")`` when notebook ``stem`` was executed in run folder ``run_dir`` (the profile
    it ran under), else ``(None, why not)``: it failed, was not run, was skipped for the run's
    profile, or stopped because data it downloads were unavailable (the page's ``chexp.not_run``
    metadata says which; a page saved without it counts as stopped for data when ``profile``, the
    run's profile, is one it supports). ``source``: the notebook itself (or any copy keeping its
    metadata); when the run folder has no page, a ``profile`` that its ``chexp.profiles`` leaves
    out makes the reason "skipped for this profile" (a run folder of ``--only`` runs holds no page
    for it), not "not run"."""
    path = Path(run_dir) / "notebooks" / f"{stem}.ipynb"
    if not path.is_file():
        if (Path(run_dir) / "failed" / f"{stem}.ipynb").is_file():
            return None, "the notebook failed"
        if profile is not None and source is not None and Path(source).is_file():
            meta = json.loads(Path(source).read_text(encoding="utf-8")).get("metadata", {})
            supported = meta.get("chexp", {}).get("profiles")
            if supported and profile not in supported:
                return None, _skipped(supported)
        return None, "the notebook was not run"
    metadata = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    ran = metadata.get("papermill", {}).get("parameters", {}).get("profile")
    if ran is not None:
        return str(ran), ""
    supported = metadata.get("chexp", {}).get("profiles")
    not_run = metadata.get("chexp", {}).get("not_run")  # written by chexp.reproduce since it records why
    if not_run == "data" or (not_run is None and profile is not None and supported and profile in supported):
        return None, "the notebook stopped: a file it needs could not be downloaded (its page says which)"
    return None, _skipped(supported)


def evaluate_claim(claim: Claim, run_dir: Path) -> Outcome:
    """Grade ``claim`` on the tables of ``run_dir`` (see the module docstring for the rules)."""
    run_dir = Path(run_dir)
    profile, why = notebook_run(run_dir, claim.notebook)
    if profile is None:
        return Outcome(claim, None, "-", NOT_RUNNABLE, why)
    csv = run_dir / claim.csv
    if not csv.is_file():
        return Outcome(claim, profile, "-", NOT_RUNNABLE, f"{claim.table}.csv was not written")
    try:
        finding = claim.evaluate(pd.read_csv(csv))
    except KeyError as missing:
        return Outcome(claim, profile, "-", NOT_RUNNABLE, f"{claim.table}.csv: {missing.args[0]}")
    if finding.verdict == REPRODUCED and claim.reproducible_on is not None and profile not in claim.reproducible_on:
        note = f"capped: the {profile} profile's data are not the paper's"
        return Outcome(claim, profile, finding.value, DIRECTION_HOLDS, note)
    return Outcome(claim, profile, finding.value, finding.verdict)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "-"


def _link(claim: Claim, linked: Collection[str] | None) -> str:
    """The claim's notebook as a link to its page when the book has it, else as its name."""
    in_book = linked is None or claim.notebook in linked
    return f"{{doc}}`{claim.notebook} <../notebooks/{claim.notebook}>`" if in_book else f"`{claim.notebook}`"


def _verdict(outcome: Outcome) -> str:
    """``**verdict**`` with its note (``: why`` when not runnable, `` (note)`` otherwise)."""
    note = "" if not outcome.note else f": {outcome.note}" if outcome.verdict == NOT_RUNNABLE else f" ({outcome.note})"
    return f"**{outcome.verdict}**{note}"


def _rules(claims: Sequence[Claim]) -> list[str]:
    lines = ["", "Rules:", ""]
    lines += [f"- **{c.id}** ({c.csv.removeprefix('outputs/')}): {c.rule}"
              + ("" if c.reproducible_on is None else
                 f"; value claim: reproduced only under {', '.join(c.reproducible_on)}")
              for c in claims]
    return lines


def _full_width(rows: list[str]) -> list[str]:
    """``rows`` (a markdown table) in a ``full-width`` container: the theme lets it use the page's
    margin column too, so that no column of the scorecard scrolls out of sight at 1300 px."""
    return ["```{container} full-width", *rows, "```"]


def _claim_table(outcomes: Sequence[Outcome], linked: Collection[str] | None) -> list[str]:
    lines = [
        "| id | claim | where | paper's number | this build | profile | verdict | notebook |",
        "|:--|:--|:--|:--|:--|:--|:--|:--|",
    ]
    for o in outcomes:
        c = o.claim
        cells = (c.id, c.statement, c.where, c.paper_value, o.value, o.profile or "-", _verdict(o), _link(c, linked))
        lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return _full_width(lines) + _rules([o.claim for o in outcomes])


def _profiles_table(outcomes: Mapping[str, Sequence[Outcome]], linked: Collection[str] | None) -> list[str]:
    """One row per claim, one column per run (``label -> outcomes``, in the same claim order):
    this build's number and its verdict under each."""
    labels = list(outcomes)
    lines = [
        "| id | claim | where | paper's number | " + " | ".join(labels) + " | notebook |",
        "|:--|:--|:--|:--|" + ":--|" * len(labels) + ":--|",
    ]
    rows = zip(*(outcomes[label] for label in labels), strict=True)
    for row in rows:
        c = row[0].claim
        runs = [f"{o.value}: {_verdict(o)}" if o.value != "-" else _verdict(o) for o in row]
        cells = (c.id, c.statement, c.where, c.paper_value, *runs, _link(c, linked))
        lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return _full_width(lines) + _rules([o.claim for o in outcomes[labels[0]]])


def scorecard_page(run_dir: Path | Mapping[str, Path], book_notebooks: Collection[str] | None = None,
                   claims: Sequence[Claim] = CLAIMS) -> str:
    """Markdown of the "Scorecard" page: one table per paper, each claim with the paper's number,
    this build's number, the profile it ran under, a verdict and its notebook.

    Args:
        run_dir: a ``chexp reproduce`` output folder (``notebooks/``, ``outputs/<stem>/*.csv``), or
            several as ``{label: folder}`` (a two-profile build: ``{"phantom": <run>/phantom,
            "cohen": <run>/cohen}``), which gives one column per label with that run's number and
            verdict.
        book_notebooks: stems of the notebooks in the book, which the page links to (a claim's
            notebook outside the book is named, not linked); ``None``: link every notebook.
        claims: the claims to grade (default: all of :data:`CLAIMS`).
    """
    runs = {"": Path(run_dir)} if isinstance(run_dir, (str, Path)) else {k: Path(v) for k, v in run_dir.items()}
    outcomes = {label: [evaluate_claim(claim, folder) for claim in claims] for label, folder in runs.items()}
    every = [o for found in outcomes.values() for o in found]
    profiles = sorted({o.profile for o in every if o.profile is not None})
    counts = "; ".join(
        (f"{label}: " if len(outcomes) > 1 else "")
        + ", ".join(f"{sum(o.verdict == v for o in found)} {v}" for v in VERDICTS)
        for label, found in outcomes.items()
    )
    lines = [
        "# Scorecard",
        "",
        "Every quantitative or directional claim of the two papers, the number the paper reports, "
        "and this build's number read from the tables its notebooks wrote (`outputs/<notebook>/*.csv`). "
        "The page is generated by `chexp.scorecard` when the book is staged, so rerunning the "
        "notebooks updates it; only the papers' numbers are written into the code.",
        "",
        f"Profile{'s' if len(profiles) != 1 else ''} of this run: {', '.join(profiles) or 'none'}. "
        f"Verdicts: {counts}.",
        "",
        "How a verdict is given:",
        "",
        f"- **{REPRODUCED}**: the claim's rule (listed under each table, with explicit thresholds) "
        "holds in full.",
        f"- **{DIRECTION_HOLDS}**: the weaker half of the rule holds: the effect points the paper's "
        "way but misses the threshold for a full reproduction.",
        f"- **{NOT_REPRODUCED}**: neither holds.",
        f"- **{NOT_RUNNABLE}**: the notebook did not run under this profile, failed, or its table "
        "lacks what the claim needs (the reason is given).",
        "",
        "A *relation* claim (an ordering, \"A beats B\", \"A and B are about equal\") compares this "
        "build's numbers with each other, so it can be reproduced on any data. A *value* claim "
        "compares this build's number with the paper's; numbers from other data (phantoms, the Cohen "
        "collection) are not expected to equal the paper's, so there its strongest verdict is "
        f"**{DIRECTION_HOLDS}** (marked \"capped\").",
    ]
    if len(outcomes) > 1:
        lines += ["", "This book was built from one run per profile: each column gives that run's number "
                  "and verdict."]
    for key, title in PAPERS.items():
        mine = {label: [o for o in found if o.claim.paper == key] for label, found in outcomes.items()}
        if not any(mine.values()):
            continue
        table = _claim_table(mine[""], book_notebooks) if "" in mine else _profiles_table(mine, book_notebooks)
        lines += ["", f"## {title}", "", *table]
    return "\n".join(lines) + "\n"
