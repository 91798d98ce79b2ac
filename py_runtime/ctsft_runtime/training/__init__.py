"""Training: the supervised fine-tuning loop, schedules, explicit optimizer groups."""

from .masking import HeadMask, active_head_mask, apply_head_mask
from .memory import peak_memory_bytes, reset_peak_memory
from .optim import full_parameter_groups
from .sft import TrainConfig, train_sft

__all__ = [
    "HeadMask",
    "TrainConfig",
    "active_head_mask",
    "apply_head_mask",
    "full_parameter_groups",
    "peak_memory_bytes",
    "reset_peak_memory",
    "train_sft",
]
