"""Experiment logic of the book's notebooks, one module per figure or topic.

Notebooks import the module of their figure (``from chexp.experiments.iou import compute_iou``).

Both papers:

* :mod:`~chexp.experiments.iou`: the one IoU pipeline (per-sample table, summary) and each
  paper's IoU tables (Gifsplanation Table 1, App. B, E.1; CheXplain-IBA Tables 1-3, Fig. 4).
* :mod:`~chexp.experiments.samples`: which tasks and images an experiment explains.
* :mod:`~chexp.experiments.classifiers`: one experiment run per classifier a profile compares
  (Gifsplanation Table 1, E.1, K.1, Fig. 4 / E.1).
* :mod:`~chexp.experiments.batches`: per-image work over batches of images, in this process or as
  Dask tasks (the same results); :mod:`~chexp.experiments.worker_setup`: a Dask worker's GPU and
  allocator for torch.

Gifsplanation (Latent Shift):

* :mod:`~chexp.experiments.maps`: the maps of several methods for one batch (Fig. 4, E.1).
* :mod:`~chexp.experiments.auc`: the classifier's AUC and Table 1's layout.
* :mod:`~chexp.experiments.bottleneck`: the bottleneck study (Fig. 2, App. D).
* :mod:`~chexp.experiments.curves`: prediction against lambda (Fig. 1c, Fig. 3, App. C).
* :mod:`~chexp.experiments.randomization`: cascading randomization (Fig. 5, App. H).
* :mod:`~chexp.experiments.reader_study`: the reader study beside the paper's (section 4.6).
* :mod:`~chexp.experiments.reader_kit`: builds a new reader-study packet (section 4.6) from any
  classifier, autoencoder and images, in the released study's format.
* :mod:`~chexp.experiments.reductions`: the 2D reductions of the frames (App. B).
* :mod:`~chexp.experiments.lambda_search`: the lambda search rules (section 4.2, App. C).
* :mod:`~chexp.experiments.reconstruction`: what the reconstruction alone changes (App. K).
* :mod:`~chexp.experiments.change_in_mask`: how much of a change lies on the finding.
* :mod:`~chexp.experiments.autoencoder_depth`: the autoencoder depth x epoch sweep (App. D.2B).
* :mod:`~chexp.experiments.robustness`: IoU under input noise and blur (App. G).
* :mod:`~chexp.experiments.galleries`: Latent Shift galleries, true and false positives (App. I/J).

Our additions:

* :mod:`~chexp.experiments.shortcut`: a planted shortcut (device and Pneumothorax): reliance by
  intervention against each method's mass on the device.

CheXplain-IBA:

* :mod:`~chexp.experiments.iba_setup`: the classifier, IBA layers and statistics every figure uses.
* :mod:`~chexp.experiments.inverse`: IBA against Inverse IBA on redundant regions (Fig. 1).
* :mod:`~chexp.experiments.perturbation`: insertion and deletion (Fig. 2).
* :mod:`~chexp.experiments.regression`: Regression IBA, sensitivity-N, severity (Fig. 3, 3.2).
* :mod:`~chexp.experiments.weighted_bce`: BCE against weighted BCE (Table 3).
* :mod:`~chexp.experiments.multilayer`: Multi-layer IBA (Fig. 4).
"""
