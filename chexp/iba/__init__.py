"""Information Bottleneck Attribution and its chest X-ray extensions (CheXplain-IBA).

* :class:`IBA`, :class:`InverseIBA`, :class:`RegressionIBA`, :class:`MultiLayerIBA`
  (:class:`~chexp.attribution.Attribution` s): ``attribute(inputs, target=...) -> (B, 1, H, W)``
  maps (bits per pixel; Multi-layer IBA: combined, in [0, 1]); the bottleneck layers of each
  model family in :data:`BOTTLENECK_LAYERS`.
* Losses built from targets (:func:`as_loss`): :class:`TargetBCE`, :class:`OneHotBCE`,
  :class:`SoftmaxCE`, :class:`RegressionMSE`, :class:`RegressionMaximize`,
  :class:`RegressionDeviation`; by name in :data:`LOSSES` (the ``loss=`` of the methods).
* :class:`UnitStatistics`: per-unit feature statistics, fitted once per model and layer and saved
  beside the model (:func:`statistics_path`).
* :func:`reference_attribute`: the straightforward reference algorithm (one image at a time, the
  full network every step), for checks and benchmarks.
* Errors live in :mod:`chexp.errors`; :class:`AttributionError`, :class:`LossMismatchError` and
  :class:`StatisticsMismatchError` are re-exported here.
"""

from ..errors import AttributionError, LossMismatchError, StatisticsMismatchError
from .bottleneck import (
    BLOCK,
    KEEP,
    BottleneckConfig,
    BottleneckResult,
    GaussianSmoothing,
    PerSampleBottleneck,
    information,
    mirror_resize,
    optimize_bottleneck,
    saliency,
)
from .estimator import UnitStatistics, fit_statistics, statistics_path
from .hooks import FrontCache
from .losses import (
    LOSSES,
    ModelLoss,
    OneHotBCE,
    RegressionDeviation,
    RegressionMaximize,
    RegressionMSE,
    SoftmaxCE,
    TargetBCE,
    as_loss,
)
from .methods import (
    BOTTLENECK_LAYERS,
    COMBINERS,
    IBA,
    NORMALIZERS,
    BottleneckLayers,
    InverseIBA,
    MultiLayerIBA,
    RegressionIBA,
    bottleneck_layers,
    intersection,
    masked_first,
)
from .reference import reference_attribute

__all__ = [
    "BLOCK", "KEEP", "AttributionError", "BottleneckConfig", "BottleneckResult", "GaussianSmoothing",
    "PerSampleBottleneck", "information", "mirror_resize", "optimize_bottleneck", "saliency",
    "StatisticsMismatchError", "UnitStatistics", "fit_statistics", "statistics_path",
    "FrontCache",
    "LOSSES", "LossMismatchError", "ModelLoss", "OneHotBCE", "RegressionDeviation", "RegressionMaximize",
    "RegressionMSE", "SoftmaxCE", "TargetBCE", "as_loss",
    "BOTTLENECK_LAYERS", "BottleneckLayers", "bottleneck_layers",
    "COMBINERS", "NORMALIZERS", "IBA", "InverseIBA", "MultiLayerIBA", "RegressionIBA",
    "intersection", "masked_first", "reference_attribute",
]
