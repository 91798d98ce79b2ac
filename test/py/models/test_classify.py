"""Class logits computed from the last hidden state and the label rows of the output
embedding equal the full model's logits at the last prompt position, for every family."""

from __future__ import annotations

import pytest
import torch
from tiny_models import CASES, Case, build, tokens

from ctsft_runtime.models.classify import class_logits


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_class_logits_match_full_forward(case: Case) -> None:
    model = build(case)
    ids = tokens(batch=3)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0  # right padding on one row: its answer position is 4
    last = torch.tensor([ids.shape[1] - 1, 4, ids.shape[1] - 1])
    label_ids = [5, 9, 17]
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask).logits  # [B, T, V]
        expected = full[torch.arange(3), last][:, label_ids]
        got = class_logits(model, {"input_ids": ids, "attention_mask": mask, "last_index": last}, label_ids)
        vocab = class_logits(model, {"input_ids": ids, "attention_mask": mask, "last_index": last}, None)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(vocab, full[torch.arange(3), last], atol=1e-5, rtol=1e-5)
