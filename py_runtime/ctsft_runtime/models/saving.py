"""Save a held model as a plain Hugging Face checkpoint directory, atomically."""

from __future__ import annotations

from pathlib import Path

from .atomic import atomic_dir
from .loading import LoadedModel
from .task import TASK_FILE


def save_checkpoint(lm: LoadedModel, out: Path) -> Path:
    """Weights as safetensors, the tokenizer, and `ctsft.json` (the task) when known. The
    directory appears complete or not at all; an existing one is replaced."""
    with atomic_dir(out) as tmp:
        lm.model.save_pretrained(tmp, safe_serialization=True)
        lm.tokenizer.save_pretrained(tmp)
        if lm.task is not None:
            (tmp / TASK_FILE).write_text(lm.task.to_json())
    return out
