"""Ops: one module per op family. Importing this package registers every op in `OPS`.

Op modules import torch lazily (inside handlers) so `hello` and heartbeats answer at once.
"""

from . import circuits, data, evaluate, models, scoring, serving, system, train
from .context import OpContext, Reply
from .registry import OPS, OpSpec, op

__all__ = [
    "OPS",
    "OpContext",
    "OpSpec",
    "Reply",
    "circuits",
    "data",
    "evaluate",
    "models",
    "op",
    "scoring",
    "serving",
    "system",
    "train",
]
