"""Batched inference of class predictions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..data import LabeledSet, PromptFormat, encode_batch, iterate_batches
from ..models.classify import class_logits


@torch.no_grad()
def predict(
    model: Any,
    tokenizer: Any,
    ds: LabeledSet,
    fmt: PromptFormat,
    token_ids: Sequence[int],
    *,
    batch_size: int = 32,
    max_length: int = 256,
    check: Callable[[], None] = lambda: None,
) -> tuple[list[int], torch.Tensor]:
    """Predicted class per example and the [N, C] class logits (float32, CPU)."""
    was_training = model.training
    model.eval()
    preds: list[int] = []
    chunks: list[torch.Tensor] = []
    try:
        for batch in iterate_batches(ds, batch_size):
            check()
            logits = class_logits(model, encode_batch(tokenizer, batch.texts, fmt, max_length), token_ids).float().cpu()
            chunks.append(logits)
            preds.extend(logits.argmax(-1).tolist())
    finally:
        model.train(was_training)
    return preds, torch.cat(chunks) if chunks else torch.empty(0, len(token_ids))
