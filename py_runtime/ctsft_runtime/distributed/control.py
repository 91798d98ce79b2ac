"""Collectives on the control group: bytes broadcast from rank 0, an any-rank flag, an
all-gather of small records, a float sum. CPU tensors over gloo, whatever the training
backend is."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from . import Ranks


def broadcast_bytes(ranks: Ranks, data: bytes | None) -> bytes:
    """Rank 0's `data` on every rank (others pass None): its length first, then the bytes."""
    size = torch.tensor([len(data) if data is not None else 0], dtype=torch.int64)
    dist.broadcast(size, src=0, group=ranks.control)
    if ranks.leader:
        assert data is not None
        buf = torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)
    else:
        buf = torch.empty(int(size.item()), dtype=torch.uint8)
    if buf.numel():
        dist.broadcast(buf, src=0, group=ranks.control)
    return data if ranks.leader and data is not None else buf.numpy().tobytes()


def exchange(ranks: Ranks, tag: int, flag: bool) -> tuple[int, int, bool]:
    """One all-reduce of (tag, flag): the highest and lowest tag any rank sent, and whether
    any rank's flag is set. Ranks sending different tags are at different points of an op;
    each learns it from the result (server/ranks.py uses this for checks and agreement)."""
    t = torch.tensor([tag, -tag, 1 if flag else 0], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=ranks.control)
    high, neg_low, any_flag = (int(v) for v in t.tolist())
    return high, -neg_low, bool(any_flag)


def gather(ranks: Ranks, record: Any) -> list[Any]:
    """Every rank's `record` (small, picklable: these processes run the same code), by rank."""
    out: list[Any] = [None] * ranks.world
    dist.all_gather_object(out, record, group=ranks.control)
    return out


def sum_floats(ranks: Ranks, values: list[float]) -> list[float]:
    """Element-wise sum over ranks, in float64 so that a loss sum does not lose bits."""
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM, group=ranks.control)
    return [float(v) for v in t.tolist()]
