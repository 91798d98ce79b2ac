"""`ablation`: the exact effect of mean-ablating a head, margin(x) − margin(x with z_s := μ_s)."""

from __future__ import annotations

import torch

from ..heads import head_gates
from ..models.classify import class_logits
from .context import ScoreContext
from .margins import margin


@torch.no_grad()
def ablation_scores(ctx: ScoreContext) -> torch.Tensor:
    columns = []
    done, total = 0, len(ctx.ds) * len(ctx.sources)
    for enc, gold in ctx.batches():
        base = margin(class_logits(ctx.model, enc, ctx.token_ids), gold)  # [B]
        rows = []
        for layer, head in ctx.sources:
            ctx.check()
            with head_gates(ctx.head_map, replace={layer: {head: ctx.mu[layer, head]}}):
                rows.append(base - margin(class_logits(ctx.model, enc, ctx.token_ids), gold))
            done += len(gold)
            ctx.progress(done, total)
        columns.append(torch.stack(rows))  # [S, B]
    return torch.cat(columns, dim=1).float().cpu()
