"""Contextual-decomposition rules on (rel, irrel) pairs.

Every function takes pairs whose parts sum to the true input and returns a pair whose parts
sum to the true output (up to float rounding): that invariant is what the completeness
tests check, layer by layer. Which share of each output is called "relevant" is the
choice each rule documents; see the package docstring for why each choice was made.

Shapes are whatever the caller uses; the rules act on the last dimension (features) or,
for attention, on [rows, heads, positions, head_dim]. Everything here is plain tensor math
on float32 tensors, no modules: the block code (`blocks.py`) hands in weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from torch import Tensor


class Pair(NamedTuple):
    """A decomposed tensor: `rel + irrel` is the true value."""

    rel: Tensor
    irrel: Tensor

    @property
    def total(self) -> Tensor:
        return self.rel + self.irrel

    def __add__(self, other: object) -> Pair:  # type: ignore[override]
        if not isinstance(other, Pair):
            return NotImplemented
        return Pair(self.rel + other.rel, self.irrel + other.irrel)

    def map(self, fn: Callable[[Tensor], Tensor]) -> Pair:
        """Apply the same *linear, bias-free* map (reshape, gather, rotation...) to both parts."""
        return Pair(fn(self.rel), fn(self.irrel))

    @staticmethod
    def cat(pairs: list[Pair], dim: int = 0) -> Pair:
        return Pair(torch.cat([p.rel for p in pairs], dim), torch.cat([p.irrel for p in pairs], dim))


def split_bias(
    rel_t: Tensor,
    irrel_t: Tensor,
    bias: Tensor | None,
    rel_allowed: Tensor | None = None,
    *,
    inplace: bool = False,
) -> Pair:
    """Add `bias` to the two parts in proportion to their magnitudes, elementwise (CD-T).

    rel gets bias * |rel_t| / (|rel_t| + |irrel_t|) and irrel the rest, so the parts always
    sum to rel_t + irrel_t + bias exactly (the reference adds a 1e-8 to the denominator and
    loses the bias where both parts are 0; we give it to irrel instead).
    rel_allowed: optional bool [rows] mask; rows where it is False give the whole bias to
    irrel (used for the O bias at a source layer: the bias is not the source head's).
    inplace: rel_t and irrel_t are scratch tensors the caller gives up (saves memory passes).
    """
    if bias is None:
        return Pair(rel_t, irrel_t)
    share = rel_t.abs()
    share.div_(irrel_t.abs().add_(share)).nan_to_num_(0.0)  # 0/0 (both parts 0) -> 0; never inf
    if rel_allowed is not None:
        shape = (rel_allowed.shape[0],) + (1,) * (share.dim() - 1)
        share.mul_(rel_allowed.reshape(shape).to(share.dtype))
    rel_b = share.mul_(bias)
    if inplace:
        return Pair(rel_t.add_(rel_b), irrel_t.add_(bias).sub_(rel_b))
    return Pair(rel_t + rel_b, irrel_t + bias - rel_b)


def linear(x: Pair, weight: Tensor, bias: Tensor | None = None, rel_allowed: Tensor | None = None) -> Pair:
    """y = x @ weight + bias with weight [in, out]: both parts through W, bias split by magnitude."""
    return split_bias(x.rel @ weight, x.irrel @ weight, bias, rel_allowed, inplace=True)


def layer_norm(x: Pair, weight: Tensor | None, bias: Tensor | None, eps: float) -> Pair:
    """LayerNorm as the nonlinearity it is (`activation`'s rule): irrel' = LN(irrel), rel' =
    LN(total) − LN(irrel). The bias lands wholly in irrel (it is in both terms of rel')."""
    return activation(x, lambda t: torch.nn.functional.layer_norm(t, t.shape[-1:], weight, bias, eps))


def rms_norm(x: Pair, weight: Tensor | None, eps: float) -> Pair:
    """RMSNorm the same way, weight already effective (Gemma's 1 + w).

    Why not CD-T's "divide both parts by the total's scale": that linearization keeps each
    part's own size, so parts that cancel (irrel ≈ −rel) stay large through every norm and
    grow in the layers after; and it credits rel with none of the change of the scale itself.
    Measured against exact mean-ablation it ranked heads at Spearman −0.28 (Qwen2) to 0.52
    (Llama); this rule, 0.98 (docs/method.md). Every norm output here is O(1) by construction."""

    def rms(t: Tensor) -> Tensor:
        out = t * torch.rsqrt(t.pow(2).mean(dim=-1, keepdim=True) + eps)
        return out if weight is None else out * weight

    return activation(x, rms)


def activation(x: Pair, fn: Callable[[Tensor], Tensor]) -> Pair:
    """Elementwise nonlinearity: irrel' = f(irrel), rel' = f(total) - f(irrel)."""
    irrel = fn(x.irrel)
    return Pair(fn(x.total) - irrel, irrel)


def gated(gate: Pair, up: Pair, fn: Callable[[Tensor], Tensor]) -> Pair:
    """Gated unit f(g) * u (SwiGLU/GeGLU), the activation rule on the whole unit: irrel' =
    f(g_i) * u_i, rel' = f(g) * u - irrel'. Safe because g and u are read from a norm's
    output, whose parts are O(1) (`rms_norm`); a symmetric Shapley split of the product was
    measured too and agreed less with mean-ablation (docs/method.md)."""
    irrel = fn(gate.irrel) * up.irrel
    return Pair(fn(gate.total) * up.total - irrel, irrel)


def softcap(x: Pair, cap: float) -> Pair:
    """tanh(x / cap) * cap as an elementwise activation."""
    return activation(x, lambda t: torch.tanh(t / cap) * cap)


def rope(x: Pair, cos: Tensor, sin: Tensor) -> Pair:
    """Rotary embedding on [rows, heads, pos, head_dim]: a linear map per position, applied to
    both parts. cos/sin are [1 | rows, pos, rot_dim]; dims past rot_dim pass through
    (partial rotary, GPT-NeoX/Phi-3). Rotate-half convention, as every supported family."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    rd = cos.shape[-1]

    def rotate(t: Tensor) -> Tensor:
        t_rot, t_pass = t[..., :rd], t[..., rd:]
        half = rd // 2
        rotated = torch.cat((-t_rot[..., half:], t_rot[..., :half]), dim=-1)
        out = t_rot * cos + rotated * sin
        return out if t_pass.shape[-1] == 0 else torch.cat((out, t_pass), dim=-1)

    return x.map(rotate)


PatternRule = Literal["decomposed", "frozen"]


def attention(
    q: Pair,
    k: Pair,
    v: Pair,
    *,
    scale: float,
    mask: Tensor,
    cap: float | None = None,
    pattern: PatternRule = "decomposed",
) -> Pair:
    """Softmax attention on [R, heads, pos, head_dim] pairs (K/V already expanded per query head).

    Scores s(q, k) = cap * tanh(scale * q.k / cap) (cap optional) + mask, where `mask` is
    additive (0 / large negative, plus ALiBi where the family has it) and [B, 1 | heads, Tq,
    Tk] with R = rep * B rows (row r = j * B + b): it broadcasts over the rep blocks, so it is
    never copied per source. With F(q, k, v) = softmax(s(q, k)) v (same scale, softcap and
    mask for every evaluation) and z = F(total):
    - "decomposed": z_rel = F(rel) = P_rel v_rel, z_irrel = z − z_rel: CD_Circuit's
      `prop_attention_no_output_hh` with `prop_attention_probs_tmp` (there P_irrel = P −
      P_rel, and z_irrel = P_rel v_irrel + P_irrel v is the same thing written out);
    - "frozen": z_rel = P v_rel with the true pattern P (its older `prop_self_attention`).
    Without a softcap the patterns go through `scaled_dot_product_attention`; with a mask
    shared by all heads the rows are folded into the head dimension so that the inputs are
    4-D and the mask broadcasts (fused, memory-efficient kernels on GPU).
    """
    r = q.rel.shape[0]
    b = mask.shape[0]
    if r % b:
        raise ValueError(f"attention: {r} rows are not a multiple of the mask's batch {b}")
    rep = r // b

    sdpa = torch.nn.functional.scaled_dot_product_attention

    def fold(t: Tensor) -> Tensor:  # [rep*B, H, T, d] -> [B, rep*H, T, d]
        return t.reshape(rep, b, *t.shape[1:]).transpose(0, 1).reshape(b, rep * t.shape[1], *t.shape[2:])

    def attend(qq: Tensor, kk: Tensor, vv: Tensor) -> Tensor:
        heads = qq.shape[1]
        if cap is None and mask.shape[1] == 1:
            # 4-D inputs and a mask broadcast over rep*H: eligible for the fused kernels.
            z = sdpa(fold(qq), fold(kk), fold(vv), attn_mask=mask, scale=scale)
            return z.reshape(b, rep, heads, *z.shape[2:]).transpose(0, 1).reshape(r, heads, *z.shape[2:])
        qq, kk, vv = (t.reshape(rep, b, *t.shape[1:]) for t in (qq, kk, vv))
        if cap is None:  # per-head mask (ALiBi): broadcast over the rep blocks instead
            z = sdpa(qq, kk, vv, attn_mask=mask, scale=scale)
        else:
            s = (qq @ kk.transpose(-1, -2)) * scale
            s = torch.tanh(s / cap) * cap
            z = torch.softmax(s + mask, dim=-1) @ vv
        return z.reshape(r, *z.shape[2:])

    z_tot = attend(q.total, k.total, v.total)
    # "frozen" (CD_Circuit's older `prop_self_attention`): the true pattern P carries both
    # parts, z_rel = P v_rel; relevance then moves only through values, never through where
    # a head looks. Measured as faithful to mean-ablation as the default on Llama, Qwen2 and
    # Gemma, less on GPT-2 (docs/method.md).
    z_rel = attend(q.total, k.total, v.rel) if pattern == "frozen" else attend(q.rel, k.rel, v.rel)
    return Pair(z_rel, z_tot - z_rel)
