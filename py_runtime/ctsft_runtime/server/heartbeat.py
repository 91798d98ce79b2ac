"""Heartbeat echoed in C: `zmq.proxy` on one ROUTER releases the GIL for its whole life, so
pings are answered while the compute thread holds the GIL (or imports torch)."""

from __future__ import annotations

import threading

import zmq


def start_heartbeat(sock: zmq.Socket) -> threading.Thread:
    def run() -> None:
        try:
            zmq.proxy(sock, sock)
        except zmq.ContextTerminated:
            pass
        finally:
            sock.close(linger=0)

    thread = threading.Thread(target=run, name="ctsft-heartbeat", daemon=True)
    thread.start()
    return thread
