"""Per-worker connection pool: idle keep-alive connections per origin, LIFO."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque

from surge.engine.http.connection import HttpConnection, RequestFailed, classify_connect_error
from surge.engine.http.url import Origin


def make_ssl_context(insecure: bool) -> ssl.SSLContext:
    """Default verifying client context; ``insecure`` skips certificate checks (self-signed test hosts)."""
    ctx = ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


SWEEP_PERIOD = 0.1  # s: timeout resolution


class ConnectionPool:
    """Hands out connections; at most ``max_per_origin`` open per origin (None: no cap).

    Waiting for a free connection counts in a request's latency (it is measured
    from the intended start) but not in its service time (measured from send).
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        insecure: bool = False,
        max_per_origin: int | None = None,
        protocol_factory: type[HttpConnection] = HttpConnection,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.max_per_origin = max_per_origin
        self._factory = protocol_factory
        self._insecure = insecure
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[Origin, list[HttpConnection]] = {}
        self._open: dict[Origin, int] = {}
        self._waiters: dict[Origin, deque[asyncio.Future]] = {}
        self._all: set[HttpConnection] = set()
        self.connects = 0  # connections opened (a measure of keep-alive reuse)
        self._sweeper: asyncio.Task | None = None

    def __repr__(self) -> str:
        return f"<ConnectionPool open={sum(self._open.values())} connects={self.connects}>"

    def try_acquire(self, origin: Origin) -> HttpConnection | None:
        """An idle connection to ``origin`` without awaiting, or None (the hot path)."""
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
            self._forget(conn)
        return None

    async def acquire(self, origin: Origin) -> HttpConnection:
        conn = self.try_acquire(origin)
        if conn is not None:
            return conn
        cap = self.max_per_origin
        if cap is not None and self._open.get(origin, 0) >= cap:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(origin, deque()).append(fut)
            conn = await fut
            if conn is not None:
                return conn
        return await self._connect(origin)

    def release(self, conn: HttpConnection) -> None:
        """Return a connection after its response (closed ones are dropped)."""
        origin = conn.origin
        if conn.closed:
            self._forget(conn)
            conn = None  # a waiter may open a new one in its place
        waiters = self._waiters.get(origin)
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        if conn is not None:
            idle = self._idle.get(origin)
            if idle is None:
                idle = self._idle[origin] = []
            idle.append(conn)

    def discard(self, conn: HttpConnection) -> None:
        """Drop a broken connection and wake a waiter to open a new one."""
        conn.close()
        self.release(conn)

    async def _connect(self, origin: Origin) -> HttpConnection:
        loop = asyncio.get_running_loop()
        self._open[origin] = self._open.get(origin, 0) + 1
        ssl_ctx = None
        if origin.tls:
            if self._ssl is None:
                self._ssl = make_ssl_context(self._insecure)
            ssl_ctx = self._ssl
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: self._factory(origin),
                    origin.host,
                    origin.port,
                    ssl=ssl_ctx,
                    server_hostname=origin.host if ssl_ctx else None,
                )
        except BaseException as exc:
            self._open[origin] -= 1
            self._wake_one(origin)
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                raise
            kind, detail = classify_connect_error(exc)
            raise RequestFailed(kind, detail) from None
        self.connects += 1
        self._all.add(conn)
        if self._sweeper is None:
            self._sweeper = loop.create_task(self._sweep())
        return conn

    async def _sweep(self) -> None:
        """Enforce request timeouts: every SWEEP_PERIOD s, check the connections in flight."""
        while True:
            await asyncio.sleep(SWEEP_PERIOD)
            now = time.monotonic()
            for conn in list(self._all):
                conn.check_timeouts(now)

    def _forget(self, conn: HttpConnection) -> None:
        if conn in self._all:
            self._all.discard(conn)
            self._open[conn.origin] -= 1

    def _wake_one(self, origin: Origin) -> None:
        waiters = self._waiters.get(origin)
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def close(self) -> None:
        """Close every connection (in-flight requests fail as cancelled)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._all):
            if not conn.closed:
                conn.cancel()
            conn.close()
        self._all.clear()
        self._idle.clear()
        self._open.clear()
