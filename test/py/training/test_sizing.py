"""The sizing model (training/memory.py) counts what a real model and a real head mask hold:
parameters of a Qwen2 model built from its config, the elements each mask mechanism gives
optimizer state, and the bytes of gradients + AdamW state after a real full step."""

from __future__ import annotations

import torch
import transformers as tf

from ctsft_runtime.training import apply_head_mask, full_parameter_groups
from ctsft_runtime.training.memory import Shape, bytes_per_rank, trained_elements

SHAPE = Shape(d_model=32, layers=2, heads=4, kv_heads=2, ffn=64, vocab=96, tied=False)


def _model() -> torch.nn.Module:
    s = SHAPE
    cfg = tf.Qwen2Config(
        hidden_size=s.d_model,
        num_hidden_layers=s.layers,
        num_attention_heads=s.heads,
        num_key_value_heads=s.kv_heads,
        intermediate_size=s.ffn,
        vocab_size=s.vocab,
        tie_word_embeddings=s.tied,
    )
    torch.manual_seed(0)
    return tf.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)


def test_parameter_count_and_mask_elements_match_a_real_model() -> None:
    model = _model()
    assert SHAPE.params() == sum(p.numel() for p in model.parameters())
    # One head per layer, each on its own KV head: what trained_elements assumes.
    heads = [(0, 0), (1, 3)]
    for mechanism in ("delta", "hook"):
        mask = apply_head_mask(model, None, heads, mechanism=mechanism)
        try:
            assert trained_elements(SHAPE, f"ctsft/{mechanism}", heads=len(heads)) == mask.optimizer_params()
        finally:
            mask.remove()


def test_full_step_state_is_three_copies_of_the_weights() -> None:
    model = _model()
    groups = full_parameter_groups(model, 0.01)
    opt = torch.optim.AdamW([{k: v for k, v in g.items() if k != "name"} for g in groups])
    model(input_ids=torch.randint(0, SHAPE.vocab, (2, 8))).logits.sum().backward()
    opt.step()
    held = sum(p.numel() * p.element_size() for p in model.parameters())
    held += sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    held += sum(
        t.numel() * t.element_size() for st in opt.state.values() for t in st.values() if t.dim() > 0
    )  # exp_avg, exp_avg_sq (the step counter is a 0-dim scalar)
    assert held == bytes_per_rank(SHAPE, "full", elem=4)


def test_fsdp_shards_the_training_state_not_the_held_model() -> None:
    one = bytes_per_rank(SHAPE, "full", elem=2)
    ddp = bytes_per_rank(SHAPE, "full", world=8, parallel="ddp", elem=2)
    fsdp = bytes_per_rank(SHAPE, "full", world=8, parallel="fsdp", elem=2)
    weights = 2 * SHAPE.params()
    assert ddp > one > fsdp > weights
