"""``surge hit``'s fast path: one pre-serialised request, no scenario code.

Callback-driven like wrk: when a response completes, the protocol callback
records it and writes the next request on the same connection, with no
coroutine, future or Response object per request. Closed mode (``-c`` only)
keeps every connection busy; open mode (``--rate``) sends at scheduled times on
a fixed set of connections, queueing when all are busy, and measures latency
from the scheduled time (coordinated-omission free, like wrk2).
"""

from __future__ import annotations

import asyncio
from collections import deque
from time import monotonic_ns

import httptools

from surge.api.errors import ErrorKind
from surge.api.shapes import Shape, parse_arrival
from surge.engine.http.connection import MAX_HEAD, classify_connect_error, set_nodelay
from surge.engine.http.head import framed_by_length, head_end, head_keeps_alive
from surge.engine.http.pool import make_ssl_context
from surge.engine.http.url import build_request, split_url
from surge.engine.messages import WorkerPlan
from surge.engine.models.arrival import due_arrivals
from surge.engine.models.schedule import split_int
from surge.engine.models.shapes import open_curve
from surge.engine.recorder import Recorder, pack_request
from surge.engine.runtime import NS, Runtime, Share

try:  # the compiled connection core's test for a whole, plainly framed response
    from surge.engine.http._conncore import simple_response as _simple_response
except ImportError:  # not built: every response goes through httptools
    _simple_response = None

_HTTP_4XX, _HTTP_5XX, _PROTOCOL = int(ErrorKind.HTTP_4XX), int(ErrorKind.HTTP_5XX), int(ErrorKind.PROTOCOL)
HEAD_KEEP = 16_384  # bytes of a response's first read kept to tell how its body ends
SWEEP_PERIOD = 0.1  # s between timeout sweeps (no per-request timers on this path)
RECONNECT_PAUSE = 0.01  # s before reopening after a failed connect (avoids a hot loop)


class _FastConn(asyncio.Protocol):
    """Connection whose parser has no header/body callbacks (cheapest httptools use)."""

    __slots__ = ("driver", "transport", "parser", "busy", "intended", "send_ns", "first", "nbytes", "closed",
                 "head", "hdone")

    def __init__(self, driver: HitRunner) -> None:
        self.driver = driver
        self.transport = None
        self.parser = httptools.HttpResponseParser(self)
        self.busy = False
        self.intended = self.send_ns = self.first = self.nbytes = 0
        self.closed = False
        self.head = b""  # the response's first read (its head, unless the head is split)
        self.hdone = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        set_nodelay(transport)

    def data_received(self, data: bytes) -> None:
        if not self.first:
            self.first = monotonic_ns()
            if _simple_response is not None and self.busy:
                r = _simple_response(data, self.driver.head_only)
                if r is not None:  # the whole response in this read, plainly framed: no parser
                    self.nbytes, self.hdone = len(data), True
                    self.driver.completed(self, r[0], r[3])
                    return
            # Only a head's worth is kept (until the next response): a whole 256 KiB read per
            # connection would be gigabytes with 10,000 connections to a large file.
            self.head = data if len(data) <= HEAD_KEEP else data[:HEAD_KEEP]
        self.nbytes += len(data)
        if self.nbytes > MAX_HEAD and not self.hdone:
            self.driver.failed(self, ErrorKind.PROTOCOL, f"response head larger than {MAX_HEAD // 1024} KiB")
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.driver.failed(self, ErrorKind.PROTOCOL, str(exc))

    def on_message_complete(self) -> None:
        self.driver.completed(self, self.parser.get_status_code(), self.parser.should_keep_alive())

    def on_headers_complete(self) -> None:
        self.hdone = True
        if self.driver.head_only:
            # A HEAD response has no body whatever Content-Length says, and httptools
            # cannot be told so: finish here and start a fresh parser.
            p = self.parser
            self.parser = httptools.HttpResponseParser(self)
            end, _ = head_end(self.head)  # the head is in the first read unless split (then: keep)
            keep = head_keeps_alive((self.head[:end] if end >= 0 else b"").lower())
            self.driver.completed(self, p.get_status_code(), keep)

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.busy:
            if exc is None and self.hdone and self._ends_at_close():
                # A body delimited by the connection's close (HTTP/1.0, or no length): complete.
                self.driver.completed(self, self.parser.get_status_code(), False)
            else:
                self.driver.failed(self, ErrorKind.RESET, "connection lost")
        self.driver.lost(self)

    def _ends_at_close(self) -> bool:
        """True when the head (in the first read) gives no Content-Length and no chunking."""
        end, _ = head_end(self.head)
        if end < 0:
            return False  # a head split over reads: too rare on this path to keep it whole
        return not framed_by_length(self.head[:end])

    def send(self, request: bytes, intended: int, now: int) -> None:
        self.busy = True
        self.intended, self.send_ns, self.first, self.nbytes = intended, now, 0, 0
        self.hdone = False
        self.transport.write(request)


