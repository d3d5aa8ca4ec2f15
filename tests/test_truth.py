"""Timing truth: latency is what the server delivered, measured from the intended start.

These run the real CLI against tests/servers.py on 127.0.0.1. No assertion is
on how fast this machine is; only on what surge reports about a server whose
behaviour is known (a fixed delay, a one-off stall, a fixed schedule).
"""

from __future__ import annotations

import asyncio

import pytest

from conftest import assert_no_traceback, surge_json

SIMPLE = """
async def visit(client):
    await client.get("/")
"""


def test_closed_model_p50_of_a_20ms_endpoint(test_server, scenario_file):
    path = scenario_file("""
        async def visit(client):
            await client.get("/delay/20")
    """)
    rc, s, err = surge_json("run", path, "--vus", "5", "-d", "2s", "-w", "1", "--base-url", test_server)
    assert rc == 0, err
    assert_no_traceback(err)
    assert s["requests"] > 50
    assert s["errors"] == 0
    assert 20.0 <= s["p50"] <= 21.0, s["latency"]
    assert 20.0 <= s["service"]["p50"] <= 21.0
    # closed model: no intended start before the call, so latency == service time
    assert s["latency"]["p50"] == pytest.approx(s["service"]["p50"], abs=0.2)
    assert s["names"][0]["name"] == "/delay/20"
    assert s["names"][0]["status"] == {"2xx": s["requests"]}


def test_open_model_counts_a_server_stall_coordination_free(start_server, scenario_file):
    """A 1 s stall at 200 iterations/s: ~200 arrivals land in it and wait up to 1 s.

    A coordinated-omission-prone tool would report p99 of a few ms; the truth
    (from each arrival's scheduled start) is several hundred ms.
    """
    srv = start_server(stall_after=1.5, stall_for=1.0)
    path = scenario_file(SIMPLE)
    rc, s, err = surge_json("run", path, "--rate", "200", "-d", "4s", "-w", "1",
                            "--base-url", srv.url, "--no-preflight")
    assert rc == 0, err
    assert_no_traceback(err)
    assert s["model"] == "constant-arrival-rate"
    assert s["errors"] == 0
    assert s["requests"] >= 0.97 * 800
    assert s["p99"] >= 300.0, s["latency"]
    assert s["max"] >= 800.0
    assert s["p50"] < 50.0  # most requests are not in the stall
    # the stall is about a quarter of the run: p90 and up must show it
    assert s["p90"] >= 100.0


def test_open_hit_on_few_connections_latency_vs_service(start_server):
    """wrk2's corrected vs uncorrected figures: with 2 connections, requests queue
    behind the stall; their service time is short, their latency is not."""
    srv = start_server(stall_after=1.5, stall_for=1.0)
    rc, s, err = surge_json("hit", srv.url + "/", "--rate", "200", "-c", "2", "-d", "4s", "-w", "1")
    assert rc == 0, err
    assert_no_traceback(err)
    assert s["errors"] == 0
    assert s["requests"] >= 0.97 * 800
    lat, svc = s["latency"], s["service"]
    assert lat["p90"] > 3 * svc["p90"], (lat, svc)
    assert lat["p99"] >= 300.0, lat
    assert svc["p90"] < 100.0, svc  # queued requests were sent after the stall
    assert s["generator"]["bound"] is False


def test_achieved_arrival_rate_run(test_server, scenario_file):
    path = scenario_file(SIMPLE)
    rc, s, err = surge_json("run", path, "--rate", "500", "-d", "3s", "-w", "2", "--base-url", test_server)
    assert rc == 0, err
    assert s["errors"] == 0
    assert s["requests"] == pytest.approx(1500, rel=0.02)
    assert s["iterations"]["started"] == pytest.approx(1500, rel=0.02)
    assert s["iterations"]["dropped"] == 0
    assert s["rps"] == pytest.approx(500, rel=0.02)


def test_achieved_arrival_rate_hit(test_server):
    rc, s, err = surge_json("hit", test_server + "/", "--rate", "500", "-d", "3s", "-w", "2")
    assert rc == 0, err
    assert s["errors"] == 0
    assert s["requests"] == pytest.approx(1500, rel=0.02)
    assert s["rps"] == pytest.approx(500, rel=0.02)


def test_every_started_iteration_is_accounted_for(test_server, scenario_file):
    """Regression: the last arrival handed to an idle VU just before the end was cancelled
    before it ran (counted as started, never sent)."""
    path = scenario_file(SIMPLE)
    rc, s, err = surge_json("run", path, "--rate", "100", "-d", "0.5s", "-w", "1", "--base-url", test_server)
    assert rc == 0, err
    it = s["iterations"]
    assert it["started"] == 50
    assert it["completed"] + it["interrupted"] + it["dropped"] == it["started"], it
    assert s["requests"] == 50


def test_sleep_until_never_wakes_early():
    """Regression: under uvloop, timers are rounded to whole ms of a cached loop clock, so a
    plain timed wait returned up to ~1 ms early and open-model arrivals were sent before their
    intended start (latency from intended start then came out below service time)."""
    import uvloop

    from surge.engine.recorder import Recorder
    from surge.engine.runtime import Runtime

    async def main() -> int:
        from time import monotonic_ns

        rt = Runtime(scenarios=(), recorder=Recorder(0), make_client=None)
        early = 0
        for _ in range(100):
            t = monotonic_ns() + 3_400_000  # rounds to 3 ms in uvloop
            await rt.sleep_until(t)
            early += monotonic_ns() < t
        return early

    assert uvloop.run(main()) == 0


def test_sleep_until_returns_false_on_stop():
    from time import monotonic_ns

    from surge.engine.recorder import Recorder
    from surge.engine.runtime import Runtime

    async def main() -> tuple[bool, float]:
        rt = Runtime(scenarios=(), recorder=Recorder(0), make_client=None)
        asyncio.get_running_loop().call_later(0.05, rt.stop.set)
        t0 = monotonic_ns()
        ok = await rt.sleep_until(t0 + 5_000_000_000)
        return ok, (monotonic_ns() - t0) / 1e9

    ok, took = asyncio.run(main())
    assert ok is False
    assert took < 2.0
