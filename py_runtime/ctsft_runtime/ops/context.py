"""What an op handler sees: its request, a way to stream events, and cooperative cancellation.

Ops never touch a socket; the server implements `OpContext` and owns all I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..protocol import WireTensor


@dataclass
class Reply:
    """An op's final result: a msgpack-able body plus optional raw tensors."""

    body: Any
    tensors: dict[str, WireTensor] = field(default_factory=dict)


class OpContext(Protocol):
    request_id: str
    tensors: dict[str, WireTensor]
    state: Any

    def emit(self, body: Any, tensors: dict[str, WireTensor] | None = None) -> None:
        """Stream one event to the caller (blocks under back-pressure; raises if cancelled)."""
        ...

    def check_cancelled(self) -> None:
        """Raise `Cancelled` if the caller cancelled; call between steps of long work."""
        ...
