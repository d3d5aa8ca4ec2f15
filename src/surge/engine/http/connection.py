"""One HTTP/1.1 keep-alive connection: an asyncio Protocol around httptools.

Hand-written because it is the hot path: aiohttp + uvloop reached 8,000 req/s
per core on the bench machine, a protocol like this one about 90,000 (see
bench/peers.py). Per request it does one ``transport.write``, one parser feed
and resolves one future; timestamps are ``time.monotonic_ns()``.

``send`` and the common case of ``data_received`` (a whole, plainly framed
response in one read) run in the compiled :mod:`surge.engine.http._conncore`
where it is built; everything else is here. :class:`PyConnCore` is the same
core in Python, for machines without a C compiler (and for the tests).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from time import monotonic, monotonic_ns

import httptools

from surge.api.errors import ErrorKind
from surge.engine.http.head import framed_by_length, head_end, head_keeps_alive, last_value
from surge.engine.http.url import Origin


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Send small requests at once (no Nagle delay waiting for the previous ACK)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


MAX_HEAD = 1 << 20  # bytes: a response head larger than this is a protocol error (a server gone wrong)


class RequestFailed(Exception):
    """A request that got no (complete) response; ``kind`` says why."""

    def __init__(self, kind: ErrorKind, detail: str = "", *, retryable: bool = False) -> None:
        super().__init__(detail or kind.label)
        self.kind = kind
        self.detail = detail or kind.label
        # True when a reused keep-alive connection turned out to be closed by the
        # server before any byte of the response: safe to retry once.
        self.retryable = retryable


def classify_connect_error(exc: BaseException) -> tuple[ErrorKind, str]:
    """Map an exception from ``create_connection`` to an error kind and short text."""
    if isinstance(exc, socket.gaierror):
        return ErrorKind.DNS, f"DNS lookup failed: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return ErrorKind.REFUSED, "connection refused"
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return ErrorKind.CONNECT_TIMEOUT, "connect timed out"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return ErrorKind.TLS, f"TLS: {getattr(exc, 'reason', None) or exc}"
    if isinstance(exc, ConnectionResetError):
        return ErrorKind.RESET, "connection reset while connecting"
    return ErrorKind.CONNECT, f"{type(exc).__name__}: {exc}"


class PyConnCore:
    """Pure-Python stand-in for the compiled ``_conncore.ConnCore``: the same
    methods, always taking the slow (httptools) path for responses."""

    def data_received(self, data: bytes) -> None:
        self._data_received_slow(data)

    def send(self, request: bytes, head_only: bool = False, read: float | None = None,
             total: float | None = None, /) -> asyncio.Future:
        """Write ``request``; the future resolves when its response is complete. With
        ``read`` and ``total`` (s), also arm its timeouts (:meth:`arm_timeouts`)."""
        fut = self.loop.create_future()
        if self.closed or self.transport is None:
            self._send_closed(fut)
            return fut
        self._fut = fut
        self._head_only = head_only
        self._raw = self._head = b""
        self._body = []
        self._got_bytes = False
        self._status = 0
        self._gzip = False
        self.set_cookie = False
        if read is not None and total is not None:
            self.arm_timeouts(read, total)
        self.transport.write(request)
        return fut


try:
    from surge.engine.http._conncore import ConnCore
except ImportError:  # not built (no C compiler): the same core in Python
    ConnCore = PyConnCore  # type: ignore[misc,assignment]


class HttpConnection(ConnCore, asyncio.Protocol):
    """A keep-alive connection that runs one request at a time.

    :meth:`send` writes a serialised request and returns a future resolving to
    ``(status, head, body, first_byte_ns, gzipped)`` or failing with
    :class:`RequestFailed`; ``head`` is the raw header block (status line first,
    see :mod:`surge.engine.http.head`).
    """

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.uses = 0  # completed requests; > 0 means the connection is being reused
        self.parser = httptools.HttpResponseParser(self)
        self._fut: asyncio.Future | None = None
        self._head_only = False
        self._raw = b""  # bytes of this response received while its head is incomplete
        self._head = b""
        self._body: list[bytes] = []
        self._first_ns = 0
        self._got_bytes = False
        self._status = 0
        self._gzip = False
        self.set_cookie = False  # the last response had a Set-Cookie header
        self._parsed = False  # httptools completed a response: a fresh parser for the next
        self.bytes_in = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._deadline = 0.0
        self._quiet_since = 0.0
        self._read_timeout = 0.0
        self._seen = 0
        self._total = 0.0

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("busy" if self._fut else "idle")
        return f"<HttpConnection {self.origin} {state} uses={self.uses}>"

    # -- asyncio.Protocol ----------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.loop = asyncio.get_running_loop()
        set_nodelay(transport)

    def _data_received_slow(self, data: bytes) -> None:
        """Bytes of a response the compiled fast path did not complete (split over
        reads, chunked, close-delimited, 1xx, unusual headers): through httptools."""
        if not self._got_bytes:
            if self._parsed:
                # httptools finished a response on this connection before: start clean, so
                # bytes a server sent after that response cannot derail this one.
                self.parser = httptools.HttpResponseParser(self)
                self._parsed = False
            self._got_bytes = True
            self._first_ns = monotonic_ns()
            self._raw = data
        elif not self._status:
            self._raw += data  # a head split over reads (rare: heads are small)
            if len(self._raw) > MAX_HEAD:
                self._fail(RequestFailed(ErrorKind.PROTOCOL, f"response head larger than {MAX_HEAD // 1024} KiB"))
                return
        self.bytes_in += len(data)
        if self._fut is None:
            # Bytes nobody asked for: the server is not speaking HTTP/1.1 to us.
            self._abort()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(RequestFailed(ErrorKind.PROTOCOL, "unexpected protocol upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(RequestFailed(ErrorKind.PROTOCOL, f"invalid HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._fut is not None and self._status and exc is None:
            if framed_by_length(self._head):
                # The head promised a length (or chunks) the body never reached.
                self._fail(RequestFailed(ErrorKind.RESET, "connection closed before the end of the body"))
                return
            # A response delimited by connection close (no length, not chunked).
            self._complete(False)
            return
        if self._fut is not None and not self._fut.done():
            retry = self.uses > 0 and not self._got_bytes
            detail = "server closed the connection" if exc is None else f"connection lost: {exc}"
            self._fut.set_exception(RequestFailed(ErrorKind.RESET, detail, retryable=retry))
            self._fut = None

    # -- httptools callbacks -------------------------------------------------
    # No on_header: headers are kept as the raw block (engine/http/head.py).
    def on_headers_complete(self) -> None:
        self._status = self.parser.get_status_code()
        raw, self._raw = self._raw, b""
        end, _ = head_end(raw)
        head = self._head = raw[:end] if end >= 0 else raw
        low = head.lower()
        # find() rather than `in`: bytes.__contains__ first tries its argument as an
        # int, raising and clearing a TypeError each time (callgrind: ~1.3k instructions).
        if low.find(b"-encoding:") >= 0:
            self._gzip = last_value(low, b"content-encoding") == b"gzip"
        if low.find(b"\nset-cookie:") >= 0:
            self.set_cookie = True  # the client looks at cookies only when this is set
        if self._head_only:
            # A HEAD response has no body whatever Content-Length says; httptools
            # cannot be told so, so finish here (the next response gets a fresh parser,
            # see _parsed).
            self._complete(head_keeps_alive(low))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._fut is not None:
            self._complete(self.parser.should_keep_alive())

    # -- requests ------------------------------------------------------------
    # send(request, head_only=False, read=None, total=None) -> Future: from ConnCore.

    def _send_closed(self, fut: asyncio.Future) -> None:
        """send() on a closed connection: fail its future at once."""
        fut.set_exception(RequestFailed(ErrorKind.RESET, "connection closed", retryable=self.uses > 0))

    def _complete(self, keep_alive: bool) -> None:
        fut, self._fut = self._fut, None
        self.uses += 1
        self._parsed = True
        if not keep_alive:
            self._abort(graceful=True)
        if fut is not None and not fut.done():
            fut.set_result((self._status, self._head, b"".join(self._body), self._first_ns, self._gzip))

    def _fail(self, err: RequestFailed) -> None:
        fut, self._fut = self._fut, None
        self._abort()
        if fut is not None and not fut.done():
            fut.set_exception(err)

    def arm_timeouts(self, read: float, total: float) -> None:
        """Give the in-flight request a total deadline and a read (silence) timeout, in s.

        No timer per request: the pool's sweeper checks in-flight connections
        every 0.1 s (a TimerHandle per request cost ~1.5 us on the hot path).
        """
        now = monotonic()
        self._deadline = now + total
        self._total = total
        self._read_timeout = read
        self._seen = self.bytes_in
        self._quiet_since = now

    def check_timeouts(self, now: float) -> None:
        """Called by the sweeper: fail the request past its deadline or silent too long."""
        if self._fut is None:
            return
        if now >= self._deadline:
            self.fail_timeout(f"no complete response within {self._total:g} s")
        elif self.bytes_in != self._seen:
            self._seen = self.bytes_in
            self._quiet_since = now
        elif now - self._quiet_since >= self._read_timeout:
            self.fail_timeout(f"no data for {self._read_timeout:g} s")

    def fail_timeout(self, detail: str) -> None:
        """Abort the in-flight request as timed out (the connection is dropped)."""
        self._fail(RequestFailed(ErrorKind.TIMEOUT, detail))

    def cancel(self) -> None:
        """Abort the in-flight request because the run is stopping."""
        self._fail(RequestFailed(ErrorKind.CANCELLED, "run stopped"))

    def _abort(self, graceful: bool = False) -> None:
        self.closed = True
        if self.transport is not None:
            if graceful:
                self.transport.close()
            else:
                self.transport.abort()

    def close(self) -> None:
        self._abort(graceful=True)
