"""Where the three sockets live. One ROUTER per role: requests, control, heartbeat."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoints:
    main: str
    control: str
    heartbeat: str

    @staticmethod
    def from_bind(bind: str) -> Endpoints:
        """`tcp://HOST:PORT` -> main on PORT, control on PORT+1, heartbeat on PORT+2."""
        if not bind.startswith("tcp://") or bind.rfind(":") <= len("tcp://"):
            raise ValueError(f"--bind must look like tcp://HOST:PORT, got {bind!r}")
        host, port_s = bind.rsplit(":", 1)
        port = int(port_s)
        return Endpoints(bind, f"{host}:{port + 1}", f"{host}:{port + 2}")

    @staticmethod
    def in_dir(directory: str) -> Endpoints:
        """ipc endpoints in a private directory (the process and embedded modes)."""
        return Endpoints(f"ipc://{directory}/main", f"ipc://{directory}/control", f"ipc://{directory}/hb")
