"""Experiment logic of the book's notebooks (one module per paper or topic).

* :mod:`~chexp.experiments.gifsplanation`: the Gifsplanation (Latent Shift) figures and tables:
  attribution methods by name, IoU/AUC tables (Table 1), the bottleneck study (Fig. 2, App. D),
  prediction curves (Fig. 3), cascading randomization (Fig. 5), 2D reductions (App. B) and the
  lambda search rules (App. C).
* :mod:`~chexp.experiments.reader_kit`: builds a new reader-study packet (Gifsplanation
  section 4.6) from any classifier, autoencoder and images, in the released study's format.
"""
