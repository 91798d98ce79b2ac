"""Language-model loss of raw texts: mean next-token negative log-likelihood, token-weighted.

"Forgetting beyond one number": besides a task's accuracy, how well the model still
models held-out text of a language. Each example's raw text is scored, with no prompt
template and no label: a text as is, a record of fields as its values joined by "\\n"
in field order. Each text is tokenized with the tokenizer's own leading special tokens
(a BOS where it adds one) and without trailing ones (an EOS some post-processors
append), then cut to its first `max_length` tokens. Every token after the first is
predicted; the loss is the total NLL (nats) over all predicted tokens of all texts
divided by their number, so batching and padding cannot change it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from ..data import Example
from ..data.batching import right_pad
from ..errors import BadRequest, NonFinite
from .batches import eval_batches

IGNORE = -100


class LMLoss(NamedTuple):
    loss: float  # total NLL / tokens, nats
    tokens: int  # predicted tokens (each text's length - 1, after truncation)


def lm_text(example: Example, fields: Sequence[str] | None = None) -> str:
    """The raw text of an example: a text as is; a record's values joined by "\\n", in the
    order of `fields` (the dataset's field map), else the record's own order."""
    if isinstance(example, str):
        return example
    if not isinstance(example, Mapping):
        raise BadRequest(f"an example is a text or a record of fields, got {type(example).__name__}", path="texts")
    return "\n".join(str(example[f]) for f in (fields if fields is not None else list(example)))


def _token_rows(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    enc = tokenizer(list(texts), add_special_tokens=True, return_special_tokens_mask=True)
    rows = []
    for ids, special in zip(enc["input_ids"], enc["special_tokens_mask"], strict=True):
        ids, special = list(ids), list(special)
        while ids and special[-1]:
            del ids[-1], special[-1]
        rows.append(ids[:max_length])
    return rows


def lm_loss(
    model: Any,
    tokenizer: Any,
    texts: Sequence[Example],
    *,
    fields: Sequence[str] | None = None,
    batch_size: int = 32,
    max_length: int = 256,
    check: Callable[[], None] = lambda: None,
    source: str = "the texts",
    path: str = "texts",
) -> LMLoss:
    """Token-weighted mean next-token NLL of `texts` under `model` (eval mode, no grad;
    the train/eval mode is restored). Batches of `batch_size` texts, right-padded with an
    attention mask; padding is never a target. `check` runs before each batch
    (cancellation). A non-finite loss raises `NonFinite` naming `source`; texts with no
    token to predict at all raise `BadRequest` at `path`."""
    if max_length < 2:
        raise BadRequest(f"max_length must be at least 2 to predict a token, got {max_length}", path="max_length")
    device = next(model.parameters()).device
    total = 0.0
    tokens = 0
    for start, stop in eval_batches(model, len(texts), batch_size, check):
        raw = [lm_text(t, fields) for t in texts[start:stop]]
        rows = [r for r in _token_rows(tokenizer, raw, max_length) if len(r) >= 2]  # 1 token: nothing to predict
        if not rows:
            continue
        input_ids, attention_mask = right_pad(tokenizer, rows)
        targets = input_ids[:, 1:].masked_fill(attention_mask[:, 1:] == 0, IGNORE).to(device)
        with torch.no_grad():
            logits = model(
                input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), use_cache=False
            ).logits
            # Row by row, so only one row's [T, V] logits is ever upcast to float32.
            nll = sum(
                float(F.cross_entropy(logits[b, :-1].float(), targets[b], ignore_index=IGNORE, reduction="sum"))
                for b in range(len(rows))
            )
        if not math.isfinite(nll):
            raise NonFinite(
                f"non-finite language-model loss on the texts {start}..{stop - 1} of {source}: "
                "the model's weights are likely invalid (a diverged run saved, or a damaged checkpoint)",
                path="model",
            )
        total += nll
        tokens += sum(len(r) - 1 for r in rows)
    if tokens == 0:
        raise BadRequest(f"no text of {source} has a token to predict (each tokenizes to at most one token)", path=path)
    return LMLoss(total / tokens, tokens)
