"""Artifacts of a CT-SFT run: the sparse delta (trained head slices + norms) and its manifest."""

from .delta import DeltaEntry, SparseDelta, apply_delta, load_delta, revert_delta, save_delta
from .manifest import DELTA_KIND, DELTA_MANIFEST, DELTA_VERSION, DELTA_WEIGHTS

__all__ = [
    "DELTA_KIND",
    "DELTA_MANIFEST",
    "DELTA_VERSION",
    "DELTA_WEIGHTS",
    "DeltaEntry",
    "SparseDelta",
    "apply_delta",
    "load_delta",
    "revert_delta",
    "save_delta",
]
