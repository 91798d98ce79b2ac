"""A real remote server (`python -m ctsft_runtime --bind … --keys …`) attacked before
authentication: oversized frames are refused as they are announced (memory stays flat), random
bytes on the port (hypothesis) get nothing, and an authorized client is served throughout."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
import zmq
import zmq.auth
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[3]
MAX_MESSAGE = 8 << 20


@dataclass
class Remote:
    proc: subprocess.Popen
    port: int
    keys: Path

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def client(self) -> zmq.Socket:
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        server_public, _ = zmq.auth.load_certificate(self.keys / "server.key")
        public, secret = zmq.auth.load_certificate(self.keys / "client.key_secret")
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = server_public, public, secret
        sock.rcvtimeo, sock.linger = 10_000, 0
        sock.connect(f"tcp://127.0.0.1:{self.port}")
        return sock

    def ping(self, request_id: str = "alive") -> dict:
        sock = self.client()
        try:
            header = {"v": 1, "id": request_id, "kind": "req", "op": "ping", "seq": 0, "body": {}, "bufs": []}
            sock.send(msgspec.msgpack.encode(header))
            return msgspec.msgpack.decode(sock.recv_multipart()[0])
        finally:
            sock.close()


def _free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65000 and all(_port_free(p) for p in (port + 1, port + 2)):
            return port


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture(scope="module")
def remote() -> Iterator[Remote]:
    keys = Path(tempfile.mkdtemp(prefix="ctsft-preauth-keys-"))
    (keys / "clients").mkdir()
    zmq.auth.create_certificates(keys, "server")
    _, client_secret = zmq.auth.create_certificates(keys, "client")
    os.replace(Path(client_secret).with_suffix(".key"), keys / "clients" / "client.key")
    root = Path(tempfile.mkdtemp(prefix="ctsft-preauth-root-"))
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "py_runtime")}
    args = [sys.executable, "-m", "ctsft_runtime", "--bind", f"tcp://127.0.0.1:{port}", "--keys", str(keys)]
    proc = subprocess.Popen([*args, "--root", str(root), "--max-message", str(MAX_MESSAGE)], env=env)
    srv = Remote(proc, port, keys)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if srv.ping()["kind"] == "result":
                break
        except zmq.Again:
            continue
    try:
        yield srv
    finally:
        proc.terminate()
        proc.wait(10)


def _greeting(mechanism: bytes = b"CURVE") -> bytes:
    # ZMTP 3.0: signature, version 3.0, mechanism (20 bytes), as-server 0, 31 bytes filler.
    return b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + mechanism.ljust(20, b"\x00") + b"\x00" + b"\x00" * 31


def _flood(port: int, declared: int, send: int) -> tuple[socket.socket, int]:
    """Greet, announce one frame of `declared` bytes, then push up to `send` bytes; returns
    the (still open) socket and how many bytes the server took before closing it."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(_greeting())
    s.sendall(b"\x06" + struct.pack(">Q", declared))  # long command frame
    chunk, sent = b"\x00" * (1 << 20), 0
    try:
        while sent < send:
            s.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    return s, sent


def test_an_oversized_frame_before_authentication_is_refused_without_buffering(remote: Remote) -> None:
    before = remote.rss_mib()
    floods = [_flood(remote.port, 4 << 30, 128 << 20) for _ in range(3)]
    time.sleep(0.5)
    grown = remote.rss_mib() - before  # measured while the three connections are still open
    for s, _ in floods:
        s.close()
    sent = [n >> 20 for _, n in floods]
    print(f"pre-auth flood: 3 connections announcing 4 GiB, pushed {sent} MiB; server RSS +{grown:.1f} MiB")
    assert grown < 32, f"server memory grew by {grown:.1f} MiB under a pre-auth flood"
    assert all(n < 128 for n in sent), "the server should drop the connection, not read 128 MiB"
    assert remote.ping()["kind"] == "result"


def test_an_authorized_message_over_the_limit_is_refused(remote: Remote) -> None:
    sock = remote.client()
    try:
        header = {"v": 1, "id": "big", "kind": "req", "op": "echo", "seq": 0, "body": {}, "bufs": []}
        sock.send_multipart([msgspec.msgpack.encode(header), b"\x00" * (MAX_MESSAGE + 1)])
        sock.rcvtimeo = 1500
        with pytest.raises(zmq.Again):
            sock.recv_multipart()  # the connection was dropped; nothing comes back
    finally:
        sock.close()
    assert remote.ping()["kind"] == "result"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2048), st.booleans())
def test_random_bytes_before_authentication_get_nothing(remote: Remote, data: bytes, greet: bool) -> None:
    with socket.create_connection(("127.0.0.1", remote.port), timeout=5) as s:
        s.settimeout(0.3)
        try:
            s.sendall((_greeting() if greet else b"") + data)
            reply = s.recv(4096)
        except (TimeoutError, OSError):
            reply = b""
    # At most the server's own greeting (64 bytes) and a handshake command: never a message.
    assert b"result" not in reply and b"error" not in reply


def test_the_server_still_serves_after_the_fuzzing(remote: Remote) -> None:
    assert remote.ping("after")["id"] == "after"
