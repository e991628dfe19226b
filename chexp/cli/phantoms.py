"""Save a grid of phantom radiographs, each finding's mask outlined in its colour."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InvalidParameterError
from .options import positive_int


def _run(args: argparse.Namespace) -> int:
    from matplotlib.backend_bases import FigureCanvasBase

    from ..phantoms import PhantomConfig, generate
    from ..plotting.phantoms import plot_phantom_grid

    config = PhantomConfig(size=args.size)  # checks the size before any work
    out: Path = args.out
    formats = FigureCanvasBase.get_supported_filetypes()
    if out.suffix.lstrip(".").lower() not in formats:
        raise InvalidParameterError(
            f"--out {out}: the file name must end in an image format: .{', .'.join(sorted(formats))}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_phantom_grid(generate(args.n, seed=args.seed, config=config), n=args.n, ax_or_path=out)
    print(f"wrote {out}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Define ``chexp phantoms`` on ``parser``: its options and help; ``args.func(args)`` runs it."""
    parser.description = __doc__
    parser.add_argument("--n", type=positive_int, default=16, help="number of phantoms (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the phantom stream (default 0)")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels, 32 to 1024 (default 128)")
    parser.add_argument("--out", type=Path, default=Path("phantoms.png"),
                        help="image file to write; the format follows the suffix (default phantoms.png)")
    parser.set_defaults(func=_run)
