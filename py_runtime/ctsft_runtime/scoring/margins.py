"""The directional score: how much a quantity favours the gold class over its competitor."""

from __future__ import annotations

import torch


def margin(values: torch.Tensor, gold: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
    """values[..., gold] − values[..., c*], with c* the non-gold class of highest `reference`
    (default: `values` itself, i.e. the max over the other classes). [..., B, C], gold [B] → [..., B].

    cdt passes the relevant logits as `values` and the model's own logits as `reference`:
    the competitor is the class the model actually weighs against the answer, as in the CD-T
    reference (CD_Circuit's `proc_score` with the closest competitor)."""
    ref = values if reference is None else reference.expand_as(values)
    gold_idx = gold.expand(*values.shape[:-1]).unsqueeze(-1)
    others = ref.masked_fill(torch.nn.functional.one_hot(gold, values.shape[-1]).bool(), float("-inf"))
    rival = others.argmax(dim=-1, keepdim=True)
    return (values.gather(-1, gold_idx) - values.gather(-1, rival)).squeeze(-1)
