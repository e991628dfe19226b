"""Baseline attribution methods, one :class:`~chexp.attribution.Attribution` class per method,
all with the call shape ``Method(model).attribute(images (B, 1, H, W), target) -> maps (B, 1, H, W)``
(their names in the papers' tables: :mod:`chexp.methods`).

=====================  ==========================================================  ===========
class                  method                                                      backend
=====================  ==========================================================  ===========
InputGradient          ``|d score / d x|`` (the papers' "grad")                     Captum
GradientTimesInput     ``x * d score / d x``                                        Captum
GuidedBackprop         guided backprop, functional ReLUs handled                   Captum
IntegratedGradients    100 steps from an all-zero image                            Captum
GradCAM                Grad-CAM at a layer, upsampled                              Captum
LRP                    layer-wise relevance propagation (EpsilonPlusFlat)          Zennit
IterativeDelete        remove top-gradient pixels and recompute (Appendix E)       chexp
=====================  ==========================================================  ===========
"""

from .base import TargetScore
from .gradcam import GradCAM
from .gradient import GradientTimesInput, InputGradient
from .guided import GuidedBackprop, count_functional_relus, module_relus
from .integrated import IntegratedGradients
from .iterative_delete import IterativeDelete
from .lrp import LRP

__all__ = [
    "TargetScore",
    "InputGradient",
    "GradientTimesInput",
    "GuidedBackprop",
    "IntegratedGradients",
    "GradCAM",
    "LRP",
    "IterativeDelete",
    "count_functional_relus",
    "module_relus",
]
