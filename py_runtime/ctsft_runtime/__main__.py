"""`python -m ctsft_runtime`: parse arguments and run the server; nothing else."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import zmq

from . import distributed
from .server import Endpoints, Server
from .server.curve import CurveConfig
from .server.ranks import Leader, follow, watch_parents
from .server.tenants import Policy


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ctsft_runtime", description="ctsft Python runtime server")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--ipc-dir", help="bind ipc:// sockets in this private directory")
    where.add_argument("--bind", help="tcp://HOST:PORT (control on PORT+1, heartbeat on PORT+2)")
    p.add_argument("--keys", help="CURVE key directory (required with --bind)")
    p.add_argument("--parent-pid", type=int, help="exit when this process is no longer our parent")
    p.add_argument("--device", default="auto", help="default device: auto, cpu, cuda, cuda:N")
    p.add_argument("--root", help="remote mode: paths clients name must lie inside this directory (default: cwd)")
    p.add_argument("--log-level", default="WARNING")
    remote = p.add_argument_group("remote mode (--bind)")
    remote.add_argument(
        "--admin",
        action="append",
        default=[],
        metavar="NAME",
        help="client key clients/NAME.key may shut the server down (repeatable)",
    )
    remote.add_argument(
        "--ttl",
        type=float,
        default=600.0,
        help="seconds after which an idle client's handles and finished jobs are freed",
    )
    remote.add_argument("--max-models", type=int, default=4, help="models one client may hold at once")
    remote.add_argument("--max-jobs", type=int, default=16, help="queued or running jobs per client")
    remote.add_argument("--max-message", type=int, default=64 << 20, help="largest request message in bytes")
    remote.add_argument("--job-buffer", type=int, default=64 << 20, help="bytes of a job's stream kept for re-attach")
    remote.add_argument(
        "--allow-remote-code", action="store_true", help="let clients load checkpoints with trustRemoteCode"
    )
    remote.add_argument(
        "--allow-download", action="store_true", help="let clients load models from the Hugging Face hub"
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="[ctsft_runtime] %(message)s")

    if args.bind:
        if not args.keys:
            p.error("--bind needs --keys: the remote mode refuses unauthenticated clients")
        try:
            endpoints, curve = Endpoints.from_bind(args.bind), CurveConfig.from_dir(args.keys)
            root = _root(args.root, Path(args.keys))
            policy = _policy(args, curve)
        except (OSError, ValueError) as e:
            p.error(str(e))
    else:
        endpoints, curve, root, policy = Endpoints.in_dir(args.ipc_dir), None, None, Policy()
    leader = None
    parent_pid = args.parent_pid
    if distributed.world_from_env() > 1:
        # Started by torchrun as one of several ranks: rank 0 serves, the others follow it.
        ranks = distributed.init(args.device)
        watch_parents(args.parent_pid)  # our parent is torchrun's agent, not the Node process
        parent_pid = None
        if not ranks.leader:
            try:
                return follow(ranks, device=args.device, path_root=root, max_models=policy.max_models)
            finally:
                distributed.shutdown()
        leader = Leader(ranks)
    try:
        server = Server(
            endpoints,
            curve=curve,
            parent_pid=parent_pid,
            device=args.device,
            path_root=root,
            policy=policy,
            leader=leader,
        )
    except zmq.ZMQError as e:
        print(f"ctsft_runtime: cannot listen on {endpoints.main} (or the next two ports): {e}", file=sys.stderr)
        return 1
    print(f"ctsft_runtime listening on {endpoints.main}", file=sys.stderr, flush=True)
    server.serve_forever()
    if distributed.broken():
        # The other ranks may wait in a collective forever: a non-zero exit makes torchrun
        # stop them (a zero exit would leave it waiting for them).
        return 1
    if leader is not None:
        distributed.shutdown()
    return 0


def _root(raw: str | None, keys: Path) -> Path:
    """The directory remote paths are confined to: it must exist and must not hold the
    server's own keys (a client could otherwise read or overwrite them)."""
    root = Path(raw or ".").resolve()
    if not root.is_dir():
        raise ValueError(f"--root {root} is not a directory")
    keys = keys.resolve()
    if keys == root or keys.is_relative_to(root):
        raise ValueError(
            f"the key directory {keys} lies inside the root {root} that clients may read and write; "
            "keep the keys outside it (or pass a --root that does not contain them)"
        )
    return root


def _policy(args: argparse.Namespace, curve: CurveConfig) -> Policy:
    for flag in ("ttl", "max_models", "max_jobs", "max_message", "job_buffer"):
        if getattr(args, flag) <= 0:
            raise ValueError(f"--{flag.replace('_', '-')} must be positive")
    return Policy(
        remote=True,
        ttl_s=args.ttl,
        max_models=args.max_models,
        max_jobs=args.max_jobs,
        job_buffer_bytes=args.job_buffer,
        max_message_bytes=args.max_message,
        admins=frozenset(curve.client_key(name) for name in args.admin),
        allow_remote_code=args.allow_remote_code,
        allow_download=args.allow_download,
    )


if __name__ == "__main__":
    sys.exit(main())
