"""A rank that fails mid-op does not leave the others waiting: rank 0 fails `train` at once
while rank 1 runs it; rank 1's next cancellation check sees that rank 0 has left the op
(a tagged all-reduce), stops, and both agree on rank 0's error. The ranks stay in step:
the next op runs on both, and both exit cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rank_launch import free_port, rank_env


def test_a_rank_that_leaves_an_op_early_is_noticed_at_the_next_check(
    tmp_path: Path, tiny_checkpoint: Path, synthetic_task
) -> None:
    from ctsft_runtime.data import write_task_csv

    write_task_csv(synthetic_task, tmp_path / "task")
    data = str(tmp_path / "task" / "src" / "train.csv")
    port = str(free_port())
    env = {
        r: rank_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        for r in (0, 1)
    }
    leader = [sys.executable, str(Path(__file__).with_name("leader_script.py")), str(tiny_checkpoint), data]
    follower = [sys.executable, "-m", "ctsft_runtime", "--ipc-dir", str(tmp_path), "--device", "cpu"]
    procs = [
        subprocess.Popen(cmd, cwd=tmp_path, env=env[r], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for r, cmd in ((0, leader), (1, follower))
    ]
    try:
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], outs
    out = json.loads(outs[0][0].strip().splitlines()[-1])
    assert out["load"]["error"] is None and out["load"]["result"]["handle"] == "m1"
    # Rank 0's own error, while rank 1 had 500 epochs of training ahead (minutes): it stopped at a check.
    assert out["train"]["error"] == ["bad_request", "only rank 0 failed"]
    assert out["train"]["s"] < 20, out["train"]
    print(json.dumps({"rank0FailToAgreementS": out["train"]["s"]}))
    assert out["ping"]["error"] is None
    assert "exiting" not in outs[1][1], outs[1][1]  # the follower never left the loop early
