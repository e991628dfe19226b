"""chexp: Latent Shift (Gifsplanation) and the IBA family (CheXplain-IBA) for chest X-ray models,
with the data, metrics and notebooks that reproduce both papers."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``chexp.explain``, imported on first use (``chexp.explain(...)`` runs
    :func:`chexp.explain.explain`), so that ``import chexp`` imports no numerical library."""
    if name == "explain":
        import importlib

        return importlib.import_module(".explain", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
