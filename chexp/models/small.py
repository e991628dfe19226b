"""Small convolutional models that chexp trains itself (phantoms, real-data models).

* :class:`SmallClassifier`: a VGG-style CNN classifier or regression head. Its blocks are named
  ``features.block1`` ... ``features.blockN`` (usable as bottleneck layers by IBA).
* :class:`ConvAutoencoder`: a convolutional autoencoder with a spatial latent of
  ``latent_channels x (S / 2**depth) x (S / 2**depth)``; the bottleneck size is configurable for
  the Gifsplanation bottleneck study.

Both take images in [-1024, 1024] and scale them to [-1, 1] internally.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from .base import Autoencoder, Classifier, OutputKind
from .registry import register_architecture


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


@register_architecture
class SmallClassifier(Classifier):
    """CNN: ``len(channels)`` blocks of two 3x3 convolutions + max-pool, global average pool, linear.

    Args:
        targets: output names.
        output: ``"probability"`` (sigmoid of the logits) or ``"logit"`` for classifiers,
            ``"score"`` for a regression head.
        channels: channels of each block.
        input_size: required square input side (``None``: any multiple of ``2**len(channels)``).
    """

    def __init__(
        self,
        targets: Sequence[str],
        output: OutputKind = "probability",
        channels: Sequence[int] = (16, 32, 64, 128),
        input_size: int | None = None,
    ) -> None:
        super().__init__(targets, output=output, input_size=input_size)
        blocks: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = 1
        for i, c_out in enumerate(channels, start=1):
            blocks[f"block{i}"] = _conv_block(c_in, c_out)
            c_in = c_out
        self.features = nn.Sequential(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_in, len(self.targets))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x / 1024.0)
        return self.classifier(self.pool(h).flatten(1))


@register_architecture
class ConvAutoencoder(Autoencoder):
    """Convolutional autoencoder with a ``latent_channels x S/2**depth x S/2**depth`` latent.

    Args:
        latent_channels: channels of the latent; the bottleneck size is
            ``latent_channels * (S / 2**depth) ** 2``.
        width: channels after the first downsampling (doubled at each further level, capped at 256).
        depth: number of stride-2 downsamplings (image sides must be multiples of ``2**depth``).
        input_size: required square input side, or ``None``.
    """

    def __init__(
        self,
        latent_channels: int = 16,
        width: int = 32,
        depth: int = 4,
        input_size: int | None = None,
    ) -> None:
        super().__init__(input_size=input_size, size_multiple=2**depth)
        chans = [min(width * 2**i, 256) for i in range(depth)]
        enc: list[nn.Module] = []
        c_in = 1
        for c in chans:
            enc += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.LeakyReLU(0.2)]
            enc += [nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.LeakyReLU(0.2)]
            c_in = c
        enc.append(nn.Conv2d(c_in, latent_channels, 1))
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(latent_channels, c_in, 1), nn.LeakyReLU(0.2)]
        for c in reversed(chans):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c, 3, padding=1)]
            dec += [nn.BatchNorm2d(c), nn.LeakyReLU(0.2)]
            dec += [nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.LeakyReLU(0.2)]
            c_in = c
        dec.append(nn.Conv2d(c_in, 1, 3, padding=1))
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x / 1024.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.decoder(z)) * 1024.0
