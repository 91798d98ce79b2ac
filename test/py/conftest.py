"""Shared pytest setup: the runtime's sources come first on sys.path, as the SDK arranges."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "py_runtime"))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_task():
    """The seeded synthetic multilingual task (source, easy and hard targets)."""
    from ctsft_runtime.data import make_task

    return make_task(seed=0, n_train=120, n_valid=30, n_test=60)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, synthetic_task) -> Path:
    """A real tiny Llama checkpoint (safetensors + BPE tokenizer trained on the task's text)."""
    from ctsft_runtime.models.new_model import build_checkpoint, label_words

    out = tmp_path_factory.mktemp("ckpt") / "tiny-llama"
    texts = [t for lang in synthetic_task.values() for t in lang["train"].texts]
    texts += label_words(synthetic_task["src"]["train"].label_names)
    build_checkpoint("llama", layers=2, heads=4, kv_heads=2, d_model=32, texts=texts, vocab_size=600, out_dir=out)
    return out
