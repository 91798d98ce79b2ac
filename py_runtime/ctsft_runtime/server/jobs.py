"""A job: one request's run and its stream of messages, kept apart from any connection.

The compute thread appends events and the final result (or error) to the job; the I/O thread
sends them to whichever connection is attached. A job therefore keeps running when its client
vanishes, and a new connection with the same key can re-attach and replay from a sequence
number. Messages are retained up to a byte bound: while a connection is attached and has not
received the oldest message yet, the compute thread waits (back-pressure); messages already
sent, or produced while nobody is attached, are dropped oldest-first once the bound is hit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from ..errors import BadRequest, Cancelled
from ..ops.fields import NonNegative
from ..protocol import PROTOCOL_VERSION, Header, WireTensor, encode_frames

JobState = Literal["queued", "running", "done", "failed", "cancelled"]

# How long one back-pressure wait lasts before re-checking the cancel and stop flags.
_WAIT_SLICE_S = 0.2


@dataclass(frozen=True)
class Outgoing:
    """One encoded message of a job's stream."""

    seq: int
    kind: str
    frames: list[Any]
    nbytes: int


class Job:
    def __init__(self, owner: str, job_id: str, op: str, body: Any, tensors: dict[str, WireTensor], buffer_bytes: int):
        self.owner = owner
        self.id = job_id
        self.op = op
        self.body = body
        self.tensors = tensors
        self.raw_body: bytes | None = None  # the body as it arrived, kept only when other ranks need it
        self.buffer_bytes = buffer_bytes
        self.cancel = threading.Event()
        self.cond = threading.Condition()
        self.messages: deque[Outgoing] = deque()
        self.first_seq = 0  # seq of messages[0]
        self.next_seq = 0
        self.bytes = 0  # retained messages
        self.sent_bytes = 0  # retained messages with seq < cursor (already sent)
        self.state: JobState = "queued"
        self.final = False  # the result or error is in `messages` (or was sent and dropped)
        self.delivered = False  # the final message reached an attached connection
        self.created = time.monotonic()
        self.started: float | None = None
        self.finished: float | None = None
        # The attached connection: its ZeroMQ routing id, and the next seq it should receive.
        self.peer: bytes | None = None
        self.cursor = 0

    # -- the compute thread --------------------------------------------------------------
    def append(self, kind: str, body: Any, tensors: dict[str, WireTensor] | None, stopping: threading.Event) -> None:
        frames = encode_frames(Header(PROTOCOL_VERSION, self.id, kind, self.op, self.next_seq, body), tensors)  # type: ignore[arg-type]
        nbytes = sum(len(f) for f in frames)
        final = kind != "event"
        with self.cond:
            if self.final:
                return  # a stream ends once (a shutdown may have ended it already)
            # Back-pressure: an attached connection that has not yet received what we would
            # have to drop makes the op wait. The final message never waits.
            while not final and self._must_wait(nbytes):
                if self.cancel.is_set() or stopping.is_set():
                    raise Cancelled(f"{self.op} cancelled while the client was not reading")
                self.cond.wait(_WAIT_SLICE_S)
            self.messages.append(Outgoing(self.next_seq, kind, frames, nbytes))
            self.next_seq += 1
            self.bytes += nbytes
            self.final = self.final or final
            self._trim()

    def _must_wait(self, incoming: int) -> bool:
        # Only what the attached connection has not received yet counts against the bound;
        # anything else can be dropped to make room.
        unsent = self.bytes - self.sent_bytes
        return self.peer is not None and unsent > 0 and unsent + incoming > self.buffer_bytes

    def _trim(self) -> None:
        # Drop the oldest messages while over the bound, but never one an attached connection
        # still has to receive, and always keep the final message until it is delivered.
        while self.bytes > self.buffer_bytes and len(self.messages) > 1:
            head = self.messages[0]
            if self.peer is not None and self.cursor <= head.seq:
                break
            self.messages.popleft()
            self.first_seq = head.seq + 1
            self.bytes -= head.nbytes
            if head.seq < self.cursor:
                self.sent_bytes -= head.nbytes
        self.sent_bytes = max(self.sent_bytes, 0)

    # -- the I/O thread ------------------------------------------------------------------
    def attach(self, peer: bytes, from_seq: int) -> tuple[bytes, int] | None:
        """Route the stream to `peer` from `from_seq`; returns the connection it was taken
        from (and the seq that one expected next), if another one was attached."""
        with self.cond:
            if from_seq < self.first_seq or from_seq > self.next_seq:
                raise BadRequest(
                    f"job {self.id} holds seq {self.first_seq}..{self.next_seq - 1}; cannot attach from {from_seq}"
                    + (" (older events were dropped: the buffer is bounded)" if from_seq < self.first_seq else ""),
                    path="body.fromSeq",
                )
            previous = (self.peer, self.cursor) if self.peer is not None and self.peer != peer else None
            self.peer, self.cursor = peer, from_seq
            self.sent_bytes = sum(m.nbytes for m in self.messages if m.seq < from_seq)
            self.cond.notify_all()
            return previous

    def detach(self, peer: bytes) -> None:
        with self.cond:
            if self.peer == peer:
                self.peer = None
                self._trim()
                self.cond.notify_all()

    def next_to_send(self) -> tuple[bytes, Outgoing] | None:
        with self.cond:
            if self.peer is None or self.cursor >= self.next_seq:
                return None
            return self.peer, self.messages[self.cursor - self.first_seq]

    def sent(self, peer: bytes, msg: Outgoing) -> None:
        with self.cond:
            if self.peer != peer or self.cursor != msg.seq:
                return
            self.cursor += 1
            self.sent_bytes += msg.nbytes
            if msg.kind != "event":
                self.delivered = True
            self._trim()
            self.cond.notify_all()

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        with self.cond:
            return {
                "id": self.id,
                "op": self.op,
                "state": self.state,
                "firstSeq": self.first_seq,
                "nextSeq": self.next_seq,
                "attached": self.peer is not None,
                "seconds": (self.finished or now) - (self.started or now),
            }


class AttachBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    job: str
    from_seq: NonNegative = 0
