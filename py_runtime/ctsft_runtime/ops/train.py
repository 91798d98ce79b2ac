"""The `train` op: supervised fine-tuning of a loaded model, streaming step/epoch events."""

from __future__ import annotations

from typing import Literal

import msgspec

from ..errors import BadRequest
from .common import DataRef, prompt_for, resolve_data
from .context import OpContext, Reply
from .registry import op


class TrainBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    model: str
    data: DataRef
    valid: DataRef | None = None
    template: str | None = None
    verbalizer: dict[str, str] | None = None
    epochs: int = 3
    lr: float = 5e-4
    batch_size: int = 16
    accumulate: int = 1
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    warmup: float = 0.06
    weight_decay: float = 0.01
    clip: float = 1.0
    seed: int = 0
    max_length: int = 128
    loss: Literal["class", "vocab"] = "class"

    def __post_init__(self) -> None:
        for name, value, low in (
            ("epochs", self.epochs, 1),
            ("batchSize", self.batch_size, 1),
            ("accumulate", self.accumulate, 1),
            ("maxLength", self.max_length, 8),
        ):
            if value < low:
                raise msgspec.ValidationError(f"{name} must be at least {low}, got {value} - at `$.{name}`")
        if not self.lr > 0:
            raise msgspec.ValidationError(f"lr must be positive, got {self.lr} - at `$.lr`")


@op("train", TrainBody)
def train(ctx: OpContext, body: TrainBody) -> Reply:
    from ..models import TaskConfig, label_token_ids
    from ..training import TrainConfig, train_sft

    lm = ctx.state.get(ctx.state.models, "model", body.model, "model")
    model_labels = lm.task.label_names if lm.task else None
    ds = resolve_data(ctx.state, body.data, "data", model_labels)
    valid = resolve_data(ctx.state, body.valid, "valid", ds.label_names) if body.valid else None
    if len(ds.label_names) < 2:
        raise BadRequest(f"training needs at least 2 labels, {ds.source} has {ds.label_names}", path="data")
    fmt = prompt_for(lm, body.template, body.verbalizer)
    token_ids = label_token_ids(lm.tokenizer, fmt, ds.label_names)
    cfg = TrainConfig(
        epochs=body.epochs,
        lr=body.lr,
        batch_size=body.batch_size,
        accumulate=body.accumulate,
        schedule=body.schedule,
        warmup=body.warmup,
        weight_decay=body.weight_decay,
        clip=body.clip,
        seed=body.seed,
        max_length=body.max_length,
        loss=body.loss,
    )
    result = train_sft(
        lm.model, lm.tokenizer, ds, fmt, token_ids, cfg, valid=valid, emit=ctx.emit, check=ctx.check_cancelled
    )
    # The model now answers this task in this format: saved checkpoints record it.
    lm.task = TaskConfig(fmt.template, dict(fmt.verbalizer) if fmt.verbalizer else None, list(ds.label_names))
    return Reply({**result, "method": "full"})
