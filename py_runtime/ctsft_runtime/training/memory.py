"""Peak memory of the current process (CUDA allocator peak on GPU, max RSS on CPU), and the
sizing model: bytes per rank of a training run by model shape, method and layout."""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass

import torch


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device) -> dict[str, int | str]:
    if device.type == "cuda":
        return {"kind": "cuda", "bytes": int(torch.cuda.max_memory_allocated(device))}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is KiB on Linux, bytes on macOS; it never goes down (whole-process peak).
    return {"kind": "rss", "bytes": int(rss if sys.platform == "darwin" else rss * 1024)}


# -- the sizing model (docs/guide.md, "Running on several GPUs") ---------------------------------
# Counted, not sampled: bytes of the tensors training keeps per rank. Activations are left out
# (they scale with batch x sequence, not with the method) and so is the allocator's slack.


@dataclass(frozen=True)
class Shape:
    """A decoder-only transformer's geometry (Qwen2-style: q/k/v biases, SwiGLU MLP)."""

    d_model: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    tied: bool

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads

    def attention(self) -> dict[str, int]:
        d, kv = self.d_model, self.kv_heads * self.head_dim
        return {"q": d * d + d, "k": d * kv + kv, "v": d * kv + kv, "o": d * d}

    def norms(self) -> int:
        return (2 * self.layers + 1) * self.d_model

    def params(self) -> int:
        per_layer = sum(self.attention().values()) + 3 * self.d_model * self.ffn + 2 * self.d_model
        embed = self.vocab * self.d_model * (1 if self.tied else 2)
        return self.layers * per_layer + embed + self.d_model


def trained_elements(shape: Shape, method: str, heads: int = 16, lora_r: int = 8) -> int:
    """Elements that get a gradient and AdamW state under `method`.

    ctsft/delta: each of `heads` query heads (one per layer, each with its own KV head) trains
    its Q rows, K/V rows and O columns, plus every norm. ctsft/hook: the whole Q/K/V/O tensors of
    the layers those heads are in (the gradient is full-size, masked), plus every norm.
    lora: rank-`lora_r` adapters on q, k, v and o of every layer.
    """
    d, hd, kv = shape.d_model, shape.head_dim, shape.kv_heads * shape.head_dim
    layers = min(heads, shape.layers)
    if method == "full":
        return shape.params()
    if method == "ctsft/delta":
        return heads * (hd * d + hd + 2 * (hd * d + hd) + d * hd) + shape.norms()
    if method == "ctsft/hook":
        return layers * sum(shape.attention().values()) + shape.norms()
    if method == "lora":
        return shape.layers * lora_r * ((d + d) + 2 * (d + kv) + (d + d))
    raise ValueError(f"unknown method {method!r}")


def bytes_per_rank(shape: Shape, method: str, *, world: int = 1, parallel: str = "ddp", elem: int = 2) -> int:
    """Bytes per rank: the held model, gradients, AdamW's two moments (in the weights' dtype,
    `elem` bytes each), and what the layout adds (training/parallel.py):

    - one rank: weights N + trained T x (gradient + 2 moments) = N + 3T.
    - ddp: the same plus DDP's gradient buckets (a second copy of the gradients): N + 4T.
    - fsdp: the held model stays whole (evaluate/save use it afterwards) and the training clone is
      sharded: N + N/W (clone shards) + 3T/W, plus the largest layer unsharded with its gradient
      while it computes (2 x one decoder layer).
    """
    n, t = shape.params(), trained_elements(shape, method)
    if world == 1:
        return elem * (n + 3 * t)
    if parallel == "ddp":
        return elem * (n + 4 * t)
    layer = sum(shape.attention().values()) + 3 * shape.d_model * shape.ffn + 2 * shape.d_model
    return elem * (n + (n + 3 * t) // world + 2 * layer)
