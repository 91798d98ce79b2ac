"""Entry point for the `embedded` mode: node-calls-python imports this module inside the Node
process and calls `start`, which runs the same server on a daemon thread (a non-daemon
Python thread would keep Node from exiting)."""

from __future__ import annotations

import threading

from .server import Endpoints, Server

_servers: dict[str, Server] = {}


def start(ipc_dir: str, device: str = "auto") -> str:
    """Bind the sockets (errors surface to the caller here), then serve on a daemon thread."""
    server = Server(Endpoints.in_dir(ipc_dir), device=device)
    _servers[ipc_dir] = server
    threading.Thread(target=_serve, args=(ipc_dir,), name="ctsft-embedded", daemon=True).start()
    return server.endpoints.main


def _serve(ipc_dir: str) -> None:
    try:
        _servers[ipc_dir].serve_forever()
    finally:
        _servers.pop(ipc_dir, None)


def running() -> int:
    return len(_servers)
