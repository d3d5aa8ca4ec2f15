"""Arrival slots: open-model arrivals due within one slot start together at its start.

The slot start is the arrival's intended start, so sending there adds no schedule
lag and no generator delay to latency; what changes is only how finely the load
is spread (docs/models.md). Checked on the option, the schedule arithmetic, the
dispatcher, the compiled loop, and end to end from the server's side.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_no_traceback, surge_cli, surge_json
from surge.api.errors import UsageError
from surge.api.options import DEFAULT_ARRIVAL_SLOT_S, Options
from surge.engine import hit_native
from surge.engine.models.arrival import due_arrivals
from surge.engine.models.schedule import RateCurve
from surge.engine.recorder import Recorder
from surge.engine.runtime import NS, Runtime, Share

MS = 1_000_000


# --------------------------------------------------------------------------- option


@pytest.mark.parametrize(("given", "ns"), [
    (None, round(DEFAULT_ARRIVAL_SLOT_S * NS)), ("1ms", MS), ("250us", 250_000), ("0", 0), (0.002, 2 * MS),
])
def test_option_values(given, ns):
    assert Options(arrival_slot=given).normalised().slot_ns() == ns


def test_a_flag_of_0_overrides_the_scenario_slot():
    scenario = Options.from_mapping({"arrival_slot": "10ms", "rate": 5})
    assert scenario.merged(Options(arrival_slot=0.0)).slot_ns() == 0
    assert scenario.merged(Options()).slot_ns() == 10 * MS


@pytest.mark.parametrize("bad", ["1s", "fast", -1, True, "nan", "3ms", "0.3ms", "50us", 1e-6])
def test_bad_option_values(bad):
    with pytest.raises(UsageError, match="arrival.slot"):
        Options.from_mapping({"arrival_slot": bad})


def test_cli_flag_is_checked_before_anything_runs():
    r = surge_json("hit", "http://127.0.0.1:9/", "--rate", "5", "--arrival-slot", "1s")
    assert r.rc == 2
    assert "invalid --arrival-slot 1000ms" in r.stderr and "divides 1 s" in r.stderr
    assert_no_traceback(r.stderr)


# --------------------------------------------------------------------------- arithmetic


def runtime(slot_ns: int, start_ns: int = 7_000_000_123) -> Runtime:
    return Runtime(scenarios=(), recorder=Recorder(start_ns), make_client=None, share=Share(),
                   start_ns=start_ns, slot_ns=slot_ns)


def test_slotted_rounds_down_to_the_slot_start_counted_from_the_run_start():
    rt = runtime(MS)
    assert rt.slotted(0) == rt.start_ns
    assert rt.slotted(999_999) == rt.start_ns
    assert rt.slotted(1_000_000) == rt.start_ns + MS
    assert rt.slotted(2_500_000) == rt.start_ns + 2 * MS
    assert runtime(0).slotted(2_500_000) == 7_000_000_123 + 2_500_000  # 0: the exact time


@pytest.mark.parametrize("slot", [250_000, MS, 8 * MS, 40 * MS])
def test_slots_never_move_an_arrival_into_another_second(slot):
    rt = runtime(slot)
    offs = np.random.default_rng(1).integers(0, 20 * NS, 10_000)
    before = offs // NS
    after = np.array([rt.slotted(int(o)) - rt.start_ns for o in offs]) // NS
    assert (before == after).all()


# --------------------------------------------------------------------------- dispatcher


def _dispatch(slot_ns: int) -> tuple[Runtime, list[int], list[int]]:
    async def go():
        rt = runtime(slot_ns, start_ns=time.monotonic_ns() + 20 * MS)
        due, sent = [], []
        curve = RateCurve.constant(1000.0, 0.2)
        async for t, now in due_arrivals(rt, curve, poisson=False, share=Share(), end_ns=rt.at_ns(0.2)):
            due.append(t)
            sent.append(now)
        return rt, due, sent

    return asyncio.run(go())


def test_dispatcher_sends_each_slot_together_from_its_start():
    rt, due, sent = _dispatch(5 * MS)
    offs = np.array(due) - rt.start_ns
    assert len(due) == 200  # the count is the curve's: slots only move arrivals
    assert (offs % (5 * MS) == 0).all()
    assert np.bincount(offs // (5 * MS)).tolist() == [5] * 40
    assert (np.array(sent) >= np.array(due)).all()  # never before the slot starts


def test_arrivals_on_a_slot_boundary_stay_in_their_slot():
    """100/s in 10 ms slots: one arrival per slot. Truncating 2.01 s * 1e9 (2009999999.99...)
    put some a whole slot early, leaving one slot empty and the one before it with two."""
    async def go():
        rt = runtime(10 * MS, start_ns=time.monotonic_ns() + 5 * MS)
        curve = RateCurve.constant(100.0, 3.0)
        return rt, [t async for t, _ in due_arrivals(rt, curve, poisson=False, share=Share(),
                                                     end_ns=rt.at_ns(3.0))]

    rt, due = asyncio.run(go())
    slots = (np.array(due) - rt.start_ns) // (10 * MS)
    assert slots.tolist() == list(range(300))


def test_slot_zero_keeps_each_arrival_at_its_own_time():
    rt, due, _ = _dispatch(0)
    offs = np.array(due) - rt.start_ns
    assert len(due) == 200
    assert len(set(offs.tolist())) == 200
    assert np.diff(offs).max() - np.diff(offs).min() <= 1  # 1 ms apart, to the ns


# --------------------------------------------------------------------------- compiled loop


@pytest.mark.skipif(not hit_native.native_available(), reason="compiled hit loop not built")
def test_compiled_loop_wakes_at_slot_starts_counted_from_its_base():
    """Slots of 20 ms counted from a base 10 ms off the clock's own 20 ms grid: waking
    on the clock's grid would send every arrival ~10 ms late."""
    from test_hitloop_parser import ERROR_KINDS, GET, drive

    q = 20 * MS
    base = (time.monotonic_ns() // q + 5) * q + 10 * MS
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(8)
        port = ls.getsockname()[1]
        stop = threading.Event()
        threading.Thread(target=_answer_all, args=(ls, stop), daemon=True).start()
        e = hit_native._hitloop.Engine(
            socket.AF_INET, "127.0.0.1", port, GET, 2, False, -1, base + 10 * q,
            (NS, NS, 2 * NS), ERROR_KINDS, False, q, base)
        arrivals = base + q * np.arange(1, 9, dtype=np.int64)
        r = drive(e, during=lambda e: e.feed(arrivals.tobytes()))
        stop.set()
    assert r.starts.tolist() == arrivals.tolist()
    lags = r.lags[:, 1]
    assert np.median(lags) < 5 * MS, lags


def _answer_all(ls: socket.socket, stop: threading.Event, seen: list[int] | None = None) -> None:
    """A tiny keep-alive server: answers every request on every connection with 200,
    noting in ``seen`` the monotonic ns at which each arrived."""
    ls.settimeout(0.2)
    while not stop.is_set():
        try:
            c, _ = ls.accept()
        except OSError:
            continue
        threading.Thread(target=_serve_conn, args=(c, stop, seen), daemon=True).start()


def _serve_conn(c: socket.socket, stop: threading.Event, seen: list[int] | None) -> None:
    c.settimeout(0.2)
    buf = b""
    with c:
        while not stop.is_set():
            try:
                data = c.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            now = time.monotonic_ns()
            buf += data
            while b"\r\n\r\n" in buf:
                _, buf = buf.split(b"\r\n\r\n", 1)
                if seen is not None:
                    seen.append(now)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


# --------------------------------------------------------------------------- end to end


@pytest.fixture
def stamping_server():
    """(url, list of monotonic ns at which each request arrived)."""
    seen: list[int] = []
    stop = threading.Event()
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    threading.Thread(target=_answer_all, args=(ls, stop, seen), daemon=True).start()
    yield f"http://127.0.0.1:{ls.getsockname()[1]}", seen
    stop.set()
    ls.close()


def _close_gaps(seen: list[int]) -> float:
    """Share of the gaps between consecutive requests (as the server saw them) under 1.5 ms."""
    gaps = np.diff(np.sort(np.array(seen)))
    return float((gaps < 1.5 * MS).mean())


@pytest.mark.parametrize("how", [
    pytest.param(("hit", {}), id="hit"),
    pytest.param(("hit", {"SURGE_HIT_ENGINE": "python"}), id="hit-python"),
    pytest.param(("run", {}), id="run"),
])
def test_the_server_sees_slots(stamping_server, scenario_file, monkeypatch, how):
    """400 req/s in 10 ms slots: 4 requests at once every 10 ms, so most gaps the server
    sees are tiny; with --arrival-slot 0 they are all ~2.5 ms."""
    url, seen = stamping_server
    cmd, env = how
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    if cmd == "hit":
        args = ["hit", url, "-c", "8"]
    else:
        path = scenario_file("""
            async def visit(client):
                await client.get("/")
        """)
        args = ["run", str(path), "--base-url", url, "--vus", "8"]
    shares = {}
    for slot in ("10ms", "0"):
        seen.clear()
        rc, s, err = surge_json(*args, "--rate", "400", "-d", "1.5s", "-w", "1", "--arrival-slot", slot)
        assert rc == 0, err
        assert s["requests"] == pytest.approx(600, abs=6)
        assert s["errors"] == 0
        shares[slot] = _close_gaps(seen)
    assert shares["10ms"] > 0.6, shares  # 3 of every 4 gaps are within a slot
    assert shares["0"] < 0.4, shares


def test_the_slot_is_recorded_with_open_runs_only(stamping_server, tmp_path):
    url, _ = stamping_server
    metas = {}
    for name, extra in (("open", ["--rate", "50", "--arrival-slot", "2ms"]), ("default", ["--rate", "50"]),
                        ("closed", ["-n", "20"])):
        rc, s, err = surge_json("hit", url, "-d", "0.5s", "-w", "1", "--out", str(tmp_path / name), *extra)
        assert rc == 0, err
        metas[name] = json.loads((Path(s["run_dir"]) / "meta.json").read_text())
    assert metas["open"]["arrival_slot_ms"] == 2.0
    assert metas["default"]["arrival_slot_ms"] == DEFAULT_ARRIVAL_SLOT_S * 1000
    assert metas["closed"]["arrival_slot_ms"] is None
    html = tmp_path / "r.html"
    r = surge_cli("report", str(tmp_path / "open" / metas["open"]["run_id"]), "-o", str(html))
    assert r.rc == 0, r
    assert "arrival slot" in html.read_text() and "2 ms" in html.read_text()


@pytest.mark.parametrize("engine", ["native", "python"])
def test_few_connections_carry_more_than_one_request_per_slot(stamping_server, monkeypatch, engine):
    """2 connections at 2,000 req/s against a ~0.1 ms server: each connection must carry
    many requests per 2 ms slot. The compiled loop used to poll only at slot starts while
    arrivals waited for a connection: 1,000 req/s at most, and latency in the 100s of ms."""
    if engine == "native" and not hit_native.native_available():
        pytest.skip("compiled hit loop not built")
    monkeypatch.setenv("SURGE_HIT_ENGINE", engine)
    url, _ = stamping_server
    rc, s, err = surge_json("hit", url, "-c", "2", "--rate", "2000", "-d", "1.5s", "-w", "1")
    assert rc == 0, err
    assert s["requests"] == pytest.approx(3000, abs=30)
    assert s["rps"] > 1800
    assert s["p50"] < 20.0, s["latency"]
