"""Mechanism discovery ops: the mean baseline and head relevance scoring."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from ..errors import BadRequest
from .common import DataRef, field_names, prompt_for, resolve_data, task_fields, task_of
from .context import OpContext, Reply
from .fields import Heads, MaxLength, Positive
from .registry import op
from .tensors import from_torch

Method = Literal["cdt", "ablation", "attribution", "cdt-unsigned"]


class FaithfulnessBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    examples: Annotated[int, msgspec.Meta(ge=2)] = (
        64  # label-balanced subsample of the discovery set that ablation runs on
    )


class BaselineBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    model: str
    data: DataRef
    template: str | None = None
    verbalizer: dict[str, str] | None = None
    batch_size: Positive = 32
    max_length: MaxLength = 128


class ScoreBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    model: str
    data: DataRef
    method: Method = "cdt"
    baseline: str | None = None  # a handle from `baseline`; default: computed from `data`
    heads: Heads | None = None  # default: every head
    template: str | None = None
    verbalizer: dict[str, str] | None = None
    batch_size: Positive = 32
    max_length: MaxLength = 128
    chunk: Positive = 16
    # cdt only: how later layers' attention patterns split (see scoring/cdt/pairs.py).
    pattern: Literal["decomposed", "frozen"] = "decomposed"
    # Spearman with exact mean-ablation on a subsample (True: the default subsample; False: off).
    faithfulness: bool | FaithfulnessBody = True
    out: str | None = None


@dataclass
class Baseline:
    model: str  # the model handle it was computed on
    mu: Any  # torch.Tensor [layers, heads, head_dim]
    n: int
    class_counts: dict[str, int]


def _prepare(ctx: OpContext, body: BaselineBody | ScoreBody):
    from ..models import label_token_ids
    from ..scoring import check_discovery_set

    lm = ctx.state.get(ctx.state.models, "model", body.model, "model")
    lm.require_valid(body.model, "model")
    task = task_of(lm, body.template)
    ds = resolve_data(ctx.state, body.data, "data", task.label_names if task else None, task_fields(lm, body.template))
    check_discovery_set(ds)
    fmt = prompt_for(task, body.template, body.verbalizer, field_names(ds))
    return lm, ds, fmt, label_token_ids(lm.tokenizer, fmt, ds.label_names)


def _baseline(ctx: OpContext, lm: Any, ds: Any, fmt: Any, body: BaselineBody | ScoreBody) -> Any:
    from ..scoring import mean_baseline

    def progress(done: int, total: int) -> None:
        ctx.emit({"type": "progress", "phase": "baseline", "done": done, "total": total})

    return mean_baseline(
        lm.model,
        lm.head_map,
        lm.tokenizer,
        ds,
        fmt,
        batch_size=body.batch_size,
        max_length=body.max_length,
        check=ctx.check_cancelled,
        progress=progress,
    )


@op("baseline", BaselineBody)
def baseline(ctx: OpContext, body: BaselineBody) -> Reply:
    lm, ds, fmt, _ = _prepare(ctx, body)
    mu = _baseline(ctx, lm, ds, fmt, body)
    handle = ctx.state.add(ctx.state.baselines, "b", Baseline(body.model, mu, len(ds), ds.class_counts()))
    return Reply({"handle": handle, "n": len(ds), "classCounts": ds.class_counts()}, {"mean": from_torch(mu)})


@op("score", ScoreBody)
def score(ctx: OpContext, body: ScoreBody) -> Reply:
    from ..circuits import fingerprint, param_table, write_json
    from ..circuits.artifact import SCORES_VERSION, nan_to_none, stamp
    from ..scoring import ScoreContext, score_heads
    from ..scoring.faithfulness import faithfulness

    opts = None  # faithfulness check: ablation itself needs none
    if body.faithfulness is not False and body.method != "ablation":
        opts = body.faithfulness if isinstance(body.faithfulness, FaithfulnessBody) else FaithfulnessBody()
        if opts.examples < 2:
            raise BadRequest(
                f"faithfulness.examples must be at least 2, got {opts.examples}", path="faithfulness.examples"
            )
    lm, ds, fmt, token_ids = _prepare(ctx, body)
    hm = lm.head_map
    if body.baseline is not None:
        b = ctx.state.get(ctx.state.baselines, "baseline", body.baseline, "baseline")
        if b.model != body.model:
            raise BadRequest(
                f"baseline {body.baseline} was computed on model {b.model}, not {body.model}", path="baseline"
            )
        mu = b.mu
    else:
        mu = _baseline(ctx, lm, ds, fmt, body)
    sources = (
        [tuple(h) for h in body.heads]
        if body.heads is not None
        else [(lyr, h) for lyr in range(hm.n_layers) for h in range(hm.n_heads)]
    )

    def progress(done: int, total: int, phase: str = "scoring") -> None:
        ctx.emit({"type": "progress", "phase": phase, "done": done, "total": total})

    sctx = ScoreContext(
        lm.model,
        hm,
        lm.tokenizer,
        ds,
        fmt,
        token_ids,
        mu.to(lm.device),
        sources,
        batch_size=body.batch_size,
        max_length=body.max_length,
        chunk=body.chunk,
        check=ctx.check_cancelled,
        progress=progress,
        settings={"pattern": body.pattern},
    )
    result = score_heads(body.method, sctx)
    faith = None
    if opts is not None:
        sctx.progress = lambda done, total: progress(done, total, "faithfulness")
        faith = faithfulness(sctx, result.per_example, opts.examples)
    stability = result.notes.get("stability")
    settings = {
        "batchSize": body.batch_size,
        "maxLength": body.max_length,
        "template": fmt.template,
        "verbalizer": dict(fmt.verbalizer) if fmt.verbalizer else None,
        **({"pattern": body.pattern} if body.method.startswith("cdt") else {}),
    }
    out: dict[str, Any] = {
        **stamp("scores", SCORES_VERSION),
        "method": body.method,
        "settings": settings,
        "n": len(ds),
        "labels": ds.label_names,
        "dataset": ds.source,
        "seconds": result.seconds,
        "scores": nan_to_none(result.scores.tolist()),
        "perClass": [nan_to_none(c) for c in result.per_class.tolist()],
        "stability": None if stability is None else stability.to_json(),
        "faithfulness": faith,
        "model": {**_geometry(lm), "fingerprint": fingerprint(lm.model), "params": param_table(lm.model, hm)},
    }
    if body.out is not None:
        out["path"] = str(write_json(ctx.state.check_path(body.out, "out"), out))
    tensors = {"scores": from_torch(result.scores), "perClass": from_torch(result.per_class)}
    return Reply(out, tensors)


def _geometry(lm: Any) -> dict[str, Any]:
    info = lm.info()
    return {k: info[k] for k in ("source", "family", "layers", "heads", "kvHeads", "headDim", "dModel")}
