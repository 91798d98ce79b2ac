"""The SFT loop on a real tiny checkpoint: it learns, it is deterministic, accumulation is
equivalent to a bigger batch, cancellation stops it, and the schedule has the right shape."""

from __future__ import annotations

import pytest
import torch

from ctsft_runtime.data import PromptFormat
from ctsft_runtime.errors import BadRequest, Cancelled
from ctsft_runtime.evaluation import classification_report, predict
from ctsft_runtime.models import label_token_ids, load_model
from ctsft_runtime.training import TrainConfig, train_sft
from ctsft_runtime.training.sft import lr_factor

FMT = PromptFormat()


def _setup(ckpt, task):
    lm = load_model(str(ckpt))
    src = task["src"]
    return lm, src, label_token_ids(lm.tokenizer, FMT, src["train"].label_names)


def test_learns_the_source_task(tiny_checkpoint, synthetic_task) -> None:
    lm, src, ids = _setup(tiny_checkpoint, synthetic_task)
    before, _ = predict(lm.model, lm.tokenizer, src["test"], FMT, ids)
    events: list[dict] = []
    result = train_sft(lm.model, lm.tokenizer, src["train"], FMT, ids, TrainConfig(epochs=6, lr=3e-3, batch_size=16),
                       valid=src["valid"], emit=events.append)  # fmt: skip
    after, _ = predict(lm.model, lm.tokenizer, src["test"], FMT, ids)
    acc_before = classification_report(src["test"].labels, before, src["test"].label_names)["accuracy"]
    acc_after = classification_report(src["test"].labels, after, src["test"].label_names)["accuracy"]
    assert acc_after > max(0.6, acc_before + 0.2), (acc_before, acc_after)
    steps = [e for e in events if e["type"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, result["steps"] + 1))
    assert {"loss", "lr", "gradNorm", "examplesPerS", "tokensPerS", "elapsed", "eta"} <= set(steps[0])
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == list(range(1, 7))
    assert result["paramsFraction"] == 1.0 and result["valid"]["n"] == len(src["valid"])


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_seeded_runs_are_identical(tiny_checkpoint, synthetic_task) -> None:
    runs = []
    for _ in range(2):
        lm, src, ids = _setup(tiny_checkpoint, synthetic_task)
        train_sft(lm.model, lm.tokenizer, src["train"], FMT, ids, TrainConfig(epochs=1, lr=1e-3, seed=7))
        runs.append(_weights(lm.model))
    for k in runs[0]:
        assert torch.equal(runs[0][k], runs[1][k]), k


def test_accumulation_equals_a_bigger_batch(tiny_checkpoint, synthetic_task) -> None:
    lm_a, src, ids = _setup(tiny_checkpoint, synthetic_task)
    lm_b, _, _ = _setup(tiny_checkpoint, synthetic_task)
    small = src["train"].select(range(32))
    # Same examples per optimizer step; no shuffling differences: one epoch of 32 examples.
    cfg = dict(epochs=1, lr=1e-3, warmup=0, schedule="constant", clip=0.0, weight_decay=0.0, seed=3)
    train_sft(lm_a.model, lm_a.tokenizer, small, FMT, ids, TrainConfig(batch_size=32, accumulate=1, **cfg))
    train_sft(lm_b.model, lm_b.tokenizer, small, FMT, ids, TrainConfig(batch_size=8, accumulate=4, **cfg))
    wa, wb = _weights(lm_a.model), _weights(lm_b.model)
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-5, rtol=1e-4)


def test_cancel_stops_mid_epoch(tiny_checkpoint, synthetic_task) -> None:
    lm, src, ids = _setup(tiny_checkpoint, synthetic_task)
    calls = {"n": 0}

    def check() -> None:
        calls["n"] += 1
        if calls["n"] > 3:
            raise Cancelled("stop")

    steps: list[dict] = []
    with pytest.raises(Cancelled):
        train_sft(lm.model, lm.tokenizer, src["train"], FMT, ids, TrainConfig(epochs=5, batch_size=8),
                  emit=steps.append, check=check)  # fmt: skip
    assert len([e for e in steps if e["type"] == "step"]) == 3


def test_empty_training_set_is_refused(tiny_checkpoint, synthetic_task) -> None:
    lm, src, ids = _setup(tiny_checkpoint, synthetic_task)
    with pytest.raises(BadRequest, match="empty"):
        train_sft(lm.model, lm.tokenizer, src["train"].select([]), FMT, ids, TrainConfig())


def test_schedule_shapes() -> None:
    assert lr_factor(0, 100, 10, "linear") == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, "linear") == pytest.approx(1.0)
    assert (
        lr_factor(99, 100, 10, "linear") == pytest.approx(1 / 90, abs=1e-9) or lr_factor(99, 100, 10, "linear") < 0.02
    )
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5, abs=1e-6)
    assert lr_factor(50, 100, 0, "constant") == 1.0
