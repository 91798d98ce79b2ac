"""Models: loading HF checkpoints (directories, GGUF), building new ones, class logits."""

from .classify import class_logits, label_token_ids
from .devices import resolve_device, resolve_dtype
from .loading import LoadedModel, load_model
from .task import TASK_FILE, TaskConfig

__all__ = [
    "TASK_FILE",
    "LoadedModel",
    "TaskConfig",
    "class_logits",
    "label_token_ids",
    "load_model",
    "resolve_device",
    "resolve_dtype",
]
