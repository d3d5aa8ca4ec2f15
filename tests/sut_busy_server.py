"""A tiny HTTP server whose requests burn CPU in a uniquely named function (for py-spy tests).

``python tests/sut_busy_server.py --port N [--burn-ms MS]``; prints ``PORT <n>`` once listening.
Every GET spends about MS milliseconds of CPU in :func:`surge_test_burn_cpu_xyzzy`.
"""

from __future__ import annotations

import argparse
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def surge_test_burn_cpu_xyzzy(ms: float) -> int:
    """Spin for ``ms`` ms of wall time doing arithmetic (a hot function py-spy must find)."""
    end = time.perf_counter() + ms / 1000.0
    x = 0
    while time.perf_counter() < end:
        for i in range(200):
            x = (x * 31 + i) % 1_000_003
    return x


class Handler(BaseHTTPRequestHandler):
    burn_ms = 2.0
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = str(surge_test_burn_cpu_xyzzy(self.burn_ms)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--burn-ms", type=float, default=2.0)
    args = ap.parse_args()
    Handler.burn_ms = args.burn_ms
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    print(f"PORT {srv.server_address[1]}", flush=True)
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
