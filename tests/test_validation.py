"""Input checks: wrong range, size, channels, NaN -> clear errors."""

from __future__ import annotations

import pytest
import torch

from chexp.errors import InputRangeError, InputShapeError
from chexp.validation import check_images


def test_accepts_valid_batch():
    x = torch.linspace(-1024, 1024, 64 * 64).reshape(1, 1, 64, 64)
    assert check_images(x, size=64) is x


@pytest.mark.parametrize(
    "x, error, pattern",
    [
        (torch.zeros(1, 3, 8, 8), InputShapeError, "one channel"),
        (torch.zeros(8, 8), InputShapeError, r"\(B, 1, H, W\)"),
        (torch.full((1, 1, 8, 8), 2000.0), InputRangeError, r"\[-1024, 1024\]"),
        (torch.rand(1, 1, 8, 8), InputRangeError, r"\[0, 1\] image"),
        (torch.tensor([[[[0.0, float("nan")]]]]), InputRangeError, "NaN"),
        (torch.zeros(1, 1, 8, 8, dtype=torch.int16), InputRangeError, "floating point"),
    ],
)
def test_rejects_bad_input(x, error, pattern):
    with pytest.raises(error, match=pattern):
        check_images(x)


def test_raw_pixels_hint_and_size():
    with pytest.raises(InputRangeError, match="raw 8/16-bit"):
        check_images(torch.full((1, 1, 4, 4), 4095.0))
    with pytest.raises(InputShapeError, match="224x224"):
        check_images(torch.zeros(1, 1, 64, 64), size=224)
    with pytest.raises(InputShapeError):
        check_images([[0.0]])  # not a tensor
