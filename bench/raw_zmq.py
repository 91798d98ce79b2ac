"""Floor for the bridge benchmark: a bare pyzmq ROUTER, no ctsft code.

Usage: python raw_zmq.py ENDPOINT BYTES. Binds a ROUTER at ENDPOINT and answers multipart
messages `[cmd, *frames]` from a zeromq.js DEALER:

  [b"ping"]           -> [b"pong"]                  tiny round trip
  [b"sink", big]      -> [b"ok"]                    client -> python, payload dropped
  [b"source"]         -> [b"data", BYTES of zeros]  python -> client (buffer allocated once)
  [b"echo", *frames]  -> [b"echo", *frames]         round trip, zero-copy both ways
  [b"quit"]           -> [b"bye"], then exits

Small frames are received by copy (as pyzmq recommends below ~64 KB), large ones without.
"""

from __future__ import annotations

import sys

import zmq


def main() -> int:
    endpoint, nbytes = sys.argv[1], int(sys.argv[2])
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.bind(endpoint)
    big = bytearray(nbytes)  # allocated (and touched) once, like a tensor that already exists
    big[::4096] = b"\x01" * len(range(0, nbytes, 4096))
    print(f"ready pyzmq={zmq.pyzmq_version()} libzmq={zmq.zmq_version()}", flush=True)
    while True:
        frames = sock.recv_multipart(copy=False)
        ident, cmd = frames[0].bytes, frames[1].bytes
        if cmd == b"ping":
            sock.send_multipart([ident, b"pong"])
        elif cmd == b"sink":
            _ = len(frames[2].buffer)  # touch it as a decoder would look at the frame
            sock.send_multipart([ident, b"ok"])
        elif cmd == b"source":
            sock.send_multipart([ident, b"data", memoryview(big)], copy=False)
        elif cmd == b"echo":
            sock.send_multipart([ident, b"echo", *(f.buffer for f in frames[2:])], copy=False)
        elif cmd == b"quit":
            sock.send_multipart([ident, b"bye"])
            break
    sock.close(linger=1000)
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
