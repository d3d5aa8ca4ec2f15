"""`surge hit` behaves the same on both request engines.

`surge hit` over plain HTTP runs on a compiled event loop (engine/_hitloop.c,
wrapped by engine/hit_native.py); HTTPS, or ``SURGE_HIT_ENGINE=python``, runs
the pure-Python loop (engine/hit.py). Users must not be able to tell them apart
except by speed, so every test here runs the real CLI under each engine
(``SURGE_HIT_ENGINE=native|python``) against tests/servers.py and asserts the
same exact outcome: request counts, error typing (http_4xx/5xx, reset,
protocol, timeout, refused), response framing (chunked, Connection: close,
gzip, HEAD), the open model's rate and the latency of a known 20 ms endpoint.

The native engine is skipped where the extension is not built, unless
``SURGE_REQUIRE_NATIVE=1`` (CI that builds it), where that is a failure.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading

import pytest

from conftest import assert_no_traceback, free_port, surge_json
from surge.engine.hit_native import ENGINE_ENV, native_available


def _use_engine(monkeypatch, name: str) -> str:
    if name == "native" and not native_available():
        if os.environ.get("SURGE_REQUIRE_NATIVE") == "1":
            pytest.fail("SURGE_REQUIRE_NATIVE=1 but surge.engine._hitloop is not built (pip install needs a C compiler)")
        pytest.skip("the compiled hit loop (surge.engine._hitloop) is not built")
    monkeypatch.setenv(ENGINE_ENV, name)
    return name


@pytest.fixture(params=["native", "python"])
def engine(request, monkeypatch) -> str:
    """Runs the test once per engine; the CLI subprocess inherits SURGE_HIT_ENGINE."""
    return _use_engine(monkeypatch, request.param)


def hit(url: str, *args: str):
    return surge_json("hit", url, "-w", "1", *args)


# --------------------------------------------------------------------------- counts and rates


def test_closed_model_sends_exactly_n(engine, start_server):
    srv = start_server()
    rc, s, err = hit(srv.url + "/", "-n", "200", "-c", "4")
    assert rc == 0, err
    assert_no_traceback(err)
    assert s["requests"] == 200
    assert s["errors"] == 0
    assert s["names"][0]["status"] == {"2xx": 200}
    assert s["iterations"]["completed"] == 200
    assert srv.stats().get("/") == 200  # not one more on the wire


def test_open_model_keeps_the_rate(engine, test_server):
    rc, s, err = hit(test_server + "/", "--rate", "300", "-d", "3s", "-c", "5")
    assert rc == 0, err
    assert s["open_model"] is True
    assert s["errors"] == 0
    assert s["requests"] == pytest.approx(900, rel=0.02)
    assert s["iterations"]["started"] == pytest.approx(900, rel=0.02)
    assert s["iterations"]["dropped"] == 0
    assert s["rps"] == pytest.approx(300, rel=0.02)


# --------------------------------------------------------------------------- error typing


@pytest.mark.parametrize(("path", "kind", "status"), [
    ("/status/500", "http_5xx", "5xx"),
    ("/status/404", "http_4xx", "4xx"),
    ("/reset", "reset", "err"),
    ("/garbage", "protocol", "err"),
])
def test_errors_are_typed(engine, test_server, path, kind, status):
    rc, s, err = hit(test_server + path, "-n", "50", "-c", "2")
    assert rc == 1, err  # a run with errors exits 1
    assert_no_traceback(err)
    assert s["requests"] == 50
    assert s["errors"] == 50
    assert s["errors_by_type"] == {kind: 50}
    assert s["names"][0]["status"] == {status: 50}


def test_hang_times_out_and_the_run_ends_on_time(engine, test_server):
    res = hit(test_server + "/hang", "-d", "2s", "-c", "2", "--timeout", "0.5s", "--read-timeout", "0.3s")
    rc, s, err = res
    assert rc == 1, err
    assert_no_traceback(err)
    assert s["requests"] >= 4  # 2 connections, one timeout every ~0.3-0.4 s each
    assert s["errors_by_type"] == {"timeout": s["requests"]}
    assert s["duration_s"] <= 2.0 + 0.5 + 0.3  # the run, then at most the 0.5 s total timeout of draining
    assert res.wall < 10, res.wall


def test_refused_port(engine):
    rc, s, err = hit(f"http://127.0.0.1:{free_port()}/", "-d", "1s", "-c", "2", "--no-preflight")
    assert rc == 1
    assert_no_traceback(err)
    assert s["requests"] > 0
    assert s["errors_by_type"] == {"refused": s["requests"]}
    assert s["duration_s"] < 2


# --------------------------------------------------------------------------- framing


@pytest.mark.parametrize("path", ["/chunked", "/close", "/gzip"])
def test_response_framing(engine, test_server, path):
    rc, s, err = hit(test_server + path, "-n", "50", "-c", "2", "--timeout", "5s")
    assert rc == 0, err
    assert_no_traceback(err)
    assert s["requests"] == 50
    assert s["errors"] == 0, s["errors_by_type"]
    assert s["names"][0]["status"] == {"2xx": 50}
    if path == "/close":
        assert s["connections_opened"] >= 50  # one connection per response


def test_head_against_the_test_server(engine, test_server):
    """tests/servers.py answers HEAD with headers only (Content-Length: 2, no body)."""
    rc, s, err = hit(test_server + "/", "-m", "HEAD", "-n", "50", "-c", "2", "--timeout", "2s")
    assert rc == 0, (err, s and s["errors_by_type"])
    assert s["requests"] == 50
    assert s["errors"] == 0, s["errors_by_type"]
    assert s["duration_s"] < 2


@pytest.fixture
def head_server(tmp_path):
    """A compliant HTTP/1.1 server (the stdlib's): HEAD gets Content-Length and no body."""
    (tmp_path / "index.html").write_text("hello\n")

    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(tmp_path)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_head_against_a_compliant_server(engine, head_server):
    """The body a HEAD response announces is never sent: the client must not wait for it."""
    rc, s, err = hit(head_server + "/", "-m", "HEAD", "-n", "20", "-c", "2", "--timeout", "1s")
    assert rc == 0, (err, s and s["errors_by_type"])
    assert s["requests"] == 20
    assert s["errors"] == 0, s["errors_by_type"]
    assert s["duration_s"] < 2


# --------------------------------------------------------------------------- timing


def test_p50_of_a_20ms_endpoint(engine, test_server):
    rc, s, err = hit(test_server + "/delay/20", "-c", "2", "-d", "2s")
    assert rc == 0, err
    assert s["errors"] == 0
    assert s["requests"] > 50
    assert 20.0 <= s["p50"] <= 22.0, s["latency"]


def test_native_schedule_lag_is_small(monkeypatch, test_server):
    """Sanity bound only: the compiled loop wakes on ns timers, not uvloop's 1 ms ones."""
    _use_engine(monkeypatch, "native")
    rc, s, err = hit(test_server + "/", "--rate", "1000", "-d", "2s", "-c", "10")
    assert rc == 0, err
    assert s["requests"] == pytest.approx(2000, rel=0.02)
    # the typical second: one hypervisor steal burst can spoil a second's p99 on a VM
    assert s["generator"]["sched_lag_p99_ms_median"] < 5.0, s["generator"]


# --------------------------------------------------------------------------- engine choice


def _runner(url: str):
    from surge.api.options import Options
    from surge.engine.hit_native import make_hit_runner
    from surge.engine.messages import HitSpec, WorkerPlan
    from surge.engine.recorder import Recorder
    from surge.engine.runtime import Share

    plan = WorkerPlan(index=0, count=1, options=Options(duration=1.0), hit=HitSpec("GET", url, connections=2))
    return make_hit_runner(plan, Recorder(0), Share(0, 1))


def test_make_hit_runner_picks_the_engine(monkeypatch):
    from surge.engine.hit import HitRunner
    from surge.engine.hit_native import NativeHitRunner, NativeUnavailable

    monkeypatch.delenv(ENGINE_ENV, raising=False)
    if native_available():
        assert type(_runner("http://127.0.0.1:8000/")) is NativeHitRunner
    else:
        assert type(_runner("http://127.0.0.1:8000/")) is HitRunner
    assert type(_runner("https://127.0.0.1:8443/")) is HitRunner  # TLS: the Python path
    monkeypatch.setenv(ENGINE_ENV, "python")
    assert type(_runner("http://127.0.0.1:8000/")) is HitRunner
    monkeypatch.setenv(ENGINE_ENV, "native")
    with pytest.raises(NativeUnavailable, match="HTTPS" if native_available() else "not built"):
        _runner("https://127.0.0.1:8443/")


def test_an_engine_that_cannot_be_had_is_a_usage_error(monkeypatch, test_server):
    """SURGE_HIT_ENGINE=native with HTTPS, or a value that is no engine: exit 2, one line, no worker crash."""
    monkeypatch.setenv(ENGINE_ENV, "native")
    rc, _, err = surge_json("hit", "https://127.0.0.1:9/", "-d", "1s", "-w", "1", "--no-preflight")
    assert rc == 2, err
    assert "SURGE_HIT_ENGINE=native: HTTPS targets use the Python path" in err
    assert_no_traceback(err)
    monkeypatch.setenv(ENGINE_ENV, "fast")
    rc, _, err = surge_json("hit", test_server + "/", "-d", "1s", "-w", "1")
    assert rc == 2 and "use auto, native or python" in err


# --------------------------------------------------------------------------- odd servers (QA)


def test_body_delimited_by_close(engine, test_server):
    """HTTP/1.0 without a length: the body ends at the close, and the response is whole."""
    rc, s, err = hit(test_server + "/http10", "-n", "20", "-c", "2", "--timeout", "5s")
    assert rc == 0, err
    assert_no_traceback(err)
    assert s["requests"] == 20
    assert s["errors"] == 0, s["errors_by_type"]


@pytest.mark.parametrize(("path", "kind"), [("/short", "reset"), ("/bighead", "protocol"), ("/status/999", "protocol")])
def test_broken_responses_are_typed_alike(engine, test_server, path, kind):
    """A body cut short, a head without end, a status outside 100-599: the same error on both engines."""
    rc, s, err = hit(test_server + path, "-n", "6", "-c", "2", "--timeout", "5s")
    assert_no_traceback(err)
    assert s["requests"] == 6
    assert s["errors_by_type"] == {kind: 6}
    assert rc == 1  # every request failed


def test_requests_cut_off_at_the_stop_are_counted(engine, test_server):
    """Requests still unanswered after the drain are neither lost nor errors: interrupted."""
    rc, s, err = hit(test_server + "/hang", "-d", "0.5s", "-c", "2", "--timeout", "30s", "--read-timeout", "30s")
    assert_no_traceback(err)
    assert s["requests"] == 0
    assert s["iterations"]["interrupted"] == 2


def test_tls_handshake_never_answered_is_counted():
    """HTTPS to a port that accepts TCP but never speaks: the connects still pending at the
    stop each held an unsent request (closed model): interrupted, not silence."""
    import socket

    with socket.socket() as lsn:
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(16)  # never accepted, never answered: the TLS handshake waits
        url = f"https://127.0.0.1:{lsn.getsockname()[1]}/"
        rc, s, err = hit(url, "-d", "0.5s", "-c", "2", "--no-preflight", "--connect-timeout", "20s")
    assert_no_traceback(err)
    assert s["requests"] == 0
    assert s["iterations"]["interrupted"] == 2
