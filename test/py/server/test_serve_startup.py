"""`python -m ctsft_runtime --bind …` refuses to start in an unsafe or impossible setup with a
one-line error (no traceback): a root that holds its own keys, a root that does not exist,
an admin name without a key, ports already taken."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import zmq.auth

ROOT = Path(__file__).resolve().parents[3]


def _keys(where: Path) -> Path:
    keys = where / "keys"
    (keys / "clients").mkdir(parents=True)
    zmq.auth.create_certificates(keys, "server")
    zmq.auth.create_certificates(keys / "clients", "client")
    return keys


def _serve(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "py_runtime")}
    cmd = [sys.executable, "-m", "ctsft_runtime", "--bind", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("keys-in-cwd-root", "lies inside the root"),  # the README's old `serve --keys keys/`
        ("keys-in-root", "lies inside the root"),
        ("missing-root", "is not a directory"),
        ("unknown-admin", "--admin nobody: no client key"),
    ],
)
def test_unsafe_or_impossible_setups_are_refused(tmp_path: Path, case: str, expect: str) -> None:
    keys = _keys(tmp_path)
    (tmp_path / "work").mkdir()
    bind = f"tcp://127.0.0.1:{_port()}"
    args = {
        "keys-in-cwd-root": [bind, "--keys", "keys"],
        "keys-in-root": [bind, "--keys", str(keys), "--root", str(tmp_path)],
        "missing-root": [bind, "--keys", str(keys), "--root", str(tmp_path / "nope")],
        "unknown-admin": [bind, "--keys", str(keys), "--root", str(tmp_path / "work"), "--admin", "nobody"],
    }[case]
    out = _serve(*args, cwd=tmp_path)
    assert out.returncode == 2, out
    assert expect in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_a_taken_port_is_a_one_line_error(tmp_path: Path) -> None:
    keys = _keys(tmp_path)
    (tmp_path / "work").mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = _serve(f"tcp://127.0.0.1:{port}", "--keys", str(keys), "--root", str(tmp_path / "work"), cwd=tmp_path)
    assert out.returncode == 1, out
    assert "cannot listen on" in out.stderr and "Traceback" not in out.stderr, out.stderr
