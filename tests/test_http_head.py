"""The scenario client keeps a response's header block raw and splits it only when read.

Unit tests for the splitting, and the connection against a scripted in-process
server that sends its bytes in chosen pieces: heads split anywhere, header case,
gzip and cookies spotted in the raw block, an endless head, a truncated body.
Every connection test runs with the compiled core (engine/http/_conncore.c) and
with its pure-Python stand-in.
"""

from __future__ import annotations

import asyncio
import gzip
import os

import pytest

from conftest import answer_requests
from surge.api.errors import ErrorKind
from surge.api.response import Response, header_pairs
from surge.engine.http.connection import (
    MAX_HEAD,
    ConnCore,
    HttpConnection,
    PyConnCore,
    RequestFailed,
)
from surge.engine.http.head import head_end, last_value
from surge.engine.http.url import split_url


def python_core_connection() -> type:
    """HttpConnection over the pure-Python core, as where _conncore is not built."""
    body = {k: v for k, v in vars(HttpConnection).items() if k not in ("__dict__", "__weakref__")}
    return type("PyCoreHttpConnection", (PyConnCore, asyncio.Protocol), body)


CONN: type = HttpConnection  # the class _exchange connects with (see the fixture)


@pytest.fixture(autouse=True, params=["compiled", "python"])
def core(request, monkeypatch):
    if request.param == "compiled" and ConnCore is PyConnCore:
        if os.environ.get("SURGE_REQUIRE_NATIVE") == "1":
            pytest.fail("SURGE_REQUIRE_NATIVE=1 but surge.engine.http._conncore is not built")
        pytest.skip("surge.engine.http._conncore is not built")
    cls = HttpConnection if request.param == "compiled" else python_core_connection()
    monkeypatch.setattr(f"{__name__}.CONN", cls)
    return request.param


def test_header_pairs_order_repeats_and_spaces():
    head = b"HTTP/1.1 200 OK\r\nA: 1\r\nb:  two \t\r\nA: 3\r\nLocation: http://x:8/y"
    assert header_pairs(head) == [(b"A", b"1"), (b"b", b"two"), (b"A", b"3"), (b"Location", b"http://x:8/y")]


def test_header_pairs_folding_and_bare_newlines():
    head = b"HTTP/1.1 200 OK\nX-Long: one\n  two: still x\nY: 2"
    assert header_pairs(head) == [(b"X-Long", b"one two: still x"), (b"Y", b"2")]


def test_response_headers_from_raw_block():
    r = Response(200, b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Type: text/plain",
                 b"hi", "http://h/", "GET", 0.001)
    assert r.headers == {"set-cookie": "a=1, b=2", "content-type": "text/plain"}
    assert r.text == "hi"


