"""Tiny random models, one per supported family, built from each family's real config class.

Like PEFT's test matrix: one table row per case. Sizes are chosen to exercise the traps:
GQA (n_kv_heads < n_heads), n_heads * head_dim != d_model (Gemma, Qwen3), fused layouts
(GPT-2, GPT-NeoX, Phi-3 with GQA, BLOOM), q/k/v biases (Qwen2, OPT, GPT-NeoX, BLOOM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import transformers as tf
from torch import nn

VOCAB = 64
SEQ = 8
# Weights this large make attention patterns clearly non-uniform, so "this head's z
# changed" is far above float noise while "unchanged" stays exact.
WEIGHT_STD = 0.2


@dataclass(frozen=True)
class Case:
    id: str
    config_cls: type[tf.PretrainedConfig]
    kwargs: dict[str, Any]
    n_heads: int = 4
    n_kv_heads: int = 4
    head_dim: int = 8
    d_model: int = 32


_LLAMA_LIKE = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
_TOKENS = dict(vocab_size=VOCAB, bos_token_id=1, eos_token_id=2, pad_token_id=0)

CASES: list[Case] = [
    Case("gpt2", tf.GPT2Config, dict(n_layer=2, n_embd=32, n_head=4, n_positions=32)),
    Case("llama", tf.LlamaConfig, dict(_LLAMA_LIKE, num_key_value_heads=4)),
    Case("llama-gqa", tf.LlamaConfig, dict(_LLAMA_LIKE, num_key_value_heads=2), n_kv_heads=2),
    Case("mistral-gqa", tf.MistralConfig, dict(_LLAMA_LIKE, num_key_value_heads=2), n_kv_heads=2),
    Case("qwen2-gqa", tf.Qwen2Config, dict(_LLAMA_LIKE, num_key_value_heads=2), n_kv_heads=2),
    Case(
        "qwen3-gqa",
        tf.Qwen3Config,
        dict(_LLAMA_LIKE, num_key_value_heads=2, head_dim=16),
        n_kv_heads=2,
        head_dim=16,
    ),
    Case(
        "gemma-mqa",
        tf.GemmaConfig,
        dict(_LLAMA_LIKE, num_key_value_heads=1, head_dim=16),
        n_kv_heads=1,
        head_dim=16,
    ),
    Case(
        "gemma2-gqa",
        tf.Gemma2Config,
        dict(_LLAMA_LIKE, num_key_value_heads=2, head_dim=12),
        n_kv_heads=2,
        head_dim=12,
    ),
    Case("gpt_neox", tf.GPTNeoXConfig, dict(_LLAMA_LIKE, max_position_embeddings=32)),
    Case("phi3-gqa", tf.Phi3Config, dict(_LLAMA_LIKE, num_key_value_heads=2), n_kv_heads=2),
    Case(
        "opt",
        tf.OPTConfig,
        dict(
            hidden_size=32,
            ffn_dim=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            word_embed_proj_dim=32,
            max_position_embeddings=32,
        ),
    ),
    Case("bloom", tf.BloomConfig, dict(hidden_size=32, n_layer=2, n_head=4)),
]
CASE_IDS = [c.id for c in CASES]


def build(case: Case, seed: int = 0) -> nn.Module:
    """A float32 causal LM of the case's family, random weights, eval mode (no dropout)."""
    config = case.config_cls(**{**_TOKENS, **case.kwargs})
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.LayerNorm) or "Norm" in type(module).__name__:
                continue  # keep norms at their identity-like init
            for param in module.parameters(recurse=False):
                param.normal_(0.0, WEIGHT_STD)
    return model.eval()


def tokens(batch: int = 2, seed: int = 1) -> torch.Tensor:
    """[batch, SEQ] random token ids."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (batch, SEQ), generator=gen)
