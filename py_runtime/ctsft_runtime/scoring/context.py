"""What every scorer receives, and what it returns: per-example scores of each source head."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..data import LabeledSet, PromptFormat, encode_batch, iterate_batches
from ..heads import HeadMap


@dataclass
class ScoreContext:
    model: Any
    head_map: HeadMap
    tokenizer: Any
    ds: LabeledSet
    fmt: PromptFormat
    token_ids: Sequence[int]
    mu: torch.Tensor  # [layers, heads, head_dim]
    sources: list[tuple[int, int]]
    batch_size: int = 32
    max_length: int = 128
    chunk: int = 16  # source heads batched together (cdt)
    check: Callable[[], None] = lambda: None
    progress: Callable[[int, int], None] = lambda done, total: None
    settings: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)  # what a scorer reports besides scores (cdt: stability)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def batches(self) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        """(encoded batch on the model's device, gold labels) in file order."""
        for batch in iterate_batches(self.ds, self.batch_size):
            self.check()
            enc = encode_batch(self.tokenizer, batch.texts, self.fmt, self.max_length)
            yield {k: v.to(self.device) for k, v in enc.items()}, torch.tensor(batch.labels, device=self.device)


# A scorer returns per-example scores, [len(sources), len(ds)], in dataset order.
Scorer = Callable[[ScoreContext], torch.Tensor]
