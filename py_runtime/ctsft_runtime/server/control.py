"""The control socket: cancel, status and shutdown, served on their own thread so they never
wait behind compute. It also watches the parent process: an orphaned runtime exits."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import msgspec
import zmq

from ..errors import BadRequest, CtsftError
from ..protocol import PROTOCOL_VERSION, ErrorBody, Header
from ..protocol.codec import decode_body, decode_header

if TYPE_CHECKING:
    from .app import Server

_encoder = msgspec.msgpack.Encoder()


class CancelBody(msgspec.Struct, forbid_unknown_fields=True):
    target: str


class Control:
    """Shared state between the compute loop and the control thread."""

    def __init__(self, server: Server, sock: zmq.Socket, parent_pid: int | None):
        self.server = server
        self.sock = sock
        self.parent_pid = parent_pid
        self.lock = threading.Lock()
        self.current: tuple[str, str, float] | None = None  # (id, op, started)
        self.current_cancel = threading.Event()
        # Cancels that arrived before their request started; bounded so it cannot grow forever.
        self.early_cancels: OrderedDict[str, None] = OrderedDict()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ctsft-control", daemon=True)

    # -- used by the compute loop ------------------------------------------------------
    def begin(self, request_id: str, op: str) -> threading.Event:
        with self.lock:
            self.current = (request_id, op, time.monotonic())
            # A fresh Event only when the last one was used: creating one costs a Condition.
            if self.current_cancel.is_set():
                self.current_cancel = threading.Event()
            if request_id in self.early_cancels:
                del self.early_cancels[request_id]
                self.current_cancel.set()
            return self.current_cancel

    def end(self) -> None:
        with self.lock:
            self.current = None

    # -- the control thread ------------------------------------------------------------
    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        try:
            while not self.stop.is_set():
                if poller.poll(250):
                    frames = self.sock.recv_multipart()
                    self._handle(frames[0], frames[1:])
                if self.parent_pid is not None and os.getppid() != self.parent_pid:
                    self._orphaned()
        except zmq.ContextTerminated:
            pass
        finally:
            self.sock.close(linger=200)

    def _handle(self, identity: bytes, frames: list[bytes]) -> None:
        request_id = ""
        try:
            if not frames:
                raise BadRequest("empty message")
            header = decode_header(frames[0])
            request_id = header.id
            if header.v != PROTOCOL_VERSION:
                raise BadRequest(f"protocol v{header.v} != runtime v{PROTOCOL_VERSION}")
            body = self._dispatch(header.kind, header.op, header.body)
            self._send(identity, Header(PROTOCOL_VERSION, request_id, "result", header.op, 0, body))
        except CtsftError as e:
            err = ErrorBody(e.code, e.message, e.detail, None, e.path)
            self._send(identity, Header(PROTOCOL_VERSION, request_id, "error", "", 0, err))

    def _dispatch(self, kind: str, op: str, raw: msgspec.Raw) -> dict[str, Any]:
        if kind == "cancel":
            target = decode_body(raw, CancelBody).target
            return {"cancelled": self.cancel(target)}
        if kind != "req":
            raise BadRequest(f"control socket takes 'cancel' and 'req', not {kind!r}", path="kind")
        if op == "status":
            with self.lock:
                cur = self.current
            running = None if cur is None else {"id": cur[0], "op": cur[1], "seconds": time.monotonic() - cur[2]}
            return {"pid": os.getpid(), "running": running, "stopping": self.server.stopping.is_set()}
        if op == "shutdown":
            self.server.request_stop()
            return {"stopping": True}
        raise BadRequest(f"unknown control op {op!r}; expected status or shutdown", path="op")

    def cancel(self, target: str) -> bool:
        with self.lock:
            if self.current is not None and self.current[0] == target:
                self.current_cancel.set()
                return True
            self.early_cancels[target] = None
            while len(self.early_cancels) > 4096:
                self.early_cancels.popitem(last=False)
            return False

    def cancel_current(self) -> None:
        with self.lock:
            self.current_cancel.set()

    def _send(self, identity: bytes, header: Header) -> None:
        self.sock.send_multipart([identity, _encoder.encode(header)])

    def _orphaned(self) -> None:
        # Our parent (the Node process) is gone: nobody will read results. Stop cleanly if the
        # compute loop notices within 2 s, otherwise leave hard so no orphan keeps the GPU.
        self.server.request_stop()
        time.sleep(2.0)
        os._exit(3)
