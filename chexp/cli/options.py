"""Argument types shared by the subcommands (argparse ``type=`` callables)."""

from __future__ import annotations

import argparse
import re

#: torch device names accepted on the command line
DEVICE_PATTERN = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def positive_int(text: str) -> int:
    """An integer of at least 1 (argparse reports anything else as an invalid value)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def device_name(text: str) -> str:
    """A torch device name: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    if not DEVICE_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not one of cpu, cuda, cuda:N, mps")
    return text
