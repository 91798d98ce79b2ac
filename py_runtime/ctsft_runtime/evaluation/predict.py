"""Batched inference of class predictions."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import torch

from ..data import Example, LabeledSet, PromptFormat, encode_batch
from ..errors import NonFinite
from ..models.classify import class_logits
from .batches import eval_batches


class LogitBatch(NamedTuple):
    start: int  # index of the batch's first text
    logits: torch.Tensor  # [b, C] float32, CPU
    truncated: list[bool]  # per text: cut to fit max_length


def logit_batches(
    model: Any,
    tokenizer: Any,
    texts: Sequence[Example],
    fmt: PromptFormat,
    token_ids: Sequence[int] | None,
    *,
    batch_size: int = 32,
    max_length: int = 256,
    check: Callable[[], None] = lambda: None,
    before: Callable[[int, int], None] = lambda start, stop: None,
    source: str = "the texts",
) -> Iterator[LogitBatch]:
    """Class logits of `texts` (texts, or records of fields), in order, one batch at a time (eval mode, no grad).

    `check` runs before each batch (cancellation); `before(start, stop)` too, to set up
    anything per batch (which rows use which delta). The model's train/eval mode is
    restored when the iteration ends or is abandoned. Non-finite logits raise `NonFinite`
    (naming `source`) at the batch that has them: an argmax or softmax of NaN would look like
    an answer (or chance accuracy), not like a broken model."""
    for start, stop in eval_batches(model, len(texts), batch_size, check):
        before(start, stop)
        enc = encode_batch(tokenizer, texts[start:stop], fmt, max_length)
        with torch.no_grad():
            logits = class_logits(model, enc, token_ids).float().cpu()
        if bad := int((~torch.isfinite(logits).all(dim=-1)).sum()):
            raise NonFinite(
                f"non-finite class logits on {bad} of the {stop - start} examples {start}..{stop - 1} of {source}: "
                "the model's weights are likely invalid (a diverged run saved, or a damaged checkpoint)",
                path="model",
            )
        yield LogitBatch(start, logits, enc["truncated"].tolist())


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
    """Predicted class per example and the [N, C] class logits (float32, CPU); `NonFinite`
    as `logit_batches`."""
    chunks = [
        b.logits
        for b in logit_batches(
            model,
            tokenizer,
            ds.texts,
            fmt,
            token_ids,
            batch_size=batch_size,
            max_length=max_length,
            check=check,
            source=ds.source,
        )
    ]
    logits = torch.cat(chunks) if chunks else torch.empty(0, len(token_ids))
    return logits.argmax(-1).tolist(), logits
