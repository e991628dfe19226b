"""The per-sample bottleneck and the optimisation of its mask.

At a feature map ``R`` the bottleneck outputs ``Z = lambda * R + (1 - lambda) * eps`` (IBA) or
``Z = lambda * eps + (1 - lambda) * R`` (Inverse IBA), ``eps ~ N(mu, sigma)`` per unit, with
``lambda = smooth(sigmoid(alpha))`` optimised per image. The information term per unit is the
KL divergence between ``P(Z | R)`` and ``Q(Z) = N(mu, sigma)``; with ``r = (R - mu) / sigma``:

    KL = -0.5 * (1 + log((1 - lambda)^2) - (lambda * r)^2 - (1 - lambda)^2)     (nats)

(the released CheXplain-IBA code keeps this term, measured with ``lambda``, for Inverse IBA).

The map is, as in the reference code, the information of the last forward pass of the
optimisation: the mask after ``steps - 1`` Adam updates (the reference takes one more step whose
result it never uses). ``BottleneckConfig(final_mask=True)`` uses the mask after the final update
instead (chexp's definition before the fidelity audit of issue 12).

:func:`optimize_bottleneck` is the lean engine: the network in front of the bottleneck runs once
per image under ``no_grad`` (:class:`~chexp.iba.hooks.FrontCache`), every optimisation step runs
only the rest of the network on ``samples`` noise draws per image, several images at once, with
the model's parameters frozen.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import AttributionError, InvalidParameterError, StatisticsMismatchError
from ..models.modules import eval_mode
from ..progress import tqdm
from .estimator import UnitStatistics
from .hooks import FrontCache, replace_output
from .losses import ModelLoss

_LAMBDA_MAX = 1.0 - 1e-7

# --- the closed-form pieces ----------------------------------------------------------------------


def information(r_norm: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """Per-unit KL divergence (nats) of ``N(lam * r, (1 - lam)^2)`` from ``N(0, 1)``.

    ``r_norm`` is the feature standardised with the dataset statistics. Zero where ``lam == 0``.
    """
    log_var = 2.0 * torch.log1p(-lam.clamp(max=_LAMBDA_MAX))  # finite even where lambda rounds to 1
    return -0.5 * (1.0 + log_var - (lam * r_norm) ** 2 - (1.0 - lam) ** 2)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised 2-D Gaussian kernel of side ``2 * round(2 * sigma) + 1`` (5 for sigma 1)."""
    size = int(round(2 * sigma)) * 2 + 1
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    k = torch.outer(g, g)
    return (k / k.sum()).float()


