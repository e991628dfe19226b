"""Latent Shift explanations (Gifsplanation, Cohen et al. MIDL 2021).

Public API::

    from chexp.latentshift import LatentShift, PaperSearch
    ls = LatentShift(classifier, autoencoder)          # search=PaperSearch(), n_frames=10, map "max"
    maps = ls.attribute(images, target="Cardiomegaly") # (B, 1, H, W) latentshift-max map
    expl = ls.explain(images, target="Cardiomegaly")
    expl.frames        # (B, T, 1, H, W), lower bound -> upper bound
    expl.heatmap       # (B, H, W) latentshift-max map
    save_animation(expl, "case.gif")

Modules: :mod:`.core` (frames and gradient), :mod:`.search` (lambda search rules; the paper's
rule in :mod:`.search.paper`), :mod:`.maps` (2D maps), :mod:`.animation` (GIF/MP4, optical flow),
:mod:`.slider` (notebook slider data), :mod:`.reference` (the released code's sequential search,
for comparison).
"""

from .core import LatentShift, LatentShiftExplanation
from .maps import MAP_METHODS, CounterfactualMap, MaxMap, MeanMap, MinMaxMap, SlidingIntervalMap, get_map, postprocess
from .search import (
    SEARCH_RULES,
    AppendixCSearch,
    FixedRange,
    Gifsplanation2021Search,
    GifsplanationCurrentSearch,
    LambdaSearch,
    LatentShiftPackageSearch,
    PaperAbsoluteSearch,
    PaperSearch,
    SteppedSearch,
    get_search,
)

__all__ = [
    "LatentShift",
    "LatentShiftExplanation",
    "LambdaSearch",
    "PaperSearch",
    "PaperAbsoluteSearch",
    "AppendixCSearch",
    "Gifsplanation2021Search",
    "GifsplanationCurrentSearch",
    "LatentShiftPackageSearch",
    "SteppedSearch",
    "FixedRange",
    "SEARCH_RULES",
    "get_search",
    "MAP_METHODS",
    "MaxMap",
    "MeanMap",
    "MinMaxMap",
    "SlidingIntervalMap",
    "CounterfactualMap",
    "get_map",
    "postprocess",
]

from .animation import animation_frames, mp4_available, optical_flow, save_animation, to_uint8  # noqa: E402
from .slider import lambda_slider, slider_data  # noqa: E402

__all__ += ["animation_frames", "mp4_available", "optical_flow", "save_animation", "to_uint8",
            "lambda_slider", "slider_data"]
