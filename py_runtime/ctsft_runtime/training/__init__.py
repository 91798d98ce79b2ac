"""Training: the supervised fine-tuning loop, schedules, explicit optimizer groups."""

from .memory import peak_memory_bytes, reset_peak_memory
from .optim import full_parameter_groups
from .sft import TrainConfig, train_sft

__all__ = ["TrainConfig", "full_parameter_groups", "peak_memory_bytes", "reset_peak_memory", "train_sft"]
