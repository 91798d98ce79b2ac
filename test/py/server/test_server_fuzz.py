"""A real runtime process fed malformed messages (hypothesis): each gets one typed error
reply and the runtime keeps serving."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[3]
CODES = {"bad_request", "not_found", "version_mismatch"}


class Raw:
    control: Raw

    def __init__(self, endpoint: str):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.rcvtimeo = 10_000
        self.sock.linger = 0
        self.sock.connect(endpoint)

    def exchange(self, frames: list[bytes]) -> dict:
        self.sock.send_multipart(frames)
        reply = self.sock.recv_multipart()
        return msgspec.msgpack.decode(reply[0])

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


@pytest.fixture(scope="module")
def raw() -> Iterator[Raw]:
    tmp = tempfile.mkdtemp(prefix="ctsft-pyfuzz-")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "py_runtime")}
    proc = subprocess.Popen([sys.executable, "-m", "ctsft_runtime", "--ipc-dir", tmp], env=env)
    client = Raw(f"ipc://{tmp}/main")
    client.control = Raw(f"ipc://{tmp}/control")
    try:
        yield client
    finally:
        client.close()
        client.control.close()
        proc.terminate()
        proc.wait(10)


def _ping(raw: Raw) -> None:
    reply = raw.exchange(
        [msgspec.msgpack.encode({"v": 1, "id": "alive", "kind": "req", "op": "ping", "seq": 0, "body": {}, "bufs": []})]
    )
    assert (reply["kind"], reply["id"]) == ("result", "alive")


def test_named_cases(raw: Raw) -> None:
    unknown = raw.exchange(
        [msgspec.msgpack.encode({"v": 1, "id": "u", "kind": "req", "op": "nope", "seq": 0, "body": {}, "bufs": []})]
    )
    assert unknown["body"]["code"] == "not_found" and "known ops" in unknown["body"]["message"]
    wrong = raw.exchange(
        [
            msgspec.msgpack.encode(
                {"v": 1, "id": "w", "kind": "req", "op": "diagnose", "seq": 0, "body": {"count": "x"}, "bufs": []}
            )
        ]
    )
    assert wrong["body"]["code"] == "bad_request" and wrong["body"]["path"] == "body.count"
    _ping(raw)


def _header(**fields: object) -> bytes:
    return msgspec.msgpack.encode(
        {"v": 1, "id": "r", "kind": "req", "op": "echo", "seq": 0, "body": {}, "bufs": [], **fields}
    )


@pytest.mark.parametrize(
    ("bufs", "frames", "path"),
    [
        ([{"name": "t", "dtype": "float32", "shape": [2]}], [b"\0" * 7], "bufs.0"),  # truncated
        ([{"name": "t", "dtype": "float32", "shape": [2]}], [b"\0" * 9], "bufs.0"),  # overlong
        ([{"name": "t", "dtype": "float32", "shape": [1]}], [], "bufs"),  # fewer frames than declared
        ([], [b"\0"], "bufs"),  # more frames than declared
        ([{"name": "t", "dtype": "complex64", "shape": [1]}], [b"\0" * 8], "bufs.0.dtype"),
        ([{"name": "t", "dtype": "uint8", "shape": [-1]}], [b""], "bufs.0.shape"),
    ],
)
def test_a_bad_tensor_frame_is_answered_with_the_requests_id(raw: Raw, bufs: list, frames: list, path: str) -> None:
    reply = raw.exchange([_header(id="tensor-1", bufs=bufs), *frames])
    assert (reply["kind"], reply["id"], reply["body"]["code"], reply["body"]["path"]) == (
        "error",
        "tensor-1",
        "bad_request",
        path,
    )


def test_the_control_socket_checks_version_and_bodies(raw: Raw) -> None:
    wrong_v = raw.control.exchange([_header(v=2, op="status")])
    assert (wrong_v["body"]["code"], wrong_v["id"]) == ("version_mismatch", "r")
    for op in ("status", "shutdown", "jobs.list"):
        extra = raw.control.exchange([_header(op=op, body={"x": 1})])
        assert extra["body"]["code"] == "bad_request" and extra["body"]["path"].startswith("body"), (op, extra)
    assert raw.control.exchange([_header(op="status")])["kind"] == "result"
    _ping(raw)  # `shutdown {x: 1}` did not shut anything down


def _deep_header(op: str, depth: int = 200_000) -> bytes:
    """A header whose body is `depth` nested one-element arrays (200 kB, under the 1 MiB cap)."""
    fields = {"v": 1, "id": "deep", "kind": "req", "op": op, "seq": 0, "bufs": []}
    enc = msgspec.msgpack.encode
    pairs = b"".join(enc(k) + enc(v) for k, v in fields.items())
    return b"\x87" + pairs + enc("body") + b"\x91" * depth + b"\xc0"


def test_a_deeply_nested_body_is_refused_and_both_sockets_keep_serving(raw: Raw) -> None:
    # msgspec decodes nesting recursively: the RecursionError used to end the control thread
    # (cancel and status gone for every client).
    for sock, op in ((raw.control, "status"), (raw, "echo")):
        reply = sock.exchange([_deep_header(op)])
        # The header did not decode, so its id is unknown.
        assert (reply["kind"], reply["id"], reply["body"]["code"]) == ("error", "", "bad_request"), reply
        assert "too deeply" in reply["body"]["message"]
    assert raw.control.exchange([_header(op="status")])["kind"] == "result"
    _ping(raw)


def test_hello_bodies_are_checked(raw: Raw) -> None:
    bad = raw.exchange([_header(kind="hello", op="hello", body={"x": 1})])
    assert bad["kind"] == "error" and bad["body"]["code"] == "bad_request"
    assert raw.exchange([_header(kind="hello", op="hello", body={"protocol": 1})])["kind"] == "hello"


def test_msgpack_extension_types_are_refused(raw: Raw) -> None:
    reply = raw.exchange([_header(id="ext", body={"payload": msgspec.msgpack.Ext(1, b"xy")})])
    assert (reply["id"], reply["body"]["code"], reply["body"]["path"]) == ("ext", "bad_request", "body")


def test_error_paths_name_body_fields_the_same_way_wherever_they_fail(raw: Raw) -> None:
    decoded = raw.exchange([_header(op="model.load", body={"source": 3})])  # caught while decoding
    handled = raw.exchange([_header(op="model.load", body={"source": "/no/such/model/dir"})])  # by the handler
    assert decoded["body"]["path"] == "body.source"
    assert handled["body"]["path"] == "body.source", handled


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=4))
def test_arbitrary_frames(raw: Raw, frames: list[bytes]) -> None:
    reply = raw.exchange(frames)
    assert reply["kind"] in ("error", "hello", "result")
    if reply["kind"] == "error":
        assert reply["body"]["code"] in CODES


headers = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 0, 2]),
        "id": st.text(max_size=4),
        "kind": st.sampled_from(["req", "hello", "event", "bogus"]),
        "op": st.sampled_from(["echo", "ping", "nope"]),
        "seq": st.integers(-1, 3),
        "body": st.none()
        | st.dictionaries(
            st.sampled_from(["payload", "viaTorch", "x"]), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=3)
        ),
        "bufs": st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.text(max_size=2),
                    "dtype": st.sampled_from(["float32", "nope"]),
                    "shape": st.lists(st.integers(-1, 3), max_size=2),
                }
            ),
            max_size=2,
        ),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headers, st.lists(st.binary(max_size=24), max_size=2))
def test_wrong_shaped_headers(raw: Raw, header: dict, bufs: list[bytes]) -> None:
    reply = raw.exchange([msgspec.msgpack.encode(header), *bufs])
    if reply["kind"] == "error":
        assert reply["body"]["code"] in CODES


def test_still_serving_after_fuzz(raw: Raw) -> None:
    _ping(raw)


def test_server_imports_without_torch() -> None:
    """hello and heartbeats must answer before torch loads (DESIGN §4 trap 3): importing the
    server and every op module must not import torch or transformers."""
    code = "import sys, ctsft_runtime.server; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "py_runtime")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
