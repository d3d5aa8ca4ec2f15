"""The compiled connection core's fast path accepts only responses httptools agrees on.

``_conncore.simple_response`` decides whether a read holds one whole, plainly framed
response that the C core completes without httptools. Whatever it accepts, httptools
(the slow path, the authority on validity) must parse the same way: same status,
head, body and keep-alive, no error, the message complete at the last byte. Tested on
a corpus of near misses and on random responses (hypothesis); plus a check that a
real connection takes the fast path for a plain response and the slow one otherwise.
"""

from __future__ import annotations

import asyncio
import os

import httptools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import answer_requests
from surge.engine.http.connection import ConnCore, HttpConnection, PyConnCore
from surge.engine.http.url import split_url

try:
    from surge.engine.http import _conncore as conncore
except ImportError:
    if os.environ.get("SURGE_REQUIRE_NATIVE") == "1":
        raise  # CI builds it (gcc and the Python headers are there): its absence is a failure
    pytest.skip("surge.engine.http._conncore is not built", allow_module_level=True)
simple_response = conncore.simple_response


class _Sink:
    """httptools callbacks, read as HttpConnection reads them."""

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.body = b""
        self.keep_alive: bool | None = None  # set when the message completes

    def on_body(self, b: bytes) -> None:
        self.body += b

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()


def httptools_view(data: bytes) -> tuple[int, bytes, bool] | None:
    """(status, body, keep_alive) as httptools parses ``data``, or None if it rejects it
    or the message is not complete at its last byte."""
    sink = _Sink()
    p = sink.parser = httptools.HttpResponseParser(sink)
    try:
        p.feed_data(data)
    except httptools.HttpParserError:
        return None
    if sink.keep_alive is None:
        return None
    return p.get_status_code(), sink.body, sink.keep_alive


def agree(data: bytes) -> None:
    got = simple_response(data)
    if got is None:
        return
    status, head_end, body_start, keep_alive, _ = got
    want = httptools_view(data)
    assert want is not None, f"fast path accepted what httptools rejects: {data!r}"
    assert (status, data[body_start:], keep_alive) == want, data
    assert data[head_end:body_start] == b"\r\n\r\n"


PLAIN = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world\n"


def test_plain_response_accepted():
    status, head_end, body_start, keep_alive, gz = simple_response(PLAIN)
    assert (status, keep_alive, gz) == (200, True, False)
    assert PLAIN[:head_end].endswith(b"Content-Length: 12")
    assert PLAIN[body_start:] == b"hello world\n"
    agree(PLAIN)


@pytest.mark.parametrize("data, expect", [
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", (404, True, False)),
    (b"HTTP/1.1 503\r\ncontent-length: 2\r\nConnection: close\r\n\r\nno", (503, False, False)),
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\ncontent-encoding: GZIP \r\nContent-Length: 1\r\n\r\nx",
     (200, True, True)),
    (b"HTTP/1.1 200 \xc3\xa9t\xc3\xa9\r\nX: caf\xc3\xa9\tok\r\nContent-Length: 1\r\n\r\nx", (200, True, False)),
])
def test_accepted_variants(data, expect):
    got = simple_response(data)
    assert got is not None and (got[0], got[3], got[4]) == expect
    agree(data)


@pytest.mark.parametrize("data", [
    PLAIN[:-1],  # body incomplete
    PLAIN + b"HTTP/1.1",  # more than one response
    PLAIN[:40],  # head incomplete
    b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",  # HTTP/1.0 keep-alive rules: httptools
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 204 No Content\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n\r\nclose-delimited",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx",  # space before the colon
    b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 1\r\n\r\nx",  # obs-fold
    b"HTTP/1.1 200 OK\r\nX: a\x01b\r\nContent-Length: 1\r\n\r\nx",  # a control character
    b"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 1\r\n\r\nx",  # a bare CR
    b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",  # bare LFs
    b"HTTP/1.1 200 OK\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive, x\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 OK\r\nProxy-Connection: close\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 600 Odd\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 099 Low\r\nContent-Length: 1\r\n\r\nx",
    b"HTTP/1.1 200 O\x7fK\r\nContent-Length: 1\r\n\r\nx",
    b"SSH-2.0-OpenSSH_9.6\r\n",
    b"",
])
def test_declined_goes_to_httptools(data):
    assert simple_response(data) is None


