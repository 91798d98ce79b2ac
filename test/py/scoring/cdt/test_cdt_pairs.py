"""The pair rules one by one: parts sum to the true output, "all relevant" stays all relevant,
"nothing relevant" stays nothing relevant, and the attention rule is the reference's."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ctsft_runtime.scoring.cdt import Pair
from ctsft_runtime.scoring.cdt import pairs as P

gen = torch.Generator().manual_seed(0)


def rnd(*shape: int) -> Tensor:
    return torch.randn(*shape, generator=gen)


def split(x: Tensor) -> Pair:
    r = rnd(*x.shape)
    return Pair(r, x - r)


X = rnd(3, 5, 8)
W, B = rnd(8, 6), rnd(6)
NORM_W, NORM_B = rnd(8), rnd(8)
gelu = torch.nn.functional.gelu

RULES = {
    "linear": (lambda p: P.linear(p, W, B), lambda x: x @ W + B),
    "layer_norm": (
        lambda p: P.layer_norm(p, NORM_W, NORM_B, 1e-5),
        lambda x: torch.nn.functional.layer_norm(x, (8,), NORM_W, NORM_B, 1e-5),
    ),
    "rms_norm": (
        lambda p: P.rms_norm(p, NORM_W, 1e-6),
        lambda x: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * NORM_W,
    ),
    "activation": (lambda p: P.activation(p, gelu), gelu),
    "softcap": (lambda p: P.softcap(p, 2.0), lambda x: torch.tanh(x / 2.0) * 2.0),
    # SwiGLU with the gate and up projections both read from the same input.
    "gated": (
        lambda p: P.gated(p.map(lambda t: t @ W), p.map(lambda t: t @ W.flip(1)), torch.nn.functional.silu),
        lambda x: torch.nn.functional.silu(x @ W) * (x @ W.flip(1)),
    ),
}


@pytest.mark.parametrize("name", list(RULES))
def test_rule_sums_to_true_output(name: str):
    rule, plain = RULES[name]
    out = rule(split(X))
    torch.testing.assert_close(out.total, plain(X), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(RULES))
def test_all_or_nothing_relevant(name: str):
    rule, plain = RULES[name]
    none = rule(Pair(torch.zeros_like(X), X))
    assert none.rel.abs().max() == 0
    everything = rule(Pair(X, torch.zeros_like(X)))
    # LayerNorm's and the linear map's bias belong to no input: irrel keeps them
    rest = NORM_B if name == "layer_norm" else torch.zeros(())
    torch.testing.assert_close(everything.irrel, rest.expand_as(everything.irrel), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(everything.rel + rest, plain(X), atol=1e-5, rtol=1e-5)


def test_bias_split_by_magnitude_and_never_lost():
    rel_t = torch.tensor([3.0, 0.0, -1.0, 0.0])
    irrel_t = torch.tensor([1.0, 2.0, 1.0, 0.0])
    out = P.split_bias(rel_t, irrel_t, torch.full((4,), 4.0))
    torch.testing.assert_close(out.rel, torch.tensor([6.0, 0.0, 1.0, 0.0]))
    torch.testing.assert_close(out.irrel, torch.tensor([2.0, 6.0, 3.0, 4.0]))  # 0/0: irrel takes it
    blocked = P.split_bias(rel_t[None], irrel_t[None], torch.full((4,), 4.0), rel_allowed=torch.tensor([False]))
    torch.testing.assert_close(blocked.rel[0], rel_t)


def test_gated_rule():
    g, u = split(X), split(rnd(*X.shape))
    out = P.gated(g, u, torch.nn.functional.silu)
    torch.testing.assert_close(out.irrel, torch.nn.functional.silu(g.irrel) * u.irrel)
    torch.testing.assert_close(out.total, torch.nn.functional.silu(g.total) * u.total, atol=1e-5, rtol=1e-5)


def test_rope_is_linear_and_partial():
    x = split(rnd(2, 3, 5, 8))
    angle = rnd(1, 5, 2)
    cos, sin = torch.cat([angle.cos()] * 2, -1), torch.cat([angle.sin()] * 2, -1)  # rot_dim 4 of 8
    out = P.rope(x, cos, sin)
    whole = P.rope(Pair(x.total, torch.zeros_like(x.total)), cos, sin).rel
    torch.testing.assert_close(out.total, whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.rel[..., 4:], x.rel[..., 4:])  # pass-through dims
    norms = out.rel[..., :4].reshape(2, 3, 5, 2, 2).pow(2).sum(-2)  # pairs (i, i + 2) keep their norm
    torch.testing.assert_close(norms, x.rel[..., :4].reshape(2, 3, 5, 2, 2).pow(2).sum(-2), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cap", [None, 3.0])
def test_decomposed_attention_rule_is_the_reference_one(cap: float | None):
    """6 rows = 3 sources x 2 examples; the mask (causal + an ALiBi-like bias) is per example."""
    q, k, v = split(rnd(6, 3, 4, 8)), split(rnd(6, 3, 4, 8)), split(rnd(6, 3, 4, 8))
    causal = torch.full((4, 4), torch.finfo(torch.float32).min).triu(1)
    mask = causal + rnd(2, 3, 1, 4)  # [B=2, H, 1, Tk] + [Tq, Tk]
    out = P.attention(q, k, v, scale=0.5, mask=mask, cap=cap, pattern="decomposed")

    def probs(qq: Tensor, kk: Tensor) -> Tensor:
        s = (qq @ kk.transpose(-1, -2)) * 0.5
        if cap:
            s = torch.tanh(s / cap) * cap
        return (s + mask.repeat(3, 1, 1, 1)).softmax(-1)

    p, p_rel = probs(q.total, k.total), probs(q.rel, k.rel)
    torch.testing.assert_close(out.rel, p_rel @ v.rel, atol=1e-5, rtol=1e-5)
    # z_irrel = P_rel v_irrel + (P - P_rel) v, i.e. P v - z_rel
    torch.testing.assert_close(out.irrel, p_rel @ v.irrel + (p - p_rel) @ v.total, atol=1e-5, rtol=1e-5)
    zero = [Pair(torch.zeros_like(t.total), t.total) for t in (q, k, v)]
    assert P.attention(*zero, scale=0.5, mask=mask, cap=cap, pattern="decomposed").rel.abs().max() == 0


@pytest.mark.parametrize("pattern", ["decomposed", "frozen"])
def test_every_attention_pattern_is_complete_and_all_or_nothing(pattern: str):
    q, k, v = split(rnd(4, 2, 5, 8)), split(rnd(4, 2, 5, 8)), split(rnd(4, 2, 5, 8))
    mask = torch.full((5, 5), torch.finfo(torch.float32).min).triu(1).expand(2, 1, 5, 5)
    plain = ((q.total @ k.total.transpose(-1, -2)) * 0.3 + mask.repeat(2, 1, 1, 1)).softmax(-1) @ v.total
    out = P.attention(q, k, v, scale=0.3, mask=mask, pattern=pattern)
    torch.testing.assert_close(out.total, plain, atol=1e-5, rtol=1e-5)
    full = [Pair(t.total, torch.zeros_like(t.total)) for t in (q, k, v)]
    everything = P.attention(*full, scale=0.3, mask=mask, pattern=pattern)
    torch.testing.assert_close(everything.rel, plain, atol=1e-5, rtol=1e-5)
    empty = [Pair(torch.zeros_like(t.total), t.total) for t in (q, k, v)]
    nothing = P.attention(*empty, scale=0.3, mask=mask, pattern=pattern)
    assert nothing.rel.abs().max() < 1e-6