class HitRunner:
    """Runs a :class:`~surge.engine.messages.HitSpec` for one worker; quacks like a workload model."""

    name = "hit"

    def __init__(self, plan: WorkerPlan, recorder: Recorder, share: Share) -> None:
        spec = plan.hit
        assert spec is not None
        o = plan.options
        self.recorder = recorder
        self.origin, target = split_url(spec.url)
        self.request = build_request(spec.method, self.origin, target, dict(spec.headers), spec.body)
        self.head_only = spec.method.upper() == "HEAD"
        self.connections = max(1, split_int(spec.connections, share.index, share.count))
        self.duration = o.duration if o.duration is not None else 10.0
        self.iterations = split_int(o.iterations, share.index, share.count) if o.iterations else None
        self.planned_duration = self.duration
        # Open mode: --rate, shaped by --shape (a trace shape brings its own rates and length).
        open_mode = bool(o.rate) or isinstance(o.shape, Shape)
        self.curve = open_curve(o).scaled(1.0 / share.count) if open_mode else None
        if self.curve is not None and o.duration is None:
            self.duration = self.planned_duration = self.curve.duration
        arrival = parse_arrival(o.arrival or "uniform")
        self.poisson, self.cv = arrival.kind == "poisson", arrival.cv
        self.connect_t, self.read_t, self.total_t = plan.timeouts
        self.ssl = make_ssl_context(plan.insecure) if self.origin.tls else None
        self.key = recorder.key_id("hit", target.split("?", 1)[0], spec.method)
        self._extend = recorder.extend
        self.share = share
        self.runtime = Runtime(scenarios=(), recorder=recorder, make_client=None, share=share,
                               start_ns=recorder.start_ns, seed=plan.seed,
                               slot_ns=plan.options.slot_ns())
        self.pool = self  # the worker reads .connects and calls .close()
        self.connects = 0
        self.connecting = 0  # connects in progress
        self.conns: set[_FastConn] = set()
        self.idle: list[_FastConn] = []
        self.backlog: deque[int] = deque()
        self.end_ns = 0
        self.sent = 0
        self.iterations_done = 0
        self.running = True
        self.done = asyncio.Event()

    def __repr__(self) -> str:
        return f"<HitRunner {self.origin} c={self.connections} rate={self.curve and self.curve.rate_at(0)}>"

    # -- model interface -----------------------------------------------------
    def target_rate(self, t: float) -> float:
        return self.curve.rate_at(t) if self.curve else 0.0

    async def run(self, rt: Runtime) -> None:
        self.end_ns = rt.at_ns(self.duration)
        opener = [asyncio.create_task(self._open()) for _ in range(self.connections)]
        sweeper = asyncio.create_task(self._sweep())
        try:
            if self.curve is not None:
                await self._dispatch(rt)
            else:
                stopper = asyncio.create_task(rt.sleep_until(self.end_ns))
                finished = asyncio.create_task(self.done.wait())
                await asyncio.wait([stopper, finished], return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                finished.cancel()
            self.running = False
            await self._drain(rt)
            # Requests the server had not answered by the end of the grace period: no
            # latency to record, but not silently gone either (summary: interrupted).
            for c in self.conns:
                if c.busy:
                    c.busy = False  # aborted below: not a reset error either
                    rt.interrupted += 1
            if self.curve is None and (self.iterations is None or self.sent < self.iterations):
                # Closed model: a connection still connecting (a TLS handshake the server
                # never answers) holds a request that was never sent.
                rt.interrupted += self.connecting
        finally:
            sweeper.cancel()
            for t in opener:
                t.cancel()
            self.close()

    async def _drain(self, rt: Runtime) -> None:
        """Let in-flight requests finish (graceful stop, at most 1 s after an early stop)."""
        grace = min(self.total_t, 1.0 if rt.stop.is_set() else 5.0)
        deadline = monotonic_ns() + int(grace * NS)
        while any(c.busy for c in self.conns) and monotonic_ns() < deadline:
            await asyncio.sleep(0.005)

    @property
    def active_vus(self) -> int:
        return len(self.conns)

    def close(self) -> None:
        for c in list(self.conns):
            if c.transport is not None:
                c.transport.abort()
        self.conns.clear()

    # -- connections ---------------------------------------------------------
    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        while self.running and monotonic_ns() < self.end_ns:
            t0 = monotonic_ns()
            self.connecting += 1
            try:
                async with asyncio.timeout(self.connect_t):
                    _, conn = await loop.create_connection(
                        lambda: _FastConn(self), self.origin.host, self.origin.port, ssl=self.ssl,
                        server_hostname=self.origin.host if self.ssl else None)
            except (OSError, TimeoutError) as exc:
                self.connecting -= 1
                kind, _ = classify_connect_error(exc)
                now = monotonic_ns()
                if self.curve is None or self.backlog:
                    intended = self.backlog.popleft() if self.backlog else t0
                    self.recorder.add(self.key, intended, t0, 0, now, 0, 0, int(kind))
                    self._count_one()
                await asyncio.sleep(RECONNECT_PAUSE)
                continue
            except asyncio.CancelledError:
                self.connecting -= 1
                raise
            self.connecting -= 1
            self.connects += 1
            self.conns.add(conn)
            self._next(conn, monotonic_ns())
            return

    def _next(self, conn: _FastConn, now: int) -> None:
        """Give ``conn`` its next request, or park it."""
        if not self.running or now >= self.end_ns:
            conn.busy = False
            return
        if self.curve is None:
            if self.iterations is not None and self.sent >= self.iterations:
                conn.busy = False
                return
            self.sent += 1
            conn.send(self.request, now, now)
        elif self.backlog:
            t = self.backlog.popleft()
            conn.send(self.request, t, now)
            self.recorder.started[self.recorder.second_of(t)] += 1
        else:
            conn.busy = False
            self.idle.append(conn)

    def completed(self, conn: _FastConn, status: int, keep_alive: bool) -> None:
        # The hottest function of `surge hit`: every call and attribute lookup
        # saved here is ~1-2 % of max req/s (measured against nginx on one core).
        now = monotonic_ns()
        if status < 400:
            err = 0
        elif status < 500:
            err = _HTTP_4XX
        elif status < 600:
            err = _HTTP_5XX
        else:  # not an HTTP status (RFC 9110: 100-599); the compiled loop calls it a protocol error too
            status, err = 0, _PROTOCOL
        self._extend(pack_request(self.key, conn.intended, conn.send_ns, conn.first, now, status, conn.nbytes, err))
        conn.busy = False
        if self.iterations is not None:
            self._count_one()
        if keep_alive and not conn.closed:
            if self.curve is None and self.running and now < self.end_ns and (
                self.iterations is None or self.sent < self.iterations
            ):
                self.sent += 1
                conn.send(self.request, now, now)  # closed model: next request at once
            else:
                self._next(conn, now)
        else:
            conn.transport.close()

    def failed(self, conn: _FastConn, kind: ErrorKind, detail: str) -> None:
        if not conn.busy:
            return
        conn.busy = False
        now = monotonic_ns()
        self.recorder.add(self.key, conn.intended, conn.send_ns, conn.first, now, 0, conn.nbytes, int(kind))
        self._count_one()
        if conn.transport is not None and not conn.closed:
            conn.closed = True
            conn.transport.abort()

    def lost(self, conn: _FastConn) -> None:
        self.conns.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        if self.running and monotonic_ns() < self.end_ns:
            asyncio.get_running_loop().create_task(self._open())

    def _count_one(self) -> None:
        if self.iterations is not None and self.curve is None:
            self.iterations_done += 1
            if self.iterations_done >= self.iterations:
                self.done.set()

    async def _sweep(self) -> None:
        """Fail requests past their total timeout, or silent for the read timeout."""
        while True:
            await asyncio.sleep(SWEEP_PERIOD)
            now = monotonic_ns()
            for c in list(self.conns):
                if not c.busy:
                    continue
                age = (now - c.send_ns) / NS
                if age > self.total_t or (c.first == 0 and age > self.read_t):
                    self.failed(c, ErrorKind.TIMEOUT, "timed out")

    # -- open mode -------------------------------------------------------------
    async def _dispatch(self, rt: Runtime) -> None:
        async for t, now in due_arrivals(rt, self.curve, poisson=self.poisson, share=self.share, end_ns=self.end_ns,
                                         cv=self.cv):
            while self.idle:
                conn = self.idle.pop()
                if not conn.closed:
                    conn.send(self.request, t, now)
                    rt.recorder.started[rt.recorder.second_of(t)] += 1
                    break
            else:
                self.backlog.append(t)
        # Requests still queued when the schedule ends were never sent: they are
        # counted as dropped, not silently forgotten.
        for t in self.backlog:
            rt.recorder.dropped[rt.recorder.second_of(t)] += 1
        self.backlog.clear()


__all__ = ["HitRunner"]
