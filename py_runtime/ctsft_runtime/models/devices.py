"""Device and dtype resolution, with errors that say what is available."""

from __future__ import annotations

import torch

from ..errors import BadRequest

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str) -> torch.device:
    """`auto` = CUDA when present, else CPU. Asking for CUDA on a machine without it is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise BadRequest(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N", path="device") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BadRequest(
                f"device {device!r} asked for, but CUDA is not available here (use auto or cpu)", path="device"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BadRequest(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)", path="device")
    elif dev.type not in ("cpu", "mps"):
        raise BadRequest(f"unsupported device type {dev.type!r}", path="device")
    return dev


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """`auto` = float32 on CPU (training in half precision on CPU is slow and lossy); on CUDA
    bfloat16 where supported, float32 otherwise (float16 without a loss scaler diverges)."""
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if dtype not in DTYPES:
        raise BadRequest(f"unknown dtype {dtype!r}; use auto, {', '.join(DTYPES)}", path="dtype")
    return DTYPES[dtype]


def dtype_name(dtype: torch.dtype) -> str:
    return next(k for k, v in DTYPES.items() if v == dtype)