class GaussianSmoothing(nn.Module):
    """Smooth every channel of ``(N, C, h, w)`` with a Gaussian (reflection padding)."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.register_buffer("kernel", gaussian_kernel(sigma)[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        pad = self.kernel.shape[-1] // 2
        mode = "reflect" if min(h, w) > pad else "replicate"
        y = F.pad(x.reshape(n * c, 1, h, w), (pad, pad, pad, pad), mode=mode)
        return F.conv2d(y, self.kernel.to(x.dtype)).reshape(n, c, h, w)


# --- which part of the signal the mask keeps -----------------------------------------------------


@dataclass(frozen=True)
class Flow:
    """How ``lambda`` mixes signal and noise, and the sign of the model loss.

    ``KEEP`` (IBA): ``lambda`` keeps the signal, loss ``L_model + beta * I``.
    ``BLOCK`` (Inverse IBA): ``lambda`` replaces the signal by noise, loss ``-L_model + beta * I``.
    """

    name: str
    mix: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    model_loss_sign: float


def _keep(lam: torch.Tensor, r: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return lam * r + (1.0 - lam) * noise


def _block(lam: torch.Tensor, r: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return lam * noise + (1.0 - lam) * r


KEEP = Flow("keep", _keep, 1.0)
BLOCK = Flow("block", _block, -1.0)


@dataclass(frozen=True)
class BottleneckConfig:
    """Settings of the per-sample optimisation (the reference defaults).

    Attributes:
        beta: weight of the information term.
        steps: Adam steps per image.
        lr: Adam learning rate.
        samples: noise draws per image and step (the reference repeats the image 10 times).
        initial_alpha: initial ``alpha`` (``lambda = sigmoid(5) = 0.993``).
        sigma: Gaussian smoothing of ``lambda`` (``0`` or ``None``: no smoothing).
        min_std: floor of the per-unit standard deviation.
        active_threshold: units non-zero in at most this fraction of the data are masked out.
        seed: seed of every image's noise generator (an image gets the same noise wherever it
            sits in a batch).
        pass_per_image: run the network behind the bottleneck once per image and step (``S``
            rows per pass, as the reference does) rather than once for all images of the batch
            (``B * S`` rows). Per image, a map is then bit-for-bit independent of the batch it is
            computed in and equal to the reference algorithm's; with one joint pass, kernels that
            round differently for other batch sizes make maps differ slightly (the optimisation
            amplifies float rounding to ~1e-3 of the map's range on a DenseNet121). The joint pass
            is faster on a GPU.
        final_mask: compute the map from the mask after the last Adam update. Default
            (``False``): the reference's map, the information of the last forward pass (the mask
            after ``steps - 1`` updates; ``steps=1`` gives the initial mask's information).
    """

    beta: float = 10.0
    steps: int = 10
    lr: float = 1.0
    samples: int = 10
    initial_alpha: float = 5.0
    sigma: float | None = 1.0
    min_std: float = 0.01
    active_threshold: float = 0.01
    seed: int = 0
    pass_per_image: bool = True
    final_mask: bool = False

    def __post_init__(self) -> None:
        if self.steps < 1 or self.samples < 1:
            raise InvalidParameterError(
                f"steps and samples must be integers >= 1, got steps={self.steps}, samples={self.samples}"
            )
        if self.lr <= 0 or self.beta < 0:
            raise InvalidParameterError(f"lr must be > 0 and beta >= 0, got lr={self.lr}, beta={self.beta}")


class PerSampleBottleneck(nn.Module):
    """A bottleneck with one mask ``alpha (B, C, h, w)`` per image, applied to ``B * S`` rows.

    Rows ``i * S ... i * S + S - 1`` of the feature map it receives belong to image ``i``.
    :meth:`forward` samples ``Z`` and stores the information term of those rows and the
    ``lambda`` it used.
    """

    def __init__(
        self,
        batch: int,
        stats: UnitStatistics,
        config: BottleneckConfig,
        flow: Flow,
        device: torch.device,
    ) -> None:
        super().__init__()
        self.batch, self.samples, self.flow = batch, config.samples, flow
        self.register_buffer("mean", stats.mean().to(device))
        self.register_buffer("std", stats.std(config.min_std).to(device))
        self.register_buffer("active", stats.active(config.active_threshold).float().to(device))
        shape = (batch, *self.mean.shape)
        self.alpha = nn.Parameter(torch.full(shape, float(config.initial_alpha), device=device))
        self.smooth = GaussianSmoothing(config.sigma).to(device) if config.sigma else None
        self.generators = [
            torch.Generator(device=device).manual_seed(config.seed) for _ in range(batch)
        ]
        self.last_information: torch.Tensor | None = None
        self.last_lam: torch.Tensor | None = None

    def lam(self) -> torch.Tensor:
        """``lambda (B, C, h, w)``: the smoothed sigmoid of ``alpha``."""
        lam = torch.sigmoid(self.alpha)
        return self.smooth(lam) if self.smooth is not None else lam

    def capacity(self, r: torch.Tensor, lam: torch.Tensor | None = None) -> torch.Tensor:
        """Information per unit (nats) for features ``r`` with the same rows as ``lam``."""
        lam = self.lam() if lam is None else lam
        return information((r - self.mean) / self.std, lam) * self.active

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        if tuple(r.shape[1:]) != tuple(self.mean.shape):
            raise StatisticsMismatchError(
                f"the layer outputs feature maps {tuple(r.shape[1:])} but the statistics have shape "
                f"{tuple(self.mean.shape)}: they belong to another layer or input size"
            )
        if r.shape[0] != self.batch * self.samples:
            raise InvalidParameterError(
                f"a bottleneck for batch={self.batch} images with samples={self.samples} noise draws "
                f"expects {self.batch * self.samples} rows of features, got {r.shape[0]}"
            )
        lam_b = self.lam()
        self.last_lam = lam_b
        # the rows of one image hold the same features: the information term needs one of them
        self.last_information = self.capacity(r[:: self.samples], lam_b)
        lam = lam_b.repeat_interleave(self.samples, dim=0)
        eps = torch.cat(
            [
                torch.randn((self.samples, *r.shape[1:]), generator=g, device=r.device, dtype=r.dtype)
                for g in self.generators
            ]
        )
        noise = self.mean + self.std * eps
        return self.flow.mix(lam, r, noise) * self.active

    def information_loss(self) -> torch.Tensor:
        """Mean information per unit for each image ``(B,)`` from the last forward pass."""
        assert self.last_information is not None
        return self.last_information.reshape(self.batch, -1).mean(dim=1)

    def reported(self, r: torch.Tensor, final_mask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lambda, information per unit in nats)``, each ``(B, C, h, w)`` and detached, that
        the map is made of: those of the last forward pass (the reference's map), or with
        ``final_mask`` those of the current mask for the features ``r (B, C, h, w)``."""
        if final_mask:
            lam = self.lam()
            return lam.detach(), self.capacity(r, lam).detach()
        if self.last_lam is None or self.last_information is None:
            raise AttributionError("the bottleneck has not run a forward pass yet")
        return self.last_lam.detach(), self.last_information.detach()


def _grid_axis(n_in: int, n_out: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Normalised sampling positions (``align_corners=True`` convention) of ``n_out`` output pixel
    centres on an axis of ``n_in`` input pixels, pixel centres aligned."""
    if n_in == 1:
        return torch.zeros(n_out, dtype=dtype, device=device)
    u = (torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5
    return (u / (n_in - 1) * 2.0 - 1.0).to(dtype=dtype, device=device)


def mirror_resize(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of ``(B, C, h, w)`` to ``size``, mirrored at the border.

    Pixel centres are aligned (as ``F.interpolate(..., align_corners=False)``), but beyond the
    outermost pixel centres the map is mirrored about them (``x[-1] = x[1]``) instead of clamped:
    the reference's ``skimage.transform.resize(order=1)`` (its default ``mode="reflect"``).
    """
    b, c, h, w = maps.shape
    H, W = int(size[0]), int(size[1])
    gy = _grid_axis(h, H, maps.dtype, maps.device)
    gx = _grid_axis(w, W, maps.dtype, maps.device)
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1).expand(b, H, W, 2)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="reflection", align_corners=True)


