"""The shared wire vectors: the Python codec decodes their bytes to their values and encodes
their values to the same bytes (test/ts/transport/vectors.test.ts checks the TS codec)."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import pytest

from ctsft_runtime.protocol import DTYPES, Header, WireTensor, decode_frames, encode_frames

VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "frames.json").read_text())


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_decode_matches_value(case: dict) -> None:
    frames = [bytes.fromhex(f) for f in case["frames"]]
    header, tensors = decode_frames(frames)
    assert msgspec.to_builtins(header.bufs) == case["header"]["bufs"]
    assert msgspec.msgpack.decode(header.body) == case["header"]["body"]
    for key in ("v", "id", "kind", "op", "seq"):
        assert getattr(header, key) == case["header"][key]
    assert set(tensors) == set(case["tensors"])
    for name, spec in case["tensors"].items():
        t = tensors[name]
        assert (t.dtype, list(t.shape)) == (spec["dtype"], spec["shape"])
        assert t.array.reshape(-1).tolist() == spec["values"]


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_encode_matches_bytes(case: dict) -> None:
    h = {k: v for k, v in case["header"].items() if k != "bufs"}
    tensors = {
        name: WireTensor(
            s["dtype"], tuple(s["shape"]), np.array(s["values"], dtype=DTYPES[s["dtype"]]).reshape(s["shape"])
        )
        for name, s in case["tensors"].items()
    }
    frames = encode_frames(Header(**h), tensors)
    assert [bytes(f).hex() for f in frames] == case["frames"]


def test_protocol_version_agrees_everywhere() -> None:
    """version.py, src/schema/version.ts and docs/protocol.md state one version."""
    import re

    from ctsft_runtime.protocol import PROTOCOL_VERSION

    root = Path(__file__).parents[3]
    ts = re.search(r"PROTOCOL_VERSION = (\d+)", (root / "src/schema/version.ts").read_text())
    doc = re.search(r"Protocol version: \*\*(\d+)\*\*", (root / "docs/protocol.md").read_text())
    assert ts and doc
    assert int(ts.group(1)) == int(doc.group(1)) == PROTOCOL_VERSION
