"""`attribution`: first-order estimate of mean-ablation, Σ_pos (z − μ)·∂margin/∂z, from one
forward and one backward pass per batch for all heads at once."""

from __future__ import annotations

import torch

from ..heads import head_gates
from ..models.classify import class_logits
from .context import ScoreContext
from .margins import margin


def attribution_scores(ctx: ScoreContext) -> torch.Tensor:
    layers = sorted({layer for layer, _ in ctx.sources})
    columns = []
    done = 0
    for enc, gold in ctx.batches():
        with head_gates(ctx.head_map, capture=layers, detach=False) as rec:
            m = margin(class_logits(ctx.model, enc, ctx.token_ids), gold)
            zs = [rec.z[layer] for layer in layers]
            # Gradients with respect to z only: the parameters' gradients are never needed here.
            grads = torch.autograd.grad(m.sum(), zs)
        mask = enc["attention_mask"][:, :, None, None].to(zs[0].dtype)  # [B, T, 1, 1]
        per_layer = {
            layer: ((z.detach() - ctx.mu[layer]) * g * mask).sum(dim=(1, 3))  # [B, H]
            for layer, z, g in zip(layers, zs, grads, strict=True)
        }
        columns.append(torch.stack([per_layer[layer][:, head] for layer, head in ctx.sources]))  # [S, B]
        done += len(gold)
        ctx.progress(done, len(ctx.ds))
    return torch.cat(columns, dim=1).float().cpu()
