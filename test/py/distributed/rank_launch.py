"""Starting runtimes as several ranks for the tests, and waiting for rank 0 to answer."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from protocol.test_spec_client import SpecClient

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rank_env(**extra: str) -> dict[str, str]:
    """The runtime's sources on the path, one thread per rank (2 ranks share 2 cores here)."""
    return {**os.environ, "PYTHONPATH": str(ROOT / "py_runtime"), "OMP_NUM_THREADS": "1", **extra}


def wait_hello(client: SpecClient, procs: Sequence[subprocess.Popen], timeout_s: float = 90) -> None:
    """Until rank 0 answers hello; fails at once if a rank exits first."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.hello()
            return
        except TimeoutError:
            dead = [p.args for p in procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"the ranks did not start: exited {dead}") from None
