"""Latent Shift (Cohen et al., MIDL 2021): counterfactual frames by moving along dz.

For an autoencoder ``(E, D)``, a classifier ``f`` and a target ``t``::

    z      = E(x)
    dz     = d f_t(D(z)) / dz            (raw, not normalised)
    frames = D(z + lambda * dz)          for lambdas in [lower, upper]

lambda < 0 removes what the classifier uses for ``t``, lambda > 0 exaggerates it. The range is
chosen by a :class:`~chexp.latentshift.search.LambdaSearch` rule (paper section 4.2 by default).
Everything is batched: one encode, one gradient pass, then batched decode + classify rounds for
the search and the frames (frames already evaluated by the search are reused).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..attribution import Attribution
from ..errors import InputShapeError, InvalidParameterError, InvalidTypeError
from ..models.base import Autoencoder, Classifier
from ..models.modules import eval_mode
from ..targets import Target, TargetLike, as_target
from .evaluator import ShiftEvaluator
from .maps import MapMethod, get_map, postprocess
from .search import LambdaSearch, SearchResult, get_search

__all__ = ["LatentShift", "LatentShiftExplanation"]


@dataclass
class LatentShiftExplanation:
    """What :meth:`LatentShift.explain` returns for a batch of ``B`` images.

    Attributes:
        inputs: the images ``(B, 1, H, W)`` in [-1024, 1024].
        reconstruction: ``D(E(x))`` (the lambda = 0 frame), ``(B, 1, H, W)``.
        frames: ``(B, T, 1, H, W)``, ordered by increasing lambda (counterfactual first).
        lambdas: ``(B, T)``; ``linspace(lower, upper, T)`` per image.
        predictions: ``(B, T)``, the classifier's target score on each frame (its own output
            kind; never an extra sigmoid).
        initial_prediction: ``(B,)``, the score on the reconstruction (lambda = 0).
        heatmap: the 2D map ``(B, H, W)``, >= 0, in intensity units (see
            :mod:`chexp.latentshift.maps`); :meth:`LatentShift.attribute` returns it as
            ``(B, 1, H, W)``.
        bounds: ``(B, 2)`` lambda bounds found by the search.
        at_limit: ``(B, 2)`` bool; True where a bound is the rule's limit, not a stop condition.
        converged: ``(B, 2)`` bool, per image (lower, upper side): the search met its rule. False
            where the paper rule's level was not reached (the curve turned first, or the round
            budget ran out): the bound is then the evaluated lambda with the lowest (lower) or
            highest (upper) prediction, not a 30 % fall / 5 % rise.
        gradient_norm: ``(B,)``, ``|dz|``.
        target: the explained output's name (names, for a per-image target).
        target_columns: the explained output column of each image, ``(B,)``.
        search: the rule used; search_result: its raw result (rounds, evaluations).
        search_evaluations: decoder+classifier image evaluations used by the search.
        frame_evaluations: further evaluations for the output frames (the rest were reused).
        passes: forward passes (search + frames).
        traces: per image, every evaluated ``(lambda, prediction)``, sorted (for Fig. 3).
        map_method: the name of the 2D map method.
    """

    inputs: torch.Tensor
    reconstruction: torch.Tensor
    frames: torch.Tensor
    lambdas: torch.Tensor
    predictions: torch.Tensor
    initial_prediction: torch.Tensor
    heatmap: torch.Tensor
    bounds: torch.Tensor
    at_limit: torch.Tensor
    converged: torch.Tensor
    gradient_norm: torch.Tensor
    target: str
    target_columns: torch.Tensor
    search: LambdaSearch
    search_result: SearchResult
    search_evaluations: int
    frame_evaluations: int
    passes: int
    traces: list[list[tuple[float, float]]] = field(default_factory=list)
    map_method: str = "max"

    @property
    def evaluations(self) -> int:
        """Decoder+classifier image evaluations after the gradient pass (search + frames)."""
        return self.search_evaluations + self.frame_evaluations

    @property
    def batch_size(self) -> int:
        return int(self.frames.shape[0])

    def counterfactual(self) -> torch.Tensor:
        """The frame at the lower bound (the feature removed), ``(B, 1, H, W)``."""
        return self.frames[:, 0]

    def frame_flag(self, index: int, frame: int) -> str:
        """``" (not converged)"`` for a bound frame (the first or the last) whose side of the
        search did not reach its rule's level (the bound is the best evaluated lambda), else
        ``""``: the mark every caption of a frame carries."""
        side = {0: 0, self.frames.shape[1] - 1: 1}.get(frame)
        return "" if side is None or bool(self.converged[index, side]) else " (not converged)"

    def summary(self) -> dict[str, object]:
        """A JSON-able summary (bounds, predictions at the bounds, evaluation counts)."""
        return {
            "target": self.target,
            "search": self.search.name,
            "bounds": self.bounds.tolist(),
            "at_limit": self.at_limit.tolist(),
            "converged": self.converged.tolist(),
            "initial_prediction": self.initial_prediction.tolist(),
            "prediction_at_lower": self.predictions[:, 0].tolist(),
            "prediction_at_upper": self.predictions[:, -1].tolist(),
            "search_evaluations": self.search_evaluations,
            "frame_evaluations": self.frame_evaluations,
            "passes": self.passes,
        }


class LatentShift(Attribution):
    """Latent Shift explanations for a classifier with an autoencoder.

    Args:
        classifier: a :class:`~chexp.models.Classifier` (images (B, 1, H, W) in [-1024, 1024]
            -> scores (B, T)); it sees the decoded images.
        autoencoder: an :class:`~chexp.models.Autoencoder` with ``encode``/``decode``.
        search: a :class:`~chexp.latentshift.search.LambdaSearch` (or its registry name);
            default :class:`~chexp.latentshift.search.PaperSearch` (paper section 4.2).
        n_frames: frames from the lower to the upper bound (>= 2).
        map_method: the 2D map, ``"max"`` (latentshift-max, the paper's; default), ``"mean"``,
            ``"minmax"``, ``"sliding"``, ``"counterfactual"`` (the lower bound's frame only, what
            the released code's "max" computed) or a :class:`~chexp.latentshift.maps.MapMethod`.
        smooth_sigma: Gaussian smoothing of the map in pixels (0: off, as in the paper).
        threshold_percentile: keep map values above this per-image percentile.
        max_batch: latents decoded per forward pass.
        progress: show a progress bar of the search rounds.

    :meth:`attribute` returns the 2D map ``(B, 1, H, W)`` (>= 0, intensity units);
    :meth:`explain` the whole :class:`LatentShiftExplanation` (frames, lambda bounds,
    predictions, evaluation counts).

    Example::

        ls = LatentShift(phantom_classifier(), phantom_autoencoder())
        expl = ls.explain(images, target="Cardiomegaly")   # PaperSearch, 10 frames, max map
        expl.frames.shape        # (B, 10, 1, H, W)
        ls.attribute(images, target="Cardiomegaly").shape   # (B, 1, H, W)

    Raises:
        InvalidTypeError: the classifier is not a chexp Classifier, or the autoencoder lacks
            ``encode``/``decode``.
        InvalidParameterError: ``n_frames`` < 2.
        UnknownNameError: an unknown search or map name.
    """

    def __init__(
        self,
        classifier: Classifier,
        autoencoder: Autoencoder,
        *,
        search: LambdaSearch | str | None = None,
        n_frames: int = 10,
        map_method: str | MapMethod = "max",
        smooth_sigma: float = 0.0,
        threshold_percentile: float | None = None,
        max_batch: int = 32,
        progress: bool = False,
    ) -> None:
        super().__init__(classifier)
        missing = [m for m in ("encode", "decode") if not callable(getattr(autoencoder, m, None))]
        if missing:
            raise InvalidTypeError(
                f"autoencoder must have encode and decode methods; {type(autoencoder).__name__} has no "
                f"{' or '.join(missing)}"
            )
        if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 2:
            raise InvalidParameterError(f"n_frames must be an integer >= 2, got {n_frames!r}")
        self.autoencoder = autoencoder
        self.search = get_search(search)
        self.n_frames = n_frames
        self.mapper = get_map(map_method)
        self.smooth_sigma = smooth_sigma
        self.threshold_percentile = threshold_percentile
        self.max_batch = max_batch
        self.progress = progress

    @property
    def classifier(self) -> Classifier:
        """The classifier explained (:attr:`model`)."""
        return self.model

    # -- validation ---------------------------------------------------------------------------
    def _prepare(self, inputs: torch.Tensor, target: TargetLike) -> tuple[torch.Tensor, Target]:
        check_ae = getattr(self.autoencoder, "check_input", None)
        if check_ae is not None:
            check_ae(inputs)
        else:
            from ..validation import check_images

            check_images(inputs)
        size = getattr(self.classifier, "input_size", None)
        if size is not None and tuple(inputs.shape[-2:]) != (size, size):
            raise InputShapeError(
                f"the classifier needs {size}x{size} images, got {inputs.shape[-2]}x{inputs.shape[-1]}"
            )
        tgt = as_target(target)
        tgt.columns(self.classifier, inputs.shape[0])  # raises UnknownTargetError listing valid names
        return inputs, tgt

    # -- the method ---------------------------------------------------------------------------
    def gradient(
        self, inputs: torch.Tensor, target: Target, search: LambdaSearch
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``z = E(x)``, ``dz = d transform(f_t(D(z))) / dz``, ``D(z)`` and ``f_t(D(z))``.

        Each image's gradient is its own: the target scores are summed over the batch, which
        leaves per-image gradients unchanged in eval mode.
        """
        with torch.no_grad():
            z = self.autoencoder.encode(inputs)
        z = z.detach().requires_grad_(True)
        with torch.enable_grad():
            recon = self.autoencoder.decode(z)
            raw = target(self.classifier(recon), self.classifier)
            (dz,) = torch.autograd.grad(search.transform(raw).sum(), z)
        return z.detach(), dz.detach(), recon.detach(), raw.detach()

    def _evaluator(self, inputs: torch.Tensor, target: Target) -> ShiftEvaluator:
        """The gradient pass and an evaluator of shifts along it (call inside :func:`eval_mode`)."""
        z, dz, recon, raw0 = self.gradient(inputs, target, self.search)
        return ShiftEvaluator(
            self.autoencoder, self.classifier, lambda s, rows: target(s, self.classifier, rows),
            self.search.transform, z, dz, recon, raw0, max_batch=self.max_batch,
        )

    def explain(self, inputs: torch.Tensor, target: TargetLike = None) -> LatentShiftExplanation:
        """Explain ``target`` for a batch of images: frames, bounds, predictions and the map.

        Args:
            inputs: ``(B, 1, H, W)``, values in [-1024, 1024], a size the autoencoder accepts.
            target: output name (``"Cardiomegaly"``), column index, one per image, a target
                object, or ``None`` (the classifier's only output).

        Returns:
            A :class:`LatentShiftExplanation`.

        Raises:
            InputShapeError / InputRangeError: bad images (checked before any model runs).
            UnknownTargetError: a target the classifier does not predict.
        """
        return self._explain(*self._prepare(inputs, target))

    def _attribute(self, inputs: torch.Tensor, target: Target) -> torch.Tensor:
        return self._explain(inputs, target).heatmap[:, None]

    def _explain(self, inputs: torch.Tensor, tgt: Target) -> LatentShiftExplanation:
        rule, n_frames = self.search, self.n_frames
        output_kind = getattr(self.classifier, "output", "score")
        with eval_mode(self.classifier, self.autoencoder):
            ev = self._evaluator(inputs, tgt)
            result = rule.run(ev, output_kind=output_kind, progress=self.progress)
            lambdas = np.stack(
                [np.linspace(lo, hi, n_frames) for lo, hi in zip(result.lower, result.upper, strict=True)]
            ) if inputs.shape[0] else np.zeros((0, n_frames))
            lambdas[:, 0] = result.lower  # exact floats, so the search's frames are found in the cache
            lambdas[:, -1] = result.upper
            before = ev.evaluations
            ev.evaluate([(b, float(lam)) for b in range(ev.batch_size) for lam in lambdas[b]])
            frame_evals = ev.evaluations - before
        frames = torch.stack(
            [torch.stack([ev.get(b, float(lam)).frame for lam in lambdas[b]]) for b in range(ev.batch_size)]
        )
        preds = torch.tensor([[ev.get(b, float(lam)).raw for lam in lambdas[b]] for b in range(ev.batch_size)])
        heatmap = postprocess(self.mapper(frames, ev.recon), self.smooth_sigma, self.threshold_percentile)
        return LatentShiftExplanation(
            inputs=inputs.detach(),
            reconstruction=ev.recon,
            frames=frames,
            lambdas=torch.from_numpy(lambdas),
            predictions=preds,
            initial_prediction=torch.tensor(ev.raw0, dtype=torch.float64),
            heatmap=heatmap,
            bounds=torch.tensor([result.lower, result.upper], dtype=torch.float64).T.reshape(-1, 2),
            at_limit=torch.tensor([result.lower_at_limit, result.upper_at_limit]).T.reshape(-1, 2),
            converged=torch.tensor([result.lower_converged, result.upper_converged]).T.reshape(-1, 2),
            gradient_norm=torch.tensor(ev.slope, dtype=torch.float64).sqrt(),
            target=tgt.label(self.classifier),
            target_columns=tgt.columns(self.classifier, inputs.shape[0]),
            search=rule,
            search_result=result,
            search_evaluations=result.evaluations,
            frame_evaluations=frame_evals,
            passes=ev.passes,
            traces=[ev.trace(b) for b in range(ev.batch_size)],
            map_method=self.mapper.name,
        )

    def prediction_curve(
        self, inputs: torch.Tensor, target: TargetLike, lambdas: Sequence[float] | torch.Tensor
    ) -> torch.Tensor:
        """The target score of ``D(z + lambda * dz)`` for each lambda (paper Fig. 3).

        Returns:
            ``(B, L)`` scores (the classifier's own output kind).
        """
        x, tgt = self._prepare(inputs, target)
        lams = [float(lam) for lam in (lambdas.tolist() if isinstance(lambdas, torch.Tensor) else lambdas)]
        with eval_mode(self.classifier, self.autoencoder):
            ev = self._evaluator(x, tgt)
            ev.evaluate([(b, lam) for b in range(ev.batch_size) for lam in lams])
        return torch.tensor([[ev.get(b, lam).raw for lam in lams] for b in range(ev.batch_size)])
