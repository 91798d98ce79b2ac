"""`decompose_heads`: the CD-T propagation from source heads to the class logits.

One plain forward (with hooks) caches, for every layer holding a source, the true residual
entering it and every head's z; nothing below a source is ever recomputed. Sources are
sorted by layer and processed `chunk` at a time, each source owning B rows of a stacked
batch (row = k * B + b). A chunk starts at its lowest source layer; the rows of a source
*join* the batch at its layer, from the cached residual, as the pair (0, x) with their
attention output taken from the cached z (β = z_s − μ_s relevant, everything else, O's bias
included, irrelevant) instead of being decomposed. Above that, every row goes through the
decomposed block (`blocks.run_block`). In the last layer only each row's last prompt
position is computed past K/V (it is the only one that reaches the class logits).

At the end, rel + irrel is compared with the true class logits of the plain forward; a
disagreement beyond float tolerance raises `Internal` instead of returning wrong numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from ...errors import BadRequest, Internal
from ...heads import HeadMap, capture_z
from .blocks import (
    F32,
    Block,
    Positions,
    Readout,
    blocks_of,
    build_block,
    build_readout,
    family_spec,
    positions,
    run_block,
)
from .pairs import Pair, PatternRule

Trace = Callable[[str, int, Tensor, Tensor, list[int]], None]
"""trace(point, layer, rel, irrel, sources): point "layer" after each propagated layer
(rel/irrel [R, T, D], or [R, 1, D] for the last layer, at last_index), "logits" at the end
([R, C]); R = len(sources) * B rows, row k * B + b for example b of source `sources[k]`
(indices into the caller's `sources`)."""


def decompose_heads(
    model: Any,
    head_map: HeadMap,
    input_ids: Tensor,
    attention_mask: Tensor,
    last_index: Tensor,
    token_ids: Sequence[int] | None,
    mean_z: Tensor,
    sources: Sequence[tuple[int, int]],
    *,
    chunk: int = 16,
    check: Callable[[], None] = lambda: None,
    trace: Trace | None = None,
    pattern: PatternRule = "decomposed",
) -> tuple[Tensor, Tensor]:
    """Decompose the class logits of a batch with respect to each source head.

    model:          a transformers causal LM of a supported family (see `supported_families`).
    head_map:       `build_head_map(model)`.
    input_ids, attention_mask: [B, T] (right or left padding; position ids are 0..T-1, as
                    in `class_logits`). last_index: [B], the last prompt position of each row.
    token_ids:      the label tokens (C classes), or None for the whole vocabulary.
    mean_z:         [L, H, head_dim], μ of every head (the label-balanced mean baseline).
    sources:        (layer, query head) pairs, S of them, any order, repeats allowed.
    chunk:          sources propagated together: chunk·B rows per step, so memory grows as
                    chunk·B·T·(d_ff + heads·T) (attention scores where no fused kernel applies).
    check:          called between steps; raise from it (e.g. `Cancelled`) to stop.
    trace:          optional debug hook, see `Trace`.
    pattern:        attention rule in the layers after a source: "decomposed" (CD-T:
                    P_rel = softmax(q_rel k_rel)) or "frozen" (z_rel = P v_rel with the true
                    pattern P), see `pairs.attention`.

    Returns (rel, irrel), each float32 [S, B, C] on the model's device, in `sources` order:
    rel is the part of the class logits due to β = z_s − μ_s of the source head, irrel the
    rest; rel + irrel equals `class_logits(model, ...)` up to float rounding.
    Raises BadRequest for an unsupported family/variant or bad shapes, Internal if rel + irrel
    fails to reproduce the model's own class logits (a variant the rules do not cover).
    """
    family_spec(head_map.family)  # BadRequest("cdt does not support <family> yet ...") first
    if getattr(getattr(model, "config", None), "model_type", None) != head_map.family:
        raise BadRequest("cdt: head_map was not built for this model")
    if chunk < 1:
        raise BadRequest(f"cdt: chunk must be >= 1, got {chunk}")
    device = next(model.parameters()).device
    input_ids = input_ids.to(device)
    attention_mask = attention_mask.to(device)
    last_index = last_index.to(device=device, dtype=torch.long)
    b, t = input_ids.shape
    if attention_mask.shape != (b, t) or last_index.shape != (b,):
        raise BadRequest(
            f"cdt: shapes input_ids {tuple(input_ids.shape)}, attention_mask {tuple(attention_mask.shape)}, "
            f"last_index {tuple(last_index.shape)} do not match"
        )
    if b and (int(last_index.min()) < 0 or int(last_index.max()) >= t):
        raise BadRequest(f"cdt: last_index out of range [0, {t})")
    want = (head_map.n_layers, head_map.n_heads, head_map.head_dim)
    if tuple(mean_z.shape) != want:
        raise BadRequest(f"cdt: mean_z has shape {tuple(mean_z.shape)}, expected {want}")
    srcs = [(int(layer), int(head)) for layer, head in sources]
    for layer, head in srcs:
        head_map.check_layer(layer)
        head_map.check_head(head)
    ids = None if token_ids is None else [int(i) for i in token_ids]

    with torch.no_grad(), _eval(model):
        readout = build_readout(model, head_map, ids)
        n_classes = readout.unembed.out_features
        rel_out = torch.zeros(len(srcs), b, n_classes, dtype=F32, device=device)
        irrel_out = torch.zeros_like(rel_out)
        if not srcs or not b:
            return rel_out, irrel_out
        layers = sorted({layer for layer, _ in srcs})
        resid, z_cache, last_hidden = _plain_forward(model, head_map, input_ids, attention_mask, layers)
        check()
        pos = dataclasses.replace(positions(model, head_map, attention_mask), pattern=pattern)
        mu = mean_z.to(device=device, dtype=F32)
        order = sorted(range(len(srcs)), key=lambda s: srcs[s][0])
        blocks: dict[int, Block] = {}
        for start in range(0, len(order), chunk):
            check()
            part = order[start : start + chunk]
            rel, irrel = _propagate(
                model, head_map, [srcs[s] for s in part], part, resid, z_cache, mu, pos, last_index, readout,
                blocks, check, trace,
            )  # fmt: skip
            rel_out[part] = rel.view(len(part), b, n_classes)
            irrel_out[part] = irrel.view(len(part), b, n_classes)
        _guard(model, readout, last_hidden, last_index, rel_out + irrel_out)
    return rel_out, irrel_out


@contextmanager
def _eval(model: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) for the duration, restoring each module's own flag after."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def _plain_forward(
    model: Any, hmap: HeadMap, input_ids: Tensor, attention_mask: Tensor, layers: list[int]
) -> tuple[dict[int, Tensor], dict[int, Tensor], Tensor]:
    """(residual entering each layer, z [B, T, H, hd] of each layer, final hidden [B, T, D])."""
    blocks = blocks_of(model, hmap)
    resid: dict[int, Tensor] = {}

    def grab(layer: int) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            x = args[0] if args else kwargs["hidden_states"]
            resid[layer] = x.detach()

        return hook

    handles = [blocks[layer].register_forward_pre_hook(grab(layer), with_kwargs=True) for layer in layers]
    try:
        with capture_z(hmap, layers) as record:
            out = model.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    missing = [layer for layer in layers if layer not in resid or layer not in record.z]
    if missing:
        raise Internal(f"cdt: the plain forward did not reach layers {missing}")
    return resid, dict(record.z), out.last_hidden_state


