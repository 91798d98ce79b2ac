"""Assertions shared by the Python suites."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ctsft_runtime.errors import BadRequest


@contextmanager
def raises_bad(path: str, phrase: str) -> Iterator[None]:
    """The block raises BadRequest naming field `path`, with `phrase` in its message."""
    with pytest.raises(BadRequest) as info:
        yield
    assert info.value.path == path
    assert phrase in info.value.message, info.value.message
