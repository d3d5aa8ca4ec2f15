"""A small, misbehaving-on-request HTTP/1.1 test server (raw asyncio + httptools).

Run as a subprocess: ``python tests/servers.py --port 0 [--stall-after S --stall-for S]``;
it prints ``PORT <n>`` once listening. Paths:

- ``/``                 200 "ok"
- ``/delay/<ms>``       200 after <ms> milliseconds
- ``/status/<code>``    that status
- ``/reset``            closes the connection with a TCP RST
- ``/close``            200 with ``Connection: close``
- ``/hang``             never answers
- ``/garbage``          answers with bytes that are not HTTP
- ``/gzip``             gzip-encoded JSON body
- ``/chunked``          chunked body
- ``/redirect``         302 to /
- ``/echo``             JSON of method, path, headers and body
- ``/stats``            JSON of requests served per path

With ``--stall-after A --stall-for B`` every request that arrives between A and
A+B seconds after the first request is held until A+B (a one-off server stall).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import socket
import struct
import sys
import time
from collections import Counter

import httptools


class _Server:
    def __init__(self, stall_after: float | None, stall_for: float) -> None:
        self.stall_after, self.stall_for = stall_after, stall_for
        self.first: float | None = None
        self.counts: Counter = Counter()

    def stall_until(self) -> float | None:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        if self.stall_after is None:
            return None
        a = self.first + self.stall_after
        b = a + self.stall_for
        return b if a <= now < b else None


class _Proto(asyncio.Protocol):
    def __init__(self, srv: _Server) -> None:
        self.srv = srv
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, k: bytes, v: bytes) -> None:
        self.headers.append((k, v))

    def on_body(self, b: bytes) -> None:
        self.body += b

    def on_message_complete(self) -> None:
        url, headers, body = self.url.decode(), self.headers, self.body
        method = self.parser.get_method().decode()
        self.url, self.headers, self.body = b"", [], b""
        asyncio.get_running_loop().create_task(self.handle(method, url, headers, body))

    def send(self, status: int, body: bytes, extra: str = "") -> None:
        if self.transport.is_closing():
            return
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
        self.transport.write(head + body)

    async def handle(self, method: str, url: str, headers, body: bytes) -> None:
        path = url.split("?", 1)[0]
        self.srv.counts[path] += 1
        until = self.srv.stall_until()
        if until is not None:
            await asyncio.sleep(until - time.monotonic())
        if path == "/":
            self.send(200, b"ok")
        elif path.startswith("/delay/"):
            await asyncio.sleep(float(path.rsplit("/", 1)[1]) / 1000.0)
            self.send(200, b"ok")
        elif path.startswith("/status/"):
            self.send(int(path.rsplit("/", 1)[1]), b"status")
        elif path == "/reset":
            sock = self.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        elif path == "/close":
            self.send(200, b"bye", "Connection: close\r\n")
            self.transport.close()
        elif path == "/hang":
            return
        elif path == "/garbage":
            self.transport.write(b"THIS IS NOT HTTP AT ALL\r\n\r\n")
        elif path == "/gzip":
            self.send(200, gzip.compress(b'{"zipped": true}'), "Content-Encoding: gzip\r\nContent-Type: application/json\r\n")
        elif path == "/chunked":
            self.transport.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        elif path == "/redirect":
            self.send(302, b"", "Location: /\r\n")
        elif path == "/echo":
            data = {
                "method": method, "url": url,
                "headers": {k.decode().lower(): v.decode() for k, v in headers},
                "body": body.decode("latin-1"),
            }
            self.send(200, json.dumps(data).encode(), "Content-Type: application/json\r\n")
        elif path == "/stats":
            self.send(200, json.dumps(self.srv.counts).encode(), "Content-Type: application/json\r\n")
        else:
            self.send(404, b"not found")


async def _main(port: int, stall_after: float | None, stall_for: float, cert: str | None, key: str | None) -> None:
    srv = _Server(stall_after, stall_for)
    ctx = None
    if cert:
        import ssl

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
    server = await asyncio.get_running_loop().create_server(
        lambda: _Proto(srv), "127.0.0.1", port, backlog=4096, ssl=ctx)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--stall-after", type=float, default=None)
    ap.add_argument("--stall-for", type=float, default=1.0)
    ap.add_argument("--certfile", help="serve HTTPS with this certificate (PEM)")
    ap.add_argument("--keyfile", help="private key of --certfile (PEM)")
    a = ap.parse_args()
    try:
        import uvloop

        uvloop.run(_main(a.port, a.stall_after, a.stall_for, a.certfile, a.keyfile))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
