"""A real runtime process: `generate` streams token events, and a `cancel` on the control
socket ends it promptly with the usual `cancelled` error, leaving the runtime serving."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import zmq

from ctsft_runtime.protocol import PROTOCOL_VERSION

ROOT = Path(__file__).resolve().parents[3]
MAX_NEW = 400


def _send(sock: zmq.Socket, id_: str, kind: str, op: str, body: Any) -> None:
    header = {"v": PROTOCOL_VERSION, "id": id_, "kind": kind, "op": op, "seq": 0, "body": body, "bufs": []}
    sock.send(msgspec.msgpack.encode(header))


def _recv(sock: zmq.Socket, timeout_s: float = 60) -> dict[str, Any]:
    assert sock.poll(int(timeout_s * 1000)), "no answer from the runtime"
    return msgspec.msgpack.decode(sock.recv_multipart()[0])


def test_cancel_stops_generation_promptly(tiny_checkpoint, tmp_path) -> None:
    ipc = tmp_path / "ipc"
    ipc.mkdir(mode=0o700)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "py_runtime")}
    cmd = [sys.executable, "-m", "ctsft_runtime", "--ipc-dir", str(ipc), "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env)
    ctx = zmq.Context()
    main, control = ctx.socket(zmq.DEALER), ctx.socket(zmq.DEALER)
    try:
        for sock, name in ((main, "main"), (control, "control")):
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(f"ipc://{ipc}/{name}")
        _send(main, "h", "hello", "hello", {"protocol": PROTOCOL_VERSION})
        assert _recv(main)["kind"] == "hello"
        _send(main, "load", "req", "model.load", {"source": str(tiny_checkpoint), "device": "cpu"})
        loaded = _recv(main)
        assert loaded["kind"] == "result", loaded
        handle = loaded["body"]["handle"]

        _send(main, "g", "req", "generate", {"model": handle, "prompts": ["the"], "maxNewTokens": MAX_NEW})
        # Mid-stream: the first token goes out at once (later ones at most every 50 ms, which
        # on a tiny model is dozens of tokens each).
        events = [_recv(main)]
        assert all((m["kind"], m["body"]["type"]) == ("event", "token") for m in events), events
        _send(control, "c", "cancel", "cancel", {"target": "g"})
        cancelled_at = time.monotonic()
        assert _recv(control)["body"] == {"cancelled": True}
        while (msg := _recv(main))["kind"] == "event":
            events.append(msg)
        took = time.monotonic() - cancelled_at
        assert msg["kind"] == "error" and msg["body"]["code"] == "cancelled", msg
        assert [m["seq"] for m in events] == list(range(len(events)))  # none lost
        # Stopped long before the 400 tokens it was asked for, and quickly.
        assert events[-1]["body"]["tokens"] < MAX_NEW // 2
        assert took < 5, took
        print(f"cancel: {events[-1]['body']['tokens']} tokens streamed, error {took * 1000:.0f} ms after cancel")

        _send(main, "p", "req", "ping", {})  # still serving
        assert _recv(main)["kind"] == "result"
    finally:
        ctx.destroy(linger=0)
        proc.kill()
        proc.wait(30)
