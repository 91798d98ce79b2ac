"""Optimizer groups, named and counted: where weight decay applies is where the masked-decay
trap lives (DESIGN 7), so the rule is explicit and its sizes are reported."""

from __future__ import annotations

from typing import Any

import torch


def full_parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """All trainable parameters: matrices decay; biases, norm weights and other vectors don't."""
    decay, no_decay = [], []
    seen: set[int] = set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    return [
        {"name": "decay", "params": decay, "weight_decay": weight_decay},
        {"name": "no_decay", "params": no_decay, "weight_decay": 0.0},
    ]
