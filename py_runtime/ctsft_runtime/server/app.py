"""The server: an I/O thread that owns the request socket, a compute thread that runs ops one
at a time, and jobs in between.

The I/O thread receives requests, answers `hello` and `jobs.attach` itself, and queues every
op as a job; it sends each job's messages to the connection attached to it, without blocking
on any one peer. The compute thread runs the queued jobs in arrival order and appends their
events and final result to the job. A job therefore outlives its connection: a client that
disconnects (or is killed) leaves its job running, and a new connection with the same key can
re-attach from a sequence number. Every failure becomes a typed `error` message.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import secrets
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import zmq

from .. import distributed
from ..errors import BadRequest, Cancelled, CtsftError, Forbidden, NotFound, OutOfMemory, VersionMismatch
from ..ops import OPS, Reply
from ..ops.state import RuntimeState
from ..ops.system import hello_body
from ..protocol import PROTOCOL_VERSION, ErrorBody, Header, WireTensor, encode_frames
from ..protocol.codec import camel, decode_body, decode_header, decode_tensors
from ..protocol.header import RawHeader
from .control import Control
from .curve import CurveConfig
from .endpoints import Endpoints
from .heartbeat import start_heartbeat
from .jobs import AttachBody, Job
from .ranks import Leader
from .tenants import Policy, Tenant, Tenants, tenant_key

log = logging.getLogger("ctsft_runtime")

# How long the I/O loop sleeps when nothing happens, and when a peer's queue is full.
_IDLE_POLL_MS = 100
_BLOCKED_POLL_MS = 5
# Finished jobs kept per client for re-attach (their results not yet delivered).
_KEEP_FINISHED = 64
# Fields of the message header; every other `path` in an error names a body field.
_HEADER_FIELDS = ("v", "id", "kind", "op", "seq", "bufs", "body")


class HelloBody(msgspec.Struct, forbid_unknown_fields=True):
    protocol: int | None = None


@dataclass
class _Ctx:
    """The concrete OpContext: one per job."""

    server: Server
    job: Job
    state: RuntimeState

    @property
    def request_id(self) -> str:
        return self.job.id

    @property
    def tensors(self) -> dict[str, WireTensor]:
        return self.job.tensors

    def check_cancelled(self) -> None:
        flag = self.job.cancel.is_set() or self.server.stopping.is_set()
        leader = self.server.leader
        if leader is not None:
            # One decision for all ranks, so that they all stop at this same step.
            flag = leader.cancelled(flag)
        if flag:
            raise Cancelled(f"{self.job.op} cancelled")

    def emit(self, body: Any, tensors: dict[str, WireTensor] | None = None) -> None:
        if self.server.leader is None:
            self.check_cancelled()
            self.job.append("event", body, tensors, self.server.stopping)
        else:
            # With several ranks only the synchronized check_cancelled may stop an op: an
            # event dropped for a client that stopped reading is better than ranks out of step.
            with contextlib.suppress(Cancelled):
                self.job.append("event", body, tensors, self.server.stopping)
        self.server.wake()


class Server:
    def __init__(
        self,
        endpoints: Endpoints,
        *,
        curve: CurveConfig | None = None,
        parent_pid: int | None = None,
        device: str = "auto",
        path_root: Path | None = None,
        policy: Policy | None = None,
        leader: Leader | None = None,
    ):
        self.endpoints = endpoints
        # Rank 0 of several: every op is broadcast to the other ranks (server/ranks.py).
        self.leader = leader
        self.policy = policy or Policy()
        self.zctx = zmq.Context()
        self.stopping = threading.Event()
        self.tenants = Tenants(self.policy, device=device, path_root=path_root)
        self.auth = curve.start_authenticator(self.zctx) if curve else None

        def bind(addr: str, max_message: int) -> zmq.Socket:
            sock = self.zctx.socket(zmq.ROUTER)
            # Refuse oversized frames while they are announced, before a byte is buffered:
            # this holds before authentication too (the CURVE handshake uses the same decoder).
            sock.setsockopt(zmq.MAXMSGSIZE, max_message)
            if curve:
                curve.apply_server(sock)
                # Drop half-open connections (a vanished network) and stalled handshakes.
                sock.setsockopt(zmq.HEARTBEAT_IVL, 5_000)
                sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 15_000)
                sock.setsockopt(zmq.HANDSHAKE_IVL, 10_000)
            sock.bind(addr)
            return sock

        remote_limit = (lambda n: n) if self.policy.remote else (lambda n: -1)
        self.main = bind(endpoints.main, self.policy.max_message_bytes)
        # ROUTER_MANDATORY: a send to a full peer raises EAGAIN (we retry later) and to a gone
        # peer EHOSTUNREACH (we detach it), instead of dropping the message silently.
        self.main.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.control = Control(self, bind(endpoints.control, remote_limit(1 << 20)), parent_pid)
        self.heartbeat = start_heartbeat(bind(endpoints.heartbeat, remote_limit(64 << 10)))
        # The compute thread wakes the I/O thread through this pair when it appended messages.
        wake_addr = f"inproc://ctsft-wake-{secrets.token_hex(6)}"
        self._wake_rx = self.zctx.socket(zmq.PAIR)
        self._wake_rx.bind(wake_addr)
        self._wake_tx = self.zctx.socket(zmq.PAIR)
        self._wake_tx.connect(wake_addr)
        self._wake_pending = False
        self.queue: queue.Queue[Job] = queue.Queue()
        self.current: Job | None = None
        self._compute = threading.Thread(target=self._compute_loop, name="ctsft-compute", daemon=True)
        self.control.thread.start()

    def request_stop(self) -> None:
        self.stopping.set()
        self.tenants.cancel_all()

    def wake(self) -> None:
        """Called by the compute thread only (a ZeroMQ socket belongs to one thread). One
        wake-up is enough until the I/O thread has taken it: it sends everything ready."""
        if self._wake_pending:
            return
        self._wake_pending = True
        with contextlib.suppress(zmq.Again):
            self._wake_tx.send(b"", zmq.NOBLOCK)

    # -- the I/O thread --------------------------------------------------------------------
    def serve_forever(self) -> None:
        poller = zmq.Poller()
        poller.register(self.main, zmq.POLLIN)
        poller.register(self._wake_rx, zmq.POLLIN)
        self._compute.start()
        blocked, last_sweep = False, time.monotonic()
        try:
            while not self.stopping.is_set():
                ready = dict(poller.poll(_BLOCKED_POLL_MS if blocked else _IDLE_POLL_MS))
                if self._wake_rx in ready:
                    self._drain(self._wake_rx)
                    # Cleared before the flush: whatever is appended from now on wakes us again.
                    self._wake_pending = False
                if self.main in ready:
                    self._receive()
                blocked = self._flush()
                if time.monotonic() - last_sweep > 1.0:
                    last_sweep = time.monotonic()
                    self._sweep()
            self._finish_for_stop()
        finally:
            self.close()

    def _drain(self, sock: zmq.Socket) -> None:
        with contextlib.suppress(zmq.Again):
            while True:
                sock.recv(zmq.NOBLOCK)

    def _receive(self) -> None:
        # A bounded batch, so that sending keeps up with a client that floods requests.
        for _ in range(256):
            try:
                frames = self.main.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._incoming(frames)

    def _incoming(self, frames: list[zmq.Frame]) -> None:
        peer = frames[0].bytes
        key = tenant_key(frames, self.policy.remote)
        tenant = self.tenants.get(key)
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
            tensors = decode_tensors(header, [f.buffer for f in frames[2:]])
            if header.kind == "hello":
                decode_body(header.body, HelloBody)
                self._send_now(peer, Header(PROTOCOL_VERSION, request_id, "hello", "hello", 0, self._hello()))
            elif header.kind != "req":
                raise BadRequest(f"the request socket takes 'hello' and 'req', not {header.kind!r}", path="kind")
            elif not request_id:
                raise BadRequest("a request needs a non-empty id", path="id")
            elif op == "jobs.attach":
                self._attach(tenant, peer, header)
            else:
                self._submit(tenant, peer, header, tensors)
        except Exception as e:  # a bug here must not stop the I/O thread: answer and go on
            err, tb = typed_error(e)
            self._send_now(peer, Header(PROTOCOL_VERSION, request_id, "error", op, 0, self.error_body(err, op, tb)))

    def _hello(self) -> dict[str, Any]:
        body = hello_body()
        if self.policy.keepalive_ms is not None:
            body["keepaliveMs"] = self.policy.keepalive_ms
        return body

    def _submit(self, tenant: Tenant, peer: bytes, header: RawHeader, tensors: dict[str, WireTensor]) -> None:
        spec = OPS.get(header.op)
        if spec is None:
            raise NotFound(f"unknown op {header.op!r}; known ops: {', '.join(sorted(OPS))}", path="op")
        body = decode_body(header.body, spec.body_type)
        self._check_policy(body)
        limit = self.policy.max_jobs
        with self.tenants.lock:
            if header.id in tenant.jobs:
                raise BadRequest(f"request id {header.id!r} is already in use by one of this client's jobs", path="id")
            active = sum(1 for j in tenant.jobs.values() if j.state in ("queued", "running"))
            if limit is not None and active >= limit:
                raise BadRequest(
                    f"this client already has {active} queued or running jobs, the server's limit", path="op"
                )
            job = Job(tenant.key, header.id, header.op, body, tensors, self.policy.job_buffer_bytes)
            if self.leader is not None:
                job.raw_body = bytes(header.body)  # what the other ranks decode, as we did
            job.attach(peer, 0)
            if tenant.early_cancels.pop(header.id, 0) is None:
                job.cancel.set()
            tenant.jobs[header.id] = job
            finished = [j for j in tenant.jobs.values() if j.final]
            for old in finished[: max(0, len(finished) - _KEEP_FINISHED)]:
                del tenant.jobs[old.id]
        self.queue.put(job)

    def _check_policy(self, body: Any) -> None:
        """Remote clients may not make the server run a checkpoint's code or download."""
        if not self.policy.remote:
            return
        if getattr(body, "trust_remote_code", False) and not self.policy.allow_remote_code:
            raise Forbidden(
                "this server does not run code shipped with checkpoints (start it with --allow-remote-code)",
                path="body.trustRemoteCode",
            )
        if getattr(body, "allow_download", False) and not self.policy.allow_download:
            raise Forbidden(
                "this server does not download models (start it with --allow-download)", path="body.allowDownload"
            )

    def _attach(self, tenant: Tenant, peer: bytes, header: RawHeader) -> None:
        body = decode_body(header.body, AttachBody)
        if header.id != body.job:
            raise BadRequest("jobs.attach must be sent with the job's id as its request id", path="id")
        with self.tenants.lock:
            job = tenant.jobs.get(body.job)
        if job is None:
            raise NotFound(
                f"this client has no job {body.job!r} (finished jobs are kept until delivered)", path="body.job"
            )
        taken = job.attach(peer, body.from_seq)
        if taken is not None:
            old_peer, old_cursor = taken
            err = Cancelled(f"job {job.id} was attached by another connection")
            self._send_now(
                old_peer,
                Header(PROTOCOL_VERSION, job.id, "error", job.op, old_cursor, self.error_body(err, job.op, None)),
            )

    def _flush(self) -> bool:
        """Send what every attached job has ready; True when some peer's queue was full."""
        blocked = False
        for tenant in self.tenants.all():
            with self.tenants.lock:
                jobs = list(tenant.jobs.values())
            for job in jobs:
                while (ready := job.next_to_send()) is not None:
                    peer, msg = ready
                    try:
                        self.main.send_multipart([peer, *msg.frames], zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        blocked = True
                        break
                    except zmq.ZMQError as e:
                        if e.errno != zmq.EHOSTUNREACH:
                            raise
                        log.info("client of %s %s disconnected; the job keeps running", job.op, job.id)
                        job.detach(peer)
                        break
                    job.sent(peer, msg)
                    tenant.last_seen = time.monotonic()
                if job.delivered:
                    with self.tenants.lock:
                        tenant.jobs.pop(job.id, None)
        return blocked

    def _sweep(self) -> None:
        gone = self.tenants.forget_idle()
        if gone:
            log.info("freed the handles and finished jobs of %d idle client(s)", len(gone))
            gc.collect()
            _empty_cuda_cache()

    def _send_now(self, peer: bytes, header: Header) -> None:
        """A direct reply from the I/O thread (hello, errors before a job exists): best effort."""
        with contextlib.suppress(zmq.Again, zmq.ZMQError):
            self.main.send_multipart([peer, *encode_frames(header)], zmq.NOBLOCK)

    def _finish_for_stop(self) -> None:
        # Give the running op a moment to end (it was cancelled), then tell every client whose
        # job never ran that the runtime is stopping, and flush what can be sent.
        self._compute.join(timeout=3)
        for tenant in self.tenants.all():
            for job in list(tenant.jobs.values()):
                if not job.final:
                    err = Cancelled(f"{job.op} cancelled: the runtime is shutting down")
                    job.append("error", self.error_body(err, job.op, None), None, self.stopping)
        deadline = time.monotonic() + 0.5
        while self._flush() and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.stopping.set()
        self.control.stop.set()
        self.control.thread.join(timeout=2)
        self.main.close(linger=500)
        self._wake_rx.close(linger=0)
        self._wake_tx.close(linger=0)
        if self.auth is not None:
            self.auth.stop()
        # term() ends the heartbeat proxy (ContextTerminated) once the others are closed.
        self.zctx.term()

    # -- the compute thread ------------------------------------------------------------------
    def _compute_loop(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    job = self.queue.get(timeout=0.1)
                except queue.Empty:
                    continue
                self._run(job)
                if self.leader is not None and distributed.broken():
                    log.error("an op failed while other ranks were in a collective; stopping all ranks")
                    self.request_stop()
        except BaseException:
            # SystemExit or KeyboardInterrupt inside an op (or a bug in this loop): without the
            # compute thread nothing would ever answer, so stop the whole runtime; clients see
            # it go (heartbeats stop) instead of waiting forever.
            log.exception("the compute thread stopped; shutting the runtime down")
            self.request_stop()
            raise
        finally:
            if self.leader is not None and not distributed.broken():
                self.leader.stop()

    def _run(self, job: Job) -> None:
        tenant = self.tenants.get(job.owner)
        ctx = _Ctx(self, job, tenant.state)
        self.current, job.state, job.started = job, "running", time.monotonic()
        reply: Reply | None = None
        err: CtsftError | None = None
        tb: str | None = None
        try:
            try:
                if self.leader is not None:
                    self.leader.start(job.owner, tenant.state, job.id, job.op, job.raw_body or b"", job.tensors)
                ctx.check_cancelled()
                reply = OPS[job.op].handler(ctx, job.body)
            except Exception as e:  # every failure becomes the job's typed error
                err, tb = typed_error(e)
            if self.leader is not None and not distributed.broken():
                try:
                    err = self.leader.finish(err)  # a follower's failure fails the op too
                except Exception as e:  # the agreement itself failed: a rank is gone (RankLost)
                    err, tb = typed_error(e)
            if err is None:
                assert reply is not None
                try:
                    job.append("result", reply.body, reply.tensors, self.stopping)
                    job.state = "done"
                except Exception as e:  # e.g. a result that cannot be encoded
                    err, tb = typed_error(e)
            if err is not None:
                job.state = "cancelled" if isinstance(err, Cancelled) or err.code == "cancelled" else "failed"
                job.append("error", self.error_body(err, job.op, tb, body_error=True), None, self.stopping)
        finally:
            job.finished = time.monotonic()
            job.body, job.tensors, job.raw_body = None, {}, None  # the request's memory is not needed any more
            self.current = None
            self.tenants.touch(job.owner)
            self.wake()

    def error_body(self, err: CtsftError, op: str, tb: str | None, *, body_error: bool = False) -> ErrorBody:
        """The wire form of an error. Paths a handler raised name body fields: prefix them.
        Remote clients get no tracebacks and no file contents (the server logs the details)."""
        path = err.path
        if body_error and path and path.split(".", 1)[0] not in _HEADER_FIELDS:
            # Handlers name Python fields; the wire names them in camelCase, inside `body`.
            path = "body." + ".".join(camel(part) for part in path.split("."))
        message, detail = err.message, err.detail
        if self.policy.remote:
            if err.code == "internal":
                ref = secrets.token_hex(4)
                log.error("internal error %s in %s: %s\n%s", ref, op, err.message, tb or "")
                message, detail = f"internal error in {op} (reference {ref} in the server's log)", None
            elif err.remote_message is not None:
                message, detail = err.remote_message, None
            tb = None
        return ErrorBody(err.code, message, detail, tb, path)


def typed_error(e: Exception) -> tuple[CtsftError, str | None]:
    """A typed error for any exception, and the traceback where it helps (not for bad input)."""
    if isinstance(e, CtsftError):
        return e, traceback.format_exc() if e.code in ("internal", "out_of_memory") else None
    if isinstance(e, MemoryError) or _is_torch_oom(e):
        return OutOfMemory(str(e).splitlines()[0] if str(e) else "out of memory"), traceback.format_exc()
    return CtsftError(f"{type(e).__name__}: {e}"), traceback.format_exc()


def _is_torch_oom(e: BaseException) -> bool:
    return type(e).__name__ == "OutOfMemoryError" or "CUDA out of memory" in str(e)


def _empty_cuda_cache() -> None:
    import sys

    torch = sys.modules.get("torch")  # never import torch just for this
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