def test_head_end_and_last_value():
    assert head_end(b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\nbody") == (21, 4)
    assert head_end(b"HTTP/1.1 200 OK\nA: 1\n\nbody") == (20, 2)
    assert head_end(b"HTTP/1.1 200 OK\r\nA: 1\r\n") == (-1, 0)
    low = b"http/1.1 200 ok\r\ncontent-encoding: br\r\ncontent-encoding:  gzip \r\nx: y"
    assert last_value(low, b"content-encoding") == b"gzip"
    assert last_value(low, b"set-cookie") is None


async def _exchange(pieces: list[bytes], *, close: bool = False, head_only: bool = False,
                    closed_at_end: bool = False):
    """Send one request over an HttpConnection to a server that answers with ``pieces``
    (a short pause between them, so each arrives in its own read), then maybe closes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        for p in pieces:
            writer.write(p)
            await writer.drain()
            await asyncio.sleep(0.01)
        if close:
            writer.close()
        else:
            await asyncio.sleep(5)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    origin, _ = split_url(f"http://127.0.0.1:{port}/")
    loop = asyncio.get_running_loop()
    try:
        _, conn = await loop.create_connection(lambda: CONN(origin), "127.0.0.1", port)
        try:
            fut = conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", head_only)
            res = await asyncio.wait_for(fut, 5)
            return (conn, res, conn.closed) if closed_at_end else (conn, res)
        finally:
            conn.close()
    finally:
        server.close()


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize("cut", [5, 17, 30, 31, 32, 33])
def test_head_split_anywhere(cut):
    raw = b"HTTP/1.1 201 Created\r\nX-A: 1\r\nContent-Length: 5\r\n\r\nhello"
    _, (status, head, body, first_ns, gz) = run(_exchange([raw[:cut], raw[cut:]]))
    assert (status, body, gz) == (201, b"hello", False)
    assert head == raw[: raw.index(b"\r\n\r\n")]
    assert first_ns > 0


def test_gzip_and_cookie_spotted_in_any_case():
    body = gzip.compress(b"x" * 100)
    raw = (b"HTTP/1.1 200 OK\r\nCONTENT-ENCODING:  GZip\r\nSET-COOKIE: s=1\r\n"
           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    conn, (status, head, content, _, gz) = run(_exchange([raw]))
    assert status == 200 and gz is True and content == body
    assert conn.set_cookie is True


def test_plain_response_sets_no_flags():
    conn, (_, _, _, _, gz) = run(_exchange([b"HTTP/1.1 200 OK\r\nX-Encoding-Note: gzip\r\nContent-Length: 0\r\n\r\n"]))
    assert gz is False and conn.set_cookie is False


def test_head_request_completes_at_end_of_head():
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    _, (status, head, body, _, _) = run(_exchange([raw], head_only=True))
    assert status == 200 and body == b"" and head.endswith(b"Content-Length: 1000")


def test_endless_head_is_a_protocol_error():
    chunk = b"X-Pad: " + b"a" * 65_000 + b"\r\n"
    pieces = [b"HTTP/1.1 200 OK\r\n"] + [chunk] * (MAX_HEAD // len(chunk) + 2)
    with pytest.raises(RequestFailed) as err:
        run(_exchange(pieces))
    assert err.value.kind == ErrorKind.PROTOCOL and "head larger" in err.value.detail


def test_body_cut_short_by_close_is_an_error():
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello"
    with pytest.raises(RequestFailed) as err:
        run(_exchange([raw], close=True))
    assert err.value.kind == ErrorKind.RESET and "before the end of the body" in err.value.detail


def test_chunked_body_cut_short_by_close_is_an_error():
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    with pytest.raises(RequestFailed) as err:
        run(_exchange([raw], close=True))
    assert err.value.kind == ErrorKind.RESET


def test_body_delimited_by_close_is_complete():
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
    _, (status, _, body, _, _) = run(_exchange([raw, b" and more"], close=True))
    assert status == 200 and body == b"all of it and more"


@pytest.mark.parametrize("answer, keep", [
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\n", False),
    (b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", True),  # no length: still no body to a HEAD
    (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Foo\r\n\r\n", True),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", False),
    (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 5\r\n\r\n", True),
])
def test_head_response_keep_alive_follows_connection_header(answer, keep):
    conn, (status, _, body, _, _), closed = run(_exchange([answer], head_only=True, closed_at_end=True))
    assert (status, body, conn.uses) == (200, b"", 1)
    assert closed is (not keep)  # the same rule on the compiled and the httptools path


def test_bytes_after_a_parsed_response_do_not_derail_the_next():
    # A chunked answer (httptools' path) with the start of a stray response after it,
    # then a plain answer: the stray bytes must not be parsed into the second response.
    first = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nHTTP/1.1 2"
    second = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nnew\r\n0\r\n\r\n"
    conn, [(s1, _, b1, _, _), (s2, _, b2, _, _)] = run(answer_requests(CONN, [first, second]))
    assert (s1, b1, s2, b2) == (200, b"ok", 201, b"new")
