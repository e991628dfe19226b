"""Small convolutional models that chexp trains itself (phantoms, real-data models).

* :class:`SmallClassifier`: a VGG-style CNN classifier or regression head (optionally ending in a
  ReLU, as CheXplain-IBA's regressor). Its blocks are named ``features.block1`` ...
  ``features.blockN`` (usable as bottleneck layers by IBA).
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

#: Bump whenever a change here alters the weights a configuration produces or their shapes:
#: it enters every cache key (:func:`chexp.training.cached_model`), so old caches are not reused.
CODE_VERSION = 2


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


@register_architecture
class SmallClassifier(Classifier):
    """A lean CNN: a 5x5 stride-2 stem, then blocks of 3x3 convolution + max-pool, global average
    and max pooling (max keeps small findings such as a mass visible), linear. Cheap enough to train
    on CPU in minutes at 128 x 128.

    Layer names: ``features.stem``, ``features.block1`` ... ``features.blockN``.

    Args:
        targets: output names.
        output: ``"probability"`` (sigmoid of the logits) or ``"logit"`` for classifiers,
            ``"score"`` for a regression head.
        channels: channels of the stem and of each block (the first entry is the stem's).
        input_size: required square input side (``None``: any multiple of ``2**len(channels)``).
        relu_output: end the head with a ReLU, ``Linear`` then ``ReLU``, so that every output is
            ``>= 0`` (a regression head of a non-negative score, as the released CheXplain-IBA
            regressor); ``False``: the linear layer's outputs as they are.
    """

    def __init__(
        self,
        targets: Sequence[str],
        output: OutputKind = "probability",
        channels: Sequence[int] = (16, 16, 32, 64, 64),
        input_size: int | None = None,
        relu_output: bool = False,
    ) -> None:
        super().__init__(targets, output=output, input_size=input_size)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["stem"] = nn.Sequential(
            nn.Conv2d(1, channels[0], 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(),
        )
        c_in = channels[0]
        for i, c_out in enumerate(channels[1:], start=1):
            layers[f"block{i}"] = _conv_block(c_in, c_out)
            c_in = c_out
        self.features = nn.Sequential(layers)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.classifier = nn.Linear(2 * c_in, len(self.targets))
        self.output_activation: nn.Module = nn.ReLU() if relu_output else nn.Identity()  # no weights

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x / 1024.0)
        pooled = torch.cat([self.avg_pool(h), self.max_pool(h)], dim=1)  # max: small findings
        return self.output_activation(self.classifier(pooled.flatten(1)))


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
        width: int = 16,
        depth: int = 4,
        input_size: int | None = None,
    ) -> None:
        super().__init__(input_size=input_size, size_multiple=2**depth)
        chans = [min(width * 2**i, 128) for i in range(depth)]
        enc: list[nn.Module] = []
        c_in = 1
        for i, c in enumerate(chans):
            enc += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.LeakyReLU(0.2)]
            if i >= depth - 2:  # extra capacity where it is cheap (low resolution)
                enc += [nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.LeakyReLU(0.2)]
            c_in = c
        enc.append(nn.Conv2d(c_in, latent_channels, 1))
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(latent_channels, c_in, 1), nn.LeakyReLU(0.2)]
        outs = list(reversed(chans[:-1])) + [max(chans[0] // 2, 4)]
        for i, c in enumerate(outs):
            if i < 2:
                dec += [nn.Conv2d(c_in, c_in, 3, padding=1), nn.BatchNorm2d(c_in), nn.LeakyReLU(0.2)]
            dec += [nn.ConvTranspose2d(c_in, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.LeakyReLU(0.2)]
            c_in = c
        dec.append(nn.Conv2d(c_in, 1, 3, padding=1))
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x / 1024.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.decoder(z)) * 1024.0
