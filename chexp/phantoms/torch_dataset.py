"""Torch dataset of phantoms."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from .config import FINDINGS, PhantomConfig
from .dataset import generate


class PhantomDataset(torch.utils.data.Dataset):
    """Torch dataset of phantoms (generated once, in memory).

    Items are dicts: ``image`` float32 (1, S, S) in [-1024, 1024], ``labels`` float32 (5,),
    ``masks`` bool (5, S, S), ``lungs`` and ``heart`` bool (S, S), ``idx`` (int).
    ``pathologies`` lists the label columns (as in torchxrayvision datasets).
    """

    def __init__(
        self,
        n: int,
        seed: int = 0,
        config: PhantomConfig | None = None,
        *,
        start: int = 0,
        disable: Iterable[str] | str = (),
    ) -> None:
        self.phantoms = generate(n, seed, config, start=start, disable=disable)
        self.pathologies = list(FINDINGS)
        self._images = torch.from_numpy(self.phantoms.images)
        self._labels = torch.from_numpy(self.phantoms.labels)
        self._masks = torch.from_numpy(self.phantoms.masks)
        self._lungs = torch.from_numpy(self.phantoms.lungs)
        self._heart = torch.from_numpy(self.phantoms.heart)

    def __len__(self) -> int:
        return len(self.phantoms)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int]:
        return {
            "idx": int(i),
            "image": self._images[i],
            "labels": self._labels[i],
            "masks": self._masks[i],
            "lungs": self._lungs[i],
            "heart": self._heart[i],
        }
