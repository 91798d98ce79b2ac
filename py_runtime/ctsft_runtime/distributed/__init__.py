"""The runtime as N ranks under torchrun: which rank this process is, and its two groups.

`torchrun … -m ctsft_runtime` starts one process per rank with RANK, WORLD_SIZE and
LOCAL_RANK set. With WORLD_SIZE > 1, `init` joins the default process group (nccl on
CUDA, gloo on CPU; DDP and FSDP reduce gradients on it) and a second, gloo group for
control traffic: rank 0 broadcasting each request, the per-step cancel flag, the
after-op agreement. Control traffic is small CPU tensors, so it stays on gloo even when
training runs on nccl, and it never shares a group with DDP's asynchronous all-reduces.

This module imports torch only; `training/` reads `current()` to learn whether to wrap
the model, the server to decide whether it leads or follows. With one rank nothing
here is touched and `current()` is None.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

# Followers sit in a broadcast until rank 0 sends the next request, which may be hours
# away; gloo would otherwise end that wait after its default 30 minutes. A dead rank is
# noticed by torchrun (its agent stops the others), not by this timeout.
_CONTROL_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class Ranks:
    rank: int
    world: int
    local_rank: int
    backend: str
    """Of the default group: "nccl" (CUDA) or "gloo" (CPU)."""
    device: str
    """This rank's device: "cuda:LOCAL_RANK" or "cpu"."""
    control: Any
    """A gloo ProcessGroup for control traffic (CPU tensors only)."""

    @property
    def leader(self) -> bool:
        return self.rank == 0


_CURRENT: Ranks | None = None


def world_from_env() -> int:
    """WORLD_SIZE as torchrun sets it (1 when not started by torchrun)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def init(device: str = "auto") -> Ranks:
    """Join the groups torchrun describes in the environment (call once, at start-up)."""
    global _CURRENT
    import torch
    import torch.distributed as dist

    if _CURRENT is not None:
        return _CURRENT
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        # "auto" and "cuda" then mean this rank's own GPU (resolve_device uses the current one).
        torch.cuda.set_device(local_rank)
    backend = "nccl" if cuda else "gloo"
    dist.init_process_group(backend)
    control = dist.new_group(backend="gloo", timeout=_CONTROL_TIMEOUT)
    _CURRENT = Ranks(rank, world, local_rank, backend, f"cuda:{local_rank}" if cuda else "cpu", control)
    return _CURRENT


def current() -> Ranks | None:
    """This process's ranks when it is one of several, else None."""
    return _CURRENT


def is_follower() -> bool:
    """True on ranks other than 0: they never write files nor speak to clients."""
    return _CURRENT is not None and _CURRENT.rank != 0


def shutdown() -> None:
    global _CURRENT
    import torch.distributed as dist

    if _CURRENT is not None and dist.is_initialized():
        dist.destroy_process_group()
    _CURRENT = None


_BROKEN = False
# Errors raised where no other rank waits in a training collective: the cancel decision is
# one all-reduce every rank takes (OutOfStep: taken while another rank had left the op, so
# that rank waits in the agreement, not in a step); the divergence check reads the global
# loss and the (already reduced) gradient norm, the same on every rank.
_IN_STEP_ERRORS = ("Cancelled", "NonFinite", "OutOfStep")


@contextmanager
def lockstep() -> Iterator[None]:
    """A section where every rank takes part in each collective (a training loop).

    An exception the other ranks do not share leaves them waiting in a collective that
    will never complete. A follower then exits at once (torchrun stops the others); rank 0
    marks the ranks broken, so the server reports the error and then exits non-zero.
    """
    global _BROKEN
    try:
        yield
    except BaseException as e:
        if _CURRENT is None or type(e).__name__ in _IN_STEP_ERRORS:
            raise
        if _CURRENT.rank != 0:
            traceback.print_exc(file=sys.stderr)
            print(
                f"ctsft_runtime rank {_CURRENT.rank}: failed inside a collective section; exiting",
                file=sys.stderr,
                flush=True,
            )
            os._exit(1)
        _BROKEN = True
        lost = rank_lost(e)
        if lost is not None:
            raise lost from e
        raise


def rank_lost(e: BaseException) -> Exception | None:
    """A `RankLost` error when `e` is a collective failing because another rank is gone (its
    sockets closed); the ranks are then broken for good. None for any other exception."""
    global _BROKEN
    import torch.distributed as dist

    from ..errors import RankLost

    text = str(e)
    if isinstance(e, RankLost):
        return e
    if not isinstance(e, dist.DistError) and not any(
        s in text for s in ("gloo/transport", "Connection reset", "Connection closed", "NCCL communicator")
    ):
        return None
    _BROKEN = True
    world = _CURRENT.world if _CURRENT is not None else "?"
    first = text.splitlines()[0][:300] if text else ""
    return RankLost(
        f"a rank of this {world}-rank runtime stopped ({type(e).__name__}: {first}); the runtime is stopping"
    )


def broken() -> bool:
    """Rank 0 only: an op failed while the other ranks may wait in a collective."""
    return _BROKEN
