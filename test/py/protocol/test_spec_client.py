"""A client written from docs/protocol.md and its generated op reference alone.

It imports nothing of ctsft_runtime: pyzmq for the three sockets, msgspec only as a msgpack
codec. It starts the runtime as `python -m ctsft_runtime --ipc-dir DIR`, then, following the
spec: handshake, `data.synthetic` → `model.create` → `model.load` → `data.load` → `train`
(streamed events, seq checked) → `evaluate`, `status` and `jobs.list` on the control socket,
a heartbeat echo, a `bad_request` naming its field, and `shutdown`. Every result and event
is checked against the op's schema in docs/contract.json (required keys, types, enums), the
machine-readable form of the same reference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = json.loads((ROOT / "docs" / "contract.json").read_text())
PROTOCOL = CONTRACT["protocol"]


def conforms(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """What in `value` the schema (the subset contract.json uses) refuses."""
    while "$ref" in schema:
        schema = CONTRACT["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    alts = schema.get("anyOf", schema.get("oneOf"))
    if alts is not None:
        problems = [conforms(value, a, where) for a in alts]
        return [] if any(not p for p in problems) else min(problems, key=len)
    if "const" in schema and value != schema["const"]:
        return [f"{where}: {value!r} is not {schema['const']!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not in {schema['enum']}"]
    kinds = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "null": type(None),
    }
    t = schema.get("type")
    if t is None:
        return []
    if isinstance(t, list):  # ["string", "null"]: nullable
        problems = [conforms(value, {**schema, "type": one}, where) for one in t]
        return [] if any(not p for p in problems) else problems[0]
    if not isinstance(value, kinds[t]) or (t in ("integer", "number") and isinstance(value, bool)):
        return [f"{where}: {type(value).__name__} is not {t}"]
    out: list[str] = []
    if t == "object":
        out += [f"{where}.{k}: missing" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            if k in schema.get("properties", {}):
                out += conforms(v, schema["properties"][k], f"{where}.{k}")
            elif isinstance(schema.get("additionalProperties"), dict):
                out += conforms(v, schema["additionalProperties"], f"{where}.{k}")
    if t == "array":
        for i, v in enumerate(value):
            items = schema.get("prefixItems", [])
            sub = items[i] if i < len(items) else schema.get("items")
            if isinstance(sub, dict):
                out += conforms(v, sub, f"{where}[{i}]")
    return out


class SpecClient:
    """§1 Sockets: one DEALER per role; §2 Frames: [msgpack header][tensor frames...]."""

    def __init__(self, ipc_dir: Path):
        self.ctx = zmq.Context()
        self.main, self.control, self.hb = (self.ctx.socket(zmq.DEALER) for _ in range(3))
        for sock, name in ((self.main, "main"), (self.control, "control"), (self.hb, "hb")):
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(f"ipc://{ipc_dir}/{name}")
        self.ids = 0

    def close(self) -> None:
        self.ctx.destroy(linger=0)

    def _next_id(self) -> str:
        self.ids += 1
        return f"r{self.ids}"

    @staticmethod
    def header(id_: str, kind: str, op: str, body: Any) -> bytes:
        # Keys exactly these, in this order (§2).
        return msgspec.msgpack.encode(
            {"v": PROTOCOL, "id": id_, "kind": kind, "op": op, "seq": 0, "body": body, "bufs": []}
        )

    @staticmethod
    def recv(sock: zmq.Socket, timeout_s: float) -> dict[str, Any]:
        if not sock.poll(int(timeout_s * 1000)):
            raise TimeoutError("no answer from the runtime")
        frames = sock.recv_multipart()
        header = msgspec.msgpack.decode(frames[0])
        assert list(header) == ["v", "id", "kind", "op", "seq", "body", "bufs"]
        assert len(frames) - 1 == len(header["bufs"])
        return header

    def hello(self) -> dict[str, Any]:
        self.main.send(self.header("h", "hello", "hello", {"protocol": PROTOCOL}))
        reply = self.recv(self.main, 30)
        assert reply["kind"] == "hello" and reply["body"]["protocol"] == PROTOCOL
        return reply["body"]

    def call(self, op: str, body: Any, timeout_s: float = 300) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """§3 Requests and streams: `req` → events (seq 0, 1, ...) → one `result` or `error`."""
        id_ = self._next_id()
        self.main.send(self.header(id_, "req", op, body))
        events: list[dict[str, Any]] = []
        spec = CONTRACT["ops"][op]
        while True:
            msg = self.recv(self.main, timeout_s)
            assert msg["id"] == id_ and msg["seq"] == len(events), "a gap in seq means lost messages"
            if msg["kind"] == "event":
                assert spec["streams"], f"{op} is documented not to stream"
                problems = conforms(msg["body"], spec["event"])
                assert not problems, f"{op} event: {problems}"
                events.append(msg["body"])
                continue
            if msg["kind"] == "error":
                assert msg["body"]["code"] in spec["errors"], msg["body"]
                raise SpecError(msg["body"])
            assert msg["kind"] == "result"
            problems = conforms(msg["body"], spec["result"])
            assert not problems, f"{op} result: {problems}"
            return events, msg["body"]

    def control_req(self, op: str, body: Any = None, kind: str = "req") -> dict[str, Any]:
        self.control.send(self.header(self._next_id(), kind, op, body))
        msg = self.recv(self.control, 30)
        assert msg["kind"] == "result", msg
        spec = CONTRACT["control"][op]
        assert not conforms(msg["body"], spec["result"]), conforms(msg["body"], spec["result"])
        return msg["body"]


class SpecError(Exception):
    def __init__(self, body: dict[str, Any]):
        super().__init__(f"{body['code']}: {body['message']}")
        self.body = body


@pytest.fixture
def runtime(tmp_path):
    ipc = tmp_path / "ipc"
    ipc.mkdir(mode=0o700)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "py_runtime")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctsft_runtime", "--ipc-dir", str(ipc), "--device", "cpu"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = SpecClient(ipc)
    try:
        yield client, tmp_path, proc
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        proc.stderr.close()  # type: ignore[union-attr]


def test_spec_client_runs_the_pipeline(runtime):
    client, tmp, proc = runtime
    hello = client.hello()
    assert hello["pid"] == proc.pid

    # §1 heartbeat: raw bytes, echoed unchanged.
    client.hb.send(b"ping-1")
    assert client.hb.poll(5000) and client.hb.recv() == b"ping-1"

    _, task = client.call(
        "data.synthetic",
        {"out": str(tmp / "task"), "languages": {"src": 0.0, "easy": 0.2}, "nTrain": 64, "nValid": 16, "nTest": 24},
    )
    files = task["files"]["src"]
    assert {"train", "valid", "test"} <= set(files)

    _, created = client.call(
        "model.create",
        {
            "family": "llama",
            "layers": 1,
            "heads": 2,
            "kvHeads": 1,
            "dModel": 16,
            "corpus": [files["train"]],
            "vocab": 400,
            "out": str(tmp / "ckpt"),
        },
    )
    _, loaded = client.call("model.load", {"source": created["path"], "dtype": "float32"})
    model = loaded["handle"]
    assert loaded["info"]["layers"] == 1 and loaded["info"]["heads"] == 2

    _, data = client.call("data.load", {"data": {"path": files["train"]}})
    assert data["info"]["n"] == 64 and sorted(data["info"]["labels"]) == sorted(task["labels"])

    events, trained = client.call(
        "train",
        {
            "model": model,
            "data": {"handle": data["handle"]},
            "valid": {"path": files["valid"]},
            "epochs": 1,
            "batchSize": 16,
            "lr": 1e-3,
        },
    )
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "epoch" and kinds.count("step") == events[0]["totalSteps"] == 4
    assert trained["method"] == "full" and trained["steps"] == 4 and trained["valid"]["n"] == 16

    events, evaluated = client.call("evaluate", {"model": model, "data": [{"path": files["test"]}]})
    assert [e["type"] for e in events] == ["dataset"]
    (report,) = evaluated["results"]
    assert report["n"] == 24 and 0 <= report["accuracy"] <= 1 and len(report["confusion"]) == len(task["labels"])

    # A strict request body: an unknown field is a bad_request naming it (§3 Errors, §4).
    with pytest.raises(SpecError) as bad:
        client.call("evaluate", {"model": model, "data": [{"path": files["test"]}], "batchsize": 8})
    assert bad.value.body["code"] == "bad_request" and bad.value.body["path"] == "body"
    assert "batchsize" in bad.value.body["message"]
    with pytest.raises(SpecError) as wrong_type:
        client.call("evaluate", {"model": model, "data": [{"path": files["test"]}], "batchSize": "8"})
    assert wrong_type.value.body["path"] == "body.batchSize"
    with pytest.raises(SpecError) as missing:
        client.call("model.info", {"handle": "no-such-model"})
    assert missing.value.body["code"] == "not_found"

    status = client.control_req("status", {})
    assert status["pid"] == proc.pid and status["running"] is None and status["stopping"] is False
    jobs = client.control_req("jobs.list")["jobs"]
    assert all(j["state"] in ("done", "failed") for j in jobs)
    assert client.control_req("cancel", {"target": "r-unknown"}, kind="cancel") == {"cancelled": False}

    assert client.control_req("shutdown", {}) == {"stopping": True}
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is not None, "the runtime did not exit after shutdown"
