"""The CD-T engine, end to end, for every supported family (and variants that exercise each
family's traps: sliding windows, softcaps, partial rotary, parallel/post-norm wiring, BLOOM's
residual-from-norm, OPT's project_out, q/k/v/O/MLP biases).

1. Completeness: rel + irrel equals the true value after every layer and at the class logits.
2. Exactness: on a linear path (last layer, MLP output zeroed, no final norm) rel is exactly
   the mean-ablation effect of the head.
3. A head whose z ≡ μ has rel ≡ 0.
4. Chunking does not change the numbers.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
import torch
import transformers as tf
from tiny_models import CASES, Case, build, tokens
from torch import Tensor, nn

from ctsft_runtime.errors import BadRequest, Internal
from ctsft_runtime.heads import build_head_map, capture_z, head_gates
from ctsft_runtime.models.classify import class_logits
from ctsft_runtime.scoring.cdt import blocks as cdt_blocks
from ctsft_runtime.scoring.cdt import decompose_heads, supported_families
from ctsft_runtime.scoring.cdt import pairs as cdt_pairs

ATOL = 1e-4
TOKENS = [5, 7, 9, 11]
LLAMA_LIKE = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)

VARIANTS: list[Case] = [
    Case(
        "llama-3l-bias",
        tf.LlamaConfig,
        dict(LLAMA_LIKE, num_hidden_layers=3, num_key_value_heads=2, attention_bias=True, mlp_bias=True),
        n_kv_heads=2,
    ),
    Case("mistral-window", tf.MistralConfig, dict(LLAMA_LIKE, num_key_value_heads=2, sliding_window=3), n_kv_heads=2),
    Case(
        "qwen2-window",
        tf.Qwen2Config,
        dict(LLAMA_LIKE, num_key_value_heads=2, use_sliding_window=True, sliding_window=3, max_window_layers=1),
        n_kv_heads=2,
    ),
    Case(
        "gemma2-caps",
        tf.Gemma2Config,
        dict(
            LLAMA_LIKE,
            num_hidden_layers=3,  # layers 0 and 2 slide; only layers above a source are decomposed
            num_key_value_heads=2,
            head_dim=12,
            sliding_window=3,
            attn_logit_softcapping=1.0,
            final_logit_softcapping=2.0,
            query_pre_attn_scalar=12,
        ),
        n_kv_heads=2,
        head_dim=12,
    ),
    Case(
        "phi3-partial-window",
        tf.Phi3Config,
        dict(LLAMA_LIKE, num_key_value_heads=2, partial_rotary_factor=0.5, sliding_window=3),
        n_kv_heads=2,
    ),
    Case(
        "gpt_neox-seq",
        tf.GPTNeoXConfig,
        dict(LLAMA_LIKE, max_position_embeddings=32, use_parallel_residual=False, rotary_pct=0.5),
    ),
    Case(
        "gpt2-layerscale",
        tf.GPT2Config,
        dict(n_layer=3, n_embd=32, n_head=4, n_positions=32, scale_attn_by_inverse_layer_idx=True),
    ),
    Case(
        "opt-postnorm-proj",
        tf.OPTConfig,
        dict(
            hidden_size=32,
            ffn_dim=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            word_embed_proj_dim=16,
            max_position_embeddings=32,
            do_layer_norm_before=False,
        ),
    ),
    Case(
        "bloom-postres",
        tf.BloomConfig,
        dict(hidden_size=32, n_layer=2, n_head=4, apply_residual_connection_post_layernorm=True),
    ),
]
ALL = CASES + VARIANTS

_MODELS: dict[str, nn.Module] = {}


def model_of(case: Case) -> nn.Module:
    if case.id not in _MODELS:
        _MODELS[case.id] = build(case)
    return _MODELS[case.id]


def batch(n: int = 3) -> dict[str, Tensor]:
    """Right-padded rows of different lengths; row 0 is full."""
    ids = tokens(n)
    mask = torch.ones_like(ids)
    for i, length in enumerate([ids.shape[1], 6, 4, 7, 5][:n]):
        mask[i, length:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    return {"input_ids": ids, "attention_mask": mask, "last_index": mask.sum(1) - 1}


def all_heads(hmap: Any) -> list[tuple[int, int]]:
    return [(layer, head) for layer in range(hmap.n_layers) for head in range(hmap.n_heads)]


def true_layer_outputs(model: nn.Module, hmap: Any, enc: dict[str, Tensor]) -> list[Tensor]:
    blocks = cdt_blocks.blocks_of(model, hmap)
    outs: list[Tensor] = [torch.empty(0)] * len(blocks)

    def grab(i: int):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            outs[i] = (output[0] if isinstance(output, tuple) else output).detach()

        return hook

    handles = [blk.register_forward_hook(grab(i)) for i, blk in enumerate(blocks)]
    try:
        with torch.no_grad():
            model.base_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return outs


def random_mu(hmap: Any, seed: int = 0) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(hmap.n_layers, hmap.n_heads, hmap.head_dim, generator=gen) * 0.3


def test_every_head_map_family_is_supported():
    from ctsft_runtime.heads import supported_model_types

    assert set(supported_families()) == set(supported_model_types())


@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_completeness(case: Case):
    model = model_of(case)
    hmap = build_head_map(model)
    enc = batch(3)
    b = enc["input_ids"].shape[0]
    true_layers = true_layer_outputs(model, hmap, enc)
    true_logits = class_logits(model, enc, TOKENS)
    seen: dict[str, int] = {"layer": 0, "logits": 0}

    def trace(point: str, layer: int, rel: Tensor, irrel: Tensor, sources: list[int]) -> None:
        seen[point] += 1
        total = (rel + irrel).view(len(sources), b, *rel.shape[1:])
        if point == "logits":
            torch.testing.assert_close(total, true_logits.expand_as(total), atol=ATOL, rtol=1e-4)
            return
        want = true_layers[layer]
        if total.shape[2] == 1:  # last layer: only the last prompt position is propagated
            want = want[torch.arange(b), enc["last_index"]][:, None]
        torch.testing.assert_close(total, want.expand_as(total), atol=ATOL, rtol=1e-4)

    sources = all_heads(hmap)
    rel, irrel = decompose_heads(
        model, hmap, enc["input_ids"], enc["attention_mask"], enc["last_index"], TOKENS, random_mu(hmap), sources,
        chunk=5, trace=trace,
    )  # fmt: skip
    assert rel.shape == irrel.shape == (len(sources), b, len(TOKENS))
    torch.testing.assert_close(rel + irrel, true_logits.expand_as(rel), atol=ATOL, rtol=1e-4)
    assert seen["layer"] > hmap.n_layers and seen["logits"] > 1
    # Every head of every layer carries some relevance to the logits (rel is not trivially 0),
    # including heads in layer 0 whose β passes through a decomposed attention.
    assert (rel.abs().amax(dim=(1, 2)) > 1e-4).all()


def test_full_vocabulary():
    case = CASES[1]  # llama
    model = model_of(case)
    hmap = build_head_map(model)
    enc = batch(2)
    rel, irrel = decompose_heads(
        model, hmap, enc["input_ids"], enc["attention_mask"], enc["last_index"], None, random_mu(hmap), [(0, 1), (1, 2)]
    )
    assert rel.shape == (2, 2, model.config.vocab_size)
    torch.testing.assert_close(rel + irrel, class_logits(model, enc, None).expand_as(rel), atol=ATOL, rtol=1e-4)


def _linear_tail(case: Case) -> nn.Module:
    """A fresh model whose last layer's MLP writes nothing and whose final norm is gone: the
    path from a last-layer head's z to the logits is then linear."""
    model = build(case)
    base = model.base_model
    with torch.no_grad():
        if case.config_cls is tf.GPT2Config:
            base.h[-1].mlp.c_proj.weight.zero_()  # its bias stays: it is not the head's
            base.ln_f = nn.Identity()
        else:
            base.layers[-1].mlp.down_proj.weight.zero_()
            base.norm = nn.Identity()
    return model


