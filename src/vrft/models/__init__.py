"""Models: load any local HF vision-language model (left padding, conventions) and build tiny offline ones.

Importing this package does not import torch or transformers; the functions do, when called.
"""

from vrft.models.families import FAMILIES, Family
from vrft.models.load import (
    check_processor,
    convention_for,
    frame_for,
    load_model_and_processor,
    load_processor,
    patch_factor,
    pixel_budget,
)
from vrft.models.tiny import SIZES, TINY_ARCHS, build_tiny, cached_tiny

__all__ = [
    "FAMILIES",
    "Family",
    "SIZES",
    "TINY_ARCHS",
    "build_tiny",
    "cached_tiny",
    "check_processor",
    "convention_for",
    "frame_for",
    "load_model_and_processor",
    "load_processor",
    "patch_factor",
    "pixel_budget",
]
