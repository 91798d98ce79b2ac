"""`cdt` and `cdt-unsigned`: scores from the contextual decomposition of each source head's
contribution (β = z − μ, γ = μ) propagated to the class logits (see `scoring/cdt`)."""

from __future__ import annotations

import torch

from .context import ScoreContext
from .margins import margin


def _decomposed(ctx: ScoreContext):
    from .cdt import decompose_heads

    for enc, gold in ctx.batches():
        rel, irrel = decompose_heads(
            ctx.model, ctx.head_map, enc["input_ids"], enc["attention_mask"], enc["last_index"],
            ctx.token_ids, ctx.mu, ctx.sources, chunk=ctx.chunk, check=ctx.check,
            pattern=ctx.settings.get("pattern", "decomposed"),
        )  # fmt: skip
        yield rel, irrel, gold


@torch.no_grad()
def cdt_scores(ctx: ScoreContext) -> torch.Tensor:
    """Directional: rel_logit[gold] − max_{c≠gold} rel_logit[c]; positive helps the answer."""
    columns, done = [], 0
    for rel, _, gold in _decomposed(ctx):
        columns.append(margin(rel, gold))  # [S, B]
        done += len(gold)
        ctx.progress(done, len(ctx.ds))
    return torch.cat(columns, dim=1).float().cpu()


@torch.no_grad()
def cdt_unsigned_scores(ctx: ScoreContext) -> torch.Tensor:
    """The original CD-T ratio ‖rel‖₁ / ‖irrel‖₁ at the class logits: how much of the output
    the head explains, whichever way it pushes."""
    columns, done = [], 0
    for rel, irrel, gold in _decomposed(ctx):
        columns.append(rel.abs().sum(-1) / irrel.abs().sum(-1).clamp_min(1e-12))
        done += len(gold)
        ctx.progress(done, len(ctx.ds))
    return torch.cat(columns, dim=1).float().cpu()
