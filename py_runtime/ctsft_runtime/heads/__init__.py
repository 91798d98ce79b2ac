"""Per-family attention head map, head gates and norm parameters (plain PyTorch)."""

from .families import FAMILIES, Family, supported_model_types
from .gates import ZRecord, capture_z, head_gates
from .head_map import (
    HeadMap,
    HeadSlices,
    LayerAttention,
    Span,
    build_head_map,
    norm_parameters,
)

__all__ = [
    "FAMILIES",
    "Family",
    "HeadMap",
    "HeadSlices",
    "LayerAttention",
    "Span",
    "ZRecord",
    "build_head_map",
    "capture_z",
    "head_gates",
    "norm_parameters",
    "supported_model_types",
]