def _propagate(
    model: Any,
    hmap: HeadMap,
    chunk: list[tuple[int, int]],
    chunk_ids: list[int],
    resid: dict[int, Tensor],
    z_cache: dict[int, Tensor],
    mu: Tensor,
    pos: Positions,
    last_index: Tensor,
    readout: Readout,
    blocks: dict[int, Block],
    check: Callable[[], None],
    trace: Trace | None,
) -> Pair:
    """One chunk of sources (sorted by layer) -> class logit pair [len(chunk) * B, C]."""
    state: Pair | None = None
    active: list[int] = []
    for layer in range(chunk[0][0], hmap.n_layers):
        check()
        if layer not in blocks:
            blocks[layer] = build_block(model, hmap, layer)
        joining = [i for i, (src_layer, _) in enumerate(chunk) if src_layer == layer]
        join_z = None
        if joining:
            x = resid[layer].to(F32).repeat(len(joining), 1, 1)  # [J, T, D]
            start = Pair(torch.zeros_like(x), x)
            state = start if state is None else Pair.cat([state, start])
            join_z = _source_split(z_cache[layer], mu[layer], [chunk[i][1] for i in joining])
        assert state is not None
        last = layer == hmap.n_layers - 1
        rows = len(active) + len(joining)
        q_index = last_index.repeat(rows) if last else None
        state = run_block(blocks[layer], state, pos, join_z=join_z, q_index=q_index)
        active += joining
        if trace is not None:
            trace("layer", layer, state.rel, state.irrel, [chunk_ids[i] for i in active])
    assert state is not None
    logits = readout(state.map(lambda u: u[:, 0]))
    if trace is not None:
        trace("logits", hmap.n_layers, logits.rel, logits.irrel, [chunk_ids[i] for i in active])
    return logits


def _source_split(z: Tensor, mu_layer: Tensor, heads: list[int]) -> Pair:
    """Joining rows' z pair [J*B, T, H*hd]: head h_j of block j is (z − μ, μ), the rest (0, z)."""
    bsz, t, n, hd = z.shape
    z = z.to(F32)
    irrel = z.repeat(len(heads), 1, 1, 1)  # [J*B, T, H, hd]
    rel = torch.zeros_like(irrel)
    for j, head in enumerate(heads):
        rows = slice(j * bsz, (j + 1) * bsz)
        rel[rows, :, head] = z[:, :, head] - mu_layer[head]
        irrel[rows, :, head] = mu_layer[head]
    return Pair(rel.reshape(-1, t, n * hd), irrel.reshape(-1, t, n * hd))


def _guard(model: Any, readout: Readout, last_hidden: Tensor, last_index: Tensor, total: Tensor) -> None:
    """rel + irrel must reproduce the true class logits; otherwise a rule or spec is wrong."""
    h = last_hidden[torch.arange(last_hidden.shape[0], device=last_hidden.device), last_index].to(F32)
    unembed = readout.unembed
    true = h @ unembed.weight.to(F32)
    if unembed.bias is not None:
        true = true + unembed.bias.to(F32)
    if readout.cap:
        true = torch.tanh(true / readout.cap) * readout.cap
    err = (total - true[None]).abs().max().item()
    scale = max(1.0, true.abs().max().item())
    half = next(model.parameters()).dtype not in (torch.float32, torch.float64)
    tol = (1e-1 if half else 1e-3) * scale
    if not err <= tol:  # also catches NaN
        raise Internal(
            f"cdt: rel + irrel differs from the model's class logits by {err:.3g} (tolerance {tol:.3g}); "
            f"the {model.config.model_type} decomposition does not match this model variant"
        )
