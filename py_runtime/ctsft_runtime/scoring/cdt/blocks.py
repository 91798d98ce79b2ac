"""Per-family block specs for the CD-T engine, and the decomposed block forward.

A `Block` is one decoder layer described as data: its norms (`Norm`), its attention
(`Attention`: Q/K/V projections read through the shared head map, O, scale, softcap,
sliding window, q/k norms, RoPE, ALiBi) and its MLP (`Mlp`, plain or gated), plus how
they are wired (`pre`-norm sequential, GPT-NeoX `parallel`, OPT-350m-style `post`-norm,
Gemma-2 post-norms, BLOOM's residual-from-norm option). `run_block` pushes a pair through
it with the rules of `pairs.py`. Every family-specific fact was read off transformers
5.x's modeling files; the completeness tests check each family end to end against the
real forward.

Weights are views into the model's parameters (never copies, except Gemma's 1 + w norm
weight), cast to float32 at use: the decomposition always computes in float32, since
rel = f(total) - f(irrel) is a difference that half precision would swamp.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn
from transformers.pytorch_utils import Conv1D

from ...errors import BadRequest
from ...heads import FAMILIES, HeadMap, LayerAttention
from . import pairs
from .pairs import Pair

Act = Callable[[Tensor], Tensor]
F32 = torch.float32


def _f32(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.to(F32)


# ----------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class Norm:
    """LayerNorm (`layer`) or RMSNorm (`rms`) with its effective weight (Gemma: 1 + w)."""

    kind: Literal["layer", "rms"]
    weight: Tensor | None
    bias: Tensor | None
    eps: float

    def __call__(self, x: Pair) -> Pair:
        if self.kind == "layer":
            return pairs.layer_norm(x, _f32(self.weight), _f32(self.bias), self.eps)
        return pairs.rms_norm(x, _f32(self.weight), self.eps)


@dataclass(frozen=True)
class Proj:
    """An affine map x @ weight + bias, weight [in, out] (a view of the module's parameter)."""

    weight: Tensor
    bias: Tensor | None

    def __call__(self, x: Pair, rel_allowed: Tensor | None = None) -> Pair:
        return pairs.linear(x, self.weight.to(F32), _f32(self.bias), rel_allowed)

    @property
    def out_features(self) -> int:
        return self.weight.shape[1]


@dataclass(frozen=True)
class Attention:
    projs: tuple[Proj, ...]
    """The distinct projection modules feeding Q/K/V (one when fused, three otherwise)."""
    q: tuple[int, Tensor | slice | None]
    k: tuple[int, Tensor | slice | None]
    v: tuple[int, Tensor | slice | None]
    """(index into projs, its output columns in head order: an index tensor, a contiguous
    slice, or None for all columns)."""
    out: Proj
    """O as [n_heads * head_dim, d_model]; its input is z, head h at [h*hd, (h+1)*hd)."""
    n_heads: int
    n_kv_heads: int
    head_dim: int
    scale: float
    cap: float | None = None
    window: int | None = None
    q_norm: Norm | None = None
    k_norm: Norm | None = None
    rope: bool = False
    alibi: bool = False


@dataclass(frozen=True)
class Mlp:
    up: Proj
    """Input projection (the `up` of a gated unit, fc_in of a plain MLP)."""
    down: Proj
    act: Act
    gate: Proj | None = None
    """Gated units: act(gate(x)) * up(x)."""

    def __call__(self, x: Pair) -> Pair:
        if self.gate is not None:
            h = pairs.gated(self.gate(x), self.up(x), self.act)
        else:
            h = pairs.activation(self.up(x), self.act)
        return self.down(h)


Wiring = Literal["pre", "parallel", "post"]


@dataclass(frozen=True)
class Block:
    attn: Attention
    mlp: Mlp
    ln1: Norm | None
    ln2: Norm | None
    post_attn: Norm | None = None
    post_mlp: Norm | None = None
    wiring: Wiring = "pre"
    """pre:      h = x + post_attn(attn(ln1(x))); out = h + post_mlp(mlp(ln2(h)))
    parallel: out = x + attn(ln1(x)) + mlp(ln2(x))                    (GPT-NeoX)
    post:     h = ln1(x + attn(x)); out = ln2(h + mlp(h))             (OPT without LN-before)"""
    residual_from_norm: bool = False
    """BLOOM's apply_residual_connection_post_layernorm: the residual is ln(x), not x."""


@dataclass(frozen=True)
class Readout:
    """From the last layer's residual (at the last positions) to the class logits."""

    steps: tuple[Norm | Proj, ...]
    """Final norm, then OPT's project_out where present."""
    unembed: Proj
    """Label rows of the output embedding as [d_model, C] (+ their bias)."""
    cap: float | None
    """Gemma-2 final logit softcap."""

    def __call__(self, x: Pair) -> Pair:
        for step in self.steps:
            x = step(x)
        x = self.unembed(x)
        return pairs.softcap(x, self.cap) if self.cap else x


@dataclass
class Positions:
    """What attention needs besides the pair, for one batch of B examples."""

    pad: Tensor
    """[B, T] bool, True at real tokens."""
    cos: Tensor | None = None
    sin: Tensor | None = None
    """[1, T, rot_dim] from the model's own rotary module (RoPE families)."""
    alibi: Tensor | None = None
    """[B, H, 1, T] (BLOOM)."""
    pattern: pairs.PatternRule = "decomposed"
    """How attention patterns in later layers are split (see `pairs.attention`)."""

    def __post_init__(self) -> None:
        self._masks: dict[int | None, Tensor] = {}

    def mask(self, window: int | None) -> Tensor:
        """Additive [B, 1, T, T] mask: causal, key padding, sliding window (kv > q - window)."""
        if window not in self._masks:
            t = self.pad.shape[1]
            q = torch.arange(t, device=self.pad.device)[:, None]
            k = torch.arange(t, device=self.pad.device)[None, :]
            allowed = k <= q
            if window is not None:
                allowed = allowed & (k > q - window)
            allowed = allowed[None, None] & self.pad[:, None, None, :]
            neg = torch.finfo(F32).min
            self._masks[window] = torch.zeros(allowed.shape, dtype=F32, device=allowed.device).masked_fill(
                ~allowed, neg
            )
        return self._masks[window]


# ----------------------------------------------------------------------------- forward


def _gather_pos(t: Tensor, index: Tensor) -> Tensor:
    """[R, T, ...] -> [R, 1, ...] at position index[r]."""
    shape = (t.shape[0], 1, *t.shape[2:])
    idx = index.view(-1, *([1] * (t.dim() - 1))).expand(shape)
    return t.gather(1, idx)


def decomposed_attention(a: Attention, x: Pair, pos: Positions, q_index: Tensor | None) -> Pair:
    """z pair [R, Tq, n*hd] of a layer whose input pair x [R, T, D] carries relevance."""
    r, t, _ = x.rel.shape
    b = pos.pad.shape[0]
    outs = [p(x) for p in a.projs]

    def take(sel: tuple[int, Tensor | slice | None], heads: int) -> Pair:
        y, cols = outs[sel[0]], sel[1]
        if isinstance(cols, slice):
            y = y.map(lambda u: u[..., cols])
        elif cols is not None:
            y = y.map(lambda u: u.index_select(-1, cols))
        return y.map(lambda u: u.reshape(r, t, heads, a.head_dim))

    q, k, v = take(a.q, a.n_heads), take(a.k, a.n_kv_heads), take(a.v, a.n_kv_heads)
    if a.q_norm is not None:
        q = a.q_norm(q)
    if a.k_norm is not None:
        k = a.k_norm(k)
    q, k, v = (p.map(lambda u: u.transpose(1, 2)) for p in (q, k, v))  # [R, heads, T, hd]
    if a.rope:
        assert pos.cos is not None and pos.sin is not None
        q, k = pairs.rope(q, pos.cos, pos.sin), pairs.rope(k, pos.cos, pos.sin)
    mask = pos.mask(a.window)  # [B, 1, T, T], broadcast over the rep blocks of rows
    if q_index is not None:  # row j * B + b keeps position q_index[b] (same for every j)
        qb = q_index[:b]
        q = q.map(lambda u: u.gather(2, q_index.view(r, 1, 1, 1).expand(r, a.n_heads, 1, a.head_dim)))
        mask = mask.gather(2, qb.view(b, 1, 1, 1).expand(b, 1, 1, t))
    if a.alibi and pos.alibi is not None:
        mask = mask + pos.alibi  # [B, H, Tq, T]
    group = a.n_heads // a.n_kv_heads
    if group > 1:  # GQA: query head h reads KV head h // group
        k, v = (p.map(lambda u: u.repeat_interleave(group, dim=1)) for p in (k, v))
    z = pairs.attention(q, k, v, scale=a.scale, mask=mask, cap=a.cap, pattern=pos.pattern)
    return z.map(lambda u: u.transpose(1, 2).reshape(r, u.shape[2], a.n_heads * a.head_dim))


def run_block(
    block: Block,
    x: Pair,
    pos: Positions,
    *,
    join_z: Pair | None = None,
    q_index: Tensor | None = None,
) -> Pair:
    """One decomposed layer. x [R, T, D]; the last J rows are *joining* rows whose source
    head sits in this layer: their attention is not decomposed, `join_z` [J, T, n*hd] gives
    their (rel, irrel) z directly, and O's bias goes wholly to irrel for them.
    q_index [R]: keep only that position of each row (the last layer: only the last prompt
    token reaches the logits), as [R, 1, D]."""
    n_join = 0 if join_z is None else join_z.rel.shape[0]
    n_rows = x.rel.shape[0]
    n_old = n_rows - n_join

    def keep(p: Pair) -> Pair:
        return p if q_index is None else p.map(lambda u: _gather_pos(u, q_index))

    def attention_out(a_in: Callable[[], Pair]) -> Pair:  # a_in(): attention input, first n_old rows
        parts = []
        if n_old:
            qi = None if q_index is None else q_index[:n_old]
            parts.append(decomposed_attention(block.attn, a_in(), pos, qi))
        if join_z is not None:
            jz = join_z if q_index is None else join_z.map(lambda u: _gather_pos(u, q_index[n_old:]))
            parts.append(jz)
        z = parts[0] if len(parts) == 1 else Pair.cat(parts)
        rel_allowed = None
        if n_join:
            rel_allowed = torch.arange(n_rows, device=z.rel.device) < n_old
        out = block.attn.out(z, rel_allowed)
        return block.post_attn(out) if block.post_attn is not None else out

    def head(p: Pair) -> Pair:
        return p.map(lambda u: u[:n_old])

    def norm(n: Norm | None, p: Pair) -> Pair:
        return p if n is None else n(p)

    if block.wiring == "post":
        h = norm(block.ln1, keep(x) + attention_out(lambda: head(x)))
        return norm(block.ln2, h + block.mlp(h))
    if block.wiring == "parallel":
        a = attention_out(lambda: norm(block.ln1, head(x)))
        xk = keep(x)
        return xk + a + block.mlp(norm(block.ln2, xk))
    if block.residual_from_norm:
        ln = norm(block.ln1, x)
        h = keep(ln) + attention_out(lambda: head(ln))
    else:
        h = keep(x) + attention_out(lambda: norm(block.ln1, head(x)))
    m_in = norm(block.ln2, h)
    m = block.mlp(m_in)
    if block.post_mlp is not None:
        m = block.post_mlp(m)
    return (m_in if block.residual_from_norm else h) + m


# ----------------------------------------------------------------------------- building specs


def _proj(module: nn.Module) -> Proj:
    if isinstance(module, Conv1D):
        return Proj(module.weight, module.bias)  # stored [in, out]
    if isinstance(module, nn.Linear):
        return Proj(module.weight.t(), module.bias)
    raise BadRequest(f"cdt: projection {type(module).__name__} is neither nn.Linear nor Conv1D")


def _split_proj(module: nn.Module, parts: int) -> list[Proj]:
    """A fused projection whose output is `parts` equal consecutive blocks (Phi-3 gate_up)."""
    p = _proj(module)
    n = p.out_features // parts
    return [
        Proj(p.weight[:, i * n : (i + 1) * n], None if p.bias is None else p.bias[i * n : (i + 1) * n])
        for i in range(parts)
    ]


def _norm(module: nn.Module | None, family: str, offset: float = 0.0) -> Norm | None:
    """Spec of a norm module, verified on a probe input against the module itself."""
    if module is None or isinstance(module, nn.Identity):
        return None
    if isinstance(module, nn.LayerNorm):
        spec = Norm("layer", module.weight, module.bias, float(module.eps))
    else:
        eps = getattr(module, "variance_epsilon", getattr(module, "eps", None))
        weight = getattr(module, "weight", None)
        if eps is None or not isinstance(weight, Tensor) or weight.dim() != 1:
            raise BadRequest(f"cdt does not support {family} norm {type(module).__name__} yet")
        spec = Norm("rms", weight + offset if offset else weight, None, float(eps))
    _probe(spec, module, family)
    return spec


def _probe(spec: Norm, module: nn.Module, family: str) -> None:
    dim = spec.weight.shape[0] if spec.weight is not None else int(module.normalized_shape[0])  # type: ignore[union-attr]
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else F32
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = (torch.randn(2, dim, generator=gen) * 3 + 0.5).to(device=device, dtype=dtype)
    want = module(x).to(F32)
    got = spec(Pair(torch.zeros_like(x, dtype=F32), x.to(F32))).total
    tol = 1e-4 if dtype in (torch.float32, torch.float64) else 5e-2
    if not torch.allclose(got, want, atol=tol, rtol=tol):
        raise BadRequest(
            f"cdt does not support {family} norm {type(module).__name__} yet "
            f"(our rule disagrees with the module by {(got - want).abs().max().item():.3g})"
        )


def _attention(
    la: LayerAttention, hmap: HeadMap, *, scale: float, rope: bool, alibi: bool = False, **kw: Any
) -> Attention:
    """Q/K/V columns and O rows come from the shared head map, so layouts live in one place."""
    keys: dict[int, int] = {}  # id(weight parameter) -> index into projs
    projs: list[Proj] = []

    def select(spans: list[tuple[Any, Any]]) -> tuple[int, Tensor | slice | None]:
        w0, b0 = spans[0]
        key = keys.get(id(w0.param))
        if key is None:
            weight = w0.param.t() if w0.dim == 0 else w0.param  # -> [d_model, out]
            projs.append(Proj(weight, None if b0 is None else b0.param))
            key = keys[id(w0.param)] = len(projs) - 1
        cols = torch.cat([torch.arange(w.start, w.stop) for w, _ in spans]).to(w0.param.device)
        first = int(cols[0])
        if torch.equal(cols, torch.arange(first, first + cols.numel(), device=cols.device)):
            whole = first == 0 and cols.numel() == projs[key].out_features
            return key, None if whole else slice(first, first + cols.numel())
        return key, cols

    heads = la.heads
    kv_first = [heads[h] for h in range(0, hmap.n_heads, hmap.group_size)]
    q = select([(h.q_weight, h.q_bias) for h in heads])
    k = select([(h.k_weight, h.k_bias) for h in kv_first])
    v = select([(h.v_weight, h.v_bias) for h in kv_first])
    o = heads[0].o_weight
    if any(h.o_weight.start != i * hmap.head_dim for i, h in enumerate(heads)):
        raise BadRequest("cdt: O columns are not in head order")
    o_weight = o.param.t() if o.dim == 1 else o.param  # -> [n*hd, d_model]
    out = Proj(o_weight, None if la.o_bias is None else la.o_bias.param)
    return Attention(
        projs=tuple(projs),
        q=q,
        k=k,
        v=v,
        out=out,
        n_heads=hmap.n_heads,
        n_kv_heads=hmap.n_kv_heads,
        head_dim=hmap.head_dim,
        scale=float(scale),
        rope=rope,
        alibi=alibi,
        **kw,
    )


# Per-family builders: (model, config, block module, LayerAttention, head map) -> Block.
BlockBuilder = Callable[[nn.Module, Any, nn.Module, LayerAttention, HeadMap], Block]


def _llama_like(offset: float = 0.0, window_from: Literal["none", "config", "module"] = "none") -> BlockBuilder:
    def build(model: nn.Module, config: Any, blk: nn.Module, la: LayerAttention, hmap: HeadMap) -> Block:
        family = hmap.family
        attn = la.attention
        window = None
        if window_from == "config":
            window = getattr(config, "sliding_window", None)
        elif window_from == "module":
            window = getattr(attn, "sliding_window", None)
        q_norm = _norm(getattr(attn, "q_norm", None), family, offset)
        k_norm = _norm(getattr(attn, "k_norm", None), family, offset)
        mlp_mod = blk.mlp
        act = mlp_mod.act_fn if hasattr(mlp_mod, "act_fn") else mlp_mod.activation_fn
        if hasattr(mlp_mod, "gate_up_proj"):  # Phi-3: [gate | up]
            gate, up = _split_proj(mlp_mod.gate_up_proj, 2)
        else:
            gate, up = _proj(mlp_mod.gate_proj), _proj(mlp_mod.up_proj)
        mlp = Mlp(up=up, down=_proj(mlp_mod.down_proj), act=act, gate=gate)
        common = dict(
            attn=_attention(
                la,
                hmap,
                scale=attn.scaling,
                rope=True,
                window=window,
                q_norm=q_norm,
                k_norm=k_norm,
                cap=getattr(attn, "attn_logit_softcapping", None),
            ),
            mlp=mlp,
            ln1=_norm(blk.input_layernorm, family, offset),
        )
        if hasattr(blk, "pre_feedforward_layernorm"):  # Gemma 2: four norms
            return Block(
                **common,
                ln2=_norm(blk.pre_feedforward_layernorm, family, offset),
                post_attn=_norm(blk.post_attention_layernorm, family, offset),
                post_mlp=_norm(blk.post_feedforward_layernorm, family, offset),
            )
        return Block(**common, ln2=_norm(blk.post_attention_layernorm, family, offset))

    return build


def _gpt2(model: nn.Module, config: Any, blk: nn.Module, la: LayerAttention, hmap: HeadMap) -> Block:
    mlp = Mlp(up=_proj(blk.mlp.c_fc), down=_proj(blk.mlp.c_proj), act=blk.mlp.act)
    return Block(
        attn=_attention(la, hmap, scale=blk.attn.scaling, rope=False),
        mlp=mlp,
        ln1=_norm(blk.ln_1, "gpt2"),
        ln2=_norm(blk.ln_2, "gpt2"),
    )


def _gpt_neox(model: nn.Module, config: Any, blk: nn.Module, la: LayerAttention, hmap: HeadMap) -> Block:
    m = blk.mlp
    return Block(
        attn=_attention(la, hmap, scale=blk.attention.scaling, rope=True),
        mlp=Mlp(up=_proj(m.dense_h_to_4h), down=_proj(m.dense_4h_to_h), act=m.act),
        ln1=_norm(blk.input_layernorm, "gpt_neox"),
        ln2=_norm(blk.post_attention_layernorm, "gpt_neox"),
        wiring="parallel" if blk.use_parallel_residual else "pre",
    )


def _opt(model: nn.Module, config: Any, blk: nn.Module, la: LayerAttention, hmap: HeadMap) -> Block:
    # OPT multiplies q_proj's output (bias included) by `scaling` and calls attention with
    # scale 1: the same as scaling the scores of both parts.
    return Block(
        attn=_attention(la, hmap, scale=blk.self_attn.scaling, rope=False),
        mlp=Mlp(up=_proj(blk.fc1), down=_proj(blk.fc2), act=blk.activation_fn),
        ln1=_norm(blk.self_attn_layer_norm, "opt"),
        ln2=_norm(blk.final_layer_norm, "opt"),
        wiring="pre" if blk.do_layer_norm_before else "post",
    )


def _bloom(model: nn.Module, config: Any, blk: nn.Module, la: LayerAttention, hmap: HeadMap) -> Block:
    m = blk.mlp
    return Block(
        attn=_attention(la, hmap, scale=blk.self_attention.inv_norm_factor, rope=False, alibi=True),
        mlp=Mlp(up=_proj(m.dense_h_to_4h), down=_proj(m.dense_4h_to_h), act=m.gelu_impl),
        ln1=_norm(blk.input_layernorm, "bloom"),
        ln2=_norm(blk.post_attention_layernorm, "bloom"),
        residual_from_norm=bool(blk.apply_residual_connection_post_layernorm),
    )


@dataclass(frozen=True)
class FamilySpec:
    block: BlockBuilder
    final: tuple[str, ...]
    """Paths (from the base model) of the modules after the last layer, in order."""
    rope: bool = False
    alibi: bool = False
    norm_offset: float = 0.0


FAMILY_SPECS: dict[str, FamilySpec] = {
    "llama": FamilySpec(_llama_like(), ("norm",), rope=True),
    "mistral": FamilySpec(_llama_like(window_from="config"), ("norm",), rope=True),
    "qwen2": FamilySpec(_llama_like(window_from="module"), ("norm",), rope=True),
    "qwen3": FamilySpec(_llama_like(window_from="module"), ("norm",), rope=True),
    "gemma": FamilySpec(_llama_like(offset=1.0), ("norm",), rope=True, norm_offset=1.0),
    "gemma2": FamilySpec(_llama_like(offset=1.0, window_from="module"), ("norm",), rope=True, norm_offset=1.0),
    "phi3": FamilySpec(_llama_like(window_from="config"), ("norm",), rope=True),
    "gpt2": FamilySpec(_gpt2, ("ln_f",)),
    "gpt_neox": FamilySpec(_gpt_neox, ("final_layer_norm",), rope=True),
    "opt": FamilySpec(_opt, ("decoder.final_layer_norm", "decoder.project_out")),
    "bloom": FamilySpec(_bloom, ("ln_f",), alibi=True),
}


def supported_families() -> tuple[str, ...]:
    return tuple(sorted(FAMILY_SPECS))


def family_spec(family: str) -> FamilySpec:
    spec = FAMILY_SPECS.get(family)
    if spec is None:
        raise BadRequest(
            f"cdt does not support {family} yet (supported: {', '.join(supported_families())}); "
            "use the ablation or attribution scorer for this model"
        )
    return spec


def blocks_of(model: nn.Module, hmap: HeadMap) -> list[nn.Module]:
    """The decoder block modules, found through the head map's family table."""
    node: Any = getattr(model, "base_model", model)
    for part in FAMILIES[hmap.family].layers.split("."):
        node = getattr(node, part)
    return list(node)


def build_block(model: nn.Module, hmap: HeadMap, layer: int) -> Block:
    blk = blocks_of(model, hmap)[layer]
    return family_spec(hmap.family).block(model, model.config, blk, hmap.layers[layer], hmap)


def build_readout(model: nn.Module, hmap: HeadMap, token_ids: list[int] | None) -> Readout:
    spec = family_spec(hmap.family)
    base: Any = getattr(model, "base_model", model)
    steps: list[Norm | Proj] = []
    for path in spec.final:
        node: Any = base
        for part in path.split("."):
            node = getattr(node, part, None)
        if node is None or isinstance(node, nn.Identity):
            continue
        if isinstance(node, (nn.Linear, Conv1D)):
            steps.append(_proj(node))
        else:
            norm = _norm(node, hmap.family, spec.norm_offset)
            if norm is not None:
                steps.append(norm)
    head = model.get_output_embeddings()
    if head is None:
        raise BadRequest("cdt needs a model with an output embedding (a *ForCausalLM)")
    weight = head.weight if token_ids is None else head.weight[token_ids]  # [C, D]
    bias = getattr(head, "bias", None)
    if bias is not None and token_ids is not None:
        bias = bias[token_ids]
    cap = getattr(model.config, "final_logit_softcapping", None)
    return Readout(tuple(steps), Proj(weight.t(), bias), float(cap) if cap else None)


def positions(model: nn.Module, hmap: HeadMap, attention_mask: Tensor) -> Positions:
    spec = family_spec(hmap.family)
    base: Any = getattr(model, "base_model", model)
    b, t = attention_mask.shape
    pos = Positions(pad=attention_mask.bool())
    if spec.rope:
        # Position ids are 0..T-1, as the models use when none are passed (class_logits).
        ids = torch.arange(t, device=attention_mask.device)[None]
        probe = torch.zeros(1, t, 1, dtype=F32, device=attention_mask.device)
        cos, sin = base.rotary_emb(probe, ids)
        pos.cos, pos.sin = cos.to(F32), sin.to(F32)
    if spec.alibi:
        dtype = next(model.parameters()).dtype
        alibi = base.build_alibi_tensor(attention_mask, hmap.n_heads, dtype=dtype)  # [B*H, 1, T]
        pos.alibi = alibi.to(F32).view(b, hmap.n_heads, 1, t)
    return pos
