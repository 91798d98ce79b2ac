"""Floor for the bridge benchmark's breakdown: a bare Unix-domain stream socket, no ZeroMQ.

Usage: python uds_echo.py PATH. Accepts one connection and echoes every chunk it reads, so a
Node `net` client can time a round trip of the kernel transport alone (no framing, no codec).
"""

from __future__ import annotations

import socket
import sys


def main() -> int:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sys.argv[1])
    server.listen(1)
    print("ready", flush=True)
    conn, _ = server.accept()
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)
    conn.close()
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
