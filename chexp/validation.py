"""Checks on user input, run before any heavy work."""

from __future__ import annotations

import torch

from .errors import InputRangeError, InputShapeError

#: The torchxrayvision intensity range: ``(2 * img / maxval - 1) * 1024``.
XRV_MIN, XRV_MAX = -1024.0, 1024.0
_TOL = 1e-3


def check_images(
    x: torch.Tensor,
    *,
    size: int | tuple[int, int] | None = None,
    name: str = "images",
    allow_unit_range: bool = False,
) -> torch.Tensor:
    """Validate a batch of radiographs in the torchxrayvision convention.

    Args:
        x: tensor of shape (B, 1, H, W), finite, values in [-1024, 1024].
        size: required spatial size (an int for square images, or (H, W)); ``None`` accepts any.
        name: how the tensor is called in error messages.
        allow_unit_range: accept a batch whose values all lie in [0, 1] (normally a sign that the
            image was not scaled to [-1024, 1024]).

    Returns:
        ``x`` unchanged, so that the call can be chained.

    Raises:
        InputShapeError: not a 4-D single-channel tensor, or the wrong spatial size.
        InputRangeError: NaN/inf values, values outside [-1024, 1024], or an image that looks like
            it is still in [0, 1] or [0, 255].
    """
    if not isinstance(x, torch.Tensor):
        raise InputShapeError(f"{name} must be a torch.Tensor of shape (B, 1, H, W), got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 1:
        raise InputShapeError(
            f"{name} must have shape (B, 1, H, W) (one channel), got {tuple(x.shape)}"
        )
    if size is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
        if tuple(x.shape[-2:]) != hw:
            raise InputShapeError(
                f"{name} must be {hw[0]}x{hw[1]} pixels for this model, got "
                f"{x.shape[-2]}x{x.shape[-1]}; resize with chexp.data.images.to_xrv"
            )
    if not x.is_floating_point():
        raise InputRangeError(f"{name} must be a floating point tensor, got {x.dtype}")
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise InputRangeError(f"{name} contains {bad} NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < XRV_MIN - _TOL or hi > XRV_MAX + _TOL:
        hint = " (it looks like raw 8/16-bit pixel values)" if hi > XRV_MAX and lo >= 0 else ""
        raise InputRangeError(
            f"{name} must lie in [-1024, 1024] (torchxrayvision convention), got "
            f"[{lo:.4g}, {hi:.4g}]{hint}; convert with chexp.data.images.to_xrv_range"
        )
    if not allow_unit_range and lo >= 0.0 and hi <= 1.0 and hi > lo:
        raise InputRangeError(
            f"{name} lies in [{lo:.4g}, {hi:.4g}], which looks like a [0, 1] image: chexp expects "
            "the torchxrayvision range [-1024, 1024]; convert with chexp.data.images.to_xrv_range "
            "(or pass allow_unit_range=True if this is intended)"
        )
    return x
