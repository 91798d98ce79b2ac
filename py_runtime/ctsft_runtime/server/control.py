"""The control socket: cancel, status, jobs.list and shutdown, served on their own thread so
they never wait behind compute. Every request is scoped to the client that sends it: a client
cancels, sees and lists only its own jobs, and only an admin key may shut a remote server down.
It also watches the parent process: an orphaned runtime exits."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

import msgspec
import zmq

from ..errors import BadRequest, Forbidden, VersionMismatch
from ..ops.system import Empty
from ..protocol import PROTOCOL_VERSION, Header
from ..protocol.codec import decode_body, decode_header
from .tenants import tenant_key

if TYPE_CHECKING:
    from .app import Server

_encoder = msgspec.msgpack.Encoder()


class CancelBody(msgspec.Struct, forbid_unknown_fields=True):
    target: str


class Control:
    def __init__(self, server: Server, sock: zmq.Socket, parent_pid: int | None):
        self.server = server
        self.sock = sock
        self.parent_pid = parent_pid
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ctsft-control", daemon=True)

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        try:
            while not self.stop.is_set():
                if poller.poll(250):
                    frames = self.sock.recv_multipart(copy=False)
                    self._handle(frames)
                if self.parent_pid is not None and os.getppid() != self.parent_pid:
                    self._orphaned()
        except zmq.ContextTerminated:
            pass
        finally:
            self.sock.close(linger=200)

    def _handle(self, frames: list[zmq.Frame]) -> None:
        peer = frames[0].bytes
        key = tenant_key(frames, self.server.policy.remote)
        request_id, op = "", ""
        try:
            if len(frames) < 2:
                raise BadRequest("empty message")
            header = decode_header(frames[1].buffer)
            request_id, op = header.id, header.op
            if header.v != PROTOCOL_VERSION:
                raise VersionMismatch(
                    f"client speaks protocol v{header.v}, this runtime speaks v{PROTOCOL_VERSION}",
                    detail=f"client={header.v} runtime={PROTOCOL_VERSION}",
                    path="v",
                )
            if len(frames) > 2 or header.bufs:
                raise BadRequest("control messages carry no tensor frames", path="bufs")
            self.server.tenants.touch(key)  # any control message shows the client is alive
            body = self._dispatch(key, header.kind, op, header.body)
            self._send(peer, Header(PROTOCOL_VERSION, request_id, "result", op, 0, body))
        except Exception as e:  # anything else would end this thread, and cancel/status for every client
            from .app import typed_error

            err, tb = typed_error(e)
            self._send(peer, Header(PROTOCOL_VERSION, request_id, "error", op, 0, self.server.error_body(err, op, tb)))

    def _dispatch(self, key: str, kind: str, op: str, raw: msgspec.Raw) -> dict[str, Any]:
        if kind == "cancel":
            target = decode_body(raw, CancelBody).target
            return {"cancelled": self.server.tenants.cancel(key, target)}
        if kind != "req":
            raise BadRequest(f"control socket takes 'cancel' and 'req', not {kind!r}", path="kind")
        if op not in ("status", "shutdown", "jobs.list"):
            raise BadRequest(f"unknown control op {op!r}; expected status, jobs.list or shutdown", path="op")
        decode_body(raw, Empty)
        if op == "status":
            return self._status(key)
        if op == "jobs.list":
            tenant = self.server.tenants.get(key)
            with self.server.tenants.lock:
                jobs = list(tenant.jobs.values())
            return {"jobs": [j.describe() for j in jobs]}
        if not self.server.policy.is_admin(key):
            raise Forbidden("only an admin key may shut this server down (see `ctsft serve --admin`)", path="op")
        self.server.request_stop()
        return {"stopping": True}

    def _status(self, key: str) -> dict[str, Any]:
        cur = self.server.current
        admin = self.server.policy.is_admin(key)
        mine = cur is not None and (cur.owner == key or admin) and cur.started is not None
        running = {"id": cur.id, "op": cur.op, "seconds": time.monotonic() - cur.started} if mine else None  # type: ignore[union-attr,operator]
        status: dict[str, Any] = {"pid": os.getpid(), "running": running, "stopping": self.server.stopping.is_set()}
        if admin and self.server.policy.remote:
            status["server"] = self.server.tenants.totals()
        return status

    def _send(self, peer: bytes, header: Header) -> None:
        self.sock.send_multipart([peer, _encoder.encode(header)])

    def _orphaned(self) -> None:
        # Our parent (the Node process) is gone: nobody will read results. Stop cleanly if the
        # compute loop notices within 2 s, otherwise leave hard so no orphan keeps the GPU.
        self.server.request_stop()
        time.sleep(2.0)
        os._exit(3)
