"""The `evaluate` op: accuracy, macro-F1, per-class counts and confusion on several datasets,
and optionally each dataset's language-model loss on its raw texts."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import msgspec

from ..errors import BadRequest
from .common import DataRef, field_names, prompt_for, resolve_data, task_fields, task_of
from .context import OpContext, Reply
from .fields import Heads, MaxLength, Positive
from .registry import op


class Ablation(msgspec.Struct, forbid_unknown_fields=True):
    """Mean-ablate these heads (z := μ from `baseline`) while evaluating: circuit faithfulness."""

    heads: Heads
    baseline: str


class EvaluateBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    model: str
    data: Annotated[list[DataRef], msgspec.Meta(min_length=1)]
    template: str | None = None
    verbalizer: dict[str, str] | None = None
    batch_size: Positive = 64
    max_length: MaxLength = 128
    predictions: bool = False
    ablate: Ablation | None = None
    lm_loss: bool = False


@op("evaluate", EvaluateBody)
def evaluate(ctx: OpContext, body: EvaluateBody) -> Reply:

    from ..evaluation import classification_report, lm_loss, predict
    from ..heads import head_gates
    from ..models import label_token_ids

    if not body.data:
        raise BadRequest("data is empty: give at least one dataset", path="data")
    lm = ctx.state.get(ctx.state.models, "model", body.model, "model")
    lm.require_valid(body.model, "model")
    replace = _ablation(ctx, lm, body.model, body.ablate) if body.ablate else None
    task = task_of(lm, body.template)
    results = []
    for i, ref in enumerate(body.data):
        ds = resolve_data(
            ctx.state, ref, f"data.{i}", task.label_names if task else None, task_fields(lm, body.template)
        )
        fmt = prompt_for(task, body.template, body.verbalizer, field_names(ds))  # datasets may differ in fields
        token_ids = label_token_ids(lm.tokenizer, fmt, ds.label_names)
        with head_gates(lm.head_map, replace=replace) if replace else contextlib.nullcontext():
            # The same ablation (z := μ at every position) holds for the LM loss below.
            preds, logits = predict(
                lm.model,
                lm.tokenizer,
                ds,
                fmt,
                token_ids,
                batch_size=body.batch_size,
                max_length=body.max_length,
                check=ctx.check_cancelled,
            )
            lm_result = (
                lm_loss(
                    lm.model,
                    lm.tokenizer,
                    ds.texts,
                    fields=field_names(ds),
                    batch_size=body.batch_size,
                    max_length=body.max_length,
                    check=ctx.check_cancelled,
                    source=ds.source,
                    path=f"data.{i}",
                )
                if body.lm_loss
                else None
            )
        report = classification_report(ds.labels, preds, ds.label_names)
        report.update({"dataset": ds.source, "labels": ds.label_names})
        if lm_result is not None:
            report.update({"lmLoss": lm_result.loss, "lmTokens": lm_result.tokens})
        if body.predictions:
            report["predictions"] = [
                {"index": j, "gold": ds.labels[j], "pred": preds[j], "logits": logits[j].tolist()}
                for j in range(len(ds))
            ]
        results.append(report)
        ctx.emit({"type": "dataset", "index": i, "dataset": ds.source, "accuracy": report["accuracy"]})
    return Reply({"results": results})


def _ablation(ctx: OpContext, lm: Any, model: str, ablate: Ablation) -> dict[int, dict[int, Any]]:
    b = ctx.state.get(ctx.state.baselines, "baseline", ablate.baseline, "ablate.baseline")
    if b.model != model:
        raise BadRequest(
            f"baseline {ablate.baseline} was computed on model {b.model}, not {model}", path="ablate.baseline"
        )
    replace: dict[int, dict[int, Any]] = {}
    for i, (layer, head) in enumerate(ablate.heads):
        if not (0 <= layer < lm.head_map.n_layers and 0 <= head < lm.head_map.n_heads):
            raise BadRequest(f"head ({layer}, {head}) is outside the model", path=f"ablate.heads.{i}")
        replace.setdefault(layer, {})[head] = b.mu[layer, head].to(lm.device)
    return replace
