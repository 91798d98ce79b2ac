"""Circuit selection (DESIGN 2.5): a global ranking of heads, cut by top-K, a parameter
budget, or a score threshold, under one of four strategies."""

from __future__ import annotations

import math
import random
from typing import Any, Literal

from ..errors import BadRequest

Strategy = Literal["circuit", "low", "random", "explicit"]
Head = tuple[int, int]


def rank(scores: list[list[float]], strategy: Strategy, seed: int = 0) -> list[Head]:
    """All scored heads in selection order. `circuit`: highest R first (pushes toward the
    answer); `low`: smallest |R| first (the paper's near-zero heads); `random`: seeded."""
    heads = [(lyr, h) for lyr, row in enumerate(scores) for h, s in enumerate(row) if not math.isnan(s)]
    if strategy == "circuit":
        return sorted(heads, key=lambda lh: (-scores[lh[0]][lh[1]], lh))
    if strategy == "low":
        return sorted(heads, key=lambda lh: (abs(scores[lh[0]][lh[1]]), lh))
    if strategy == "random":
        order = sorted(heads)
        random.Random(seed).shuffle(order)
        return order
    raise BadRequest(f"strategy {strategy!r} has no ranking", path="strategy")


def select_heads(
    scores: list[list[float]],
    params: dict[str, Any],
    *,
    strategy: Strategy,
    top_k: int | None = None,
    budget: float | None = None,
    threshold: float | None = None,
    explicit: list[Head] | None = None,
    seed: int = 0,
) -> list[Head]:
    n_layers, n_heads = len(scores), len(scores[0]) if scores else 0
    if strategy == "explicit":
        if not explicit:
            raise BadRequest("strategy 'explicit' needs a non-empty heads list", path="heads")
        for i, (lyr, h) in enumerate(explicit):
            if not (0 <= lyr < n_layers and 0 <= h < n_heads):
                raise BadRequest(f"head ({lyr}, {h}) is outside {n_layers} layers × {n_heads} heads", path=f"heads.{i}")
        return sorted(set(explicit))
    rules = [r for r in (top_k, budget, threshold) if r is not None]
    if len(rules) != 1:
        raise BadRequest("give exactly one of topK, budget, threshold", path="topK")
    order = rank(scores, strategy, seed)
    if top_k is not None:
        if top_k < 1 or top_k > len(order):
            raise BadRequest(f"topK must be in 1..{len(order)} (scored heads), got {top_k}", path="topK")
        return sorted(order[:top_k])
    if budget is not None:
        total, norms = params["total"], params["norms"]
        if not 0 < budget <= 1:
            raise BadRequest(f"budget is a fraction of the model's parameters in (0, 1], got {budget}", path="budget")
        if norms / total > budget:
            raise BadRequest(
                f"budget {budget:.4%} is below what the norms alone take ({norms / total:.4%}); raise it",
                path="budget",
            )
        chosen, used = [], norms
        for lyr, h in order:
            cost = params["perHead"][lyr][h]
            if (used + cost) / total > budget:
                break
            chosen.append((lyr, h))
            used += cost
        if not chosen:
            raise BadRequest(f"budget {budget:.4%} leaves room for no head beyond the norms", path="budget")
        return sorted(chosen)
    assert threshold is not None
    if strategy == "random":
        raise BadRequest("a threshold means nothing for random selection; use topK or budget", path="threshold")
    keep = [
        (lyr, h)
        for lyr, h in order
        if (abs(scores[lyr][h]) <= threshold if strategy == "low" else scores[lyr][h] >= threshold)
    ]
    if not keep:
        raise BadRequest(f"no head passes threshold {threshold}", path="threshold")
    return sorted(keep)


def circuit_params(heads: list[Head], params: dict[str, Any]) -> dict[str, Any]:
    head_total = sum(params["perHead"][lyr][h] for lyr, h in heads)
    trainable = head_total + params["norms"]
    return {
        "heads": head_total,
        "norms": params["norms"],
        "trainable": trainable,
        "total": params["total"],
        "fraction": trainable / params["total"],
    }
