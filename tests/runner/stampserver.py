"""A one-request SSE server in its own process, for tests that compare the client's arrival stamps
with the moment the server wrote: it answers the first POST with a role chunk at once, one content
chunk after ``delay_ms``, then the end, and prints the content chunk's write stamp
(``perf_counter_ns``, CLOCK_MONOTONIC: the same clock as the client's) on its own line.

    python stampserver.py DELAY_MS      # prints "port N", serves one request, prints "wrote NS"
"""

from __future__ import annotations

import json
import socket
import sys
import time


def chunk(obj: object) -> bytes:
    data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def delta(**d: object) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": d, "finish_reason": None}]}


def main() -> None:
    delay = float(sys.argv[1]) / 1000
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    print("port", srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += conn.recv(65536)
        head, _, body = buf.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        while len(body) < length:
            body += conn.recv(65536)
        if not head.startswith(b"POST"):
            conn.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            conn.close()
            continue
        conn.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
            b"connection: close\r\n\r\n" + chunk(delta(role="assistant", content=""))
        )
        time.sleep(delay)
        wrote = time.perf_counter_ns()
        conn.sendall(chunk(delta(content="Hello")))
        print("wrote", wrote, flush=True)
        end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        conn.sendall(chunk(end) + chunk(b"[DONE]") + b"0\r\n\r\n")
        conn.close()
        return


if __name__ == "__main__":
    main()
