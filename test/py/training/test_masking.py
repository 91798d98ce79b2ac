"""Head-level masking (DESIGN 2.6): after real `train_sft` runs, every element outside the
trainable slices and norms keeps its exact bits, the slices move, the two mechanisms agree,
GQA side effects are reported, the delta mechanism's optimizer state scales with the
circuit, and the weight-decay trap the grouping avoids is real.

Models: tiny Llama MHA (table case) and GQA (the `tiny_checkpoint`, loaded the way a user's
checkpoint is), plus fused families GPT-2 (Conv1D c_attn), Phi-3 (blocked, with GQA) and
GPT-NeoX (per-head fused). All read the checkpoint's BPE tokenizer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from tiny_models import CASES
from torch import Tensor, nn

from ctsft_runtime.data import PromptFormat, encode_batch
from ctsft_runtime.errors import BadRequest, Cancelled
from ctsft_runtime.heads import build_head_map
from ctsft_runtime.models import class_logits, label_token_ids, load_model
from ctsft_runtime.models.new_model import init_model
from ctsft_runtime.training import TrainConfig, full_parameter_groups, train_sft
from ctsft_runtime.training.masking import HeadMask, active_head_mask, apply_head_mask

FMT = PromptFormat()
# Layer 1's heads 2 and 3 share KV head 1 under GQA (kv=2): that K/V slice trains once and
# touches nobody else; layer 0's head 1 shares KV head 0 with head 0, which it touches.
HEADS = [(0, 1), (1, 2), (1, 3)]
# weight_decay 0.1 is what a user's config would say; the mask's groups must override it.
CFG = TrainConfig(epochs=2, lr=1e-2, batch_size=8, weight_decay=0.1, warmup=0, schedule="constant", seed=0)
CHECKPOINT = "llama-gqa-ckpt"
_CASE = {c.id: c for c in CASES}
# Prompts run to ~30 tokens: give learned position tables room.
_EXTRA = {"gpt2": {"n_positions": 128}, "gpt_neox": {"max_position_embeddings": 128}}


@dataclass
class Env:
    checkpoint: Any
    tokenizer: Any
    train: Any
    ids: list[int]


@pytest.fixture(scope="module")
def env(tiny_checkpoint, synthetic_task) -> Env:
    tokenizer = load_model(str(tiny_checkpoint)).tokenizer
    train = synthetic_task["src"]["train"].select(range(32))
    return Env(tiny_checkpoint, tokenizer, train, label_token_ids(tokenizer, FMT, train.label_names))


def make_model(env: Env, model_id: str) -> nn.Module:
    if model_id == CHECKPOINT:
        return load_model(str(env.checkpoint)).model
    case = _CASE[model_id]
    kwargs = {**case.kwargs, **_EXTRA.get(model_id, {})}
    config = case.config_cls(vocab_size=len(env.tokenizer), bos_token_id=1, eos_token_id=2, pad_token_id=0, **kwargs)
    return init_model(config, seed=0)


def snapshot(model: nn.Module) -> dict[str, Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def bits(t: Tensor) -> Tensor:
    """The raw bits, so -0.0 vs 0.0 or a NaN payload would count as a change."""
    return t.detach().view({4: torch.int32, 2: torch.int16, 8: torch.int64}[t.element_size()])


def trainable_masks(model: nn.Module, mask: HeadMask) -> dict[str, Tensor]:
    """Parameter name -> bool tensor, True where training may change the element."""
    by_id = {id(p): n for n, p in model.named_parameters()}
    out = {n: torch.zeros(p.shape, dtype=torch.bool) for n, p in model.named_parameters()}
    for span in mask.spans:
        out[by_id[id(span.param)]] |= span.mask()
    for name in mask.norm_names:
        out[name][...] = True
    return out


def changed_outside(before: dict[str, Tensor], model: nn.Module, allowed: dict[str, Tensor]) -> int:
    """How many elements outside `allowed` differ (bitwise) from `before`."""
    return sum(int((bits(before[n]) != bits(p))[~allowed[n]].sum()) for n, p in model.named_parameters())


@dataclass
class Run:
    model: nn.Module
    mask: HeadMask
    before: dict[str, Tensor]
    allowed: dict[str, Tensor]
    group_numel: int
    requires_grad_during: dict[str, bool]


_RUNS: dict[tuple[str, str, str], Run] = {}


def trained(env: Env, model_id: str, kv: str, mechanism: str) -> Run:
    """Apply the mask, train with its groups, finish; cached across tests."""
    key = (model_id, kv, mechanism)
    if key not in _RUNS:
        model = make_model(env, model_id)
        before = snapshot(model)
        mask = apply_head_mask(model, build_head_map(model), HEADS, kv=kv, mechanism=mechanism)
        groups = mask.param_groups()
        requires_grad = {n: p.requires_grad for n, p in model.named_parameters()}
        try:
            train_sft(model, env.tokenizer, env.train, FMT, env.ids, CFG, param_groups=groups)
        except BaseException:
            mask.remove()
            raise
        mask.finish()
        numel = sum(p.numel() for g in groups for p in g["params"])
        _RUNS[key] = Run(model, mask, before, trainable_masks(model, mask), numel, requires_grad)
    return _RUNS[key]


MATRIX = [
    pytest.param(model_id, kv, mech, id=f"{model_id}-{kv}-{mech}")
    for model_id in ("llama", CHECKPOINT)
    for kv in ("group", "frozen")
    for mech in ("hook", "delta")
] + [
    pytest.param(model_id, "group", mech, id=f"{model_id}-group-{mech}")
    for model_id in ("gpt2", "phi3-gqa", "gpt_neox")
    for mech in ("hook", "delta")
]
PAIRS = [
    pytest.param(model_id, kv, id=f"{model_id}-{kv}")
    for model_id in ("llama", CHECKPOINT)
    for kv in ("group", "frozen")
] + [pytest.param(model_id, "group", id=f"{model_id}-group") for model_id in ("gpt2", "phi3-gqa", "gpt_neox")]


@pytest.mark.parametrize(("model_id", "kv", "mechanism"), MATRIX)
def test_only_slices_and_norms_change(env, model_id, kv, mechanism) -> None:
    run = trained(env, model_id, kv, mechanism)
    # (1) Outside the slices and norms: bit-identical to θ1.
    assert changed_outside(run.before, run.model, run.allowed) == 0
    # (2) Inside: every slice and every norm tensor moved.
    params = dict(run.model.named_parameters())
    by_id = {id(p): n for n, p in params.items()}
    for span in run.mask.spans:
        old = run.before[by_id[id(span.param)]].narrow(span.dim, span.start, span.size)
        assert not torch.equal(old, span.view().detach()), f"{span.name}[{span.start}:{span.stop}] never trained"
    for name in run.mask.norm_names:
        assert not torch.equal(run.before[name], params[name].detach()), f"norm {name} never trained"
    if kv == "frozen":
        assert {s.part[0] for s in run.mask.slices} == {"q", "o"}


@pytest.mark.parametrize(("model_id", "kv", "mechanism"), MATRIX)
def test_finish_leaves_a_plain_model(env, model_id, kv, mechanism) -> None:
    run = trained(env, model_id, kv, mechanism)
    model = run.model
    assert active_head_mask(model) is None and not run.mask.active
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert not any(p._backward_hooks for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())  # as loaded
    assert list(dict(model.named_parameters())) == list(run.before)
    # While applied, requires_grad was on exactly where something can train.
    trainable_tensors = {n for n, m in run.allowed.items() if m.any()}
    on = {n for n, flag in run.requires_grad_during.items() if flag}
    norms = set(run.mask.norm_names)
    assert on == (trainable_tensors if mechanism == "hook" else norms)


def null_gradient(run: Run) -> dict[str, Tensor]:
    """K-bias elements: a K bias adds the same q·b_k to every score of a query, which softmax
    ignores, so where no RoPE rotates it (GPT-2; NeoX's non-rotary dims) its exact gradient
    is zero. What either mechanism feeds AdamW there is rounding noise, which Adam scales up
    to steps of up to lr, differently per mechanism; harmless, since the output ignores it."""
    by_id = {id(p): n for n, p in run.model.named_parameters()}
    out = {n: torch.zeros(p.shape, dtype=torch.bool) for n, p in run.model.named_parameters()}
    for s in run.mask.slices:
        if s.part == "k_bias":
            out[by_id[id(s.span.param)]] |= s.span.mask()
    return out


@pytest.mark.parametrize(("model_id", "kv"), PAIRS)
def test_hook_and_delta_agree(env, model_id, kv) -> None:
    hook, delta = trained(env, model_id, kv, "hook"), trained(env, model_id, kv, "delta")
    after_delta = dict(delta.model.named_parameters())
    noise = null_gradient(hook)
    for name, p in hook.model.named_parameters():
        a, b, keep = p.detach(), after_delta[name].detach(), ~noise[name]
        torch.testing.assert_close(a[keep], b[keep], atol=1e-5, rtol=1e-5, msg=name)
        torch.testing.assert_close(a, b, atol=CFG.lr, rtol=0, msg=name)
    assert hook.mask.trainable_params() == delta.mask.trainable_params()
    # And the two trained models compute the same function.
    enc = encode_batch(env.tokenizer, env.train.texts[:8], FMT, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            class_logits(hook.model, enc, env.ids), class_logits(delta.model, enc, env.ids), atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize(
    ("model_id", "kv", "touched"),
    [
        (CHECKPOINT, "group", [[0, 0]]),  # layer 1: heads 2 and 3 are both selected
        (CHECKPOINT, "frozen", []),
        ("llama", "group", []),  # MHA: every KV head is its query head's own
        ("phi3-gqa", "group", [[0, 0]]),
    ],
)
def test_touched_heads(env, model_id, kv, touched) -> None:
    mask = trained(env, model_id, kv, "hook").mask
    assert mask.report()["touchedHeads"] == touched
    assert [list(h) for h in mask.touched_heads] == touched


def test_touched_heads_under_mqa(env) -> None:
    model = init_model(_CASE["gemma-mqa"].config_cls(**_CASE["gemma-mqa"].kwargs), seed=0)
    with apply_head_mask(model, None, [(1, 2)], norms=False) as mask:
        assert mask.touched_heads == ((1, 0), (1, 1), (1, 3))
        assert [s.part for s in mask.slices] == ["q_weight", "k_weight", "v_weight", "o_weight"]


def test_trainable_count_counts_a_shared_kv_slice_once(env) -> None:
    mask = trained(env, CHECKPOINT, "group", "hook").mask
    hd, d = 8, 32  # tiny_checkpoint: d_model 32, 4 heads of 8, 2 KV heads
    q_and_o = 3 * 2 * hd * d
    kv_slices = 2 * (2 * hd * d)  # layer 0 KV head 0, layer 1 KV head 1 (shared by 2 and 3)
    norms = sum(p.numel() for n, p in mask.model.named_parameters() if n in set(mask.norm_names))
    assert mask.trainable_params() == q_and_o + kv_slices + norms
    assert [(s["part"], s["head"]) for s in mask.report()["slices"] if s["layer"] == 1] == [
        ("q_weight", 2), ("k_weight", 1), ("v_weight", 1), ("o_weight", 2), ("q_weight", 3), ("o_weight", 3),
    ]  # fmt: skip


@pytest.mark.parametrize(("model_id", "kv"), PAIRS)
def test_delta_optimizer_state_scales_with_the_circuit(env, model_id, kv) -> None:
    hook, delta = trained(env, model_id, kv, "hook"), trained(env, model_id, kv, "delta")
    trainable = delta.mask.trainable_params()
    assert delta.group_numel == delta.mask.optimizer_params() == trainable
    # The hook mechanism keeps state for every element of every masked tensor.
    assert hook.group_numel == hook.mask.optimizer_params() > trainable


def test_delta_gradients_are_slice_sized(env) -> None:
    model = make_model(env, CHECKPOINT)
    mask = apply_head_mask(model, None, HEADS, mechanism="delta")
    try:
        enc = encode_batch(env.tokenizer, env.train.texts[:4], FMT, 64)
        class_logits(model, enc, env.ids).sum().backward()
        norms = {id(p) for n, p in model.named_parameters() if n in set(mask.norm_names)}
        assert all(p.grad is None for p in model.parameters() if id(p) not in norms)
        (deltas,) = [g["params"] for g in mask.param_groups() if g["name"] == "head_deltas"]
        assert [tuple(d.grad.shape) for d in deltas] == [tuple(s.view().shape) for s in mask.spans]
        assert all(d.grad.abs().sum() > 0 for d in deltas)
    finally:
        mask.remove()


def test_weight_decay_on_masked_tensors_moves_frozen_elements(env) -> None:
    """The control: the same hook mask, but the usual groups (decay on every matrix)."""
    model = make_model(env, CHECKPOINT)
    before = snapshot(model)
    mask = apply_head_mask(model, None, HEADS, mechanism="hook")
    try:
        groups = full_parameter_groups(model, CFG.weight_decay)  # masked matrices land in "decay"
        train_sft(model, env.tokenizer, env.train, FMT, env.ids, CFG, param_groups=groups)
    finally:
        mask.finish()
    leaked = changed_outside(before, model, trainable_masks(model, mask))
    masked = sum(p.numel() for p in {id(s.param): s.param for s in mask.spans}.values())
    frozen_in_masked = masked - sum(s.numel for s in mask.spans)
    # Decay shrank (nearly) every frozen element of the masked tensors.
    assert 0.9 * frozen_in_masked < leaked <= frozen_in_masked, (leaked, frozen_in_masked)


@pytest.mark.parametrize("mechanism", ["hook", "delta"])
def test_norms_only(env, mechanism) -> None:
    model = make_model(env, "llama")
    before = snapshot(model)
    with apply_head_mask(model, None, [], mechanism=mechanism) as mask:
        assert [g["name"] for g in mask.param_groups()] == ["norms"]
        assert mask.spans == () and mask.touched_heads == ()
        assert mask.param_groups(norms_lr=3e-2) == [
            {"name": "norms", "params": mask.param_groups()[0]["params"], "weight_decay": 0.0, "lr": 3e-2}
        ]
        train_sft(model, env.tokenizer, env.train, FMT, env.ids, CFG, param_groups=mask.param_groups())
    assert changed_outside(before, model, trainable_masks(model, mask)) == 0
    final = dict(model.named_parameters())["model.norm.weight"]
    assert not torch.equal(before["model.norm.weight"], final.detach())


def test_stale_gradients_do_not_leak(env) -> None:
    """Gradients left by earlier work (attribution scoring) must not reach the first step."""
    model = make_model(env, CHECKPOINT)
    enc = encode_batch(env.tokenizer, env.train.texts[:4], FMT, 64)
    class_logits(model, enc, env.ids).sum().backward()  # every parameter now has a .grad
    before = snapshot(model)
    with apply_head_mask(model, None, HEADS, mechanism="hook") as mask:
        train_sft(model, env.tokenizer, env.train, FMT, env.ids, CFG, param_groups=mask.param_groups())
    assert changed_outside(before, model, trainable_masks(model, mask)) == 0


@pytest.mark.parametrize("mechanism", ["hook", "delta"])
def test_cancelled_training_is_rolled_back(env, mechanism) -> None:
    model = make_model(env, CHECKPOINT)
    before = snapshot(model)
    calls = {"n": 0}

    def check() -> None:
        calls["n"] += 1
        if calls["n"] > 2:
            raise Cancelled("stop")

    events: list[dict] = []
    with pytest.raises(Cancelled), apply_head_mask(model, None, HEADS, mechanism=mechanism) as mask:
        train_sft(model, env.tokenizer, env.train, FMT, env.ids, CFG, param_groups=mask.param_groups(),
                  check=check, emit=events.append)  # fmt: skip
    assert len([e for e in events if e["type"] == "step"]) == 2  # two steps were taken, then undone
    assert not mask.active and active_head_mask(model) is None
    assert all(p.requires_grad for p in model.parameters())
    assert not any(m._forward_hooks for m in model.modules())
    assert not any(p._backward_hooks for p in model.parameters())
    # Rolled back: θ1 exactly, slices and norms included, with either mechanism.
    assert all(torch.equal(bits(before[n]), bits(p)) for n, p in model.named_parameters())
    mask.remove()  # idempotent
    with pytest.raises(BadRequest, match="removed"):
        mask.finish()
    with pytest.raises(BadRequest, match="param_groups"):
        mask.param_groups()
    apply_head_mask(model, None, HEADS, mechanism=mechanism).remove()  # the model is free again


def test_one_mask_at_a_time(env) -> None:
    model = make_model(env, "llama")
    first = apply_head_mask(model, None, HEADS)
    with pytest.raises(BadRequest, match="already has a head mask"):
        apply_head_mask(model, None, [(0, 0)], mechanism="delta")
    assert active_head_mask(model) is first
    first.finish()
    first.finish()  # idempotent
    apply_head_mask(model, None, [(0, 0)]).remove()


def test_report_is_json_ready(env) -> None:
    run = trained(env, "gpt2", "group", "delta")
    report = json.loads(json.dumps(run.mask.report()))
    assert report["mechanism"] == "delta" and report["kv"] == "group"
    assert report["heads"] == [list(h) for h in HEADS]
    assert report["norms"] == list(run.mask.norm_names) and "transformer.ln_f.weight" in report["norms"]
    assert {s["name"] for s in report["slices"]} == {
        f"transformer.h.{i}.attn.{p}" for i in (0, 1) for p in ("c_attn.weight", "c_attn.bias", "c_proj.weight")
    }
    # GPT-2's fused c_attn: q, k, v of head 1 are columns 8:16, 40:48, 72:80 of [32, 96].
    layer0 = [(s["part"], s["dim"], s["start"], s["stop"]) for s in report["slices"] if s["layer"] == 0]
    assert layer0[:3] == [("q_weight", 1, 8, 16), ("q_bias", 0, 8, 16), ("k_weight", 1, 40, 48)]
    assert report["trainableParams"] == run.mask.trainable_params() < report["totalParams"]
    assert 0 < report["fraction"] < 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(heads=[], norms=False), "nothing to train"),
        (dict(heads=[(2, 0)]), "layer 2 out of range"),
        (dict(heads=[(0, 4)]), "head 4 out of range"),
        (dict(heads=[(-1, 0)]), "layer -1 out of range"),
        (dict(heads=[(0, 1), ("a", 0)]), r"heads\[1\] must be"),
        (dict(heads=[(True, 0)]), "pair of integers"),
        (dict(heads=[(0,)]), "pair of integers"),
        (dict(heads="0,1"), "list of"),
    ],
)
def test_bad_heads(env, kwargs, match) -> None:
    model = make_model(env, "llama")
    with pytest.raises(BadRequest, match=match) as err:
        apply_head_mask(model, None, **kwargs)
    assert err.value.path == "heads"
    assert active_head_mask(model) is None and all(p.requires_grad for p in model.parameters())


def test_bad_options_and_foreign_head_map(env) -> None:
    model = make_model(env, "llama")
    for kwargs, path in ((dict(kv="shared"), "kv"), (dict(mechanism="lora"), "mechanism")):
        with pytest.raises(BadRequest) as err:
            apply_head_mask(model, None, HEADS, **kwargs)
        assert err.value.path == path
    with pytest.raises(BadRequest, match="different model") as err:
        apply_head_mask(model, build_head_map(make_model(env, "llama")), HEADS)
    assert err.value.path == "head_map"
