"""The training loop every chexp model uses, and batched prediction."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from ..progress import tqdm
from .configs import Training


def _batches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def fit(
    model: nn.Module,
    loss_of_batch: Callable[[np.ndarray], torch.Tensor],
    n: int,
    schedule: Training,
    weight_decay: float,
    *,
    desc: str,
    progress: bool = True,
    on_epoch_end: Callable[[int, nn.Module], None] | None = None,
) -> nn.Module:
    """AdamW with a one-cycle learning rate over ``schedule.epochs`` passes in a seeded batch order.

    Args:
        model: trained in place (left in eval mode), on whatever device it is.
        loss_of_batch: maps the indices of a batch (into the training set of size ``n``) to a
            scalar loss; it does the model call, so any input pipeline (and device) fits.
        n: training set size.
        schedule: ``epochs``, ``batch_size``, peak ``lr`` and ``seed`` (of the batch order).
        weight_decay: AdamW weight decay.
        desc: progress bar label.
        on_epoch_end: called as ``on_epoch_end(epoch, model)`` after each epoch (``epoch`` from
            1), with the model in eval mode (the next epoch puts it back in train mode); e.g. to
            keep snapshots of the weights. It must not change the weights. ``None`` (default):
            nothing is called, and the training is the same either way.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=schedule.lr, weight_decay=weight_decay)
    steps = schedule.epochs * -(-n // schedule.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=schedule.lr, total_steps=steps)
    rng = np.random.default_rng(schedule.seed)
    bar = tqdm(total=steps, desc=desc, disable=not progress)
    for epoch in range(1, schedule.epochs + 1):
        model.train()
        for idx in _batches(n, schedule.batch_size, rng):
            loss = loss_of_batch(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if on_epoch_end is not None:
            on_epoch_end(epoch, model.eval())
    bar.close()
    return model.eval()


def predict(fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``fn`` applied to ``images`` in batches of ``batch_size``, without gradients, concatenated
    (on the device ``fn`` returns)."""
    with torch.no_grad():
        return torch.cat([fn(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
