"""Invariants of the head map and head gates, for every supported family.

The map is data; these tests check it against what the real forward pass does, so a wrong
fused layout, GQA mapping or head_dim fails here rather than in a relevance score.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
import transformers as tf
from tiny_models import CASE_IDS, CASES, Case, build, tokens
from torch import Tensor, nn

from ctsft_runtime.errors import BadRequest
from ctsft_runtime.heads import (
    HeadMap,
    Span,
    build_head_map,
    capture_z,
    head_gates,
    norm_parameters,
    supported_model_types,
)

ATOL = 1e-5
SAME = 1e-6  # "unchanged": other heads' computations do not depend on the edit at all
CHANGED = 1e-3  # "changed": edits move z by O(0.1) with WEIGHT_STD = 0.2

by_case = pytest.mark.parametrize("case", CASES, ids=CASE_IDS)


@contextmanager
def zeroed(spans: list[Span]) -> Iterator[None]:
    """Zero the spans for the block, then restore the original values."""
    saved = [s.view().clone() for s in spans]
    with torch.no_grad():
        for s in spans:
            s.view().zero_()
    try:
        yield
    finally:
        with torch.no_grad():
            for s, old in zip(spans, saved, strict=True):
                s.view().copy_(old)


def z_of(model: nn.Module, hmap: HeadMap, layer: int) -> Tensor:
    """[batch, pos, n_heads, head_dim] at `layer` for the fixed test tokens."""
    with torch.no_grad(), capture_z(hmap, [layer]) as rec:
        model(tokens())
    return rec.z[layer]


def changed_heads(before: Tensor, after: Tensor) -> list[int]:
    """Heads whose z moved by more than CHANGED; fail if any moved by an unclear amount."""
    diff = (after - before).abs().amax(dim=(0, 1, 3))  # [n_heads]
    unclear = [(h, d) for h, d in enumerate(diff.tolist()) if SAME < d < CHANGED]
    assert not unclear, f"heads moved by ambiguous amounts: {unclear}"
    return [h for h, d in enumerate(diff.tolist()) if d >= CHANGED]


@by_case
def test_geometry_matches_config(case: Case) -> None:
    model = build(case)
    hmap = HeadMap.for_model(model)
    assert hmap.family == model.config.model_type
    assert (hmap.n_layers, hmap.n_heads, hmap.n_kv_heads) == (2, case.n_heads, case.n_kv_heads)
    assert (hmap.head_dim, hmap.d_model) == (case.head_dim, case.d_model)
    assert [s.kv_head for s in hmap.layers[0].heads] == [
        h // (case.n_heads // case.n_kv_heads) for h in range(case.n_heads)
    ]


@by_case
def test_spans_partition_every_attention_parameter(case: Case) -> None:
    """Each element of Q/K/V/O weights (and q/k/v biases) belongs to exactly one span."""
    hmap = build_head_map(build(case))
    for layer in hmap.layers:
        spans_of: dict[int, list[Span]] = {}
        for s in layer.heads:
            # K/V spans are shared by a KV group: take them from its first query head only.
            first_of_group = s.head == hmap.query_heads_of(s.kv_head)[0]
            for span in s.spans(kv=first_of_group):
                assert span.size == hmap.head_dim
                spans_of.setdefault(id(span.param), []).append(span)
        shared = {id(p) for _, p in layer.qk_norms}
        if layer.o_bias is not None:
            shared.add(id(layer.o_bias.param))
        own = {id(p) for p in layer.attention.parameters()} - shared
        assert set(spans_of) == own, "spans must cover every per-head attention parameter"
        for spans in spans_of.values():
            cover = sum(s.mask().int() for s in spans)  # [param shape]: how often covered
            assert torch.equal(cover, torch.ones_like(cover)), f"{spans[0].name} not partitioned"


@by_case
def test_head_contributions_sum_to_attention_output(case: Case) -> None:
    model = build(case)
    hmap = build_head_map(model)
    outs: dict[int, Tensor] = {}
    hooks = [
        la.o_proj.register_forward_hook(lambda _m, _a, out, i=la.index: outs.__setitem__(i, out.detach()))
        for la in hmap.layers
    ]
    try:
        with torch.no_grad(), capture_z(hmap) as rec:
            model(tokens())
    finally:
        for h in hooks:
            h.remove()
    for la in hmap.layers:
        z = rec.z[la.index]  # [batch, pos, n_heads, head_dim]
        total = sum(s.contribution(z[..., s.head, :]) for s in la.heads)
        if la.o_bias is not None:
            total = total + la.o_bias.view()  # shared bias: once, not per head
        torch.testing.assert_close(total, outs[la.index], atol=ATOL, rtol=0)


@by_case
@pytest.mark.parametrize("layer", [0, 1])
def test_zeroing_o_columns_equals_gating_z(case: Case, layer: int) -> None:
    model = build(case)
    hmap = build_head_map(model)
    head = hmap.n_heads - 1
    gate = torch.ones(hmap.n_heads)
    gate[head] = 0.0
    with torch.no_grad():
        with head_gates(hmap, gate={layer: gate}):
            gated = model(tokens()).logits
        with zeroed([hmap.head(layer, head).o_weight]):
            ablated = model(tokens()).logits
        plain = model(tokens()).logits
    torch.testing.assert_close(gated, ablated, atol=SAME, rtol=0)
    assert (plain - gated).abs().max() > CHANGED, "ablating a head should move the logits"


@by_case
@pytest.mark.parametrize("layer", [0, 1])
def test_zeroing_q_rows_changes_only_that_head(case: Case, layer: int) -> None:
    model = build(case)
    hmap = build_head_map(model)
    before = z_of(model, hmap, layer)
    for head in range(hmap.n_heads):
        s = hmap.head(layer, head)
        with zeroed([x for x in (s.q_weight, s.q_bias) if x is not None]):
            after = z_of(model, hmap, layer)
        assert changed_heads(before, after) == [head]


@by_case
@pytest.mark.parametrize("proj", ["k", "v"])
def test_zeroing_kv_rows_changes_exactly_its_query_heads(case: Case, proj: str) -> None:
    model = build(case)
    hmap = build_head_map(model)
    layer = 1
    before = z_of(model, hmap, layer)
    for kv in range(hmap.n_kv_heads):
        s = hmap.head(layer, hmap.query_heads_of(kv)[0])
        spans = [s.k_weight, s.k_bias] if proj == "k" else [s.v_weight, s.v_bias]
        with zeroed([x for x in spans if x is not None]):
            after = z_of(model, hmap, layer)
        assert changed_heads(before, after) == hmap.query_heads_of(kv)
        if proj == "v":  # z = P v with v = 0: tells V rows apart from K rows
            assert after[:, :, hmap.query_heads_of(kv), :].abs().max() < SAME


NO_ROPE = [c for c in CASES if c.id in ("gpt2", "opt", "bloom")]


@pytest.mark.parametrize("case", NO_ROPE, ids=[c.id for c in NO_ROPE])
def test_shifting_keys_is_invisible_but_shifting_queries_is_not(case: Case) -> None:
    """Tells Q rows apart from K rows in fused layouts (zeroing either looks the same).

    Without RoPE, adding b to every key adds q_i . b to all scores of query i: softmax
    ignores it. Adding b to every query changes scores by b . k_j, which varies with j.
    """
    model = build(case)
    hmap = build_head_map(model)
    layer, head = 1, hmap.n_heads - 1
    s = hmap.head(layer, head)
    before = z_of(model, hmap, layer)
    shift = torch.randn(hmap.head_dim)
    for bias, expect in ((s.k_bias, []), (s.q_bias, [head])):
        assert bias is not None
        with torch.no_grad():
            bias.view().add_(shift)
        after = z_of(model, hmap, layer)
        with torch.no_grad():
            bias.view().sub_(shift)
        assert changed_heads(before, after) == expect


@by_case
def test_read_in_reproduces_the_projection(case: Case) -> None:
    """read_in's orientation: x @ W + b equals the projection's own output at the span."""
    model = build(case)
    hmap = build_head_map(model)
    s = hmap.head(0, hmap.n_heads - 1)
    mod_of = {id(m.weight): m for m in hmap.layers[0].attention.modules() if hasattr(m, "weight")}
    x = torch.randn(3, hmap.d_model)
    for proj, span in (("q", s.q_weight), ("k", s.k_weight), ("v", s.v_weight)):
        w, b = s.read_in(proj)  # type: ignore[arg-type]
        expected = mod_of[id(span.param)](x)[:, span.start : span.stop]
        got = x @ w + (b if b is not None else 0.0)
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


def test_replace_sets_head_z_and_leaves_others() -> None:
    case = CASES[CASE_IDS.index("llama-gqa")]
    model = build(case)
    hmap = build_head_map(model)
    before = z_of(model, hmap, 0)
    mean = before[:, :, 1, :].mean(dim=(0, 1))  # [head_dim]: a mean-ablation value
    with torch.no_grad(), head_gates(hmap, capture=[0], replace={0: {1: mean}}) as rec:
        model(tokens())
    after = rec.z[0]
    torch.testing.assert_close(after[:, :, 1, :], mean.expand_as(after[:, :, 1, :]))
    torch.testing.assert_close(after[:, :, [0, 2, 3], :], before[:, :, [0, 2, 3], :])


def test_captured_z_carries_gradients_when_not_detached() -> None:
    model = build(CASES[CASE_IDS.index("gpt2")])
    hmap = build_head_map(model)
    with capture_z(hmap, detach=False) as rec:
        logits = model(tokens()).logits
    (grad,) = torch.autograd.grad(logits[:, -1, 0].sum(), rec.z[0])
    assert grad.shape == rec.z[0].shape and grad.abs().sum() > 0


def test_hooks_are_removed_even_on_exception() -> None:
    model = build(CASES[0])
    hmap = build_head_map(model)
    with pytest.raises(RuntimeError, match="boom"), capture_z(hmap):
        assert all(la.o_proj._forward_pre_hooks for la in hmap.layers)
        raise RuntimeError("boom")
    assert not any(la.o_proj._forward_pre_hooks for la in hmap.layers)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(gate={0: torch.ones(3)}),
        dict(gate={5: torch.ones(4)}),
        dict(replace={0: {4: torch.zeros(8)}}),
        dict(replace={0: {0: torch.zeros(7)}}),
        dict(capture=[2]),
    ],
    ids=["gate-shape", "gate-layer", "replace-head", "replace-shape", "capture-layer"],
)
def test_bad_gate_arguments_raise_bad_request(kwargs: dict[str, object]) -> None:
    hmap = build_head_map(build(CASES[0]))
    with pytest.raises(BadRequest), head_gates(hmap, **kwargs):  # type: ignore[arg-type]
        pass


def test_unsupported_family_raises_bad_request_naming_it() -> None:
    config = tf.BertConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
    )
    with pytest.raises(BadRequest) as err:
        build_head_map(tf.BertModel(config))
    assert "'bert'" in err.value.message
    assert all(t in err.value.message for t in supported_model_types())
    with pytest.raises(BadRequest, match="None"):
        build_head_map(nn.Linear(2, 2))


def test_bloom_tensor_parallel_emulation_is_refused() -> None:
    config = tf.BloomConfig(vocab_size=64, hidden_size=32, n_layer=2, n_head=4, pretraining_tp=2, slow_but_exact=True)
    with pytest.raises(BadRequest, match="slow_but_exact"):
        build_head_map(tf.BloomForCausalLM(config))


@pytest.mark.parametrize(
    ("case_id", "expected"),
    [
        (
            "gpt2",
            [
                "transformer.h.0.ln_1.weight",
                "transformer.h.0.ln_1.bias",
                "transformer.ln_f.weight",
                "transformer.ln_f.bias",
            ],
        ),
        (
            "qwen3-gqa",
            [
                "model.layers.1.self_attn.q_norm.weight",
                "model.layers.1.self_attn.k_norm.weight",
                "model.layers.0.input_layernorm.weight",
                "model.norm.weight",
            ],
        ),
        ("gemma2-gqa", ["model.layers.0.pre_feedforward_layernorm.weight", "model.norm.weight"]),
        ("bloom", ["transformer.word_embeddings_layernorm.bias", "transformer.ln_f.weight"]),
    ],
)
def test_norm_parameters(case_id: str, expected: list[str]) -> None:
    model = build(CASES[CASE_IDS.index(case_id)])
    norms = norm_parameters(model)
    names = [n for n, _ in norms]
    assert set(expected) <= set(names)
    assert len(names) == len(set(names))
    params = dict(model.named_parameters())
    assert all(params[n] is p and p.ndim == 1 for n, p in norms)
    assert not any("proj" in n or "attn.c_" in n or "mlp" in n for n in names)


def test_base_model_and_task_heads_share_the_layout() -> None:
    """Any *For* head (or the bare base model) maps to the same parameters; names are
    relative to the object passed in, i.e. its state_dict keys."""
    case = CASES[CASE_IDS.index("qwen2-gqa")]
    lm = build(case)
    clf = tf.AutoModelForSequenceClassification.from_config(lm.config)
    for model, prefix in ((lm, "model."), (clf, "model."), (lm.base_model, "")):
        s = build_head_map(model).head(1, 3)
        assert s.q_weight.name == f"{prefix}layers.1.self_attn.q_proj.weight"
        assert s.kv_head == 1 and s.k_bias is not None