def test_head_response_accepted_without_body():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    assert simple_response(head, True)[2] == len(head)
    assert simple_response(head + b"x", True) is None
    assert simple_response(head) is None  # a GET waits for its 1,000 bytes


_name = st.sampled_from([b"Content-Length", b"content-length", b"Connection", b"Content-Encoding",
                         b"Set-Cookie", b"Transfer-Encoding", b"X-Thing", b"Upgrade", b"Date", b"X y", b""])
_value = st.one_of(st.sampled_from([b"0", b"5", b"12", b"close", b"keep-alive", b"gzip", b"chunked", b" 5 "]),
                   st.binary(max_size=12))


@settings(max_examples=400, deadline=None)
@given(status=st.binary(min_size=3, max_size=4), reason=st.binary(max_size=8),
       headers=st.lists(st.tuples(_name, st.sampled_from([b":", b": ", b" :", b":\t"]), _value), max_size=6),
       body=st.binary(max_size=14), version=st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0"]))
def test_random_responses_agree_with_httptools(status, reason, headers, body, version):
    data = version + b" " + status + b" " + reason + b"\r\n"
    data += b"".join(n + sep + v + b"\r\n" for n, sep, v in headers) + b"\r\n" + body
    agree(data)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=40), extra=st.lists(st.tuples(_name, _value), max_size=4))
def test_well_formed_random_responses_agree(body, extra):
    data = b"HTTP/1.1 200 OK\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in extra)
    data += b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    agree(data)


class _Counting(HttpConnection):
    slow_calls = 0

    def _data_received_slow(self, data: bytes) -> None:
        type(self).slow_calls += 1
        super()._data_received_slow(data)


async def _roundtrip(answer: bytes):
    conn, [res] = await answer_requests(_Counting, [answer], False, 5.0, 5.0)
    return conn, res


@pytest.mark.skipif(ConnCore is PyConnCore, reason="_conncore not built")
def test_plain_response_skips_httptools_and_others_use_it():
    _Counting.slow_calls = 0
    conn, (status, head, body, first_ns, gz) = asyncio.run(_roundtrip(PLAIN))
    assert (status, body, gz, conn.uses, conn.bytes_in) == (200, b"hello world\n", False, 1, len(PLAIN))
    assert head == PLAIN[: PLAIN.index(b"\r\n\r\n")] and first_ns > 0
    assert _Counting.slow_calls == 0
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    conn, (status, _, body, _, _) = asyncio.run(_roundtrip(chunked))
    assert (status, body, conn.uses) == (200, b"hello", 1)
    assert _Counting.slow_calls == 1


def test_send_arms_the_timeouts():
    conn, _ = asyncio.run(_roundtrip(PLAIN))
    assert conn._total == 5.0 and conn._read_timeout == 5.0 and conn._deadline > conn._quiet_since > 0


@pytest.mark.skipif(ConnCore is PyConnCore, reason="_conncore not built")
def test_connection_close_on_fast_path_closes():
    answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    _Counting.slow_calls = 0
    conn, (status, _, body, _, _) = asyncio.run(_roundtrip(answer))
    assert (status, body, conn.closed, _Counting.slow_calls) == (200, b"ok", True, 0)


@pytest.mark.skipif(ConnCore is PyConnCore, reason="_conncore not built")
def test_send_survives_deleted_fields_and_refuses_an_unconnected_connection():
    origin, _ = split_url("http://127.0.0.1:1/")
    conn = HttpConnection(origin)
    with pytest.raises(RuntimeError, match="never connected"):
        conn.send(b"GET / HTTP/1.1\r\n\r\n")

    class _Transport:
        def __init__(self) -> None:
            self.sent: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.sent.append(data)

        def abort(self) -> None:
            pass

    async def go():
        conn.loop, conn.transport = asyncio.get_running_loop(), _Transport()
        del conn._body, conn._fut  # NULL fields: C must not crash on them
        conn.data_received(b"stray")  # no request in flight: the slow path drops the connection
        conn.closed = False
        fut = conn.send(b"GET / HTTP/1.1\r\n\r\n", False, None, None)  # no timeouts given: none armed
        assert conn._body == [] and conn._total == 0.0 and conn.transport.sent
        conn.data_received(PLAIN)
        return await fut

    assert asyncio.run(go())[0] == 200
    with pytest.raises(TypeError):
        conn.send(b"x", head_only=True)  # positional-only, like PyConnCore.send
