"""The message header: `{v, id, kind, op, seq, body, bufs}`, msgpack-encoded in this key order.

Field order matters: both codecs emit keys in declaration order so the shared test vectors
in test/vectors/ are byte-identical on both sides.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Kind = Literal["hello", "req", "event", "result", "error", "cancel"]


class BufSpec(msgspec.Struct, forbid_unknown_fields=True):
    """Describes one raw tensor frame following the header (in order)."""

    name: str
    dtype: str
    shape: list[int]


class Header(msgspec.Struct, omit_defaults=False):
    v: int
    id: str
    kind: Kind
    op: str
    seq: int = 0
    body: Any = None
    bufs: list[BufSpec] = msgspec.field(default_factory=list)


class RawHeader(msgspec.Struct):
    """Header with the body left undecoded, so each op decodes it into its own typed struct."""

    v: int
    id: str
    kind: Kind
    op: str
    seq: int = 0
    body: msgspec.Raw = msgspec.Raw(b"\xc0")
    bufs: list[BufSpec] = msgspec.field(default_factory=list)


class ErrorBody(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    detail: str | None = None
    traceback: str | None = None
    path: str | None = None
