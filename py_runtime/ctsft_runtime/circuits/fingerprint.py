"""Model fingerprints: which exact model a circuit (or later a delta) belongs to."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch


def config_hash(model: Any) -> str:
    """sha256 of the architecture config (sorted JSON, minus bookkeeping fields)."""
    cfg = model.config.to_dict()
    for volatile in ("transformers_version", "_name_or_path", "torch_dtype", "dtype", "_attn_implementation_autoset"):
        cfg.pop(volatile, None)
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()


@torch.no_grad()
def weights_hash(model: Any) -> str:
    """sha256 over every parameter's name, dtype, shape and bytes, in name order (tied
    weights once). Changes whenever any element changes."""
    h = hashlib.sha256()
    seen: set[int] = set()
    for name, p in sorted(model.named_parameters(remove_duplicate=False), key=lambda kv: kv[0]):
        if id(p) in seen:
            continue
        seen.add(id(p))
        t = p.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def fingerprint(model: Any) -> dict[str, str]:
    return {"config": config_hash(model), "weights": weights_hash(model)}
