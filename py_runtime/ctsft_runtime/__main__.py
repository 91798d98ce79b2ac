"""`python -m ctsft_runtime`: parse arguments and run the server; nothing else."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .server import Endpoints, Server
from .server.curve import CurveConfig


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
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="[ctsft_runtime] %(message)s")

    if args.bind:
        if not args.keys:
            p.error("--bind needs --keys: the remote mode refuses unauthenticated clients")
        endpoints, curve = Endpoints.from_bind(args.bind), CurveConfig.from_dir(args.keys)
        root: Path | None = Path(args.root or ".").resolve()
    else:
        endpoints, curve, root = Endpoints.in_dir(args.ipc_dir), None, None
    server = Server(endpoints, curve=curve, parent_pid=args.parent_pid, device=args.device, path_root=root)
    print(f"ctsft_runtime listening on {endpoints.main}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
