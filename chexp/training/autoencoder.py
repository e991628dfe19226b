"""Training a :class:`~chexp.models.small.ConvAutoencoder` (phantom and real-radiograph autoencoders)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..models.small import ConvAutoencoder
from .configs import ConvAutoencoderTraining
from .fit import fit


def train_autoencoder(
    cfg: ConvAutoencoderTraining,
    inputs: Callable[[np.ndarray], torch.Tensor],
    n: int,
    input_size: int,
    weight_decay: float,
    *,
    desc: str,
    progress: bool = True,
    device: str | torch.device = "cpu",
    on_epoch_end: Callable[[int, nn.Module], None] | None = None,
) -> ConvAutoencoder:
    """A :class:`~chexp.models.small.ConvAutoencoder` with ``cfg``'s bottleneck, initialised with
    ``cfg.seed`` and fitted (:func:`chexp.training.fit`) on the L1 reconstruction loss ``|D(E(x)) - x| / 1024``.

    Args:
        inputs: batch indices (into a training set of ``n`` images) -> images ``(B, 1, S, S)`` in
            [-1024, 1024] on ``device``.
        input_size: the image side ``S``.
        device: where to train.
        on_epoch_end: passed to :func:`~chexp.training.fit` (e.g. to keep a snapshot of the
            weights after each epoch); it does not change the training.
    """
    torch.manual_seed(cfg.seed)
    model = ConvAutoencoder(**cfg.architecture(input_size)).to(device)

    def loss(idx: np.ndarray) -> torch.Tensor:
        x = inputs(idx)
        return (model(x) - x).abs().mean() / 1024.0

    fit(model, loss, n, cfg, weight_decay, desc=desc, progress=progress, on_epoch_end=on_epoch_end)
    return model


def latent_size(model: ConvAutoencoder, image: torch.Tensor) -> int:
    """Values in the latent of one image ``(1, 1, S, S)``."""
    with torch.no_grad():
        return int(np.prod(model.encode(image).shape[1:]))
