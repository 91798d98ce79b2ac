"""The batch loop every evaluation pass shares: eval mode for its duration, a cancellation
check before each batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..errors import BadRequest


def eval_batches(model: Any, n: int, batch_size: int, check: Callable[[], None]) -> Iterator[tuple[int, int]]:
    """(start, stop) of each batch of `n` rows, with `model` in eval mode meanwhile; `check`
    runs before each batch. The model's train/eval mode is restored when the iteration ends
    or is abandoned (a generator's `finally`)."""
    if batch_size < 1:
        raise BadRequest(f"batch_size must be at least 1, got {batch_size}", path="batch_size")
    was_training = model.training
    model.eval()
    try:
        for start in range(0, n, batch_size):
            check()
            yield start, min(start + batch_size, n)
    finally:
        model.train(was_training)
