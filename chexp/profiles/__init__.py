"""Experiment profiles: which data and models a notebook runs on.

=========  ==============================================================================
profile    data and models
=========  ==============================================================================
phantom    phantom radiographs (held-out stream) with pixel-exact masks; the phantom
           classifier and autoencoder trained by chexp (offline, CPU; the default)
cohen      the Cohen COVID-19 collection with BrixIA scores; models chexp trains on its split
paper      NIH / RSNA / SIIM images from a folder the user names; torchxrayvision's
           pretrained DenseNet121 and ResNetAE101
=========  ==============================================================================

Importing this package registers all three (:data:`PROFILES`, the one list of profile names;
``chexp reproduce --profile`` takes its choices from it). Notebooks call :func:`get_profile` in
their first cell and then :meth:`Profile.check` so that a missing dataset or weight file stops
the notebook at once with a message saying what to download and where to put it. Each notebook
lists the profiles it supports in its metadata (``{"chexp": {"profiles": [...]}}``);
``chexp reproduce`` does not run it under the others.
"""

from __future__ import annotations

from .base import PROFILES, Profile, SampleSet, get_profile, profile_class, register_profile
from .cohen import CohenProfile
from .paper import PaperProfile
from .phantom import PhantomProfile

__all__ = [
    "PROFILES",
    "CohenProfile",
    "PaperProfile",
    "PhantomProfile",
    "Profile",
    "SampleSet",
    "get_profile",
    "profile_class",
    "register_profile",
]
