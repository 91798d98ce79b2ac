"""Turning texts (or records of fields) into model inputs, and datasets into deterministic batches.

Padding is on the RIGHT and each row carries `last_index`, the position of its last
prompt token, where the class logits are gathered. Right padding keeps every real token
at the position it would have unpadded, so models with absolute position embeddings
(GPT-2) need no `position_ids` adjustment, and causal attention means pad tokens after
`last_index` cannot influence it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from ..errors import BadRequest
from .loading import LabeledSet
from .prompts import Example, PromptFormat

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def encode_batch(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[Example],
    fmt: PromptFormat,
    max_length: int,
) -> dict[str, torch.Tensor]:
    """Encode prompts: `input_ids` and `attention_mask` [B, T], `last_index` [B] (int64),
    `truncated` [B] (bool: the row lost text tokens to `max_length`).

    `texts` holds one example per row: a text, or with a named-field template a record
    (`{"premise": ..., "hypothesis": ...}`). T is the longest row in this batch (at most
    `max_length`). The tokenizer's own special tokens are kept at the front (a BOS) but
    dropped at the end (an EOS/SEP some post-processors append), because the answer is read
    right after the template tail.

    Truncation keeps the whole template and the END of every field; tokens go from the
    START of fields only. The template tail ("Sentiment:", "Answer:") is what tells the
    model to answer, and a text's last words are usually its verdict. With several fields
    the budget is shared longest-first: each removed token comes from whichever field is
    currently longest (ties: the field earlier in the template), so a short hypothesis stays
    whole while a long premise is cut down to its tail, and no field is cut below the length
    of another that is cut. The cut is made on the tokens of the full prompt (located
    through character offsets), so nothing is re-tokenized; a field's first kept token may
    be a word piece.
    """
    if not texts:
        raise BadRequest("texts is empty; nothing to encode", path="texts")
    if max_length < 1:
        raise BadRequest(f"max_length must be at least 1, got {max_length}", path="max_length")
    if not getattr(tokenizer, "is_fast", False):
        # Offsets (for text-only truncation) exist only on Rust-backed "fast" tokenizers.
        raise BadRequest(
            "encode_batch needs a fast tokenizer (PreTrainedTokenizerFast); load it with use_fast=True",
            path="tokenizer",
        )
    rendered = [fmt.render_spans(t) for t in texts]
    enc = tokenizer(
        [prompt for prompt, _ in rendered],
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    rows: list[list[int]] = []
    truncated: list[bool] = []
    for b, (_, spans) in enumerate(rendered):
        ids = list(enc["input_ids"][b])
        special = list(enc["special_tokens_mask"][b])
        offsets = list(enc["offset_mapping"][b])
        while ids and special[-1]:
            del ids[-1], special[-1], offsets[-1]
        excess = len(ids) - max_length
        truncated.append(excess > 0)
        if excess > 0:
            # Per field, its tokens in order. A token overlapping the field may go; one
            # reaching past its end (into the template) stays with the template.
            removable = [
                [i for i, (s, e) in enumerate(offsets) if not special[i] and e > start and s < end and e <= end]
                for start, end in spans
            ]
            total = sum(len(r) for r in removable)
            if excess > total:
                raise BadRequest(
                    f"max_length={max_length} is too small: the template and special tokens "
                    f"alone take {len(ids) - total} tokens",
                    path="max_length",
                )
            drop = {i for field, n in zip(removable, _longest_first(removable, excess), strict=True) for i in field[:n]}
            ids = [t for i, t in enumerate(ids) if i not in drop]
        if not ids:
            raise BadRequest(f"text {b} renders to an empty prompt", path="texts")
        rows.append(ids)

    input_ids, attention_mask = right_pad(tokenizer, rows)
    last_index = torch.tensor([len(r) - 1 for r in rows], dtype=torch.long)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "last_index": last_index,
        "truncated": torch.tensor(truncated, dtype=torch.bool),
    }


def _longest_first(fields: Sequence[Sequence[int]], excess: int) -> list[int]:
    """How many leading tokens each field loses so that `excess` go in all, always taking
    the next one from the currently longest field (the earliest of equals)."""
    left = [len(f) for f in fields]
    for _ in range(excess):
        k = max(range(len(left)), key=lambda j: (left[j], -j))
        left[k] -= 1
    return [len(f) - n for f, n in zip(fields, left, strict=True)]


class Batch(NamedTuple):
    texts: list[Example]  # a text or a record of fields per row
    labels: list[int]
    indices: list[int]  # rows of the source LabeledSet, for tracing predictions back


def iterate_batches(
    ds: LabeledSet, batch_size: int, seed: int | None = None, *, drop_last: bool = False
) -> Iterator[Batch]:
    """Batches over `ds`: file order when `seed` is None, else a `random.Random(seed)`
    permutation. The order depends only on (len(ds), seed), so pass e.g. `seed + epoch`
    for a fresh but reproducible order each epoch. The last, smaller batch is kept unless
    `drop_last`."""
    if batch_size < 1:
        raise BadRequest(f"batch_size must be at least 1, got {batch_size}", path="batch_size")
    order = list(range(len(ds)))
    if seed is not None:
        random.Random(seed).shuffle(order)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        if drop_last and len(rows) < batch_size:
            return
        yield Batch([ds.texts[i] for i in rows], [ds.labels[i] for i in rows], rows)


def right_pad(tokenizer: Any, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows as right-padded `input_ids` and their `attention_mask`. The pad value is
    never read (masked); models without a pad token (GPT-2, Llama) get eos, or 0 when there
    is no eos either."""
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, ids in enumerate(rows):
        input_ids[b, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[b, : len(ids)] = 1
    return input_ids, attention_mask
