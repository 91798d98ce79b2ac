"""Clients as tenants: each CURVE key gets its own handles and jobs, and limits on both.

In the local modes there is one tenant (the process that started the runtime). In remote mode
the tenant is the client's CURVE public key, so two clients never see each other's models,
datasets or jobs, and one client reconnecting with the same key finds its own again.
A tenant that has sent nothing, received nothing and run nothing for `ttl_s` is forgotten:
its finished jobs and handles are freed (running and queued jobs always run to the end).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from ..ops.state import RuntimeState
from .jobs import Job

LOCAL = ""  # the tenant of the local modes


def tenant_key(frames: list[zmq.Frame], remote: bool) -> str:
    """Who sent a message: with CURVE the authenticator sets each frame's User-Id to the
    client's Z85 public key; the local modes have a single tenant."""
    if not remote or len(frames) < 2:
        return LOCAL
    try:
        return frames[1].get("User-Id") or LOCAL
    except zmq.ZMQError:
        return LOCAL


@dataclass(frozen=True)
class Policy:
    """What the server allows its clients. Local modes allow everything, unbounded."""

    remote: bool = False
    ttl_s: float | None = None  # None: never forget a tenant
    max_models: int | None = None  # per tenant
    max_jobs: int | None = None  # queued + running, per tenant
    job_buffer_bytes: int = 64 << 20  # retained stream per job (replay on re-attach)
    max_message_bytes: int = -1  # ZMQ_MAXMSGSIZE on the request socket; -1: no limit
    admins: frozenset[str] = frozenset()  # Z85 public keys allowed to shut the server down
    allow_remote_code: bool = True
    allow_download: bool = True

    def is_admin(self, tenant: str) -> bool:
        return not self.remote or tenant in self.admins

    @property
    def keepalive_ms(self) -> int | None:
        """How often a client should show it is alive; a third of the TTL."""
        return None if self.ttl_s is None else max(250, int(self.ttl_s * 1000 / 3))


@dataclass
class Tenant:
    key: str
    state: RuntimeState
    jobs: dict[str, Job] = field(default_factory=dict)
    # Cancels that arrived before their request; bounded so it cannot grow forever.
    early_cancels: OrderedDict[str, None] = field(default_factory=OrderedDict)
    last_seen: float = field(default_factory=time.monotonic)

    def active(self) -> bool:
        return any(j.state in ("queued", "running") for j in self.jobs.values())


class Tenants:
    """All tenants, behind one lock (the I/O, compute and control threads all use them)."""

    def __init__(self, policy: Policy, *, device: str, path_root: Path | None):
        self.policy = policy
        self.device = device
        self.path_root = path_root
        self.lock = threading.RLock()
        self._by_key: dict[str, Tenant] = {}

    def get(self, key: str) -> Tenant:
        with self.lock:
            t = self._by_key.get(key)
            if t is None:
                state = RuntimeState(device=self.device, path_root=self.path_root, max_models=self.policy.max_models)
                t = self._by_key[key] = Tenant(key, state)
            t.last_seen = time.monotonic()
            return t

    def touch(self, key: str) -> None:
        with self.lock:
            t = self._by_key.get(key)
            if t is not None:
                t.last_seen = time.monotonic()

    def all(self) -> list[Tenant]:
        with self.lock:
            return list(self._by_key.values())

    def cancel(self, key: str, job_id: str) -> bool:
        """Cancel one of `key`'s jobs; an unknown id is remembered in case it arrives later."""
        with self.lock:
            t = self.get(key)
            job = t.jobs.get(job_id)
            if job is not None and job.state in ("queued", "running"):
                job.cancel.set()
                return True
            t.early_cancels[job_id] = None
            while len(t.early_cancels) > 4096:
                t.early_cancels.popitem(last=False)
            return False

    def cancel_all(self) -> None:
        with self.lock:
            for t in self._by_key.values():
                for job in t.jobs.values():
                    job.cancel.set()

    def forget_idle(self) -> list[str]:
        """Drop tenants idle for longer than the TTL; returns their keys."""
        if self.policy.ttl_s is None:
            return []
        now = time.monotonic()
        gone = []
        with self.lock:
            for key, t in list(self._by_key.items()):
                if not t.active() and now - t.last_seen > self.policy.ttl_s:
                    attached = any(j.peer is not None and not j.delivered for j in t.jobs.values())
                    if not attached:
                        del self._by_key[key]
                        gone.append(key)
        return gone

    def totals(self) -> dict[str, int]:
        with self.lock:
            ts = list(self._by_key.values())
            return {
                "clients": len(ts),
                "models": sum(len(t.state.models) for t in ts),
                "datasets": sum(len(t.state.datasets) for t in ts),
                "jobs": sum(len(t.jobs) for t in ts),
            }
