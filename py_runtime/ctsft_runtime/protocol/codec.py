"""Frames <-> (header, tensors). `[header][buf0][buf1]...`, one raw frame per tensor."""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

import msgspec
import numpy as np

from ..errors import BadRequest
from .header import BufSpec, Header, RawHeader
from .nulls import explicit_null
from .tensors import DTYPES, WireTensor
from .version import MAX_HEADER_BYTES

_encoder = msgspec.msgpack.Encoder()
_raw_decoder = msgspec.msgpack.Decoder(RawHeader)


def encode_frames(header: Header, tensors: dict[str, WireTensor] | None = None) -> list[Any]:
    """Header plus raw tensor frames; the tensor frames are memoryviews (no copy)."""
    frames: list[Any] = []
    specs: list[BufSpec] = []
    for name, t in (tensors or {}).items():
        specs.append(BufSpec(name=name, dtype=t.dtype, shape=list(t.shape)))
        frames.append(memoryview(np.ascontiguousarray(t.array).reshape(-1).view(np.uint8)))
    header.bufs = specs
    return [_encoder.encode(header), *frames]


# msgspec decodes nested arrays and maps recursively: a few hundred kB of `[[[…]]]` exhausts
# Python's stack.
TOO_DEEP = "the message nests arrays or maps too deeply"


def decode_header(frame: bytes | memoryview) -> RawHeader:
    if len(frame) > MAX_HEADER_BYTES:
        raise BadRequest(f"header of {len(frame)} bytes exceeds the {MAX_HEADER_BYTES}-byte limit")
    try:
        return _raw_decoder.decode(frame)
    except msgspec.ValidationError as e:
        raise BadRequest(f"invalid header: {e}", path=_path_of(e)) from None
    except msgspec.DecodeError as e:
        raise BadRequest(f"header is not valid msgpack: {e}") from None
    except RecursionError:
        raise BadRequest(TOO_DEEP) from None


def decode_frames(
    frames: Sequence[bytes | memoryview],
) -> tuple[RawHeader, dict[str, WireTensor]]:
    """Decode a message; tensors are numpy views over the received frames (zero-copy)."""
    if not frames:
        raise BadRequest("empty message")
    header = decode_header(frames[0])
    return header, decode_tensors(header, frames[1:])


def decode_tensors(header: RawHeader, bufs: Sequence[bytes | memoryview]) -> dict[str, WireTensor]:
    """The tensor frames a decoded header describes (decoded apart, so that an error about
    them can still name the request's id)."""
    if len(bufs) != len(header.bufs):
        raise BadRequest(
            f"header describes {len(header.bufs)} tensor frames but {len(bufs)} followed",
            path="bufs",
        )
    tensors: dict[str, WireTensor] = {}
    for i, (spec, buf) in enumerate(zip(header.bufs, bufs, strict=False)):
        dt = DTYPES.get(spec.dtype)
        if dt is None:
            raise BadRequest(
                f"unknown dtype {spec.dtype!r}; expected one of {sorted(DTYPES)}",
                path=f"bufs.{i}.dtype",
            )
        if any(d < 0 for d in spec.shape):
            raise BadRequest(f"negative dimension in shape {spec.shape}", path=f"bufs.{i}.shape")
        expected = prod(spec.shape) * dt.itemsize
        if len(buf) != expected:
            raise BadRequest(
                f"tensor {spec.name!r}: {len(buf)} bytes for shape {spec.shape} {spec.dtype} (expected {expected})",
                path=f"bufs.{i}",
            )
        if spec.name in tensors:
            raise BadRequest(f"duplicate tensor name {spec.name!r}", path=f"bufs.{i}.name")
        array = np.frombuffer(buf, dtype=dt).reshape(spec.shape)
        tensors[spec.name] = WireTensor(spec.dtype, tuple(spec.shape), array)
    return tensors


def decode_body(raw: msgspec.Raw, typ: type) -> Any:
    """An op's body as its typed struct; an absent body (nil) means "all defaults". Errors
    name the offending field as `body.<field>`."""
    buf = bytes(raw)
    data = b"\x80" if buf == b"\xc0" else buf
    try:
        body = msgspec.msgpack.decode(data, type=typ, ext_hook=_no_ext)
    except _ExtRefused:
        raise BadRequest("msgpack extension types are not part of the protocol", path="body") from None
    except msgspec.ValidationError as e:
        field = _path_of(e)
        raise BadRequest(f"invalid body: {e}", path=f"body.{field}" if field else "body") from None
    except msgspec.DecodeError as e:
        raise BadRequest(f"invalid body: {e}", path="body") from None
    except RecursionError:
        raise BadRequest(TOO_DEEP, path="body") from None
    # 0xc0 (nil) never occurs inside UTF-8 text, so most bodies skip the second, untyped decode.
    # (It cannot recurse deeper than the typed decode above, which succeeded.)
    if b"\xc0" in data and (field := explicit_null(msgspec.msgpack.decode(data), typ)):
        raise BadRequest(
            f"invalid body: {field} is null; leave an optional field out instead - at `$.{field}`",
            path=f"body.{field}",
        )
    return body


def camel(name: str) -> str:
    """A Python field name as the wire spells it (`text_column` -> `textColumn`)."""
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


class _ExtRefused(Exception):
    pass


def _no_ext(code: int, data: memoryview) -> Any:
    raise _ExtRefused(code)


def _path_of(e: msgspec.ValidationError) -> str | None:
    # msgspec reports "... - at `$.field[0]`"; keep the field path for the error's `path`.
    msg = str(e)
    if "at `$." in msg:
        return msg.split("at `$.", 1)[1].rstrip("`").replace("[", ".").replace("]", "")
    return None
