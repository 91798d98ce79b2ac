"""The `frozen` attention-pattern option of cdt: identical to the default for last-layer
sources (no attention after them), different once later attention is decomposed, and
complete either way (the engine's own guard checks rel + irrel against the true logits)."""

from __future__ import annotations

import torch

from ctsft_runtime.data import PromptFormat, encode_batch
from ctsft_runtime.models import label_token_ids, load_model
from ctsft_runtime.scoring import mean_baseline
from ctsft_runtime.scoring.cdt import decompose_heads


def test_frozen_pattern(tiny_checkpoint, synthetic_task) -> None:
    lm = load_model(str(tiny_checkpoint))
    with torch.no_grad():  # a random init attends almost uniformly, which hides the difference
        lm.model.model.layers[-1].self_attn.q_proj.weight.mul_(30)
    ds = synthetic_task["src"]["valid"]
    fmt = PromptFormat()
    ids = label_token_ids(lm.tokenizer, fmt, ds.label_names)
    mu = mean_baseline(lm.model, lm.head_map, lm.tokenizer, ds, fmt)
    enc = encode_batch(lm.tokenizer, ds.texts[:16], fmt, 64)
    last = lm.head_map.n_layers - 1
    sources = [(0, h) for h in range(lm.head_map.n_heads)] + [(last, h) for h in range(lm.head_map.n_heads)]
    args = (lm.model, lm.head_map, enc["input_ids"], enc["attention_mask"], enc["last_index"], ids, mu, sources)
    rel_d, irrel_d = decompose_heads(*args)
    rel_f, irrel_f = decompose_heads(*args, pattern="frozen")
    n = lm.head_map.n_heads
    torch.testing.assert_close(rel_f[n:], rel_d[n:], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(rel_f[:n], rel_d[:n], atol=1e-4)
    torch.testing.assert_close(rel_f + irrel_f, rel_d + irrel_d, atol=1e-4, rtol=1e-4)
