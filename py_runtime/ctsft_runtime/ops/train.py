"""The `train` op: supervised fine-tuning of a loaded model, streaming step/epoch events.

A run that diverges (non-finite loss or gradient norm, `NonFinite` naming the step) never
leaves NaN weights behind unannounced: `ctsft`, `norms` and `lora` roll the model back to
its weights before the run (they keep that copy anyway); `full` keeps no copy, so the model
is marked invalid (`LoadedModel.invalidate`): train, evaluate, baseline and score refuse it
(`require_valid`), as should anything that would save it, until it is loaded again.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from ..errors import BadRequest, NonFinite
from .common import DataRef, field_names, prompt_for, resolve_data, resolve_like, task_fields, task_for, task_of
from .context import OpContext, Reply
from .fields import Fraction, Heads, Labels, NonNegativeFloat, Positive, PositiveFloat
from .registry import op
from .serving import refuse_named_deltas


class LoraBody(msgspec.Struct, forbid_unknown_fields=True):
    r: Positive = 8
    alpha: PositiveFloat = 16.0
    dropout: Fraction = 0.0
    targets: Labels | None = None


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
    warmup: NonNegativeFloat = 0.06
    weight_decay: NonNegativeFloat = 0.01
    clip: NonNegativeFloat = 1.0
    seed: int = 0
    max_length: int = 128
    loss: Literal["class", "vocab"] = "class"
    method: Literal["full", "ctsft", "norms", "lora"] = "full"
    # With several ranks: DDP, or FSDP2 for full and ctsft (training/parallel.py); one rank: no-op.
    parallel: Literal["ddp", "fsdp"] = "ddp"
    # Options of one method (zod's per-method forms): UNSET tells "not given" from a default,
    # so that e.g. `mask` with `full` is refused rather than ignored.
    circuit: str | None = None  # ctsft: a circuit file...
    heads: Heads | None = None  # ...or an explicit head list
    mask: Literal["hook", "delta"] | UnsetType = UNSET
    kv: Literal["group", "frozen"] | UnsetType = UNSET
    lora: LoraBody | UnsetType | None = UNSET

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
        for name in ("circuit", "heads", "mask", "kv", "lora"):
            if getattr(self, name) not in (None, UNSET) and name not in _METHOD_OPTIONS[self.method]:
                raise msgspec.ValidationError(f"{name} is not an option of method {self.method!r} - at `$.{name}`")
        if self.parallel == "fsdp" and self.method not in ("full", "ctsft"):
            raise msgspec.ValidationError(
                f"parallel 'fsdp' trains methods full and ctsft; {self.method} trains with 'ddp' - at `$.parallel`"
            )
        self.mask = "hook" if self.mask is UNSET else self.mask
        self.kv = "group" if self.kv is UNSET else self.kv
        if self.lora is UNSET:
            self.lora = LoraBody() if self.method == "lora" else None


_METHOD_OPTIONS: dict[str, tuple[str, ...]] = {
    "full": (),
    "ctsft": ("circuit", "heads", "mask", "kv"),
    "norms": ("mask",),
    "lora": ("lora",),
}


@op("train", TrainBody)
def train(ctx: OpContext, body: TrainBody) -> Reply:
    from ..models import label_token_ids
    from ..training import TrainConfig, train_sft
    from ..training.lora import LoraOptions
    from ..training.methods import prepare

    lm = ctx.state.get(ctx.state.models, "model", body.model, "model")
    lm.require_valid(body.model, "model")
    refuse_named_deltas(lm, body.model)
    task = task_of(lm, body.template)
    ds = resolve_data(ctx.state, body.data, "data", task.label_names if task else None, task_fields(lm, body.template))
    valid = resolve_like(ctx.state, body.valid, "valid", ds) if body.valid else None
    if len(ds.label_names) < 2:
        raise BadRequest(
            f"training needs at least 2 labels, {ds.source} has {ds.label_names}",
            path="data",
            remote_message=f"training needs at least 2 labels, {ds.source} has {len(ds.label_names)}",
        )
    fmt = prompt_for(task, body.template, body.verbalizer, field_names(ds))
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
        parallel=body.parallel,
    )
    heads, circuit = _heads(ctx, lm, body)
    lora = LoraOptions(**msgspec.structs.asdict(body.lora)) if body.lora else None
    prepared = prepare(
        lm,
        body.method,
        heads=heads,
        mask=body.mask,
        kv=body.kv,
        lora=lora,
        weight_decay=body.weight_decay,
        meta={"circuit": circuit},
    )
    try:
        result = train_sft(
            prepared.model,
            lm.tokenizer,
            ds,
            fmt,
            token_ids,
            cfg,
            valid=valid,
            emit=ctx.emit,
            check=ctx.check_cancelled,
            param_groups=prepared.param_groups,
            head_mask=prepared.head_mask,
        )
    except NonFinite as e:
        prepared.abort()
        raise _after_divergence(e, lm, body) from None
    except BaseException:
        prepared.abort()
        raise
    extra = prepared.finish()
    if prepared.trainable is not None:
        # Groups hold whole tensors under the hook mask; count the elements that can change.
        result["paramsTrainable"] = prepared.trainable()
        result["paramsFraction"] = result["paramsTrainable"] / result["paramsTotal"]
    # The model now answers this task in this format: saved checkpoints record it.
    lm.task = task_for(fmt, ds)
    # The model's info as it is now, so the SDK's handle is fresh without another call.
    return Reply({**result, **extra, "method": body.method, "model": lm.info()})


def _after_divergence(e: NonFinite, lm: Any, body: TrainBody) -> NonFinite:
    """The divergence error, saying what became of the weights (and marking them if invalid)."""
    if body.method == "full":
        lm.invalidate(e.message.split(":", 1)[0])  # "training diverged at step N of T (...)"
        fate = (
            f"The weights of model {body.model} are now invalid (full fine-tuning keeps no copy to roll back to): "
            "do not save it; train, evaluate, baseline and score refuse it until you release it and load the "
            "checkpoint again"
        )
    else:
        fate = f"Model {body.model} was rolled back to its weights before this run ({body.method} keeps that copy)"
    return NonFinite(f"{e.message}. {fate}.", detail=e.detail)


def _heads(ctx: OpContext, lm: Any, body: TrainBody) -> tuple[list[tuple[int, int]] | None, dict[str, Any] | None]:
    """The heads to train: from a circuit file (checked against this model) or a list."""
    from ..circuits import read_artifact
    from ..circuits.fingerprint import config_hash, weights_hash

    if body.method != "ctsft":
        return None, None  # circuit/heads with another method: refused while decoding
    if bool(body.circuit) == bool(body.heads):
        raise BadRequest("ctsft needs exactly one of circuit (a circuit file) or heads", path="circuit")
    if body.heads:
        return [tuple(h) for h in body.heads], {"strategy": "explicit", "heads": [list(h) for h in body.heads]}
    assert body.circuit is not None
    c = read_artifact(ctx.state.check_path(body.circuit, "circuit", must_exist=True), "circuit")
    fp = c["model"]["fingerprint"]
    if fp["config"] != config_hash(lm.model):
        raise BadRequest(
            f"circuit {body.circuit} was selected on a different architecture ({c['model']['family']} "
            f"{c['model']['layers']}x{c['model']['heads']})",
            path="circuit",
            remote_message=f"circuit {body.circuit} was selected on a different architecture (config fingerprint)",
        )
    if fp["weights"] != weights_hash(lm.model):
        raise BadRequest(
            f"circuit {body.circuit} was selected on other weights than this model's (score the model you train)",
            path="circuit",
        )
    if not c["heads"]:
        raise BadRequest(f"circuit {body.circuit} is empty", path="circuit")
    return [tuple(h) for h in c["heads"]], {k: c[k] for k in ("heads", "strategy", "rule", "seed", "path") if k in c}