def saliency(capacity: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bits per input pixel ``(B, 1, H, W)`` from a capacity ``(B, C, h, w)`` in nats.

    Summed over channels, converted to bits, resized bilinearly to ``size`` (mirrored at the
    border, :func:`mirror_resize`, as the reference) and scaled by ``h * w / (H * W)`` so that
    the map's total stays about the layer's total information.
    """
    b, _, h, w = capacity.shape
    bits = capacity.sum(dim=1, keepdim=True) / math.log(2.0)
    H, W = int(size[0]), int(size[1])
    return mirror_resize(bits, (H, W)) * (h * w) / (H * W)


@dataclass
class BottleneckResult:
    """Output of :func:`optimize_bottleneck`.

    Attributes:
        maps: bits per pixel ``(B, 1, H, W)``.
        capacity: information per unit at the layer ``(B, C, h, w)`` (nats), what the map is made of.
        lam: ``lambda (B, C, h, w)`` the map was computed with (see ``BottleneckConfig.final_mask``).
        history: total loss per step, summed over the batch.
        scored_on: the model output the loss was computed on (``"logit"``, ``"probability"``,
            ``"score"``).
        replayed: whether the front of the network was computed once (``False``: fallback to a
            full forward pass per step, see :class:`~chexp.iba.hooks.FrontCache`).
    """

    maps: torch.Tensor
    capacity: torch.Tensor
    lam: torch.Tensor
    history: list[float] = field(default_factory=list)
    replayed: bool = True
    scored_on: str = ""


def _expand(x: torch.Tensor, samples: int) -> torch.Tensor:
    return x.repeat_interleave(samples, dim=0)


def optimize_bottleneck(
    model: nn.Module,
    layer: nn.Module,
    inputs: torch.Tensor,
    loss: ModelLoss,
    stats: UnitStatistics,
    config: BottleneckConfig,
    flow: Flow,
    progress: bool = False,
) -> BottleneckResult:
    """Optimise one mask per image of ``inputs (B, 1, H, W)`` at ``layer`` (batched, lean)."""
    b, s = inputs.shape[0], config.samples
    with eval_mode(model, freeze=True):
        # 1. the front, once per image, no gradients; the clean scores on the way
        cache = FrontCache(model, layer)
        with torch.no_grad(), cache.record():
            clean = loss.scores(model, inputs)
        r = cache.layer_output
        assert r is not None
        if not (bool(torch.isfinite(clean).all()) and bool(torch.isfinite(r).all())):
            raise AttributionError(
                "the model's output or the features at the bottleneck are NaN or infinite for "
                "these images; nothing to explain"
            )
        if tuple(r.shape[1:]) != stats.shape:
            raise StatisticsMismatchError(
                f"the layer outputs feature maps {tuple(r.shape[1:])} but the statistics have "
                f"shape {stats.shape}: they belong to another layer or input size"
            )
        r = r.detach().clone()
        r_rows = _expand(r, s)
        x_rows = _expand(inputs, s)
        replayed = cache.replayable
        if replayed:  # verify that the back part sees nothing but the bottleneck's output
            try:
                with torch.no_grad(), cache.replay(r_rows):
                    check = loss.scores(model, x_rows)
                replayed = bool(
                    torch.allclose(check, _expand(clean, s), rtol=1e-3, atol=1e-4 * (1 + clean.abs().max()))
                )
                if not replayed:
                    cache.reason = "the replayed forward pass differs from a full one"
            except RuntimeError as err:
                replayed, cache.reason = False, f"replayed forward pass failed ({err})"
            if not replayed:
                warnings.warn(
                    f"IBA: computing the full network at every step ({cache.reason})", stacklevel=3
                )
        # 2. the optimisation: only the back part runs, only alpha has gradients
        groups = [slice(i, i + 1) for i in range(b)] if config.pass_per_image else [slice(0, b)]
        parts = []
        for g in groups:
            part = loss.select(g)
            part.check(model, g.stop - g.start)  # type: ignore[arg-type]
            bottleneck = PerSampleBottleneck(g.stop - g.start, stats, config, flow, inputs.device)
            parts.append((g, slice(g.start * s, g.stop * s), part, bottleneck))
        optimizer = torch.optim.Adam([p[3].alpha for p in parts], lr=config.lr)
        history: list[float] = []
        for step in tqdm(range(config.steps), desc="IBA steps", disable=not progress, leave=False):
            optimizer.zero_grad(set_to_none=True)
            step_total = 0.0
            for g, rows, part, bottleneck in parts:
                replay = cache.replay(r_rows[rows]) if replayed else nullcontext()
                with replay, replace_output(layer, bottleneck):
                    scores = part.scores(model, x_rows[rows])
                    n = g.stop - g.start
                    model_loss = part(scores.reshape(n, s, -1), clean[g])
                    total = flow.model_loss_sign * model_loss + config.beta * bottleneck.information_loss()
                    total = total.sum()
                if not bool(torch.isfinite(total)):
                    raise AttributionError(
                        "the IBA loss became NaN or infinite: check the model's outputs and the "
                        "statistics (NaN features?)"
                    )
                total.backward()
                step_total += float(total.detach())
            if config.final_mask or step < config.steps - 1:  # else the update would not be used
                optimizer.step()
            history.append(step_total)
        with torch.no_grad():
            reported = [p[3].reported(r[p[0]], config.final_mask) for p in parts]
            lam = torch.cat([lam_i for lam_i, _ in reported])
            capacity = torch.cat([cap_i for _, cap_i in reported])
            maps = saliency(capacity, inputs.shape[-2:])
    return BottleneckResult(maps, capacity, lam, history, replayed, parts[0][2].scored_on)
