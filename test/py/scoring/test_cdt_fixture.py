"""Regression: the checkpoint on which cdt diverged (|rel| ~ 1e6, irrel ~ -rel, guard fired)
scores on every row, and rel stays within 100x the true value after every layer.
The fixture lives outside the project (`../shared/fixtures/cdt-blowup-llama`); `.ci/run`
points CTSFT_CDT_FIXTURE at it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from ctsft_runtime.data import encode_batch, iterate_batches, load_labeled
from ctsft_runtime.models import label_token_ids, load_model
from ctsft_runtime.ops.common import prompt_for
from ctsft_runtime.scoring import mean_baseline
from ctsft_runtime.scoring.cdt import decompose_heads

FIXTURE = os.environ.get("CTSFT_CDT_FIXTURE")
pytestmark = pytest.mark.skipif(
    not FIXTURE, reason="CTSFT_CDT_FIXTURE is not set (.ci/run sets it to ../shared/fixtures/cdt-blowup-llama)"
)


@pytest.mark.parametrize("pattern", ["decomposed", "frozen"])
def test_blowup_fixture_scores_and_stays_bounded(pattern: str) -> None:
    root = Path(str(FIXTURE))
    lm = load_model(str(root / "theta1"))
    ds = load_labeled(root / "discovery.csv", labels=lm.task.label_names if lm.task else None)
    fmt = prompt_for(lm.task, None, None)
    ids = label_token_ids(lm.tokenizer, fmt, ds.label_names)
    mu = mean_baseline(lm.model, lm.head_map, lm.tokenizer, ds, fmt)
    hm = lm.head_map
    sources = [(layer, head) for layer in range(hm.n_layers) for head in range(hm.n_heads)]
    worst = {layer: 0.0 for layer in range(hm.n_layers)}

    def trace(point: str, layer: int, rel: torch.Tensor, irrel: torch.Tensor, _: list[int]) -> None:
        if point == "layer":
            ratio = rel.abs().flatten(1).amax(1) / (rel + irrel).abs().flatten(1).amax(1)
            worst[layer] = max(worst[layer], ratio.max().item())

    rows = 0
    for batch in iterate_batches(ds, 32):
        enc = encode_batch(lm.tokenizer, batch.texts, fmt, 128)
        rel, _ = decompose_heads(
            lm.model,
            hm,
            enc["input_ids"],
            enc["attention_mask"],
            enc["last_index"],
            ids,
            mu,
            sources,
            trace=trace,
            pattern=pattern,
        )  # fmt: skip  (the engine's guard raises if rel + irrel misses the logits)
        assert torch.isfinite(rel).all()
        rows += len(batch.texts)
    assert rows == len(ds) == 96
    assert max(worst.values()) <= 100, worst
