"""Baseline attribution methods, one class per method, all with the call shape
``Method(model).attribute(images (B, 1, H, W), target) -> maps (B, 1, H, W)``.

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

from .base import Attribution, TargetScore
from .gradcam import GradCAM
from .gradient import GradientTimesInput, InputGradient
from .guided import GuidedBackprop, count_functional_relus, module_relus
from .integrated import IntegratedGradients
from .iterative_delete import IterativeDelete
from .lrp import LRP

#: Method name (as in the papers' tables) -> class.
BASELINES: dict[str, type[Attribution]] = {
    cls.name: cls
    for cls in (InputGradient, GradientTimesInput, GuidedBackprop, IntegratedGradients, GradCAM, LRP, IterativeDelete)
}

__all__ = [
    "Attribution",
    "TargetScore",
    "InputGradient",
    "GradientTimesInput",
    "GuidedBackprop",
    "IntegratedGradients",
    "GradCAM",
    "LRP",
    "IterativeDelete",
    "BASELINES",
    "count_functional_relus",
    "module_relus",
]
