"""Parameter accounting for circuits: what a head's slices and all norms amount to."""

from __future__ import annotations

from typing import Any

from ..heads import HeadMap, norm_parameters


def head_params(head_map: HeadMap, layer: int, head: int) -> int:
    """Q rows (+bias) and O columns of the head, plus its share of its KV head's K/V rows
    (a KV head serves `group_size` query heads, so each is charged 1/group_size)."""
    s = head_map.head(layer, head)
    own = sum(span.numel for span in s.spans(kv=False))
    kv = sum(span.numel for span in (s.k_weight, s.k_bias, s.v_weight, s.v_bias) if span is not None)
    return own + kv // head_map.group_size


def norm_params(model: Any) -> int:
    return sum(p.numel() for _, p in norm_parameters(model))


def model_params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def param_table(model: Any, head_map: HeadMap) -> dict[str, Any]:
    """Everything circuit selection needs, so it can run without the model."""
    return {
        "total": model_params(model),
        "norms": norm_params(model),
        "perHead": [
            [head_params(head_map, lyr, h) for h in range(head_map.n_heads)] for lyr in range(head_map.n_layers)
        ],
    }
