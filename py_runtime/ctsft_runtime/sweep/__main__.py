"""`python -m ctsft_runtime.sweep`: the Ray driver of one sweep (started by the SDK's Ray executor).

It connects to the cluster, starts the workers as Ray actors with the resources asked for, and
writes one JSON object per line on stdout: `worker` for each runtime that came up (endpoint,
server key, node, pid, the resources Ray assigned), `worker_failed` for one that did not, then
`ready`, or `error` and a non-zero exit. It then holds the actors until its standard input
closes (the SDK is done, or died): Ray stops a job's actors when its driver disconnects, so
no runtime outlives the sweep.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

# Exit codes the SDK maps to typed errors.
EXIT_RAY_MISSING = 3
EXIT_NO_CLUSTER = 4
EXIT_NO_WORKER = 5


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ctsft_runtime.sweep", description="Ray driver of a ctsft sweep")
    p.add_argument("--address", default="auto", help="the Ray cluster (ray.init's address; default auto)")
    p.add_argument("--client-key", required=True, help="the SDK's CURVE public key (Z85), the only client admitted")
    p.add_argument("--root", required=True, help="paths the SDK names must lie inside this directory")
    p.add_argument("--workers", type=int, help="how many workers (default: as many as the cluster has room for)")
    p.add_argument("--max-workers", type=int, required=True, help="never more than this (the grid's cells)")
    p.add_argument("--num-cpus", type=float, default=1.0)
    p.add_argument("--num-gpus", type=float, default=0.0)
    p.add_argument("--memory", type=float, help="bytes of memory to reserve per worker")
    p.add_argument(
        "--resource", action="append", default=[], metavar="NAME=AMOUNT", help="a custom Ray resource per worker"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--ttl", type=float, default=600.0, help="seconds an idle client's handles live in a worker")
    p.add_argument("--start-timeout", type=float, default=300.0, help="seconds to wait for the workers to come up")
    return p.parse_args(argv)


def _custom(pairs: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pair in pairs:
        name, _, amount = pair.partition("=")
        out[name] = float(amount)
    return out


def _room(available: dict[str, float], need: dict[str, float]) -> int:
    """How many workers needing `need` each fit in `available` (Ray's own resource names)."""
    fits = [math.floor(available.get(name, 0.0) / amount + 1e-9) for name, amount in need.items() if amount > 0]
    return min(fits) if fits else 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        import ray
    except ImportError as e:
        emit({"type": "error", "code": "ray_missing", "message": f"Ray is not installed in this environment ({e})"})
        return EXIT_RAY_MISSING
    try:
        ray.init(address=args.address, logging_level="WARNING", configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as e:
        emit(
            {
                "type": "error",
                "code": "no_cluster",
                "message": f"cannot connect to the Ray cluster at {args.address}: {e}",
            }
        )
        return EXIT_NO_CLUSTER

    from .worker import SweepWorker

    custom = _custom(args.resource)
    need = {"CPU": args.num_cpus, "GPU": args.num_gpus, **custom}
    if args.memory:
        need["memory"] = args.memory
    room = _room(ray.available_resources(), need)
    count = min(args.workers or room, args.max_workers)
    shown = ", ".join(f"{k} {v:g}" for k, v in need.items() if v > 0)
    if count < 1:
        have = ", ".join(
            f"{k} {v:g}" for k, v in sorted(ray.available_resources().items()) if not k.startswith("node:")
        )
        emit(
            {
                "type": "error",
                "code": "no_room",
                "message": f"the cluster has no room for a worker with {shown} (available: {have})",
            }
        )
        return EXIT_NO_WORKER
    emit(
        {
            "type": "cluster",
            "address": args.address,
            "workers": count,
            "perWorker": need,
            "cluster": ray.cluster_resources(),
        }
    )

    options: dict[str, Any] = {
        "num_cpus": args.num_cpus,
        "num_gpus": args.num_gpus,
        "resources": custom,
        "max_restarts": 0,
    }
    if args.memory:
        options["memory"] = args.memory
    actor = ray.remote(SweepWorker).options(**options)
    workers = [actor.remote(args.client_key, args.root, args.device, args.ttl) for _ in range(count)]
    pending = {w.describe.remote(): i for i, w in enumerate(workers)}
    deadline = time.monotonic() + args.start_timeout
    up = 0
    while pending and time.monotonic() < deadline:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
        for ref in done:
            index = pending.pop(ref)
            try:
                emit({"type": "worker", "index": index, **ray.get(ref)})
                up += 1
            except ray.exceptions.RayError as e:
                emit({"type": "worker_failed", "index": index, "message": str(e).strip().splitlines()[-1]})
    for index in pending.values():
        emit(
            {
                "type": "worker_failed",
                "index": index,
                "message": f"not scheduled within {args.start_timeout:g} s ({shown} asked for)",
            }
        )
        ray.kill(workers[index])
    if up == 0:
        emit({"type": "error", "code": "no_worker", "message": "no worker came up"})
        return EXIT_NO_WORKER
    emit({"type": "ready", "workers": up})

    sys.stdin.read()  # until the SDK closes our stdin, or exits
    for w in workers:
        ray.kill(w)
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
