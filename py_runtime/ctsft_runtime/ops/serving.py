"""Serving ops: named deltas on one base model (`deltas.load|unload|list`), class predictions
(`predict`) and text generation (`generate`), each row with its own delta or none.

Named deltas live in the model's state (`lm.extra["named_deltas"]`), so releasing the model
frees them and each tenant sees only its own. They are checked against the base weights at
load time only, which is why the ops that change weights refuse a model holding any
(`refuse_named_deltas`, called by `train`, `delta.apply`, `delta.revert`).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from ..errors import BadRequest, NotFound
from .common import DataRef, field_names, prompt_for, resolve_data, task_fields
from .context import OpContext, Reply
from .fields import (
    DeltaChoice,
    DeltaName,
    FieldName,
    Labels,
    MaxLength,
    NonEmpty,
    NonNegativeFloat,
    Positive,
    SamplingSeed,
)
from .registry import op

NAMED = "named_deltas"
# The base's weights fingerprint, kept while it holds named deltas: its weights cannot change
# then (refuse_named_deltas), so a further load needs no new hash of every weight.
BASE_FINGERPRINT = "named_deltas_base"


@dataclass
class NamedDelta:
    row: Any  # serving.RowDelta (torch-backed; imported lazily)
    path: str

    def info(self, name: str) -> dict[str, Any]:
        r = self.row
        return {
            "name": name,
            "path": self.path,
            "entries": r.entries,
            "params": r.params,
            "fraction": r.fraction,
            "meta": r.meta,
        }


def named_deltas(lm: Any) -> dict[str, NamedDelta]:
    return lm.extra.setdefault(NAMED, {})


def refuse_named_deltas(lm: Any, handle: str, field: str = "model") -> None:
    """Refuse to change the weights of a model that serves named deltas: each was checked
    against these exact weights when it was loaded, and would silently apply to others."""
    names = sorted(lm.extra.get(NAMED) or {})
    if names:
        raise BadRequest(
            f"model {handle} has named deltas loaded ({', '.join(names)}); unload its deltas first "
            "(deltas.unload): they were checked against its current weights",
            path=field,
        )


class DeltasLoadBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    model: str
    name: DeltaName
    delta: NonEmpty  # a delta directory, or a checkpoint directory holding `ctsft-delta/`
    overwrite: bool = False


class DeltasNameBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    model: str
    name: DeltaName


class DeltasListBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    model: str


@op("deltas.load", DeltasLoadBody)
def deltas_load(ctx: OpContext, body: DeltasLoadBody) -> Reply:
    from ..circuits.fingerprint import weights_hash
    from ..models.saving import DELTA_DIR
    from ..serving import prepare_row_delta
    from .models import _load_delta

    lm = ctx.state.get(ctx.state.models, "model", body.model, "model")
    lm.require_valid(body.model, "model")
    table = named_deltas(lm)
    if body.name in table and not body.overwrite:
        raise BadRequest(
            f"model {body.model} already has a delta named {body.name!r} (pass overwrite to replace it)", path="name"
        )
    delta = _load_delta(ctx, body.delta)  # path rules (remote confinement) and the file checks
    if not table:
        lm.extra[BASE_FINGERPRINT] = weights_hash(lm.model)
    # Fingerprint check: the model must be the delta's base.
    row = prepare_row_delta(lm.model, delta, lm.extra[BASE_FINGERPRINT])
    folder = ctx.state.check_path(body.delta, "delta")
    table[body.name] = NamedDelta(row, str(folder / DELTA_DIR if (folder / DELTA_DIR).is_dir() else folder))
    return Reply(table[body.name].info(body.name))


@op("deltas.unload", DeltasNameBody)
def deltas_unload(ctx: OpContext, body: DeltasNameBody) -> Reply:
    lm = ctx.state.get(ctx.state.models, "model", body.model, "model")
    table = named_deltas(lm)
    unloaded = table.pop(body.name, None) is not None
    if not table:
        lm.extra.pop(BASE_FINGERPRINT, None)  # the weights may change again
    return Reply({"unloaded": unloaded})


@op("deltas.list", DeltasListBody)
def deltas_list(ctx: OpContext, body: DeltasListBody) -> Reply:
    lm = ctx.state.get(ctx.state.models, "model", body.model, "model")
    return Reply({"deltas": [d.info(name) for name, d in named_deltas(lm).items()]})


def _row_names(lm: Any, choice: str | list[str | None] | None, n: int, what: str) -> list[str | None] | None:
    """Each row's delta name (None: the base), checked against the model's named deltas."""
    if choice is None:
        return None
    table = named_deltas(lm)

    def known(name: str, path: str) -> str:
        if name not in table:
            loaded = ", ".join(sorted(table)) or "none"
            raise NotFound(f"no delta named {name!r} on this model (loaded: {loaded})", path=path)
        return name

    if isinstance(choice, str):
        return [known(choice, "delta")] * n
    if len(choice) != n:
        raise BadRequest(
            f"delta has {len(choice)} entries for {n} {what}: give one per row, or a single name for all", path="delta"
        )
    return [None if name is None else known(name, f"delta.{i}") for i, name in enumerate(choice)]


@contextlib.contextmanager
def _deltas_for(lm: Any, rows: list[str | None] | None) -> Any:
    """Hooks for the deltas `rows` use, for one request; yields a RowSelection or None."""
    used = {name for name in rows or () if name is not None}
    if not used:
        yield None
        return
    from ..serving import row_deltas

    table = named_deltas(lm)
    with row_deltas(lm.model, {name: table[name].row for name in used}) as selection:
        yield selection


class PredictBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    model: str
    # Texts, or records of named fields for a template with one slot per field (all alike).
    texts: list[str | dict[FieldName, str]] | None = None
    data: DataRef | None = None
    delta: DeltaChoice | None = None
    template: str | None = None
    verbalizer: dict[str, str] | None = None
    labels: Labels | None = None
    batch_size: Positive = 32
    max_length: MaxLength = 128


@op("predict", PredictBody)
def predict(ctx: OpContext, body: PredictBody) -> Reply:
    import torch

    from ..evaluation import logit_batches
    from ..models import label_token_ids

    started = time.perf_counter()
    if (body.texts is None) == (body.data is None):
        raise BadRequest("give exactly one of texts and data", path="texts")
    lm = ctx.state.get(ctx.state.models, "model", body.model, "model")
    lm.require_valid(body.model, "model")
    if body.texts is not None:
        texts, fields = body.texts, _record_fields(body.texts, task_fields(lm))
    else:
        assert body.data is not None
        ds = resolve_data(ctx.state, body.data, "data", None, task_fields(lm))
        texts, fields = ds.texts, field_names(ds)
    labels = body.labels or (lm.task.label_names if lm.task else None)
    if not labels:
        raise BadRequest(
            f"model {body.model} has no task in its ctsft.json: give the label names (labels)", path="labels"
        )
    rows = _row_names(lm, body.delta, len(texts), "texts")
    fmt = prompt_for(lm.task, body.template, body.verbalizer, fields)
    token_ids = label_token_ids(lm.tokenizer, fmt, labels)
    predictions: list[dict[str, Any]] = []
    with _deltas_for(lm, rows) as selection:

        def before(start: int, stop: int) -> None:
            if selection is not None and rows is not None:
                selection.select(rows[start:stop])

        for batch in logit_batches(
            lm.model,
            lm.tokenizer,
            texts,
            fmt,
            token_ids,
            batch_size=body.batch_size,
            max_length=body.max_length,
            check=ctx.check_cancelled,
            before=before,
        ):
            logits = batch.logits
            probs = torch.softmax(logits, dim=-1)
            for j in range(len(logits)):
                index = int(logits[j].argmax())
                predictions.append(
                    {
                        "label": labels[index],
                        "index": index,
                        "probs": probs[j].tolist(),
                        "logits": logits[j].tolist(),
                        "truncated": batch.truncated[j],
                    }
                )
            ctx.emit({"type": "batch", "done": len(predictions), "total": len(texts)})
    return Reply({"labels": list(labels), "predictions": predictions, "seconds": time.perf_counter() - started})


def _record_fields(texts: list[str | dict[str, str]], default: dict[str, str] | None) -> list[str] | None:
    """The field names of `texts` (None: plain texts); every row must be of one kind, with
    the same fields. No rows: the model's task decides (so an empty call is always valid)."""
    if not texts:
        return None if default is None else list(default)
    first = texts[0]
    names = None if isinstance(first, str) else list(first)
    for i, t in enumerate(texts):
        if isinstance(t, str) != (names is None) or (names is not None and set(t) != set(names)):
            got = "a plain text" if isinstance(t, str) else f"fields {sorted(t)}"
            want = "a plain text" if names is None else f"fields {sorted(names)}"
            raise BadRequest(f"texts.{i} is {got}, texts.0 is {want}: give every row alike", path=f"texts.{i}")
    return names


class GenerateBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    model: str
    prompts: Annotated[list[str], msgspec.Meta(min_length=1)]
    max_new_tokens: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 64
    temperature: NonNegativeFloat = 0.0
    top_p: Annotated[float, msgspec.Meta(gt=0, le=1)] = 1.0
    top_k: Positive | None = None
    stop: Annotated[list[NonEmpty], msgspec.Meta(min_length=1)] | None = None
    seed: SamplingSeed | None = None
    delta: DeltaChoice | None = None


# Token events go out at most this often: each one wakes the I/O thread and the client, which
# on a small model on a CPU cost more than the decoding (see TokenStreamer). 50 ms is below what
# a reader notices; a slow model (> 50 ms a token) still streams every token.
_TOKEN_INTERVAL_S = 0.05


@op("generate", GenerateBody)
def generate(ctx: OpContext, body: GenerateBody) -> Reply:
    from ..serving import generate_texts

    started = time.perf_counter()
    lm = ctx.state.get(ctx.state.models, "model", body.model, "model")
    lm.require_valid(body.model, "model")
    rows = _row_names(lm, body.delta, len(body.prompts), "prompts")

    def on_piece(index: int, text: str, tokens: int) -> None:
        ctx.emit({"type": "token", "index": index, "text": text, "tokens": tokens})

    with _deltas_for(lm, rows) as selection:
        if selection is not None and rows is not None:
            selection.select(rows)
        outputs = generate_texts(
            lm.model,
            lm.tokenizer,
            body.prompts,
            max_new_tokens=body.max_new_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            top_k=body.top_k,
            stop=body.stop,
            seed=body.seed,
            on_piece=on_piece,
            interval_s=_TOKEN_INTERVAL_S,
            check=ctx.check_cancelled,
        )
    return Reply(
        {
            "outputs": [{"text": o.text, "tokens": o.tokens, "finishReason": o.finish_reason} for o in outputs],
            "seconds": time.perf_counter() - started,
        }
    )
