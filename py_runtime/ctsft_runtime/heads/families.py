"""What we know about each model family's attention, as data.

Everything family-specific the head map needs lives in `FAMILIES`; `head_map.py` reads it
and never branches on a model type. Each entry was checked against the family's modeling
file in transformers 5.x (read, not copied) and is guarded by the invariant tests in
`test/py/heads/`. Adding a family = adding a row + a tiny config to the test table.

Fused Q/K/V layouts (rows of the fused projection's output features):
- `blocked`:  [q_0 .. q_{n-1} | k_0 .. k_{g-1} | v_0 .. v_{g-1}], each block head_dim wide.
  GPT-2 `c_attn` (split into three equal parts) and Phi-3 `qkv_proj` (with GQA, g < n).
- `per_head`: [q_0 k_0 v_0 | q_1 k_1 v_1 | ...]: the output is viewed as
  [..., n_heads, 3 * head_dim] (GPT-NeoX) or [..., n_heads, 3, head_dim] (BLOOM), which is
  the same order. Never GQA in those families.
Whether a weight is stored [out, in] (nn.Linear) or [in, out] (GPT-2's Conv1D) is read off
the module class, not stored here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

FusedLayout = Literal["blocked", "per_head"]


@dataclass(frozen=True)
class Family:
    """Where a family keeps its attention and how its Q/K/V are laid out."""

    layers: str
    """Dotted path, from `model.base_model`, to the ModuleList of decoder blocks."""
    attention: str
    """Attribute of a block holding the self-attention module."""
    out: str
    """Attribute of the attention module: the output projection O (its input is z)."""
    q: str | None = None
    k: str | None = None
    v: str | None = None
    """Separate Q/K/V projections (attributes of the attention module)."""
    fused: str | None = None
    fused_layout: FusedLayout | None = None
    """One fused projection producing Q, K and V, and how its rows are ordered."""
    qk_norms: tuple[str, ...] = ()
    """Per-head norms applied to q/k inside attention (shared by all heads of a layer)."""
    check: Callable[[Any], str | None] | None = None
    """Returns a reason when a config variant breaks our assumptions (e.g. O bypassed)."""


def _bloom_check(config: Any) -> str | None:
    # With tensor-parallel emulation BLOOM multiplies slices of `dense.weight` itself
    # instead of calling `dense`, so a pre-hook on O would silently never fire.
    if getattr(config, "pretraining_tp", 1) > 1 and getattr(config, "slow_but_exact", False):
        return "bloom with pretraining_tp > 1 and slow_but_exact=True bypasses the O module"
    return None


_LLAMA_LIKE = Family(layers="layers", attention="self_attn", out="o_proj", q="q_proj", k="k_proj", v="v_proj")

FAMILIES: dict[str, Family] = {
    "gpt2": Family(layers="h", attention="attn", out="c_proj", fused="c_attn", fused_layout="blocked"),
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    # Qwen2 adds q/k/v biases; they are found on the modules, nothing to declare.
    "qwen2": _LLAMA_LIKE,
    "qwen3": Family(
        layers="layers",
        attention="self_attn",
        out="o_proj",
        q="q_proj",
        k="k_proj",
        v="v_proj",
        qk_norms=("q_norm", "k_norm"),
    ),
    # Gemma/Gemma2: head_dim is a config field and n_heads * head_dim may differ from
    # d_model; the head map reads it from the module, so the row is llama's.
    "gemma": _LLAMA_LIKE,
    "gemma2": _LLAMA_LIKE,
    "gpt_neox": Family(
        layers="layers",
        attention="attention",
        out="dense",
        fused="query_key_value",
        fused_layout="per_head",
    ),
    "phi3": Family(
        layers="layers",
        attention="self_attn",
        out="o_proj",
        fused="qkv_proj",
        fused_layout="blocked",
    ),
    "opt": Family(
        layers="decoder.layers",
        attention="self_attn",
        out="out_proj",
        q="q_proj",
        k="k_proj",
        v="v_proj",
    ),
    "bloom": Family(
        layers="h",
        attention="self_attention",
        out="dense",
        fused="query_key_value",
        fused_layout="per_head",
        check=_bloom_check,
    ),
}


def supported_model_types() -> tuple[str, ...]:
    """The `config.model_type` values the head map understands, sorted."""
    return tuple(sorted(FAMILIES))
