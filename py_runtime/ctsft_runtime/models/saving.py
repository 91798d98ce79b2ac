"""Save a held model as a plain Hugging Face checkpoint directory, atomically."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from .atomic import atomic_dir
from .loading import LoadedModel
from .task import TASK_FILE

DELTA_DIR = "ctsft-delta"
ADAPTER_DIR = "lora-adapter"


def save_checkpoint(
    lm: LoadedModel,
    out: Path,
    *,
    overwrite: bool = False,
    protected: Iterable[str | os.PathLike[str] | None] = (),
    field: str = "out",
) -> dict[str, str]:
    """Weights as safetensors, the tokenizer, `ctsft.json` (the task) when known, and what the
    last training left beside the weights: a CT-SFT run's sparse delta (`ctsft-delta/`) or a
    LoRA run's peft adapter (`lora-adapter/`). The directory appears complete or not at all.

    `out` must be absent, empty or a checkpoint ctsft wrote, unless `overwrite` (the output
    rule of `models.atomic`; `protected` paths and their parents are never replaced)."""
    written = {"checkpoint": str(out)}
    with atomic_dir(out, kind="checkpoint", overwrite=overwrite, protected=protected, field=field) as tmp:
        lm.model.save_pretrained(tmp)
        lm.tokenizer.save_pretrained(tmp)
        if lm.task is not None:
            (tmp / TASK_FILE).write_text(lm.task.to_json())
        delta = lm.extra.get("delta")
        if delta is not None:
            from ..artifacts import save_delta

            save_delta(delta, tmp / DELTA_DIR)
            written["delta"] = str(out / DELTA_DIR)
        adapter = lm.extra.get("adapter")
        if adapter is not None:
            shutil.copytree(adapter, tmp / ADAPTER_DIR)
            written["adapter"] = str(out / ADAPTER_DIR)
    return written
