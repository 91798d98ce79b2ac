"""A diverging run (lr 1e30) stops at once with a typed `NonFinite` naming the step, never
emits a NaN, and never leaves NaN weights behind unannounced: methods that keep θ1 roll
back to it; `full` marks the model invalid and later ops refuse it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from op_calls import OpCtx, call

from ctsft_runtime.data import write_task_csv
from ctsft_runtime.errors import NonFinite
from ctsft_runtime.ops.state import RuntimeState


@pytest.fixture()
def loaded(tiny_checkpoint, synthetic_task, tmp_path):
    state = RuntimeState()
    write_task_csv({"src": synthetic_task["src"]}, tmp_path / "data")
    handle = call(state, "model.load", {"source": str(tiny_checkpoint)}).body["handle"]
    return state, handle, str(tmp_path / "data" / "src" / "train.csv")


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _train(state, handle, data, **extra):
    ctx = OpCtx(state)
    body = {"model": handle, "data": {"path": data}, "epochs": 3, "batchSize": 8, "lr": 1e30, **extra}
    with pytest.raises(NonFinite) as info:
        call(state, "train", body, ctx)
    return info.value, ctx.events


def _check_error(err: NonFinite, events: list) -> int:
    steps = [e for e in events if e["type"] == "step"]
    assert all(math.isfinite(e["loss"]) and math.isfinite(e["gradNorm"]) for e in steps)
    failed = len(steps) + 1  # the step that diverged is the one after the last reported
    assert f"training diverged at step {failed} of " in err.message, err.message
    assert err.code == "non_finite"
    return failed


def test_full_fine_tuning_marks_the_model_invalid(loaded) -> None:
    state, handle, data = loaded
    err, events = _train(state, handle, data)
    failed = _check_error(err, events)
    assert failed < 10, "it must stop at the first non-finite step, not train on"
    assert "now invalid" in err.message
    for op, body in (
        ("evaluate", {"model": handle, "data": [{"path": data}]}),
        ("train", {"model": handle, "data": {"path": data}}),
        ("baseline", {"model": handle, "data": {"path": data}}),
        ("model.save", {"handle": handle, "out": str(Path(data).parent / "nan-checkpoint")}),
    ):
        with pytest.raises(NonFinite, match=f"model {handle} holds invalid weights"):
            call(state, op, body)
    assert not (Path(data).parent / "nan-checkpoint").exists(), "no NaN checkpoint is written"


@pytest.mark.parametrize("method", ["ctsft", "norms", "lora"])
def test_methods_with_a_copy_roll_back(loaded, method) -> None:
    state, handle, data = loaded
    lm = state.models[handle]
    before = _weights(lm.model)
    extra = {"method": method, **({"heads": [[0, 0], [1, 2]]} if method == "ctsft" else {})}
    err, events = _train(state, handle, data, **extra)
    _check_error(err, events)
    assert "rolled back" in err.message
    after = _weights(lm.model)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # Still usable: a sane run trains it.
    assert call(state, "train", {"model": handle, "data": {"path": data}, "epochs": 1, **extra}).body["steps"] > 0


def test_a_nan_checkpoint_is_not_evaluated_as_chance(tiny_checkpoint, synthetic_task, tmp_path) -> None:
    """A checkpoint already holding NaN weights (as the old runtime saved after divergence)."""
    from ctsft_runtime.models import load_model

    lm = load_model(str(tiny_checkpoint))
    with torch.no_grad():
        for p in lm.model.parameters():
            p.fill_(float("nan"))
    lm.model.save_pretrained(tmp_path / "nan")
    lm.tokenizer.save_pretrained(tmp_path / "nan")
    write_task_csv({"src": synthetic_task["src"]}, tmp_path / "data")
    state = RuntimeState()
    handle = call(state, "model.load", {"source": str(tmp_path / "nan")}).body["handle"]
    body = {"model": handle, "data": [{"path": str(tmp_path / "data" / "src" / "test.csv")}]}
    with pytest.raises(NonFinite, match="non-finite class logits on 60 of the 60 examples"):
        call(state, "evaluate", body)
