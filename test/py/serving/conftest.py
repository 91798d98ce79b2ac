"""Serving fixtures: tiny real checkpoints per family and CT-SFT deltas trained on them
through the `train` op, one with each mask mechanism, saved by `model.save` as a user's run
would leave them (checkpoint + `ctsft-delta/`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from op_calls import call

from ctsft_runtime.ops.state import RuntimeState

# family -> (heads, kv heads): MHA Llama, GQA Qwen2 (q/k/v biases), GPT-2 (fused Conv1D c_attn).
FAMILIES = {"llama": (4, 4), "qwen2": (4, 2), "gpt2": (4, 4)}
LABELS = ["negative", "neutral", "positive"]


@dataclass(frozen=True)
class Trained:
    base: Path  # θ1: the checkpoint as built
    deltas: dict[str, Path]  # delta name -> checkpoint directory holding ctsft-delta/
    mechanisms: dict[str, str]  # delta name -> mask mechanism it was trained with


def build(out: Path, family: str, texts: list[str], seed: int = 0) -> Path:
    from ctsft_runtime.models.new_model import build_checkpoint

    heads, kv = FAMILIES[family]
    build_checkpoint(
        family, layers=2, heads=heads, kv_heads=kv, d_model=32, texts=texts, vocab_size=600, out_dir=out, seed=seed
    )
    return out


def corpus(task) -> list[str]:
    from ctsft_runtime.models.new_model import label_words

    return [t for lang in task.values() for t in lang["train"].texts] + label_words(LABELS)


def train_delta(state: RuntimeState, base: Path, ds, out: Path, heads: list[list[int]], mask: str) -> Path:
    """Load θ1, CT-SFT it (a few steps, an lr that moves the weights visibly), save θ2 + delta."""
    handle = call(state, "model.load", {"source": str(base), "device": "cpu"}).body["handle"]
    data = state.add(state.datasets, "d", ds)
    call(
        state,
        "train",
        {
            "model": handle,
            "data": {"handle": data},
            "method": "ctsft",
            "heads": heads,
            "mask": mask,
            "epochs": 1,
            "batchSize": 16,
            "lr": 3e-2,
            "warmup": 0.0,
            "weightDecay": 0.0,
            "maxLength": 48,
        },
    )
    call(state, "model.save", {"handle": handle, "out": str(out)})
    call(state, "release", {"handle": handle})
    return out


@pytest.fixture(scope="session")
def trained(tmp_path_factory, synthetic_task) -> dict[str, Trained]:
    """Per family: θ1 and two deltas on it, `easy` (hook mask) and `hard` (delta mask)."""
    root = tmp_path_factory.mktemp("serving")
    state = RuntimeState(device="cpu")
    texts = corpus(synthetic_task)
    out: dict[str, Trained] = {}
    for family in FAMILIES:
        base = build(root / f"{family}-base", family, texts)
        deltas = {
            "easy": train_delta(
                state, base, synthetic_task["easy"]["train"], root / f"{family}-easy", [[0, 1], [1, 2]], "hook"
            ),
            "hard": train_delta(
                state, base, synthetic_task["hard"]["train"], root / f"{family}-hard", [[0, 3], [1, 0]], "delta"
            ),
        }
        out[family] = Trained(base, deltas, {"easy": "hook", "hard": "delta"})
    return out
