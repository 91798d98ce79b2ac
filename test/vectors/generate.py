"""Regenerate test/vectors/frames.json from the values below using the Python codec.

The JSON holds each message's value and its exact bytes; test/py and test/ts both check
that their codec decodes the bytes to the value and encodes the value to the same bytes.
Run: python test/vectors/generate.py (with py_runtime on PYTHONPATH).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ctsft_runtime.protocol import Header, WireTensor, encode_frames

CASES: list[tuple[str, dict, dict[str, tuple[str, list[int], list]]]] = [
    ("hello request", {"v": 1, "id": "c0ffee-1", "kind": "hello", "op": "hello", "seq": 0, "body": {"protocol": 1}}, {}),
    ("ping request", {"v": 1, "id": "a-2", "kind": "req", "op": "ping", "seq": 0, "body": {}}, {}),
    (
        "event with nested body",
        {
            "v": 1, "id": "a-3", "kind": "event", "op": "diagnose", "seq": 7,
            "body": {"type": "tick", "step": 7, "total": 100000, "loss": 0.5, "tags": ["x", None, True]},
        },
        {},
    ),
    (
        "error",
        {"v": 1, "id": "a-4", "kind": "error", "op": "echo", "seq": 0,
         "body": {"code": "bad_request", "message": "invalid body", "path": "body.count"}},
        {},
    ),
    ("cancel", {"v": 1, "id": "a-5", "kind": "cancel", "op": "cancel", "seq": 0, "body": {"target": "a-3"}}, {}),
    (
        "result with tensors",
        {"v": 1, "id": "a-6", "kind": "result", "op": "echo", "seq": 0, "body": {"payload": {"n": 3}}},
        {
            "f32": ("float32", [2, 2], [1.0, -2.5, 0.0, 3.25]),
            "i64": ("int64", [3], [1, -1, 2**40]),
            "bf16": ("bfloat16", [2], [0x3F80, 0xC000]),
            "mask": ("bool", [3], [True, False, True]),
            "empty": ("float16", [0, 4], []),
        },
    ),
]  # fmt: skip


def main() -> None:
    out = []
    for name, header, tensors in CASES:
        wires = {
            k: WireTensor(dt, tuple(shape), np.array(vals, dtype=_np(dt)).reshape(shape))
            for k, (dt, shape, vals) in tensors.items()
        }
        frames = encode_frames(Header(**header), wires)
        out.append(
            {
                "name": name,
                "header": {**header, "bufs": [{"name": k, "dtype": dt, "shape": s} for k, (dt, s, _) in tensors.items()]},
                "tensors": {k: {"dtype": dt, "shape": s, "values": v} for k, (dt, s, v) in tensors.items()},
                "frames": [bytes(f).hex() for f in frames],
            }
        )
    path = Path(__file__).with_name("frames.json")
    path.write_text(json.dumps(out, indent=1) + "\n")


def _np(dtype: str) -> str:
    return {"float32": "<f4", "float16": "<f2", "bfloat16": "<u2", "int64": "<i8", "int32": "<i4", "uint8": "u1", "bool": "?"}[
        dtype
    ]


if __name__ == "__main__":
    main()
