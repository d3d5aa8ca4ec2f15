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
import heapq
import json
import os
import select
import socket
import struct
import sys
import threading
import time
from collections import Counter

import httptools


class _Server:
    def __init__(self, stall_after: float | None, stall_for: float) -> None:
        self.stall_after, self.stall_for = stall_after, stall_for
        self.first: float | None = None
        self.counts: Counter = Counter()
        self.timer = _PreciseTimer()

    def stall_until(self) -> float | None:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        if self.stall_after is None:
            return None
        a = self.first + self.stall_after
        b = a + self.stall_for
        return b if a <= now < b else None


class _PreciseTimer:
    """Wakes coroutines at a monotonic deadline to within ~0.1 ms.

    uvloop's (libuv's) timers have 1 ms granularity against a loop clock cached
    at each iteration, so ``asyncio.sleep(0.020)`` there lasts anywhere from 19
    to 21+ ms; a plain thread sleep on this VM wakes 0.1-0.2 ms late. The
    timing-truth tests need a server whose delay *is* 20 ms, so one thread
    sleeps until shortly before the earliest deadline, then yields in a loop
    (``time.sleep(0)`` releases the GIL) until it is due, and hands the waiter
    back to its loop with ``call_soon_threadsafe``.
    """

    SPIN_S = 0.0004  # the last 0.4 ms are spun, not slept: the VM's wake-up latency

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._seq = 0
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        threading.Thread(target=self._run, name="precise-timer", daemon=True).start()

    def sleep_until(self, deadline: float) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            self._seq += 1
            heapq.heappush(self._heap, (deadline, self._seq, loop, fut))
            first = self._heap[0][1] == self._seq
        if first:  # an earlier deadline than the thread is sleeping towards
            os.write(self._wake_w, b"x")
        return fut

    def _run(self) -> None:
        while True:
            with self._lock:
                deadline = self._heap[0][0] if self._heap else None
            now = time.monotonic()
            if deadline is None or deadline - now > self.SPIN_S:
                timeout = None if deadline is None else deadline - now - self.SPIN_S
                if select.select([self._wake_r], [], [], timeout)[0]:
                    os.read(self._wake_r, 4096)
                continue
            while time.monotonic() < deadline:
                time.sleep(0)
            with self._lock:
                while self._heap and self._heap[0][0] <= time.monotonic():
                    _, _, loop, fut = heapq.heappop(self._heap)
                    loop.call_soon_threadsafe(_resolve, fut)


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class _Proto(asyncio.Protocol):
    def __init__(self, srv: _Server) -> None:
        self.srv = srv
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.transport = None
        self.head = False

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
        arrived = time.monotonic()
        url, headers, body = self.url.decode(), self.headers, self.body
        method = self.parser.get_method().decode()
        self.head = method == "HEAD"
        self.url, self.headers, self.body = b"", [], b""
        asyncio.get_running_loop().create_task(self.handle(method, url, headers, body, arrived))

    def send(self, status: int, body: bytes, extra: str = "") -> None:
        if self.transport.is_closing():
            return
        head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
        self.transport.write(head if self.head else head + body)  # HEAD: headers only (RFC 9110)

    async def handle(self, method: str, url: str, headers, body: bytes, arrived: float) -> None:
        path = url.split("?", 1)[0]
        self.srv.counts[path] += 1
        until = self.srv.stall_until()
        if until is not None:
            await asyncio.sleep(until - time.monotonic())
            arrived = time.monotonic()
        if path == "/":
            self.send(200, b"ok")
        elif path.startswith("/delay/"):
            # from when the request was read, on a precise clock (see _PreciseTimer)
            await self.srv.timer.sleep_until(arrived + float(path.rsplit("/", 1)[1]) / 1000.0)
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
        elif path == "/http10":  # HTTP/1.0, no length: the body ends when the connection closes
            self.transport.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close")
            self.transport.close()
        elif path == "/short":  # promises 100 bytes, sends 5, closes
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
            self.transport.close()
        elif path == "/bighead":  # a head that never ends (2 MiB of one header)
            self.transport.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (2 << 20))
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
