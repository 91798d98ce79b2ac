"""Wire tensors <-> torch tensors, without copies where the memory allows it."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from ..protocol import WireTensor

if TYPE_CHECKING:
    import torch


def _torch_dtypes() -> dict[str, torch.dtype]:
    import torch

    return {
        "float32": torch.float32,
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
        "int64": torch.int64,
        "int32": torch.int32,
        "uint8": torch.uint8,
        "bool": torch.bool,
    }


def to_torch(t: WireTensor) -> torch.Tensor:
    """A torch view over the received frame. Treat it as read-only: the frame's memory is."""
    import torch

    if t.array.size == 0:
        return torch.empty(t.shape, dtype=_torch_dtypes()[t.dtype])
    with warnings.catch_warnings():
        # Received frames are read-only buffers; torch warns once that writing would be UB.
        warnings.simplefilter("ignore", UserWarning)
        flat = torch.frombuffer(t.array, dtype=torch.uint8)
    return flat.view(_torch_dtypes()[t.dtype]).reshape(t.shape)


def from_torch(t: torch.Tensor) -> WireTensor:
    """A wire tensor sharing the CPU tensor's memory (moved to CPU and made contiguous first)."""
    import torch

    name = next(k for k, v in _torch_dtypes().items() if v == t.dtype)
    t = t.detach().to("cpu").contiguous()
    # numpy has no bfloat16; its bits travel as uint16 and are reinterpreted on arrival.
    array = t.view(torch.int16).numpy().view("<u2") if name == "bfloat16" else t.numpy()
    return WireTensor(name, tuple(t.shape), array)
