"""Property: whatever bytes arrive, the codec either decodes them or raises BadRequest."""

from __future__ import annotations

import contextlib

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from ctsft_runtime.errors import BadRequest
from ctsft_runtime.protocol import MAX_HEADER_BYTES, decode_frames

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _decode_or_bad_request(frames: list[bytes]) -> None:
    with contextlib.suppress(BadRequest):
        decode_frames(frames)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), min_size=0, max_size=4))
def test_arbitrary_bytes(frames: list[bytes]) -> None:
    _decode_or_bad_request(frames)


@settings(max_examples=300, deadline=None)
@given(json_values, st.lists(st.binary(max_size=32), max_size=3))
def test_arbitrary_msgpack_headers(value: object, bufs: list[bytes]) -> None:
    _decode_or_bad_request([msgspec.msgpack.encode(value), *bufs])


buf_specs = st.fixed_dictionaries(
    {
        "name": st.text(max_size=3),
        "dtype": st.sampled_from(["float32", "int64", "x"]),
        "shape": st.lists(st.integers(-1, 3), max_size=3),
    }
)
near_valid = st.fixed_dictionaries(
    {
        "v": st.integers(0, 3),
        "id": st.text(max_size=5),
        "kind": st.sampled_from(["req", "hello", "bogus"]),
        "op": st.text(max_size=5),
        "seq": st.integers(-2, 2),
        "body": json_values,
        "bufs": st.lists(buf_specs, max_size=2),
    }
)


@settings(max_examples=200, deadline=None)
@given(near_valid, st.lists(st.binary(max_size=48), max_size=2))
def test_near_valid_headers(header: dict, bufs: list[bytes]) -> None:
    _decode_or_bad_request([msgspec.msgpack.encode(header), *bufs])


def test_oversize_header_refused_before_decoding() -> None:
    try:
        decode_frames([b"\x00" * (MAX_HEADER_BYTES + 1)])
    except BadRequest as e:
        assert "exceeds" in e.message
    else:
        raise AssertionError("oversize header accepted")
