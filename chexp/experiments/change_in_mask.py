"""Where does Latent Shift change the image? The share of the change inside a finding's mask.

On phantoms, every finding has a pixel-exact mask and the same phantom can be rendered without
the finding (``generate(..., disable=finding)``), so the change a counterfactual makes can be
compared with the true one. For each case this module measures the *in-mask fraction*
``sum(|change| * mask) / sum(|change|)`` (:func:`chexp.metrics.localization.in_mask_fraction`,
re-exported here) of:

``latent_shift``
    the Latent Shift counterfactual: the frame at the search's lower bound (the finding removed,
    prediction fallen by 30 % under the paper's rule) minus the reconstruction ``D(E(x))``.
``input_gradient``
    ``|d f_t / dx|``, the classifier's own input gradient: what the classifier asks to change.
``ideal_classifier_shift``
    Latent Shift with this autoencoder for an *ideal* classifier whose score is the finding's own
    image change, ``s(x) = <x, x - x_cf>``: the latent moves along ``d s(D(z)) / dz`` until the
    mean change inside the mask equals the true removal's. What the autoencoder allows when the
    classifier looks only at the finding.
``autoencoder_pair``
    ``|D(E(x)) - D(E(x_cf))|``: the autoencoder's rendering of the true removal (its ceiling).

With ``mask_share`` (the mask's share of the image) these separate the two causes of a change
that spills out of the mask: a classifier that uses more than the finding (``input_gradient``
low) and an autoencoder that blurs (``autoencoder_pair`` / ``ideal_classifier_shift`` low).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from ..errors import InvalidParameterError
from ..latentshift import LatentShift, PaperSearch
from ..latentshift.core import LatentShiftExplanation
from ..latentshift.search import LambdaSearch
from ..metrics.localization import in_mask_fraction
from ..models.base import Autoencoder, Classifier
from ..models.modules import eval_mode
from ..phantoms import FINDINGS, PhantomConfig, generate
from ..phantoms.config import check_finding_name

__all__ = [
    "COLUMNS",
    "PhantomCases",
    "change_in_mask",
    "change_maps",
    "ideal_classifier_change",
    "in_mask_fraction",
    "phantom_cases",
]

#: The measured fractions, in the order a table or plot shows them.
COLUMNS = ("latent_shift", "input_gradient", "ideal_classifier_shift", "autoencoder_pair", "mask_share")


@dataclass
class PhantomCases:
    """Phantoms carrying one finding, with the same phantoms rendered without it.

    Attributes:
        finding: the finding's name.
        images: ``(N, 1, S, S)`` in [-1024, 1024].
        counterfactuals: the same phantoms with ``finding`` switched off, ``(N, 1, S, S)``.
        masks: bool ``(N, S, S)``, where ``images`` and ``counterfactuals`` differ.
        indices: the cases' sample indices in the stream ``seed``.
        seed: the phantom stream.
    """

    finding: str
    images: torch.Tensor
    counterfactuals: torch.Tensor
    masks: torch.Tensor
    indices: np.ndarray
    seed: int

    def __len__(self) -> int:
        return len(self.images)


def phantom_cases(
    classifier: Classifier,
    finding: str,
    n: int = 4,
    *,
    seed: int = 2024,
    pool: int = 160,
    config: PhantomConfig | None = None,
    threshold: float = 0.5,
) -> PhantomCases:
    """The first ``n`` of ``pool`` phantoms that carry ``finding`` and no other finding (support
    devices allowed) and that ``classifier`` detects (score above ``threshold``).

    Raises:
        UnknownNameError: ``finding`` is not a phantom finding.
        InvalidParameterError: fewer than two such phantoms in the pool.
    """
    check_finding_name(finding)
    ps = generate(pool, seed=seed, config=config)
    k = FINDINGS.index(finding)
    others = [j for j, f in enumerate(FINDINGS) if f not in (finding, "Support Devices")]
    pick = np.flatnonzero((ps.labels[:, k] == 1) & (ps.labels[:, others].sum(1) == 0))
    with torch.no_grad(), eval_mode(classifier):
        scores = classifier(torch.from_numpy(ps.images[pick]))[:, classifier.target_index(finding)]
    keep = pick[(scores > threshold).cpu().numpy()][:n]
    if len(keep) < 2:
        raise InvalidParameterError(
            f"only {len(keep)} of {pool} phantoms (seed {seed}) carry {finding} alone and are "
            f"detected above {threshold}; use a larger pool"
        )
    off = generate(pool, seed=seed, config=config, disable=finding)
    return PhantomCases(
        finding=finding,
        images=torch.from_numpy(ps.images[keep]),
        counterfactuals=torch.from_numpy(off.images[keep]),
        masks=torch.from_numpy(ps.masks[keep, k]),
        indices=keep,
        seed=seed,
    )


def ideal_classifier_change(autoencoder: Autoencoder, cases: PhantomCases) -> torch.Tensor:
    """The ideal classifier's shift ``D(z + lam * g) - D(z)``, ``(N, 1, S, S)``.

    ``g`` is the unit latent direction of ``d <D(z), x_cf - x> / dz`` (towards the finding's
    removal) and ``lam`` makes the mean change inside the mask equal the true removal's (one
    secant step from ``lam = 1``; exact for a linear decoder, where the change is the removal
    itself projected onto the decoder's range).
    """
    x, masks = cases.images, cases.masks.float()
    removal = cases.counterfactuals - x
    with torch.no_grad():
        z = autoencoder.encode(x)
        recon = autoencoder.decode(z)
    zg = z.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((autoencoder.decode(zg) * removal).sum(), zg)
    unit = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (grad.dim() - 1))
    # in-mask mean of the true removal, and of the change along the unit step (one secant step)
    area = masks.flatten(1).sum(1)
    wanted = (removal[:, 0] * masks).flatten(1).sum(1) / area
    with torch.no_grad():
        step = (autoencoder.decode(z + unit) - recon)[:, 0]
        per_unit = (step * masks).flatten(1).sum(1) / area
        lam = (wanted / per_unit.where(per_unit.abs() > 1e-6, torch.ones_like(per_unit))).clamp(0, 1e4)
        return autoencoder.decode(z + lam.view(-1, *[1] * (z.dim() - 1)) * unit) - recon


def change_maps(
    classifier: Classifier,
    autoencoder: Autoencoder,
    cases: PhantomCases,
    *,
    search: LambdaSearch | None = None,
) -> tuple[dict[str, torch.Tensor], LatentShiftExplanation]:
    """The four changes of the module docstring, each ``(N, S, S)`` (signed), and the Latent Shift
    explanation they come from.

    Args:
        classifier, autoencoder: the pair explained, on the CPU (the cases are CPU tensors).
        cases: from :func:`phantom_cases`.
        search: the lambda search (default :class:`~chexp.latentshift.PaperSearch`, section 4.2).
    """
    with eval_mode(classifier, autoencoder):
        expl = LatentShift(classifier, autoencoder, search=search or PaperSearch()).explain(
            cases.images, cases.finding
        )
        x = cases.images.clone().requires_grad_(True)
        score = classifier(x)[:, classifier.target_index(cases.finding)].sum()
        (gradient,) = torch.autograd.grad(score, x)  # no .grad left on the classifier's weights
        ideal = ideal_classifier_change(autoencoder, cases)
        with torch.no_grad():
            pair = autoencoder(cases.images) - autoencoder(cases.counterfactuals)
    maps = {
        "latent_shift": expl.frames[:, 0, 0] - expl.reconstruction[:, 0],
        "input_gradient": gradient[:, 0],
        "ideal_classifier_shift": ideal[:, 0],
        "autoencoder_pair": pair[:, 0],
    }
    return {name: m.detach().cpu() for name, m in maps.items()}, expl


def change_in_mask(
    classifier: Classifier,
    autoencoder: Autoencoder,
    cases: PhantomCases,
    *,
    search: LambdaSearch | None = None,
    dilations: tuple[int, ...] = (2, 4, 8),
) -> pd.DataFrame:
    """In-mask fractions of each case (see the module docstring), one row per image.

    Args:
        classifier, autoencoder, cases, search: as for :func:`change_maps`.
        dilations: also report ``latent_shift`` against the mask grown by these many pixels
            (columns ``latent_shift_dilated_<d>``): how far outside the mask the change lies.

    Returns:
        Columns ``finding``, ``index`` (phantom sample), :data:`COLUMNS`, the dilated fractions,
        ``prediction`` (on the reconstruction) and ``prediction_lower`` (at the lower bound).
    """
    maps, expl = change_maps(classifier, autoencoder, cases, search=search)
    masks = cases.masks
    table = pd.DataFrame({"finding": cases.finding, "index": cases.indices})
    for name, change in maps.items():
        table[name] = in_mask_fraction(change, masks)
    table["mask_share"] = masks.reshape(len(masks), -1).double().mean(1).numpy()
    for d in dilations:
        grown = torch.from_numpy(np.stack([ndimage.binary_dilation(m, iterations=d) for m in masks.numpy()]))
        table[f"latent_shift_dilated_{d}"] = in_mask_fraction(maps["latent_shift"], grown)
    table["prediction"] = expl.initial_prediction.detach().cpu().numpy()
    table["prediction_lower"] = expl.predictions[:, 0].detach().cpu().numpy()
    return table
