"""How far a scorer can be trusted: its Spearman correlation with exact mean-ablation on (a
label-balanced subsample of) the discovery set, reported with every `score` call."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from ..data.loading import balanced_indices
from .ablation import ablation_scores
from .context import ScoreContext


def spearman(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """Spearman's rho with average ranks for ties; None when fewer than 2 finite pairs or
    either side is constant (no ranking to compare)."""
    a, b = a.flatten().double(), b.flatten().double()
    keep = a.isfinite() & b.isfinite()
    a, b = a[keep], b[keep]
    if a.numel() < 2:
        return None
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = (ra.pow(2).sum() * rb.pow(2).sum()).sqrt()
    return None if den == 0 else float((ra * rb).sum() / den)


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """0-based ranks, ties sharing their average rank."""
    _, inverse, counts = torch.unique(x, sorted=True, return_inverse=True, return_counts=True)
    first = torch.cumsum(counts, 0) - counts
    return (first + (counts - 1) / 2).double()[inverse]


def faithfulness(ctx: ScoreContext, per_example: torch.Tensor, examples: int) -> dict[str, Any]:
    """Spearman over the scored heads between `per_example` ([S, N], the chosen scorer) and
    mean-ablation, both averaged over the same label-balanced subsample of at most `examples`
    rows (all rows when the set is that small)."""
    started = time.perf_counter()
    n_cls = len(ctx.ds.label_names)
    per_class = min(ctx.ds.class_counts().values())
    if len(ctx.ds) > examples:
        per_class = min(per_class, max(1, examples // n_cls))
        rows = balanced_indices(ctx.ds, per_class, seed=0)
    else:
        rows = list(range(len(ctx.ds)))
    sub = dataclasses.replace(ctx, ds=ctx.ds.select(rows), notes={})
    reference = ablation_scores(sub).mean(1)
    chosen = per_example[:, rows].mean(1)
    return {
        "reference": "ablation",
        "spearman": spearman(chosen, reference),
        "examples": len(rows),
        "heads": len(ctx.sources),
        "seconds": time.perf_counter() - started,
    }
