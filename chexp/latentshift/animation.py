"""Animations and optical flow of Latent Shift frames.

* :func:`animation_frames`: uint8 frames played forward (counterfactual -> exaggerated) then
  backward, as in the paper's videos; optionally beside the input with the prediction written on
  each frame.
* :func:`save_animation`: GIF (imageio/Pillow), or MP4 when imageio's ffmpeg plugin
  (``imageio-ffmpeg``) is installed; the writer is picked from the file suffix.
* :func:`optical_flow`: flow between consecutive frames (paper Fig. 1B) with scikit-image's
  TV-L1 (``"tvl1"``, default) or iterative Lucas-Kanade (``"ilk"``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch
from PIL import Image, ImageDraw
from skimage.registration import optical_flow_ilk, optical_flow_tvl1

from ..errors import IndexOutOfRangeError, InputShapeError, MissingDependencyError, UnknownNameError
from .core import LatentShiftExplanation

__all__ = ["to_uint8", "animation_frames", "save_gif", "save_mp4", "save_animation", "mp4_available",
           "optical_flow", "FLOW_METHODS"]


def to_uint8(images: torch.Tensor | np.ndarray, vmin: float = -1024.0, vmax: float = 1024.0) -> np.ndarray:
    """Images in [vmin, vmax] -> uint8 (clipped), same shape."""
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    scaled = (arr.astype(np.float64) - vmin) / (vmax - vmin)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _label(image: np.ndarray, text: str) -> np.ndarray:
    pil = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(pil)
    box = draw.textbbox((2, 2), text)
    draw.rectangle((0, 0, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
    draw.text((2, 2), text, fill=(255, 255, 0))
    return np.asarray(pil)


def animation_frames(
    explanation: LatentShiftExplanation,
    index: int = 0,
    *,
    beside_input: bool = True,
    show_prediction: bool = True,
    boomerang: bool = True,
    scale: int = 1,
) -> list[np.ndarray]:
    """uint8 frames ``(H, W[*2], 3)`` for one image of an explanation.

    Args:
        index: which image of the batch.
        beside_input: put the input image on the left of every frame.
        show_prediction: write ``lambda`` and the prediction on each frame (and ``not converged``
            on a bound frame whose search did not reach its rule's level).
        boomerang: forward then backward (the paper's videos), ``2T - 2`` frames.
        scale: integer upscaling (nearest) of small images.
    """
    if not 0 <= index < explanation.batch_size:
        raise IndexOutOfRangeError(f"index {index} out of range for a batch of {explanation.batch_size}")
    frames = to_uint8(explanation.frames[index, :, 0])
    inp = to_uint8(explanation.inputs[index, 0])
    out = []
    for t, frame in enumerate(frames):
        img = np.concatenate([inp, frame], axis=1) if beside_input else frame
        if scale > 1:
            img = np.kron(img, np.ones((scale, scale), dtype=np.uint8))
        img = np.stack([img] * 3, axis=-1)
        if show_prediction:
            lam = float(explanation.lambdas[index, t])
            pred = float(explanation.predictions[index, t])
            img = _label(img, f"{explanation.target} {pred:.2f}  lambda {lam:+.3g}" + explanation.frame_flag(index, t))
        out.append(img)
    if boomerang:
        out = out + out[-2:0:-1]  # forward then backward, turning points shown once
    return out


def mp4_available() -> bool:
    """True when imageio can write MP4 (the ``imageio-ffmpeg`` package is installed)."""
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def save_gif(frames: list[np.ndarray], path: str | Path, fps: float = 8.0) -> Path:
    """Write frames as a looping GIF."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(path, frames, format="GIF", duration=1.0 / fps, loop=0)
    return path


def save_mp4(frames: list[np.ndarray], path: str | Path, fps: float = 8.0) -> Path:
    """Write frames as H.264 MP4 (needs ``imageio-ffmpeg``; sides padded to multiples of 16)."""
    if not mp4_available():
        raise MissingDependencyError(
            "MP4 needs the imageio-ffmpeg package (pip install imageio-ffmpeg); GIF works without it",
            name="imageio_ffmpeg",
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    ph, pw = -h % 16, -w % 16
    padded = [np.pad(f, ((0, ph), (0, pw), (0, 0))) for f in frames]
    imageio.mimsave(path, padded, format="FFMPEG", fps=fps, codec="libx264", pixelformat="yuv420p")
    return path


_WRITERS: dict[str, Callable[[list[np.ndarray], Path, float], Path]] = {".gif": save_gif, ".mp4": save_mp4}


def save_animation(
    explanation: LatentShiftExplanation, path: str | Path, index: int = 0, fps: float = 8.0, **kwargs
) -> Path:
    """Write one image's animation; the format follows the suffix (``.gif`` or ``.mp4``).

    ``kwargs`` go to :func:`animation_frames`.
    """
    path = Path(path)
    writer = _WRITERS.get(path.suffix.lower())
    if writer is None:
        raise UnknownNameError(path.suffix, _WRITERS, "animation format")
    return writer(animation_frames(explanation, index, **kwargs), path, fps)


FLOW_METHODS: dict[str, Callable[..., np.ndarray]] = {"tvl1": optical_flow_tvl1, "ilk": optical_flow_ilk}


def optical_flow(frames: torch.Tensor | np.ndarray, method: str = "tvl1", **kwargs) -> np.ndarray:
    """Optical flow between consecutive frames (paper Fig. 1B).

    Args:
        frames: ``(T, H, W)`` or ``(T, 1, H, W)`` in [-1024, 1024].
        method: ``"tvl1"`` (:func:`skimage.registration.optical_flow_tvl1`) or ``"ilk"``.
        kwargs: passed to the scikit-image function.

    Returns:
        ``(T-1, 2, H, W)`` float32: (row, column) displacement of each pixel from frame t to t+1.
    """
    arr = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3 or arr.shape[0] < 2:
        raise InputShapeError(f"frames must be (T, H, W) or (T, 1, H, W) with T >= 2, got {arr.shape}")
    fn = FLOW_METHODS.get(method)
    if fn is None:
        raise UnknownNameError(method, FLOW_METHODS, "optical flow method")
    unit = (np.clip(arr, -1024, 1024) + 1024.0) / 2048.0
    return np.stack([fn(unit[t], unit[t + 1], **kwargs) for t in range(len(unit) - 1)]).astype(np.float32)
