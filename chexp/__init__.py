"""chexp: Latent Shift (Gifsplanation) and the IBA family (CheXplain-IBA) for chest X-ray models,
with the data, metrics and notebooks that reproduce both papers."""

__version__ = "0.1.0"
