"""The directional score: how much a quantity favours the gold class over the best other one."""

from __future__ import annotations

import torch


def margin(logits: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """logits[..., gold] − max over the other classes; logits [..., B, C], gold [B] → [..., B]."""
    gold_logit = logits.gather(-1, gold.expand(*logits.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    others = logits.masked_fill(torch.nn.functional.one_hot(gold, logits.shape[-1]).bool(), float("-inf"))
    return gold_logit - others.max(dim=-1).values