EXACT = [c for c in ALL if c.id in ("llama", "llama-gqa", "qwen2-gqa", "gpt2", "llama-3l-bias")]


@pytest.mark.parametrize("case", EXACT, ids=[c.id for c in EXACT])
def test_exact_on_linear_path(case: Case):
    model = _linear_tail(case)
    hmap = build_head_map(model)
    enc = batch(3)
    last = hmap.n_layers - 1
    mu = random_mu(hmap, seed=3)
    sources = [(last, h) for h in range(hmap.n_heads)]
    rel, _ = decompose_heads(
        model, hmap, enc["input_ids"], enc["attention_mask"], enc["last_index"], TOKENS, mu, sources
    )
    true = class_logits(model, enc, TOKENS)
    for i, (layer, head) in enumerate(sources):
        with torch.no_grad(), head_gates(hmap, replace={layer: {head: mu[layer, head]}}):
            ablated = class_logits(model, enc, TOKENS)
        torch.testing.assert_close(rel[i], true - ablated, atol=1e-5, rtol=1e-4)
        assert (true - ablated).abs().max() > 1e-3  # the check is not vacuous


def test_head_at_its_mean_has_no_relevance():
    case = CASES[1]  # llama, no GQA, no biases: zero V rows of head 2 in layer 0 => z ≡ 0 = μ
    model = build(case)
    hmap = build_head_map(model)
    head = 2
    with torch.no_grad():
        hmap.head(0, head).v_weight.view().zero_()
    enc = batch(3)
    with torch.no_grad(), capture_z(hmap, [0]) as rec:
        model.base_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    assert rec.z[0][:, :, head].abs().max() == 0
    mu = random_mu(hmap)
    mu[0, head] = 0
    rel, irrel = decompose_heads(
        model, hmap, enc["input_ids"], enc["attention_mask"], enc["last_index"], TOKENS, mu, [(0, head), (0, 1)]
    )
    assert rel[0].abs().max() == 0
    assert rel[1].abs().max() > 1e-3
    torch.testing.assert_close(irrel[0], class_logits(model, enc, TOKENS), atol=ATOL, rtol=1e-4)


