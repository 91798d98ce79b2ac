"""Training-step benchmark (issue 5): step time and trainable + gradient + optimizer-state
memory of full fine-tuning, CT-SFT with the hook and the delta mechanism, and LoRA, on the
same model and batch, in one run. Prints one JSON object (read by bench/training.ts).

Memory is counted, not sampled: bytes of the tensors the optimizer updates, of the gradients
that exist after backward, and of AdamW's state after a step. That is the part that differs
between methods; activations are the same for all four.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from ctsft_runtime.heads import build_head_map
from ctsft_runtime.models.classify import class_logits
from ctsft_runtime.training import apply_head_mask
from ctsft_runtime.training.lora import LoraOptions, wrap_lora

LAYERS, D, HEADS, VOCAB = int(os.environ.get("BENCH_LAYERS", 4)), int(os.environ.get("BENCH_D", 256)), 8, 4000
BATCH, SEQ, STEPS, WARMUP = 16, 64, int(os.environ.get("BENCH_STEPS", 8)), 2
CIRCUIT = [(1, 2), (3, 5)]


def model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=D,
        intermediate_size=4 * D,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        max_position_embeddings=SEQ,
    )
    return LlamaForCausalLM(cfg).train()


def batch() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, VOCAB, (BATCH, SEQ), generator=g)
    enc = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "last_index": torch.full((BATCH,), SEQ - 1)}
    return enc, torch.randint(0, 3, (BATCH,), generator=g)


def measure(name: str, net: torch.nn.Module, groups: list[dict]) -> dict[str, float]:
    opt = torch.optim.AdamW([{k: v for k, v in g.items() if k != "name"} for g in groups], lr=1e-4)
    enc, labels = batch()
    times = []
    for step in range(WARMUP + STEPS):
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(class_logits(net, enc, [5, 6, 7]), labels)
        loss.backward()
        opt.step()
        if step == WARMUP + STEPS - 1:
            grads = sum(
                p.grad.numel() * p.grad.element_size() for g in groups for p in g["params"] if p.grad is not None
            )
        opt.zero_grad(set_to_none=True)
        if step >= WARMUP:
            times.append(time.perf_counter() - t0)
    trainable = sum(p.numel() * p.element_size() for g in groups for p in g["params"])
    state = sum(
        t.numel() * t.element_size() for s in opt.state.values() for t in s.values() if torch.is_tensor(t) and t.dim()
    )
    print(f"{name}: {statistics.median(times) * 1000:.1f} ms/step", file=sys.stderr)
    return {
        "step_ms": statistics.median(times) * 1000,
        "trainable_bytes": trainable,
        "grad_bytes": grads,
        "optimizer_bytes": state,
        "grad_optimizer_bytes": grads + state,
    }


def main() -> None:
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    out: dict[str, object] = {
        "model": f"llama {LAYERS}x{HEADS} heads, d_model {D}, vocab {VOCAB}",
        "batch": BATCH,
        "seq": SEQ,
        "steps": STEPS,
        "circuit": CIRCUIT,
    }
    full = model()
    out["params"] = sum(p.numel() for p in full.parameters())
    out["full"] = measure("full", full, [{"name": "all", "params": list(full.parameters()), "weight_decay": 0.01}])
    for mechanism in ("hook", "delta"):
        m = model()
        mask = apply_head_mask(m, build_head_map(m), CIRCUIT, mechanism=mechanism)
        out[f"ctsft_{mechanism}"] = measure(f"ctsft/{mechanism}", m, mask.param_groups())
        mask.remove()
    lora = wrap_lora(model(), "llama", LoraOptions(r=8))
    out["lora"] = measure("lora", lora.inner, [{"name": "lora", "params": lora.trainable(), "weight_decay": 0.01}])
    f = out["full"]
    d = out["ctsft_delta"]
    assert isinstance(f, dict) and isinstance(d, dict)
    out["delta_step_vs_full"] = d["step_ms"] / f["step_ms"]
    out["delta_memory_vs_full"] = d["grad_optimizer_bytes"] / f["grad_optimizer_bytes"]
    out["targets"] = {"delta_step_vs_full": "<= 0.8", "delta_memory_vs_full": "<= 0.05"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
