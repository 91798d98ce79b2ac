"""Circuit selection op: from a scores file to a self-describing circuit artifact."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from .context import OpContext, Reply
from .fields import NonEmpty, Positive
from .registry import op


class SelectBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    scores: NonEmpty  # path of a scores file written by `score`
    strategy: Literal["circuit", "low", "random", "explicit"] = "circuit"
    top_k: Positive | None = None
    budget: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None
    threshold: float | None = None
    heads: list[tuple[int, int]] | None = None  # for `explicit`
    seed: int = 0
    out: str | None = None


@op("circuit.select", SelectBody)
def select(ctx: OpContext, body: SelectBody) -> Reply:
    from ..circuits import circuit_params, read_artifact, select_heads, write_json
    from ..circuits.artifact import CIRCUIT_VERSION, none_to_nan, stamp

    src = read_artifact(ctx.state.check_path(body.scores, "scores", must_exist=True), "scores")
    params = src["model"]["params"]
    heads = select_heads(
        none_to_nan(src["scores"]),
        params,
        strategy=body.strategy,
        top_k=body.top_k,
        budget=body.budget,
        threshold=body.threshold,
        explicit=body.heads,
        seed=body.seed,
    )
    rule = {
        k: v for k, v in (("topK", body.top_k), ("budget", body.budget), ("threshold", body.threshold)) if v is not None
    }
    circuit = {
        **stamp("circuit", CIRCUIT_VERSION),
        "heads": [list(h) for h in heads],
        "strategy": body.strategy,
        "rule": rule,
        "seed": body.seed,
        "scorer": {k: src[k] for k in ("method", "settings", "n", "labels", "dataset")},
        "scores": src["scores"],
        "params": circuit_params(heads, params),
        "model": src["model"],
    }
    if body.out is not None:
        circuit["path"] = str(write_json(ctx.state.check_path(body.out, "out"), circuit))
    return Reply(circuit)
