"""CURVE encryption and client authentication for the remote (tcp) mode.

The server's secret key and the directory of authorized client public keys come from files
written by `ctsft keys` (ZeroMQ certificate format). A client whose public key is not in that
directory is refused during the handshake: it never gets a single message through.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator


@dataclass(frozen=True)
class CurveConfig:
    public: bytes
    secret: bytes
    clients_dir: Path

    @staticmethod
    def from_dir(keys_dir: str | Path) -> CurveConfig:
        d = Path(keys_dir)
        secret_file = d / "server.key_secret"
        if not secret_file.is_file():
            raise FileNotFoundError(f"{secret_file} not found; create keys with `npx ctsft keys --out {d}`")
        public, secret = zmq.auth.load_certificate(secret_file)
        if secret is None:
            raise ValueError(f"{secret_file} holds no secret key")
        clients = d / "clients"
        if not clients.is_dir() or not any(clients.glob("*.key")):
            raise FileNotFoundError(f"no authorized client keys in {clients}")
        return CurveConfig(public, secret, clients)

    def client_key(self, name: str) -> str:
        """The Z85 public key of the authorized client `clients/NAME.key` (for --admin)."""
        file = self.clients_dir / f"{name}.key"
        if not file.is_file():
            raise FileNotFoundError(f"--admin {name}: no client key {file}")
        public, _ = zmq.auth.load_certificate(file)
        return public.decode("ascii")

    def start_authenticator(self, ctx: zmq.Context) -> ThreadAuthenticator:
        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve(domain="*", location=str(self.clients_dir))
        return auth

    def apply_server(self, sock: zmq.Socket) -> None:
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True
