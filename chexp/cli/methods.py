"""List the attribution methods of :mod:`chexp.methods`: slug, display name, class and what each needs."""

from __future__ import annotations

import argparse
import json

_LAYER_NEEDS = {
    None: "",
    "spatial": "a spatial layer (default: the last one)",
    "bottleneck": "a bottleneck layer and its statistics",
    "bottlenecks": "bottleneck layers and their statistics",
}


def _run(args: argparse.Namespace) -> int:
    from ..methods import METHODS

    rows = [
        {
            "slug": spec.slug,
            "display": spec.display,
            "class": spec.cls.__name__,
            "needs": "; ".join(n for n in ("an autoencoder" if spec.needs_autoencoder else "",
                                             _LAYER_NEEDS[spec.layer]) if n),
        }
        for spec in METHODS.values()
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    widths = {key: max(len(key), *(len(r[key]) for r in rows)) for key in rows[0]}
    print("  ".join(key.ljust(w) for key, w in widths.items()).rstrip())
    for r in rows:
        print("  ".join(r[key].ljust(w) for key, w in widths.items()).rstrip())
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Define ``chexp methods`` on ``parser``: its options and help; ``args.func(args)`` runs it."""
    parser.description = __doc__
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    parser.set_defaults(func=_run)
