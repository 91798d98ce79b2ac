"""Rank 0 leads, the other ranks follow: every op runs on all ranks, in the same order.

Rank 0 runs the normal server. Before its compute thread runs an op, `Leader.start`
broadcasts the request as it arrived (the tenant, the header with the raw msgpack body,
the request's tensors) on the control group; each follower (`follow`, the main thread of
ranks 1..N-1) decodes it exactly as the server does and runs the same handler against its
own `RuntimeState` for that tenant. Same op sequence, same handle ids, same models.

Three rules keep the ranks in step:
- Cancellation is one decision for all ranks: every `check_cancelled` is an all-reduce of
  rank 0's cancel flag, so all ranks stop at the same step. Emitting is a no-op on
  followers and never raises on rank 0 (a raise there would skip a collective).
- After each op all ranks agree on its outcome (`agree`): a follower's failure is the op's
  typed error on rank 0 ("rank N of W: ..."), instead of a silent divergence, and a failed
  op leaves no new handle on any rank (same handles, same next id everywhere). A rank that
  fails mid-op while others are still in it does not leave them waiting: checks and the
  agreement are one tagged all-reduce, so the others notice, stop (OutOfStep) and agree.
- A failure that leaves ranks out of step (an exception inside a collective section of
  training that the other ranks did not share, see `distributed.lockstep`) cannot be
  agreed on, since the others wait in a collective: a follower then exits, rank 0 reports
  the error and exits non-zero; torchrun stops the rest and the client sees the runtime go.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import msgspec

# Collectives come from distributed.control, imported where used: it imports torch, and a
# single-rank server must answer hello before torch loads.
from .. import distributed
from ..distributed import Ranks
from ..errors import Cancelled, CtsftError
from ..ops import OPS
from ..ops.state import RuntimeState
from ..protocol import PROTOCOL_VERSION, Header, WireTensor, encode_frames
from ..protocol.codec import decode_body, decode_header, decode_tensors

log = logging.getLogger("ctsft_runtime")

# Ops that change no runtime state and only write files: followers skip them (rank 0 writes;
# any other write a follower's op makes is dropped by models/atomic.py).
_WRITE_ONLY = frozenset({"model.save", "data.synthetic"})


class _Message(msgspec.Struct):
    kind: str  # "op" or "stop"
    tenant: str = ""
    serial: int = 0  # which RuntimeState of that tenant (a tenant forgotten and seen again gets a new one)
    frames: list[bytes] = msgspec.field(default_factory=list)


class Leader:
    """Rank 0's side: broadcast each op, synchronize cancellation, agree on the outcome."""

    def __init__(self, ranks: Ranks):
        self.ranks = ranks
        self._serials: dict[int, tuple[weakref.ref[RuntimeState], int]] = {}
        self._next_serial = 0
        self._op: tuple[RuntimeState, tuple[int, frozenset[str]]] | None = None

    def start(
        self, tenant: str, state: RuntimeState, job_id: str, op: str, raw_body: bytes, tensors: dict[str, WireTensor]
    ) -> None:
        header = Header(PROTOCOL_VERSION, job_id, "req", op, 0, msgspec.Raw(raw_body))
        from ..distributed.control import broadcast_bytes

        frames = [bytes(f) for f in encode_frames(header, tensors)]
        msg = _Message("op", tenant, self._serial(state), frames)
        self._op = (state, state.mark())
        with _peers():
            broadcast_bytes(self.ranks, msgspec.msgpack.encode(msg))

    def cancelled(self, flag: bool) -> bool:
        with _peers():
            return synced_check(self.ranks, flag)

    def finish(self, error: CtsftError | None) -> CtsftError | None:
        """The op's error for the client: rank 0's own, else the first follower's."""
        with _peers():
            records = agree(self.ranks, error)
        if self._op is not None and records is not None:
            self._op[0].undo_since(self._op[1])  # the followers do the same
        self._op = None
        if records is None:
            return None
        if error is not None and not isinstance(error, OutOfStep):
            return error
        for rank, rec in enumerate(records):
            if rec is not None and rec[0] != _OUT_OF_STEP:
                code, message, detail, path, remote = rec
                where = f"rank {rank} of {self.ranks.world}: "
                # A remote client is told the follower's remote-safe message, as for rank 0's own.
                err = CtsftError(
                    where + message, detail=detail, path=path, remote_message=None if remote is None else where + remote
                )
                err.code = code  # the follower's error kind, on this instance
                return err
        return error

    def stop(self) -> None:
        from ..distributed.control import broadcast_bytes

        broadcast_bytes(self.ranks, msgspec.msgpack.encode(_Message("stop")))

    def _serial(self, state: RuntimeState) -> int:
        # A state's serial lives as long as the state: `id()` alone could be reused by a new
        # state once the old one is freed, and the follower would keep the old handles.
        entry = self._serials.get(id(state))
        if entry is None or entry[0]() is not state:
            self._next_serial += 1
            entry = (weakref.ref(state), self._next_serial)
            self._serials[id(state)] = entry
        return entry[1]


