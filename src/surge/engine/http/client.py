"""The ``client`` a scenario receives: one per VU, sharing its worker's pool.

Every request is recorded with four monotonic timestamps (ns):

- intended: when the request *should* have started. For the first request of an
  open-model iteration that is the scheduled arrival time, so time spent behind
  a late generator or a busy pool counts (coordinated-omission free). For every
  other request it is the moment the scenario called ``client.get(...)``.
- send: when the request bytes were handed to the socket.
- first byte, completion: when the response started and ended.

latency = completion - intended; service time = completion - send; TTFB = first byte - send.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable
from time import monotonic_ns
from typing import Any, Protocol
from urllib.parse import urljoin

from surge.api.errors import ErrorKind
from surge.api.http_syntax import is_token
from surge.api.response import Response, header_pairs
from surge.engine.http.connection import RequestFailed
from surge.engine.http.cookies import CookieJar, set_cookie_values
from surge.engine.http.pool import ConnectionPool
from surge.engine.http.url import (
    Origin,
    add_params,
    build_request,
    encode_body,
    resolve_url,
    split_url,
)
from surge.engine.recorder import pack_request

_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 10
_URL_CACHE = 1024  # distinct URLs remembered per client (parsed origin/target, serialised request)


class RequestSink(Protocol):
    """Where a client reports finished requests (the worker's recorder).

    A sink that also has ``extend(bytes)`` (the Recorder) is given each request
    packed by :data:`surge.engine.recorder.pack_request` instead: no Python call."""

    def key_id(self, scenario: str, name: str, method: str) -> int: ...

    def add(
        self, key: int, intended: int, send: int, first: int, done: int, status: int, nbytes: int, err: int
    ) -> None: ...


class Timeouts:
    """Request timeouts in s: ``connect`` (TCP+TLS), ``read`` (silence while waiting), ``total``."""

    __slots__ = ("connect", "read", "total")

    def __init__(self, connect: float = 10.0, read: float = 30.0, total: float = 60.0) -> None:
        self.connect, self.read, self.total = connect, read, total

    def __repr__(self) -> str:
        return f"Timeouts(connect={self.connect}, read={self.read}, total={self.total})"


class Client:
    """HTTP client for scenarios: ``await client.get("/path", name="/path")``.

    Args:
        pool: the worker's connection pool.
        sink: the worker's request recorder.
        base_url: prefix for relative URLs.
        headers: default headers sent with every request.
        timeouts: default :class:`Timeouts`.
        follow_redirects: follow 3xx responses (each hop is recorded); off by default.
        cookies: keep a cookie jar (``Set-Cookie`` stored, sent on later requests); on by default.
    """

    def __init__(
        self,
        pool: ConnectionPool,
        sink: RequestSink,
        *,
        base_url: str | None = None,
        headers: dict[str, str] | None = None,
        timeouts: Timeouts | None = None,
        follow_redirects: bool = False,
        cookies: bool = True,
    ) -> None:
        self._pool = pool
        self._sink = sink
        self._extend = getattr(sink, "extend", None)  # see RequestSink
        self.base_url = base_url
        self.headers: dict[str, str] = dict(headers or {})
        self.timeouts = timeouts or Timeouts()
        self.follow_redirects = follow_redirects
        self.cookies_enabled = cookies
        self._jar: CookieJar | None = None  # created at the first Set-Cookie: no cost before
        self.scenario = ""  # set by the engine before each iteration
        self.intended_ns = 0  # set by open models: the iteration's scheduled start
        self._keys: dict[tuple[str, str, str], int] = {}
        self._urls: dict[str, tuple] = {}
        self._requests: dict[tuple, bytes] = {}

    def __repr__(self) -> str:
        return f"<Client base_url={self.base_url!r}>"

    @property
    def cookies(self) -> CookieJar:
        """This VU's cookie jar (``get``, ``set``, ``clear``, ``len``)."""
        if self._jar is None:
            self._jar = CookieJar()
        return self._jar

    # The verb helpers return the coroutine of :meth:`request` directly: one
    # coroutine frame per request instead of two (measured ~1 us per request).
    def get(self, url: str, **kw: Any) -> Awaitable[Response]:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Awaitable[Response]:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> Awaitable[Response]:
        return self.request("PUT", url, **kw)

    def patch(self, url: str, **kw: Any) -> Awaitable[Response]:
        return self.request("PATCH", url, **kw)

    def delete(self, url: str, **kw: Any) -> Awaitable[Response]:
        return self.request("DELETE", url, **kw)

    def head(self, url: str, **kw: Any) -> Awaitable[Response]:
        return self.request("HEAD", url, **kw)

    def _target(self, url: str) -> tuple[str, Origin, str, str]:
        """(full URL, origin, request target, default name) of ``url``, cached per client."""
        hit = self._urls.get(url)
        if hit is None or hit[4] != self.base_url:
            full = resolve_url(self.base_url, url)
            origin, target = split_url(full)
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()
            hit = self._urls[url] = (full, origin, target, target.split("?", 1)[0], self.base_url)
        return hit[0], hit[1], hit[2], hit[3]

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: dict | list | None = None,
        headers: dict[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        content: bytes | str | None = None,
        name: str | None = None,
        timeout: float | None = None,
        follow_redirects: bool | None = None,
        cookies: bool | None = None,
    ) -> Response:
        """Send one request and return its :class:`Response` (never raises for HTTP or network errors).

        Args:
            method: HTTP method.
            url: absolute, or relative to ``base_url``.
            params: query parameters to append.
            headers: extra headers for this request.
            json / data / content: the body (JSON value, form dict or raw str/bytes, raw bytes).
            name: the row this request is reported under (default: the URL path).
            timeout: total timeout in s for this request (default ``timeouts.total``).
            follow_redirects: override the client's redirect setting.
            cookies: ``False``: this request neither sends the jar's cookies nor stores new ones.
        """
        intended = self.intended_ns or monotonic_ns()
        self.intended_ns = 0
        if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
            raise ValueError(f"timeout={timeout!r}: give a number of seconds > 0 (or leave it out)")
        method = method.upper()
        if params:
            full = add_params(resolve_url(self.base_url, url), params)
            origin, target = split_url(full)
            default_name = target.split("?", 1)[0]
        else:
            hit = self._urls.get(url)  # _target's cache, looked up inline (per request)
            if hit is not None and hit[4] == self.base_url:
                full, origin, target, default_name = hit[0], hit[1], hit[2], hit[3]
            else:
                full, origin, target, default_name = self._target(url)
        if name is None:
            name = default_name
        plain = headers is None and json is None and data is None and content is None
        hdrs = self.headers
        if self._jar is not None and cookies is not False:
            cookie = self._jar.header(origin.host, default_name, origin.scheme == "https")
            if cookie:
                hdrs = {**hdrs, "Cookie": cookie}
        # The default headers are part of the key: scenarios change them (a login token).
        rkey = (method, full, tuple(hdrs.items()) if hdrs else ())
        req = self._requests.get(rkey) if plain else None
        body: bytes = b""
        ctype = None
        if req is None:
            if not is_token(method):
                raise ValueError(f"method {method!r} is not an HTTP method (a token: letters, no spaces)")
            if headers:
                _check_headers(headers)
                hdrs = {**hdrs, **headers}
            _check_body(data, content)
            body, ctype = encode_body(json, data, content)
            req = build_request(method, origin, target, hdrs, body, ctype)
            if plain:
                if len(self._requests) >= _URL_CACHE:
                    self._requests.clear()
                self._requests[rkey] = req
        resp = await self._roundtrip(method, full, origin, req, name, intended, timeout, cookies)
        follow = self.follow_redirects if follow_redirects is None else follow_redirects
        hops = 0
        while follow and resp.status in _REDIRECTS and "location" in resp.headers and hops < _MAX_REDIRECTS:
            hops += 1
            full = urljoin(full, resp.headers["location"])  # RFC 3986 resolution, not base-URL prefixing
            origin, target = split_url(full, what="redirect Location")
            if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                method, body, ctype = "GET", b"", None
            hop_hdrs = self._hop_headers(origin, target, headers, cookies)
            req = build_request(method, origin, target, hop_hdrs, body, ctype)
            resp = await self._roundtrip(method, full, origin, req, name, monotonic_ns(), timeout, cookies)
        return resp

    def _hop_headers(self, origin: Origin, target: str, headers: dict[str, str] | None,
                     cookies: bool | None) -> dict[str, str]:
        """Headers of a redirect hop: the cookies for its own origin and path."""
        hdrs = dict(self.headers)
        if self._jar is not None and cookies is not False:
            cookie = self._jar.header(origin.host, target.split("?", 1)[0], origin.scheme == "https")
            if cookie:
                hdrs["Cookie"] = cookie
        if headers:
            hdrs.update(headers)
        return hdrs

    async def _roundtrip(
        self, method: str, url: str, origin: Origin, req: bytes, name: str, intended: int, timeout: float | None,
        cookies: bool | None = None,
    ) -> Response:
        key_t = (self.scenario, name, method)
        key = self._keys.get(key_t)
        if key is None:
            key = self._keys[key_t] = self._sink.key_id(*key_t)
        total = self.timeouts.total if timeout is None else timeout
        pool = self._pool
        for attempt in (0, 1):
            send = monotonic_ns()
            conn = pool.try_acquire(origin)
            if conn is None:
                try:
                    conn = await pool.acquire(origin)
                except RequestFailed as err:
                    return self._failed(key, method, url, intended, send, err)
                send = monotonic_ns()
            before = conn.bytes_in
            fut = conn.send(req, method == "HEAD", self.timeouts.read, total)  # also arms the timeouts
            try:
                status, head, content, first, gzipped = await fut
            except RequestFailed as err:
                pool.discard(conn)
                if err.retryable and attempt == 0:
                    continue  # a stale keep-alive connection: retry once on a fresh one
                return self._failed(key, method, url, intended, send, err)
            except asyncio.CancelledError:
                conn.cancel()
                pool.discard(conn)
                raise
            pool.release(conn)
            break
        done = monotonic_ns()
        if conn.set_cookie and cookies is not False and self.cookies_enabled:
            self._keep_cookies(origin, url, head)
        err = 0 if status < 400 else ErrorKind.HTTP_4XX if status < 500 else ErrorKind.HTTP_5XX
        if status >= 600:  # not an HTTP status (RFC 9110: 100-599): a protocol error, as in `surge hit`
            err = ErrorKind.PROTOCOL
            resp = Response(0, head, content, url, method, (done - send) / 1e9, ErrorKind.PROTOCOL,
                            f"invalid HTTP status {status}")
            status = 0
        else:
            resp = Response(status, head, content, url, method, (done - send) / 1e9, _KINDS[err])
        nbytes = conn.bytes_in - before  # bytes on the wire (head + body), as in `surge hit`
        if gzipped and content:
            try:
                resp.content = zlib.decompress(content, 16 + zlib.MAX_WBITS)
            except zlib.error as exc:
                err = ErrorKind.PROTOCOL
                resp.error, resp.error_detail = ErrorKind.PROTOCOL, f"bad gzip body: {exc}"
        if self._extend is not None:
            self._extend(pack_request(key, intended, send, first, done, status, nbytes, err))
        else:
            self._sink.add(key, intended, send, first, done, status, nbytes, err)
        return resp

    def _keep_cookies(self, origin: Origin, url: str, head: bytes) -> None:
        """Store the response's Set-Cookie headers in this VU's jar (created on first use)."""
        path = split_url(url)[1].split("?", 1)[0]
        try:
            self.cookies.store(origin.host, path, set_cookie_values(header_pairs(head)))
        except Exception:  # noqa: BLE001 - a cookie the jar cannot keep never costs the request
            pass

    def _failed(self, key: int, method: str, url: str, intended: int, send: int, err: RequestFailed) -> Response:
        done = monotonic_ns()
        self._sink.add(key, intended, send, 0, done, 0, 0, int(err.kind))
        return Response(0, [], b"", url, method, (done - send) / 1e9, err.kind, err.detail)


_KINDS = {int(k): k for k in ErrorKind}


def _check_headers(headers: Any) -> None:
    """A scenario's ``headers=``: a dict of str names to str (or number) values."""
    if not isinstance(headers, dict):
        raise TypeError(f"headers= must be a dict of name -> value, not {type(headers).__name__}")
    for k, v in headers.items():
        if not isinstance(k, str):
            raise TypeError(f"header name {k!r} must be a str, not {type(k).__name__}")
        if not isinstance(v, str | int | float):
            raise TypeError(f"header {k!r}: the value must be a str, not {type(v).__name__}")


def _check_body(data: Any, content: Any) -> None:
    """``data=`` (a form dict/list, str or bytes) and ``content=`` (str or bytes): not e.g. an int,
    which ``bytes()`` would turn into that many NUL bytes."""
    if data is not None and not isinstance(data, dict | list | str | bytes | bytearray | memoryview):
        raise TypeError(f"data= must be a form dict, str or bytes, not {type(data).__name__} (use json= for JSON)")
    if content is not None and not isinstance(content, str | bytes | bytearray | memoryview):
        raise TypeError(f"content= must be str or bytes, not {type(content).__name__}")
