"""Call a runtime op handler in-process, exactly as the server does (body decoded from
msgpack into the op's struct), with a context that records the events it streams."""

from __future__ import annotations

from typing import Any

import msgspec

from ctsft_runtime.ops import OPS, Reply
from ctsft_runtime.ops.state import RuntimeState
from ctsft_runtime.protocol.codec import decode_body


class OpCtx:
    def __init__(self, state: RuntimeState) -> None:
        self.state = state
        self.request_id = "test"
        self.tensors: dict[str, Any] = {}
        self.events: list[Any] = []

    def emit(self, body: Any, tensors: Any = None) -> None:
        self.events.append(body)

    def check_cancelled(self) -> None:
        pass


def call(state: RuntimeState, op: str, body: dict[str, Any], ctx: OpCtx | None = None) -> Reply:
    spec = OPS[op]
    raw = msgspec.Raw(msgspec.msgpack.encode(body))
    return spec.handler(ctx or OpCtx(state), decode_body(raw, spec.body_type))
