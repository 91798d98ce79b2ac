"""Baseline for the bridge benchmark: a child that speaks JSON lines over stdin/stdout.

One JSON object per line in, one per line out. Every message is parsed and re-serialized, as a
real JSON-lines bridge would:

  {"id": N, "op": "ping"}               -> {"id": N, "result": {}}
  {"id": N, "op": "sink", "b64": S}     -> {"id": N, "result": {"bytes": len(b64decode(S))}}
  {"id": N, "op": "source", "n": BYTES} -> {"id": N, "result": {"b64": b64encode(BYTES zeros)}}
  {"id": N, "op": "echo", "b64": S}     -> decoded then re-encoded: {"id": N, "result": {"b64": S}}
  {"op": "quit"}                        -> exits

No ctsft code: it is the "what if we had used stdio + JSON" floor the bridge is compared with.
"""

from __future__ import annotations

import base64
import json
import sys


def main() -> int:
    rd = sys.stdin.buffer
    wr = sys.stdout.buffer
    for line in rd:
        msg = json.loads(line)
        op = msg.get("op")
        if op == "quit":
            break
        if op == "ping":
            result: dict = {}
        elif op == "sink":
            result = {"bytes": len(base64.b64decode(msg["b64"]))}
        elif op == "source":
            result = {"b64": base64.b64encode(bytes(msg["n"])).decode("ascii")}
        elif op == "echo":
            data = base64.b64decode(msg["b64"])
            result = {"b64": base64.b64encode(data).decode("ascii")}
        else:
            result = {"error": f"unknown op {op!r}"}
        wr.write(json.dumps({"id": msg.get("id"), "result": result}).encode())
        wr.write(b"\n")
        wr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
