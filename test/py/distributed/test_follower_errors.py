"""A failure only a follower has becomes the op's typed error on rank 0, and the ranks stay in
step afterwards.

The two ranks are started the way torchrun starts them (RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT in the environment), but by hand, so that rank 1 can be given another default
device: `--device cuda` on this CPU-only machine. `model.load` without a device then fails
on rank 1 alone (CUDA is not available), a real follower-only failure.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from protocol.test_spec_client import SpecClient, SpecError
from rank_launch import free_port, rank_env, wait_hello

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def test_a_follower_only_failure_is_the_ops_typed_error(tmp_path: Path, tiny_checkpoint: Path) -> None:
    ipc = tmp_path / "ipc"
    ipc.mkdir(mode=0o700)
    port = str(free_port())
    procs = []
    for rank, device in ((0, "cpu"), (1, "cuda")):
        env = rank_env(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        cmd = [sys.executable, "-m", "ctsft_runtime", "--ipc-dir", str(ipc), "--device", device]
        procs.append(subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True))
    client = SpecClient(ipc)
    try:
        wait_hello(client, procs)
        with pytest.raises(SpecError) as err:
            client.call("model.load", {"source": str(tiny_checkpoint)})
        body = err.value.body
        assert body["code"] == "bad_request" and body["message"].startswith("rank 1 of 2: "), body
        assert "CUDA is not available" in body["message"], body
        # Both ranks ran the failed load (and added nothing): the next handles agree. With a
        # device named, rank 1 loads too; the returned handle is the first one on both ranks.
        handle = client.call("model.load", {"source": str(tiny_checkpoint), "device": "cpu"})[1]["handle"]
        info = client.call("model.info", {"handle": handle})[1]
        assert handle == "m1" and info["params"] > 0
        client.control_req("shutdown", {})
        codes = [p.wait(30) for p in procs]
        assert codes == [0, 0], [p.stderr.read() for p in procs if p.stderr]
    finally:
        client.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(30)
            if p.stderr:
                p.stderr.close()
