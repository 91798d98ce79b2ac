"""The server: binds the sockets, runs ops one at a time on the compute thread, streams their
events with back-pressure, and turns every failure into a typed `error` message."""

from __future__ import annotations

import contextlib
import logging
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from ..errors import BadRequest, Cancelled, CtsftError, NotFound, OutOfMemory, VersionMismatch
from ..ops import OPS
from ..ops.state import RuntimeState
from ..ops.system import hello_body
from ..protocol import PROTOCOL_VERSION, ErrorBody, Header, WireTensor, decode_frames, encode_frames
from ..protocol.codec import decode_body
from .control import Control
from .curve import CurveConfig
from .endpoints import Endpoints
from .heartbeat import start_heartbeat

log = logging.getLogger("ctsft_runtime")


class PeerGone(Exception):
    """The client that asked for this op disconnected; nobody will read the rest."""


# How long one blocking send waits before re-checking cancel/stop flags. Back-pressure itself
# is unbounded in time: a slow consumer makes the op wait, it never loses messages.
_SEND_SLICE_MS = 200


@dataclass
class _Ctx:
    """The concrete OpContext: one per request."""

    server: Server
    identity: bytes
    request_id: str
    op: str
    tensors: dict[str, WireTensor]
    state: RuntimeState
    cancel: threading.Event
    seq: int = 0

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise Cancelled(f"{self.op} cancelled")

    def emit(self, body: Any, tensors: dict[str, WireTensor] | None = None) -> None:
        self.check_cancelled()
        self.server.send(
            self.identity,
            Header(PROTOCOL_VERSION, self.request_id, "event", self.op, self.seq, body),
            tensors,
            self.cancel,
        )
        self.seq += 1


class Server:
    def __init__(
        self,
        endpoints: Endpoints,
        *,
        curve: CurveConfig | None = None,
        parent_pid: int | None = None,
        device: str = "auto",
        path_root: Path | None = None,
    ):
        self.endpoints = endpoints
        self.zctx = zmq.Context()
        self.stopping = threading.Event()
        self.state = RuntimeState(device=device, path_root=path_root)
        self.auth = curve.start_authenticator(self.zctx) if curve else None

        def bind(addr: str) -> zmq.Socket:
            sock = self.zctx.socket(zmq.ROUTER)
            if curve:
                curve.apply_server(sock)
            sock.bind(addr)
            return sock

        self.main = bind(endpoints.main)
        # Without ROUTER_MANDATORY a ROUTER silently drops messages at the high-water mark;
        # with it, a send blocks (back-pressure) and an unroutable peer raises EHOSTUNREACH.
        self.main.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.main.setsockopt(zmq.SNDTIMEO, _SEND_SLICE_MS)
        self.control = Control(self, bind(endpoints.control), parent_pid)
        self.heartbeat = start_heartbeat(bind(endpoints.heartbeat))
        self.control.thread.start()

    def request_stop(self) -> None:
        self.stopping.set()
        self.control.cancel_current()

    # -- sending -----------------------------------------------------------------------
    def send(
        self,
        identity: bytes,
        header: Header,
        tensors: dict[str, WireTensor] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        frames = [identity, *encode_frames(header, tensors)]
        while True:
            try:
                self.main.send_multipart(frames, copy=False)
                return
            except zmq.Again:
                # The peer's queue is full: wait (back-pressure), but stay cancellable.
                if (cancel is not None and cancel.is_set()) or self.stopping.is_set():
                    raise Cancelled("cancelled while the client was not reading") from None
            except zmq.ZMQError as e:
                if e.errno == zmq.EHOSTUNREACH:
                    raise PeerGone() from None
                raise

    def _send_error(self, identity: bytes, request_id: str, op: str, seq: int, err: CtsftError, tb: str | None) -> None:
        body = ErrorBody(err.code, err.message, err.detail, tb, err.path)
        with contextlib.suppress(PeerGone, Cancelled):
            self.send(identity, Header(PROTOCOL_VERSION, request_id, "error", op, seq, body))

    # -- the compute loop --------------------------------------------------------------
    def serve_forever(self) -> None:
        # One blocking receive with a timeout, rather than poll() and then receive.
        self.main.setsockopt(zmq.RCVTIMEO, 100)
        try:
            while not self.stopping.is_set():
                try:
                    frames = self.main.recv_multipart(copy=False)
                except zmq.Again:
                    continue
                identity = frames[0].bytes
                self._handle(identity, [f.buffer for f in frames[1:]])
        finally:
            self.close()

    def close(self) -> None:
        self.stopping.set()
        self.control.stop.set()
        self.control.thread.join(timeout=2)
        self.main.close(linger=500)
        if self.auth is not None:
            self.auth.stop()
        # term() ends the heartbeat proxy (ContextTerminated) once the others are closed.
        self.zctx.term()

    def _handle(self, identity: bytes, frames: list[memoryview]) -> None:
        request_id, op, ctx = "", "", None
        try:
            header, tensors = decode_frames(frames)
            request_id, op = header.id, header.op
            if header.v != PROTOCOL_VERSION:
                raise VersionMismatch(
                    f"client speaks protocol v{header.v}, this runtime speaks v{PROTOCOL_VERSION}",
                    detail=f"client={header.v} runtime={PROTOCOL_VERSION}",
                )
            if header.kind == "hello":
                self.send(identity, Header(PROTOCOL_VERSION, request_id, "hello", "hello", 0, hello_body()))
                return
            if header.kind != "req":
                raise BadRequest(f"the request socket takes 'hello' and 'req', not {header.kind!r}", path="kind")
            spec = OPS.get(op)
            if spec is None:
                raise NotFound(f"unknown op {op!r}; known ops: {', '.join(sorted(OPS))}", path="op")
            body = decode_body(header.body, spec.body_type)
            cancel = self.control.begin(request_id, op)
            ctx = _Ctx(self, identity, request_id, op, tensors, self.state, cancel)
            try:
                ctx.check_cancelled()
                reply = spec.handler(ctx, body)
            finally:
                self.control.end()
            self.send(identity, Header(PROTOCOL_VERSION, request_id, "result", op, ctx.seq, reply.body), reply.tensors)
        except PeerGone:
            log.info("client of %s %s disconnected; dropped its op", op, request_id)
        except CtsftError as e:
            # Failures inside the runtime carry their traceback; a caller's mistake does not need one.
            tb = traceback.format_exc() if e.code in ("internal", "out_of_memory") else None
            self._send_error(identity, request_id, op, ctx.seq if ctx else 0, e, tb)
        except MemoryError as e:
            self._send_error(
                identity,
                request_id,
                op,
                ctx.seq if ctx else 0,
                OutOfMemory(str(e) or "out of memory"),
                traceback.format_exc(),
            )
        except Exception as e:
            if _is_torch_oom(e):
                err: CtsftError = OutOfMemory(str(e).splitlines()[0] if str(e) else "out of memory")
            else:
                err = CtsftError(f"{type(e).__name__}: {e}")
            self._send_error(identity, request_id, op, ctx.seq if ctx else 0, err, traceback.format_exc())


def _is_torch_oom(e: Exception) -> bool:
    return type(e).__name__ == "OutOfMemoryError" or "CUDA out of memory" in str(e)
