"""Autoencoders of several depths, evaluated after every training epoch: Gifsplanation Appendix D
(Fig. D.2B).

The paper evaluates ResNet autoencoders of different depths with the XRV-all classifier on a
fixed set of 10 Cardiomegaly images: reconstruction error (MAE) and the IoU of latentshift-max,
one point per autoencoder and training epoch, coloured by the epoch ("to more fairly compare
these networks which converge at different rates"). It finds no major trend with depth.

Here the depth is that of the phantom :class:`~chexp.models.small.ConvAutoencoder`: its number of
stride-2 levels, each adding convolutions to the encoder and the decoder. The number of latent
values is kept fixed across depths (``latent_channels x (S / 2**depth)**2``, the channels making up
for the smaller grid), so that depth is the only thing that changes, as in Fig. D.2, whose panel
A varies the bottleneck instead (:mod:`~chexp.experiments.bottleneck`).

* :func:`depth_configs`: the training configuration of each depth (a plain
  :class:`~chexp.training.AutoencoderTraining`: the default autoencoder's config is untouched).
* :func:`epoch_snapshots`: the autoencoder after each epoch of one training run (kept by
  :func:`chexp.training.fit`'s ``on_epoch_end``), each epoch cached like any chexp model.
* :func:`depth_study`: MAE and IoU of every snapshot; :func:`last_epochs`: each depth's last epoch.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from ..errors import InvalidParameterError
from ..models.base import Autoencoder, Classifier
from ..models.small import ConvAutoencoder
from ..models.store import ModelCard
from ..phantoms import PhantomConfig, generate
from ..profiles import SampleSet
from ..progress import tqdm
from ..training import AutoencoderTraining, cached_model, config_hash
from ..training.autoencoder import train_autoencoder
from .iou import compute_iou
from .reconstruction import reconstruction_mae

__all__ = ["SNAPSHOT_NAME", "depth_configs", "depth_study", "epoch_snapshots", "last_epochs"]

#: Cache name of the per-epoch snapshots (``<name>-<hash of the config and the epoch>``).
SNAPSHOT_NAME = "phantom-autoencoder-snapshot"


def depth_configs(
    phantom: PhantomConfig,
    depths: Sequence[int],
    latent_values: int = 2048,
    width: int = 8,
    epochs: int = 3,
    n_train: int = 256,
    batch_size: int = 8,
    seed: int = 0,
) -> dict[int, AutoencoderTraining]:
    """One autoencoder configuration per depth, all with ``latent_values`` values in the latent.

    Args:
        phantom: the phantoms to train on (its ``size`` S is the image side).
        depths: stride-2 levels of each autoencoder (S must be a multiple of ``2**depth``).
        latent_values: values in every latent, ``latent_channels * (S / 2**depth)**2`` (the
            default autoencoder's: 2 x 32 x 32 = 2048 at 128 pixels).
        width: channels after the first downsampling.
        epochs, n_train, batch_size, seed: the schedule (the rest is
            :class:`~chexp.training.AutoencoderTraining`'s). Small batches give many steps from
            few images (measured at depth 3 with 256 phantoms and 3 epochs: held-out MAE about 60
            with batches of 8, above 240 with the profile autoencoder's 32).

    Returns:
        depth -> configuration, in the order of ``depths``.

    Raises:
        InvalidParameterError: no depth, a depth below 1, or one whose latent grid does not
            divide ``latent_values``.
    """
    if not depths:
        raise InvalidParameterError("depths must name at least one depth")
    out = {}
    for depth in (int(d) for d in depths):
        grid = phantom.size // 2**depth if depth >= 1 else 0
        if depth < 1 or grid == 0 or phantom.size % 2**depth or latent_values % grid**2:
            raise InvalidParameterError(
                f"depth {depth}: a {phantom.size}-pixel image must halve {depth} times into a grid whose "
                f"area divides latent_values={latent_values}"
            )
        out[depth] = AutoencoderTraining(phantom=phantom, depth=depth, latent_channels=latent_values // grid**2,
                                         width=width, epochs=epochs, n_train=n_train, batch_size=batch_size,
                                         seed=seed)
    return out


def _train_snapshots(
    cfg: AutoencoderTraining, progress: bool, device: str | torch.device
) -> list[tuple[nn.Module, ModelCard]]:
    """One training run of ``cfg`` (as :func:`chexp.training.phantom_autoencoder` trains it), with
    a copy of the weights after each epoch."""
    start = time.perf_counter()
    train = generate(cfg.n_train, seed=cfg.seed, config=cfg.phantom)
    x = torch.from_numpy(train.images).to(device)
    states: list[tuple[float, dict[str, torch.Tensor]]] = []

    def keep(epoch: int, model: nn.Module) -> None:
        weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        states.append((time.perf_counter() - start, weights))

    train_autoencoder(cfg, lambda idx: x[idx], len(x), cfg.phantom.size, cfg.weight_decay,
                      desc=f"train phantom autoencoder (depth {cfg.depth})", progress=progress, device=device,
                      on_epoch_end=keep)
    out = []
    for epoch, (seconds, state) in enumerate(states, start=1):
        model = ConvAutoencoder(**cfg.architecture(cfg.phantom.size))
        model.load_state_dict(state)
        config = {**cfg.settings(), "snapshot_epoch": epoch}
        card = ModelCard(name=SNAPSHOT_NAME, architecture="ConvAutoencoder",
                         arch_kwargs=cfg.architecture(cfg.phantom.size), config=config,
                         config_hash=config_hash(config),
                         data={"kind": "phantom", "train_sha256": train.sha256(), "n_train": cfg.n_train},
                         seed=cfg.seed, metrics={"epoch": epoch}, train_seconds=seconds)
        out.append((model.eval(), card))
    return out


def epoch_snapshots(
    cfg: AutoencoderTraining, progress: bool = True, device: str | torch.device = "cpu"
) -> list[ConvAutoencoder]:
    """The autoencoder of ``cfg`` after each of its ``cfg.epochs`` epochs, from one training run.

    The run is :func:`chexp.training.phantom_autoencoder`'s (same data, seed and schedule; the
    last snapshot has its weights); :func:`chexp.training.fit`'s ``on_epoch_end`` keeps a copy of
    the weights after each epoch. Each snapshot is cached under :data:`SNAPSHOT_NAME` and a hash
    of ``cfg`` and its epoch, so the run happens once (and only if a snapshot is missing).

    Returns:
        ``cfg.epochs`` autoencoders on the CPU, in eval mode, each with its card at ``.card``
        (``train_seconds``: time from the start of the run to the end of that epoch).
    """
    trained: list[tuple[nn.Module, ModelCard]] = []

    def snapshot(epoch: int) -> tuple[nn.Module, ModelCard]:
        if not trained:
            trained.extend(_train_snapshots(cfg, progress, device))
        return trained[epoch - 1]

    models = []
    for epoch in range(1, cfg.epochs + 1):
        model, card = cached_model(SNAPSHOT_NAME, {**cfg.cache_key(), "snapshot_epoch": epoch},
                                   lambda epoch=epoch: snapshot(epoch))
        model.card = card
        models.append(model)
    return models  # type: ignore[return-value]


def depth_study(
    classifier: Classifier,
    snapshots: Mapping[int, Sequence[Autoencoder]],
    samples: SampleSet,
    target: str,
    mae_images: torch.Tensor,
    search: str = "paper",
    n_frames: int = 10,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> pd.DataFrame:
    """Reconstruction error and latentshift-max IoU of every autoencoder snapshot (Fig. D.2B).

    Args:
        snapshots: depth -> the autoencoders after epochs 1, 2, ... (:func:`epoch_snapshots`).
        samples: images positive for ``target`` with masks (the same for every snapshot).
        mae_images: held-out images ``(N, 1, S, S)`` for the MAE, on ``device``.
        search, n_frames: Latent Shift's lambda search rule and frames.

    Returns:
        one row per (depth, epoch): ``depth``, ``epoch``, ``latent_channels``, ``latent_size``,
        ``parameters``, ``mae`` (intensity units), ``iou_mean``, ``iou_std`` (ddof 1), ``n``
        (images with a mask), ``train_seconds`` (from the start of the run to that epoch).
    """
    settings = {"latentshift-max": {"search": search, "n_frames": int(n_frames)}}
    rows = []
    jobs = [(depth, epoch, ae) for depth, models in snapshots.items() for epoch, ae in enumerate(models, start=1)]
    for depth, epoch, ae in tqdm(jobs, desc="depth x epoch", disable=not progress):
        ae = ae.to(device).eval()
        per = compute_iou(["latentshift-max"], classifier, ae, {target: samples}, device, settings, progress=False)
        scores = per["iou"].dropna().to_numpy()
        with torch.no_grad():
            latent = ae.encode(mae_images[:1])
        rows.append({"depth": int(depth), "epoch": epoch, "latent_channels": int(latent.shape[1]),
                     "latent_size": int(latent[0].numel()), "parameters": sum(p.numel() for p in ae.parameters()),
                     "mae": reconstruction_mae(ae, mae_images),
                     "iou_mean": float(scores.mean()) if len(scores) else float("nan"),
                     "iou_std": float(scores.std(ddof=1)) if len(scores) > 1 else float("nan"),
                     "n": len(scores),
                     "train_seconds": float(getattr(getattr(ae, "card", None), "train_seconds", float("nan")))})
    return pd.DataFrame(rows)


def last_epochs(table: pd.DataFrame) -> pd.DataFrame:
    """The row of each depth's last epoch of :func:`depth_study`'s table (one row per depth)."""
    return table.loc[table.groupby("depth", sort=False)["epoch"].idxmax()].reset_index(drop=True)

