"""Save -> load gives identical logits; the checkpoint loads in plain transformers and
records the task (template, labels) it was trained for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ctsft_runtime.data import PromptFormat, encode_batch
from ctsft_runtime.errors import BadRequest
from ctsft_runtime.models import TaskConfig, load_model
from ctsft_runtime.models.saving import save_checkpoint


def test_round_trip_and_plain_transformers(tiny_checkpoint, synthetic_task, tmp_path) -> None:
    lm = load_model(str(tiny_checkpoint))
    src = synthetic_task["src"]
    lm.task = TaskConfig("Review: {text}\nSentiment:", None, src["train"].label_names)
    with torch.no_grad():
        for p in lm.model.parameters():  # make it differ from the saved original
            p.add_(0.01 * torch.randn_like(p))
    out = Path(save_checkpoint(lm, tmp_path / "saved")["checkpoint"])
    assert not list(out.glob("*.bin")) and list(out.glob("*.safetensors"))
    assert json.loads((out / "ctsft.json").read_text())["template"].startswith("Review:")

    again = load_model(str(out))
    plain = AutoModelForCausalLM.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    enc = encode_batch(lm.tokenizer, src["test"].texts[:4], lm.task.prompt, 64)
    with torch.no_grad():
        a = lm.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        b = again.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        c = plain(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    assert torch.equal(a, b) and torch.equal(a, c)
    assert again.task == lm.task
    assert tok("hello world")["input_ids"] == lm.tokenizer("hello world")["input_ids"]
    assert isinstance(again.task.prompt, PromptFormat)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"dtype": "float8"}, "dtype"), ({"device": "cuda:7"}, "device"), ({"device": "tpu"}, "device")],
)
def test_bad_dtype_or_device(tiny_checkpoint, kwargs, field) -> None:
    if kwargs.get("device", "").startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    with pytest.raises(BadRequest) as e:
        load_model(str(tiny_checkpoint), **kwargs)
    assert e.value.path == field


def test_missing_and_unresolvable_sources(tmp_path) -> None:
    with pytest.raises(BadRequest, match="not a checkpoint directory"):
        load_model(str(tmp_path / "nope"))
    with pytest.raises(BadRequest, match=r"no config\.json"):
        load_model(str(tmp_path))
    with pytest.raises(BadRequest, match=r"could not be resolved in the local Hugging Face cache"):
        load_model("some-org/some-model-that-is-not-cached")
