"""Scorers by name, and the one entry point that turns per-example scores into R(s)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import BadRequest
from .ablation import ablation_scores
from .attribution import attribution_scores
from .cdt_scores import cdt_scores, cdt_unsigned_scores
from .context import ScoreContext, Scorer

SCORERS: dict[str, Scorer] = {
    "cdt": cdt_scores,
    "ablation": ablation_scores,
    "attribution": attribution_scores,
    "cdt-unsigned": cdt_unsigned_scores,
}


@dataclass
class ScoreResult:
    method: str
    scores: torch.Tensor  # [layers, heads]; NaN for heads not scored
    per_class: torch.Tensor  # [classes, layers, heads]: mean score over each class's examples
    per_example: torch.Tensor  # [sources, examples]
    seconds: float
    notes: dict[str, Any]  # what the scorer reported besides scores (cdt: "stability")


def score_heads(method: str, ctx: ScoreContext) -> ScoreResult:
    if method not in SCORERS:
        raise BadRequest(f"unknown scoring method {method!r}; use one of {sorted(SCORERS)}", path="method")
    if not ctx.sources:
        raise BadRequest("no source heads to score", path="heads")
    hm = ctx.head_map
    for layer, head in ctx.sources:
        hm.check_layer(layer)
        hm.check_head(head)
    started = time.perf_counter()
    per_example = SCORERS[method](ctx)  # [S, N]
    seconds = time.perf_counter() - started
    labels = torch.tensor(ctx.ds.labels)
    n_cls = len(ctx.ds.label_names)
    scores = torch.full((hm.n_layers, hm.n_heads), float("nan"))
    per_class = torch.full((n_cls, hm.n_layers, hm.n_heads), float("nan"))
    for i, (layer, head) in enumerate(ctx.sources):
        scores[layer, head] = per_example[i].mean()
        for c in range(n_cls):
            per_class[c, layer, head] = per_example[i][labels == c].mean()
    return ScoreResult(method, scores, per_class, per_example, seconds, ctx.notes)