BATCHING = [c for c in ALL if c.id in ("llama-3l-bias", "gemma2-caps", "bloom", "gpt_neox")]


@pytest.mark.parametrize("case", BATCHING, ids=[c.id for c in BATCHING])
def test_chunking_does_not_change_results(case: Case):
    model = model_of(case)
    hmap = build_head_map(model)
    enc = batch(4)
    mu = random_mu(hmap, seed=1)
    sources = [*all_heads(hmap), (0, 1), (hmap.n_layers - 1, 0)]  # repeats allowed
    random.Random(0).shuffle(sources)
    args = (model, hmap, enc["input_ids"], enc["attention_mask"], enc["last_index"], TOKENS, mu, sources)
    together = decompose_heads(*args, chunk=len(sources))
    alone = decompose_heads(*args, chunk=1)
    mixed = decompose_heads(*args, chunk=3)
    for got in (alone, mixed):
        for a, b in zip(together, got, strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_unsupported_family_raises(monkeypatch):
    case = CASES[-1]  # bloom
    model = model_of(case)
    hmap = build_head_map(model)
    monkeypatch.delitem(cdt_blocks.FAMILY_SPECS, "bloom")
    enc = batch(2)
    with pytest.raises(BadRequest, match="cdt does not support bloom yet"):
        decompose_heads(
            model, hmap, enc["input_ids"], enc["attention_mask"], enc["last_index"], TOKENS, random_mu(hmap), [(0, 0)]
        )


def test_wrong_numbers_are_caught(monkeypatch):
    """A broken rule must raise, not return: the end-of-call guard compares with the model."""
    case = CASES[1]
    model = model_of(case)
    hmap = build_head_map(model)
    monkeypatch.setattr(cdt_pairs, "rope", lambda x, cos, sin: x)
    enc = batch(2)
    with pytest.raises(Internal, match="differs from the model's class logits"):
        decompose_heads(
            model, hmap, enc["input_ids"], enc["attention_mask"], enc["last_index"], TOKENS, random_mu(hmap), [(0, 0)]
        )


def test_bad_inputs():
    case = CASES[1]
    model = model_of(case)
    hmap = build_head_map(model)
    enc = batch(2)
    args = (model, hmap, enc["input_ids"], enc["attention_mask"], enc["last_index"], TOKENS)
    with pytest.raises(BadRequest, match="mean_z"):
        decompose_heads(*args, torch.zeros(1, 2, 3), [(0, 0)])
    with pytest.raises(BadRequest, match="out of range"):
        decompose_heads(*args, random_mu(hmap), [(5, 0)])
    with pytest.raises(BadRequest, match="chunk"):
        decompose_heads(*args, random_mu(hmap), [(0, 0)], chunk=0)
    rel, irrel = decompose_heads(*args, random_mu(hmap), [])
    assert rel.shape == irrel.shape == (0, 2, len(TOKENS))


def test_check_is_called_and_can_cancel():
    case = CASES[1]
    model = model_of(case)
    hmap = build_head_map(model)
    enc = batch(2)
    calls = []

    def check() -> None:
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        decompose_heads(
            model, hmap, enc["input_ids"], enc["attention_mask"], enc["last_index"], TOKENS, random_mu(hmap),
            all_heads(hmap), chunk=2, check=check,
        )  # fmt: skip


def test_training_mode_is_restored():
    case = replace(CASES[0])  # gpt2 has dropout
    model = build(case)
    model.train()
    model.transformer.h[0].eval()  # a mixed state must come back as it was
    hmap = build_head_map(model)
    enc = batch(2)
    rel, irrel = decompose_heads(
        model, hmap, enc["input_ids"], enc["attention_mask"], enc["last_index"], TOKENS, random_mu(hmap), [(0, 0)]
    )
    assert model.training and not model.transformer.h[0].training and model.transformer.h[1].training
    model.eval()
    torch.testing.assert_close(rel + irrel, class_logits(model, enc, TOKENS).expand_as(rel), atol=ATOL, rtol=1e-4)
