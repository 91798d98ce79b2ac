"""Peak memory of the current process: CUDA allocator peak on GPU, max RSS on CPU."""

from __future__ import annotations

import resource
import sys

import torch


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device) -> dict[str, int | str]:
    if device.type == "cuda":
        return {"kind": "cuda", "bytes": int(torch.cuda.max_memory_allocated(device))}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is KiB on Linux, bytes on macOS; it never goes down (whole-process peak).
    return {"kind": "rss", "bytes": int(rss if sys.platform == "darwin" else rss * 1024)}
