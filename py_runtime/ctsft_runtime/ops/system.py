"""Runtime-level ops: info, ping, echo (tensor round trip) and a diagnostic stream."""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any, Literal

import msgspec

from .. import __version__
from ..errors import CtsftError, Internal, OutOfMemory
from ..protocol import PROTOCOL_VERSION, WireTensor
from .context import OpContext, Reply
from .fields import NonNegative, NonNegativeFloat
from .registry import op
from .tensors import from_torch, to_torch


class Empty(msgspec.Struct, forbid_unknown_fields=True):
    pass


class EchoBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    payload: Any = None
    # Route tensors through torch.frombuffer and back, to exercise the real tensor path.
    via_torch: bool = False


class DiagnoseBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    count: int = 10
    interval_ms: NonNegativeFloat = 0.0
    payload_bytes: int = 0
    fail_at: NonNegative | None = None
    fail_code: Literal["internal", "out_of_memory"] = "internal"

    def __post_init__(self) -> None:
        if self.count < 0 or self.count > 10_000_000:
            raise msgspec.ValidationError("count must be in [0, 10000000] - at `$.count`")
        if self.payload_bytes < 0 or self.payload_bytes > 64 << 20:
            raise msgspec.ValidationError("payloadBytes must be in [0, 64 MiB] - at `$.payloadBytes`")


def hello_body() -> dict[str, Any]:
    """What the server says on connect: cheap facts only (no torch import)."""
    return {
        "protocol": PROTOCOL_VERSION,
        "runtimeVersion": __version__,
        "python": platform.python_version(),
        "pid": os.getpid(),
    }


@op("info", Empty)
def info(ctx: OpContext, body: Empty) -> Reply:
    import torch
    import transformers

    devices = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            devices.append(
                {"index": i, "name": torch.cuda.get_device_name(i), "totalMemory": total, "freeMemory": free}
            )
    return Reply(
        {
            **hello_body(),
            "executable": sys.executable,
            "platform": platform.platform(),
            "torch": str(torch.__version__),
            "transformers": transformers.__version__,
            "cuda": torch.cuda.is_available(),
            "devices": devices,
            "device": ctx.state.device,
            "threads": torch.get_num_threads(),
        }
    )


@op("ping", Empty)
def ping(ctx: OpContext, body: Empty) -> Reply:
    return Reply({})


@op("echo", EchoBody)
def echo(ctx: OpContext, body: EchoBody) -> Reply:
    tensors = ctx.tensors
    if body.via_torch:
        tensors = {name: _through_torch(t) for name, t in tensors.items()}
    return Reply({"payload": body.payload}, tensors)


def _through_torch(t: WireTensor) -> WireTensor:
    return from_torch(to_torch(t))


@op("diagnose", DiagnoseBody)
def diagnose(ctx: OpContext, body: DiagnoseBody) -> Reply:
    """A streamed op for testing the bridge: `count` events, optional delay, payload, failure."""
    import numpy as np

    payload = {"bytes": WireTensor.from_numpy(np.zeros(body.payload_bytes, np.uint8))} if body.payload_bytes else None
    started = time.perf_counter()
    for step in range(body.count):
        if body.fail_at is not None and step == body.fail_at:
            raise _failure(body.fail_code, step)
        if body.interval_ms:
            time.sleep(body.interval_ms / 1000)
        ctx.emit({"type": "tick", "step": step, "total": body.count}, payload)
    return Reply({"count": body.count, "seconds": time.perf_counter() - started})


def _failure(code: str, step: int) -> CtsftError:
    if code == "out_of_memory":
        return OutOfMemory(f"diagnose: simulated out-of-memory at step {step}")
    return Internal(f"diagnose: simulated failure at step {step}")
