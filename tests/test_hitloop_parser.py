"""The compiled hit loop (engine/_hitloop.c) parses HTTP/1.1 responses exactly right.

Each test drives ``_hitloop.Engine`` directly against a tiny scripted raw-TCP
server (a thread on 127.0.0.1) that answers each request with a scripted byte
sequence, optionally in pieces with short sleeps between them (so they arrive
in separate reads), closing or resetting the connection, or never answering.
The records the Engine produces (intended, send, first, done, status, bytes,
error kind) are checked for: Content-Length and chunked framing split at every
byte boundary and dripped a byte at a time (chunk extensions, uppercase hex,
trailers, odd header case, 1xx interim responses, 204/304, a status line without
a reason phrase, HTTP/1.0 keep-alive), responses ended by closing the
connection, HEAD, typed failures (protocol, reset, timeout) after which the
loop keeps going, the open model's schedule and timestamps, and stop().

Skipped where the extension is not built, unless ``SURGE_REQUIRE_NATIVE=1``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from surge.api.errors import ErrorKind
from surge.engine import hit_native
from surge.engine.hit_native import ERROR_KINDS, native_available

REQUIRE = os.environ.get("SURGE_REQUIRE_NATIVE") == "1"
pytestmark = pytest.mark.skipif(not native_available() and not REQUIRE,
                                reason="the compiled hit loop (surge.engine._hitloop) is not built")


@pytest.fixture(autouse=True)
def _native():
    if not native_available():  # only reached with SURGE_REQUIRE_NATIVE=1
        pytest.fail("SURGE_REQUIRE_NATIVE=1 but surge.engine._hitloop is not built")


MS = 1_000_000
INTENDED, SEND, FIRST, DONE, STATUS, BYTES, KIND = range(7)
GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
HEAD = b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n"
CLOSE, RESET, HANG = "close", "reset", "hang"  # script steps besides bytes (send) and floats (sleep)
OK200 = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class ScriptServer:
    """Raw TCP server: answers the i-th request (over all connections) with script(i)."""

    def __init__(self, script) -> None:
        self.script = script if callable(script) else (lambda i: script)
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.lsock.settimeout(0.1)
        self.port = self.lsock.getsockname()[1]
        self.requests = self.conns = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                s, _ = self.lsock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                self.conns += 1
                self.socks.append(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s: socket.socket) -> None:
        s.settimeout(5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        with s, contextlib.suppress(OSError):  # closed on every way out
            while not self.stopped.is_set():
                while b"\r\n\r\n" not in buf:
                    data = s.recv(65536)
                    if not data:
                        return
                    buf += data
                buf = buf.split(b"\r\n\r\n", 1)[1]
                with self.lock:
                    i, self.requests = self.requests, self.requests + 1
                for step in self.script(i):
                    if isinstance(step, bytes):
                        s.sendall(step)
                    elif isinstance(step, float):
                        time.sleep(step)
                    else:  # CLOSE, RESET or HANG: this connection is done
                        if step == RESET:
                            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.stopped.wait(5 if step == HANG else 0)
                        return

    def close(self) -> None:
        self.stopped.set()
        self.lsock.close()
        with self.lock:
            for s in self.socks:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def serve():
    servers: list[ScriptServer] = []

    def start(script) -> ScriptServer:
        servers.append(ScriptServer(script))
        return servers[-1]

    yield start
    for srv in servers:
        srv.close()


def engine(port, *, n=-1, closed=True, head=False, read_s=1.0, end_s=3.0, quantum_ns=0):
    assert end_s <= 3.0
    return hit_native._hitloop.Engine(
        socket.AF_INET, "127.0.0.1", port, HEAD if head else GET, 1, closed, n,
        time.monotonic_ns() + int(end_s * 1e9), (1_000_000_000, int(read_s * 1e9), 2_000_000_000),
        ERROR_KINDS, head, quantum_ns)


def drive(e, during=None) -> SimpleNamespace:
    """e.run() in a daemon thread (a hang fails the test instead of hanging it); its results."""
    out = SimpleNamespace()

    def body() -> None:
        try:
            e.run()
        except BaseException as exc:  # re-raised in the test's thread
            out.exc = exc
        out.returned_ns = time.monotonic_ns()

    t0 = time.monotonic_ns()
    th = threading.Thread(target=body, daemon=True)
    th.start()
    if during is not None:
        during(e)
    th.join(8)
    if th.is_alive():
        e.stop(True)
        th.join(2)
        pytest.fail("Engine.run() did not return")
    if hasattr(out, "exc"):
        raise out.exc
    recs, lags, starts, drops = e.harvest()
    out.rows = np.frombuffer(recs, np.int64).reshape(-1, 7)
    out.lags = np.frombuffer(lags, np.int64).reshape(-1, 2)
    out.starts, out.drops = np.frombuffer(starts, np.int64), np.frombuffer(drops, np.int64)
    out.wall = (out.returned_ns - t0) / 1e9
    out.connects = e.connects
    return out


def assert_rows(rows, n: int, status: int, nbytes: int) -> None:
    """n records, all OK with this status and size."""
    assert rows[:, KIND].tolist() == [ErrorKind.OK] * n
    assert rows[:, STATUS].tolist() == [status] * n
    assert rows[:, BYTES].tolist() == [nbytes] * n


def split_everywhere(resp: bytes):
    """Script: request k is answered with resp split in two at byte k (0: one piece);
    the last request gets it one byte at a time."""
    def script(i):
        if i == len(resp):
            return [x for j in range(len(resp)) for x in (resp[j:j + 1], 0.001)]
        return [resp] if i == 0 else [resp[:i], 0.003, resp[i:]]
    return script


CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;foo=bar\r\nhello\r\n"
           b"A\r\n0123456789\r\n1F\r\n" + b"x" * 31 + b"\r\n0\r\nX-Trailer: yes\r\n\r\n")


@pytest.mark.parametrize(("resp", "status"), [
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-A: b\r\n\r\n0123456789", 200, id="content-length"),
    pytest.param(CHUNKED, 200, id="chunked"),
    pytest.param(b"HTTP/1.1 200 OK\r\ncontent-LENGTH: \t 5\r\n\r\nhello", 200, id="odd-case-length"),
    pytest.param(b"HTTP/1.1 201 Created\r\nTRANSFER-encoding:  Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 201,
                 id="odd-case-chunked"),
    pytest.param(b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", 200, id="no-reason-phrase"),
    pytest.param(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 200, id="bare-lf-line-ends"),
    pytest.param(b"HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\nok", 200, id="empty-reason-phrase"),
    pytest.param(b"HTTP/1.1 100 Continue\r\n\r\n" + OK200, 200, id="100-continue"),
    pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", 204, id="204"),
    pytest.param(b'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: "x"\r\n\r\n', 304, id="304"),
    pytest.param(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 200,
                 id="http10-keep-alive"),
])
def test_keep_alive_framing_split_at_every_byte(serve, resp, status):
    srv = serve(split_everywhere(resp))
    r = drive(engine(srv.port, n=len(resp) + 1))
    assert_rows(r.rows, len(resp) + 1, status, len(resp))
    assert r.connects == 1 and srv.conns == 1  # framed exactly: the connection was reused
    assert (r.rows[:, FIRST] >= r.rows[:, SEND]).all() and (r.rows[:, DONE] >= r.rows[:, FIRST]).all()


@pytest.mark.parametrize("steps", [
    pytest.param([b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", CLOSE], id="conn-close"),
    pytest.param([b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\no", 0.003, b"k", 0.1, CLOSE],
                 id="conn-close-server-lingers"),
    pytest.param([b"HTTP/1.1 200 OK\r\n\r\n", 0.003, b"until", 0.003, b" close", 0.003, CLOSE],
                 id="read-until-close"),
    pytest.param([b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", CLOSE], id="http10"),
    pytest.param([b"HTTP/1.0 200 OK\r\n\r\nbody", CLOSE], id="http10-until-close"),
])
def test_responses_that_end_the_connection(serve, steps):
    srv = serve(steps)
    r = drive(engine(srv.port, n=3))
    size = sum(len(s) for s in steps if isinstance(s, bytes))
    assert_rows(r.rows, 3, 200, size)
    assert r.connects == 3 and srv.conns == 3  # one connection per request, reopened each time


@pytest.mark.parametrize("resp", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
], ids=["content-length", "chunked"])
def test_head_response_has_no_body(serve, resp):
    srv = serve([resp])
    r = drive(engine(srv.port, n=3, head=True))
    assert_rows(r.rows, 3, 200, len(resp))
    assert r.connects == 1


def big_head(size: int) -> bytes:
    """A 200 whose header block (status line to the blank line) is `size` bytes, then its body."""
    return b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (size - 47) + b"\r\nContent-Length: 2\r\n\r\nok"


def test_header_block_of_exactly_64k_is_accepted(serve):
    srv = serve([big_head(65536)])
    r = drive(engine(srv.port, n=2))
    assert_rows(r.rows, 2, 200, 65538)
    assert r.connects == 1


BIG_HEAD, OVER_HEAD = big_head(70_000), big_head(65537)


@pytest.mark.parametrize(("steps", "kind"), [
    pytest.param([b"SSH-2.0-OpenSSH_9.6\r\n\r\n"], ErrorKind.PROTOCOL, id="garbage"),
    pytest.param([b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok"], ErrorKind.PROTOCOL, id="bad-code"),
    # not HTTP and no blank line ever comes: caught at the first bytes, not at a timeout
    pytest.param([b"SSH-2.0-OpenSSH_9.6\r\n", HANG], ErrorKind.PROTOCOL, id="banner-then-silence"),
    pytest.param([b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok"], ErrorKind.PROTOCOL, id="four-digit-code"),
    pytest.param([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"],
                 ErrorKind.PROTOCOL, id="chunk-without-crlf"),
    pytest.param([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"],
                 ErrorKind.PROTOCOL, id="conflicting-lengths"),
    pytest.param([b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nok"],
                 ErrorKind.PROTOCOL, id="length-overflow"),
    pytest.param([b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n"], ErrorKind.PROTOCOL, id="bad-length"),
    pytest.param([BIG_HEAD], ErrorKind.PROTOCOL, id="head-70k"),
    pytest.param([OVER_HEAD], ErrorKind.PROTOCOL, id="head-64k-plus-1"),
    pytest.param([OK200 + OK200], ErrorKind.PROTOCOL, id="two-responses"),
    pytest.param([b"HTTP/1.1 200 OK\r\nContent-Len", 0.003, CLOSE], ErrorKind.RESET, id="close-mid-head"),
    pytest.param([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10, 0.005, RESET],
                 ErrorKind.RESET, id="reset-mid-body"),
    pytest.param([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 0.005, CLOSE],
                 ErrorKind.RESET, id="close-mid-chunk"),
])
def test_bad_response_is_typed_and_the_loop_goes_on(serve, steps, kind):
    srv = serve(lambda i: steps if i == 0 else [OK200])
    r = drive(engine(srv.port, n=3))
    assert len(r.rows) == 3 and (r.rows[0, KIND], r.rows[0, STATUS]) == (kind, 0)
    assert_rows(r.rows[1:], 2, 200, len(OK200))
    if steps[0] in (BIG_HEAD, OVER_HEAD):  # failed once the 64 KiB header buffer was full
        assert 65536 <= r.rows[0, BYTES] <= len(steps[0])
    else:  # every byte sent before the failure was read and counted
        assert r.rows[0, BYTES] == sum(len(s) for s in steps if isinstance(s, bytes))
    assert r.connects == 2  # the failed connection was closed and a new one opened


def test_no_answer_times_out_after_the_read_timeout(serve):
    srv = serve([HANG])
    r = drive(engine(srv.port, n=1, read_s=0.2))
    assert r.rows.shape == (1, 7)
    row = r.rows[0]
    assert (row[KIND], row[STATUS], row[BYTES], row[FIRST]) == (ErrorKind.TIMEOUT, 0, 0, 0)
    assert 200 * MS <= row[DONE] - row[SEND] <= 450 * MS  # swept every 100 ms
    assert r.wall < 1.0


@pytest.mark.parametrize("quantum_ns", [0, 500_000])
def test_open_model_schedule(serve, quantum_ns):
    srv = serve([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0.002, b"hello"])
    e = engine(srv.port, closed=False, end_s=0.5, quantum_ns=quantum_ns)
    arrivals = time.monotonic_ns() + 100 * MS + 10 * MS * np.arange(5, dtype=np.int64)
    r = drive(e, during=lambda e: e.feed(arrivals.tobytes()))
    assert r.starts.tolist() == arrivals.tolist()
    assert r.drops.size == 0
    assert r.lags[:, 0].tolist() == arrivals.tolist()
    assert (r.lags[:, 1] >= 0).all() and (r.lags[:, 1] < 20 * MS).all()
    rows = r.rows[np.argsort(r.rows[:, INTENDED])]
    assert rows[:, INTENDED].tolist() == arrivals.tolist()
    assert_rows(rows, 5, 200, 43)
    assert (rows[:, SEND] >= rows[:, INTENDED]).all()
    assert (rows[:, SEND] - rows[:, INTENDED] < 20 * MS).all()
    assert (rows[:, FIRST] > rows[:, SEND]).all()
    assert (rows[:, DONE] >= rows[:, FIRST] + 1 * MS).all()  # the body came ~2 ms after the head
    assert (rows[:, DONE] <= r.returned_ns).all()
    assert r.connects == 1


@pytest.mark.parametrize(("steps", "hard"), [
    pytest.param([0.02, OK200], False, id="soft"),
    pytest.param([0.02, OK200], True, id="hard"),
    pytest.param([HANG], True, id="hard-in-flight-never-answered"),
])
def test_stop_from_another_thread(serve, steps, hard):
    srv = serve(steps)
    e = engine(srv.port, end_s=3.0, read_s=2.0)
    stopped = {}

    def stop_soon(e) -> None:
        time.sleep(0.1)
        stopped["at"] = time.monotonic_ns()
        e.stop(hard)

    r = drive(e, during=stop_soon)
    assert (r.returned_ns - stopped["at"]) / 1e9 < 1.5
    assert set(r.rows[:, KIND].tolist()) <= {ErrorKind.OK}
    if steps != [HANG]:
        assert 1 <= len(r.rows) <= 7  # ~20 ms each for ~100 ms
        assert (r.rows[:, DONE] <= r.returned_ns).all()


def test_early_answer_to_a_large_request_body_closes_the_connection(serve):
    """A 413 sent after the head, before the 8 MiB body is written: the rest of the body
    must not be taken for the next request, and the half-written send must not spin."""
    big = b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n\r\n" + b"x" * 8_388_608
    answer = b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n"
    srv = serve([answer, 0.05, CLOSE])
    e = hit_native._hitloop.Engine(
        socket.AF_INET, "127.0.0.1", srv.port, big, 1, True, 3, time.monotonic_ns() + 3_000_000_000,
        (1_000_000_000, 1_000_000_000, 2_000_000_000), ERROR_KINDS, False, 0)
    t0 = time.process_time()
    r = drive(e)
    assert len(r.rows) == 3
    assert set(r.rows[:, STATUS].tolist()) == {413}
    assert set(r.rows[:, KIND].tolist()) == {ErrorKind.HTTP_4XX}
    assert r.connects == 3  # never reused after an early answer
    assert time.process_time() - t0 < 2.0  # no busy loop on the pending write


def test_arrivals_due_just_before_the_end_are_sent(serve):
    """In tick mode the last wake-up lands after the end: what fell due before it still goes."""
    srv = serve(lambda i: [OK200])
    end = time.monotonic_ns() + 300 * MS
    e = hit_native._hitloop.Engine(
        socket.AF_INET, "127.0.0.1", srv.port, GET, 3, False, -1, end,
        (1_000_000_000, 1_000_000_000, 2_000_000_000), ERROR_KINDS, False, 5_000_000)  # 5 ms quantum
    arrivals = end - np.array([3, 2, 1], dtype=np.int64) * 100_000  # 300, 200, 100 us before the end
    r = drive(e, during=lambda e: e.feed(arrivals.tobytes()))
    assert r.drops.size == 0  # one idle connection for each
    assert r.starts.tolist() == arrivals.tolist()
    assert sorted(r.rows[:, INTENDED].tolist()) == arrivals.tolist()
