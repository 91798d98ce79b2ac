"""Rank 0 of test_out_of_step.py: drives the real `Leader` by hand (no server), so that it
can fail an op at once while the real follower (`python -m ctsft_runtime`, rank 1) runs it."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import msgspec

from ctsft_runtime import distributed
from ctsft_runtime.errors import BadRequest, Cancelled
from ctsft_runtime.ops import OPS
from ctsft_runtime.ops.state import RuntimeState
from ctsft_runtime.protocol.codec import decode_body
from ctsft_runtime.server.ranks import Leader


def main(ckpt: str, data: str) -> None:
    ranks = distributed.init("cpu")
    leader, state = Leader(ranks), RuntimeState(device="cpu")

    class Ctx:
        request_id, tensors = "id", {}

        def __init__(self) -> None:
            self.state = state

        def check_cancelled(self) -> None:
            if leader.cancelled(False):
                raise Cancelled("cancelled")

        def emit(self, body: Any, tensors: Any = None) -> None:
            pass

    def run(op: str, body: dict[str, Any], *, fail: str | None = None) -> dict[str, Any]:
        raw = msgspec.msgpack.encode(body)
        leader.start("t", state, op, op, raw, {})
        started = time.monotonic()
        error, result = None, None
        if fail is None:
            ctx = Ctx()
            ctx.check_cancelled()  # as the server does before every op
            result = OPS[op].handler(ctx, decode_body(msgspec.Raw(raw), OPS[op].body_type)).body
        else:
            error = BadRequest(fail)  # rank 0 fails at once; rank 1 is deep in the op
        err = leader.finish(error)
        return {"result": result, "error": err and [err.code, err.message], "s": time.monotonic() - started}

    out = {"load": run("model.load", {"source": ckpt, "device": "cpu"})}
    body = {"model": "m1", "data": {"path": data}, "epochs": 500, "batchSize": 8}
    out["train"] = run("train", body, fail="only rank 0 failed")
    out["ping"] = run("ping", {})
    leader.stop()
    distributed.shutdown()
    print(json.dumps(out, default=str), flush=True)
    sys.stderr.flush()
    # Not through interpreter teardown: there this driver aborted in 2 of 3 CI runs on
    # 2026-12-02 ("terminate called without an active exception", rc -6) after the process
    # group was destroyed and all output was written, and never in 11 runs alone. The cause
    # in torch's teardown is not found; what this test checks (the follower noticing, the
    # agreement, the ranks in step, the follower's clean exit) is all before this line.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
