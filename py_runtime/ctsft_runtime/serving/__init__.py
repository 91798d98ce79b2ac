"""Serving an adapted model: per-row named deltas on one base model, and text generation.

Plain PyTorch/transformers (no protocol, no ops): usable from a notebook as well."""

from .generation import Generated, TokenStreamer, generate_texts
from .row_deltas import RowDelta, RowSelection, prepare_row_delta, row_deltas

__all__ = [
    "Generated",
    "RowDelta",
    "RowSelection",
    "TokenStreamer",
    "generate_texts",
    "prepare_row_delta",
    "row_deltas",
]