@contextmanager
def _peers() -> Iterator[None]:
    """Rank 0's collectives: one that fails because a rank is gone is `RankLost` (the client's
    RuntimeLostError), and the server stops (`distributed.broken()`)."""
    try:
        yield
    except Exception as e:
        lost = distributed.rank_lost(e)
        if lost is None:
            raise
        raise lost from e


# Tags of the two in-op control collectives (distributed.control.exchange).
_CHECK, _AGREE = 1, 2
_OUT_OF_STEP = "out_of_step"


class OutOfStep(CtsftError):
    """This rank was still inside the op when another rank had left it (failed, usually):
    the op stops here too, and the other rank's error is the one the client gets."""

    code = _OUT_OF_STEP


def synced_check(ranks: Ranks, cancel: bool) -> bool:
    """The cancel decision, the same on every rank. Raises OutOfStep if another rank has
    already left the op (it is waiting in `agree`)."""
    from ..distributed.control import exchange

    high, _, flag = exchange(ranks, _CHECK, cancel)
    if high != _CHECK:
        raise OutOfStep("another rank left this op early")
    return flag


def agree(ranks: Ranks, error: CtsftError | None) -> list[Any] | None:
    """After an op: None when it succeeded on every rank, else every rank's error record.

    A rank that fails mid-op arrives here while others may still be in the op's checks;
    they see its tag, raise OutOfStep and come here too, so the exchange repeats until
    every rank is in it (none waits in a collective no other rank will join). Collectives
    of training steps are not covered: there a failure only some ranks have ends the
    runtime (`distributed.lockstep`).
    """
    from ..distributed.control import exchange, gather

    while True:
        _, low, failed = exchange(ranks, _AGREE, error is not None)
        if low == _AGREE:
            break
    return gather(ranks, _record(error)) if failed else None


def _record(error: CtsftError | None) -> tuple[str, str, str | None, str | None, str | None] | None:
    return None if error is None else (error.code, error.message, error.detail, error.path, error.remote_message)


@dataclass
class _FollowerCtx:
    """OpContext of a follower: no stream to write to; cancellation decided by rank 0."""

    ranks: Ranks
    request_id: str
    tensors: dict[str, WireTensor]
    state: RuntimeState

    def check_cancelled(self) -> None:
        if synced_check(self.ranks, False):
            raise Cancelled("cancelled (by rank 0)")

    def emit(self, body: Any, tensors: dict[str, WireTensor] | None = None) -> None:
        return None


def follow(ranks: Ranks, *, device: str, path_root: Any, max_models: int | None) -> int:
    """A follower's main loop: run what rank 0 broadcasts until it says stop."""
    from ..distributed.control import broadcast_bytes
    from .app import typed_error

    states: dict[str, tuple[int, RuntimeState]] = {}
    while True:
        try:
            raw = broadcast_bytes(ranks, None)
        except RuntimeError as e:  # rank 0 went away without saying stop (killed, or a hard exit)
            print(f"ctsft_runtime rank {ranks.rank}: lost rank 0 ({e}); exiting", file=sys.stderr, flush=True)
            return 1
        msg = msgspec.msgpack.decode(raw, type=_Message)
        if msg.kind == "stop":
            return 0
        entry = states.get(msg.tenant)
        if entry is None or entry[0] != msg.serial:
            entry = states[msg.tenant] = (
                msg.serial,
                RuntimeState(device=device, path_root=path_root, max_models=max_models),
            )
        error: CtsftError | None = None
        mark = entry[1].mark()
        try:
            header = decode_header(msg.frames[0])
            tensors = decode_tensors(header, msg.frames[1:])
            spec = OPS[header.op]
            ctx = _FollowerCtx(ranks, header.id, tensors, entry[1])
            ctx.check_cancelled()  # rank 0 checks once before every op (server/app.py `_run`)
            if header.op not in _WRITE_ONLY:  # (these never check_cancelled: no collective skipped)
                spec.handler(ctx, decode_body(header.body, spec.body_type))
        except Exception as e:  # rank 0 decides what the client hears; we report ours
            error, tb = typed_error(e)
            if tb:
                print(f"[ctsft_runtime rank {ranks.rank}] {tb}", file=sys.stderr, flush=True)
        if agree(ranks, error) is not None:
            # Failed somewhere, so failed for the client: on every rank it adds no handle
            # (a handle only some ranks hold would shift every later id).
            entry[1].undo_since(mark)


def watch_parents(node_pid: int | None, *, interval_s: float = 0.25) -> None:
    """Exit when torchrun's agent (our parent) or the Node process that started it is gone.

    Under torchrun a rank's parent is the agent, so the single-process check ("is my parent
    still the pid I was given") does not apply; a rank orphaned by a SIGKILLed agent would
    otherwise wait in a collective forever, holding its GPU.
    """
    agent = os.getppid()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def run() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != agent or (node_pid is not None and not alive(node_pid)):
                print("ctsft_runtime: orphaned (torchrun or its parent is gone); exiting", file=sys.stderr, flush=True)
                os._exit(3)

    threading.Thread(target=run, name="ctsft-parent-watch", daemon=True).start()
