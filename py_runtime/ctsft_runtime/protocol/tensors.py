"""Tensor frames: a dtype table and a zero-copy view over a received frame."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

# Wire dtype -> numpy dtype used to view the raw bytes. bfloat16 has no numpy dtype: it travels
# and is viewed as uint16, and torch reinterprets it (`.view(torch.bfloat16)`) without a copy.
DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "float16": np.dtype("<f2"),
    "bfloat16": np.dtype("<u2"),
    "int64": np.dtype("<i8"),
    "int32": np.dtype("<i4"),
    "uint8": np.dtype("u1"),
    "bool": np.dtype("?"),
}


@dataclass(frozen=True)
class WireTensor:
    """A tensor as it travels: dtype name, shape and a numpy view of the frame's bytes."""

    dtype: str
    shape: tuple[int, ...]
    array: np.ndarray

    @staticmethod
    def from_numpy(array: np.ndarray, dtype: str | None = None) -> WireTensor:
        if dtype is None:
            dtype = next((k for k, v in DTYPES.items() if v == array.dtype and k != "bfloat16"), "")
            if not dtype:
                raise ValueError(f"dtype {array.dtype} cannot travel on the wire")
        return WireTensor(dtype, tuple(array.shape), np.ascontiguousarray(array))

    def nbytes_expected(self) -> int:
        return prod(self.shape) * DTYPES[self.dtype].itemsize
