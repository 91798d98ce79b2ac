"""Op registry: adding an op is one body struct plus one handler decorated with `@op`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .context import OpContext, Reply

B = TypeVar("B")
Handler = Callable[[OpContext, Any], Reply]


@dataclass(frozen=True)
class OpSpec:
    name: str
    body_type: type
    handler: Handler


OPS: dict[str, OpSpec] = {}


def op(name: str, body_type: type[B]) -> Callable[[Callable[[OpContext, B], Reply]], Callable[[OpContext, B], Reply]]:
    def register(fn: Callable[[OpContext, B], Reply]) -> Callable[[OpContext, B], Reply]:
        if name in OPS:
            raise RuntimeError(f"op {name!r} registered twice")
        OPS[name] = OpSpec(name, body_type, fn)
        return fn

    return register
