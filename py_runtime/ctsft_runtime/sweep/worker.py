"""The Ray actor of a sweep: one ctsft runtime server inside a Ray-scheduled worker process.

The server runs on daemon threads of the actor's own process (as in the embedded mode), so the
cells execute under the resources Ray assigned to the actor, and the runtime ends with it.
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
from pathlib import Path
from typing import Any

import ray
import zmq

from ..server import Endpoints, Server
from ..server.curve import CurveConfig
from ..server.tenants import Policy

# Ports tried for the three consecutive sockets (main, control, heartbeat); outside the
# ranges Ray itself takes by default (6379, 8265, 10002-19999 for its workers).
_PORTS = (20_000, 60_000)
_BIND_TRIES = 50
CLIENT_NAME = "sweep"


def _authorize(client_key: str) -> Path:
    """A key folder outside any path root, admitting only the SDK's key for this sweep
    (ZeroMQ certificate format, as `ctsft keys` writes it)."""
    keys = Path(tempfile.mkdtemp(prefix="ctsft-sweep-keys-"))
    clients = keys / "clients"
    clients.mkdir()
    cert = f'metadata\ncurve\n    public-key = "{client_key}"\n'
    (clients / f"{CLIENT_NAME}.key").write_text(cert)
    return clients


class SweepWorker:
    """Serves a runtime for the sweep's client; `describe` says where and with what."""

    def __init__(self, client_key: str, root: str, device: str, ttl_s: float):
        public, secret = zmq.curve_keypair()
        curve = CurveConfig(public, secret, _authorize(client_key))
        # The sweep's only client is the SDK that started it, with a key made for it: the
        # server trusts it like the local modes do (remote code and downloads as it asks),
        # and confines its paths to the project's root like `ctsft serve`.
        policy = Policy(
            remote=True, ttl_s=ttl_s, max_models=4, max_jobs=16, allow_remote_code=True, allow_download=True
        )
        host = ray.util.get_node_ip_address()
        last: zmq.ZMQError | None = None
        for _ in range(_BIND_TRIES):
            port = random.randrange(*_PORTS)
            try:
                self.server = Server(
                    Endpoints.from_bind(f"tcp://{host}:{port}"),
                    curve=curve,
                    device=device,
                    path_root=Path(root),
                    policy=policy,
                )
                break
            except zmq.ZMQError as e:  # one of the three ports is taken: try others
                last = e
        else:
            raise RuntimeError(f"no free ports for a runtime on {host} after {_BIND_TRIES} tries: {last}")
        self.public = public.decode("ascii")
        threading.Thread(target=self.server.serve_forever, name="ctsft-sweep-worker", daemon=True).start()
        # The runtime imports torch on its first model op; here it happens while the other
        # workers are still being scheduled, and a worker that cannot import it never
        # reports ready (the driver then says why) instead of failing its first cell.
        import torch  # noqa: F401
        import transformers  # noqa: F401

    def describe(self) -> dict[str, Any]:
        ctx = ray.get_runtime_context()
        return {
            "endpoint": self.server.endpoints.main,
            "serverKey": self.public,
            "node": ray.util.get_node_ip_address(),
            "pid": os.getpid(),
            "actorId": ctx.get_actor_id(),
            "resources": ctx.get_assigned_resources(),
            "gpuIds": [str(g) for g in ray.get_gpu_ids()],
        }
