"""Pacing: iterations start every N s whatever they take; overruns start at once and are counted."""

from __future__ import annotations

import asyncio

import pytest
from tests.conftest import surge_json

from surge.api.context import current_sink
from surge.api.think import iteration_start, pace, pacing_delay


def test_pacing_delay():
    assert pacing_delay(0, 2.0, 500_000_000) == pytest.approx(1.5)
    assert pacing_delay(0, 2.0, 2_500_000_000) == pytest.approx(-0.5)


class Sink:
    def __init__(self) -> None:
        self.checks: list[tuple[str, bool]] = []

    def record_check(self, name: str, passed: bool) -> None:
        self.checks.append((name, passed))


def test_pace_overrun_returns_at_once_and_counts():
    from time import monotonic_ns

    async def go():
        sink = Sink()
        current_sink.set(sink)
        iteration_start.set(monotonic_ns() - 3_000_000_000)  # started 3 s ago
        on_time = await asyncio.wait_for(pace(1.0), timeout=0.5)
        return on_time, sink.checks

    on_time, checks = asyncio.run(go())
    assert on_time is False and checks == [("pacing", False)]


SCEN = """
from surge import pace, scenario, sleep

@scenario
async def s(client, vu):
    await client.get("/")
    # every 4th iteration overruns the 0.4 s pacing
    await sleep(0.5 if vu.iteration % 4 == 3 else 0.05)
    await pace(0.4)
"""

PLAIN = """
from surge import scenario

@scenario
async def s(client):
    await client.get("/")
"""


def test_pace_in_scenario(scenario_file, test_server):
    rc, data, err = surge_json("run", scenario_file(SCEN), "-b", test_server, "--vus", "2", "-d", "3s", "-w", "1")
    assert rc == 0, err
    (chk,) = [c for c in data["checks"] if c["name"] == "pacing"]
    # per VU: 0.4 s per on-time iteration, 0.5 s for the overrun one, ~1.7 s per 4 -> ~7 in 3 s
    assert 10 <= data["requests"] <= 16
    assert chk["fails"] >= 2 and chk["passes"] >= 6
    assert chk["fails"] == pytest.approx(data["requests"] / 4, abs=2)


def test_pacing_option(scenario_file, test_server):
    """--pacing 0.5s: 2 VUs start an iteration every 0.5 s (2 s -> 4 each), not back to back."""
    rc, data, err = surge_json("run", scenario_file(PLAIN), "-b", test_server, "--vus", "2", "-d", "2s",
                               "--pacing", "500ms", "-w", "1")
    assert rc == 0, err
    assert 7 <= data["requests"] <= 9
    (chk,) = [c for c in data["checks"] if c["name"] == "pacing"]
    assert chk["fails"] == 0


LONG_PACE = """
from surge import pace, scenario

@scenario
async def s(client):
    await client.get("/")
    await pace(20)
"""


def test_pace_longer_than_the_run_ends_with_the_schedule(scenario_file, test_server):
    """A pace() beyond the run's end returns at the end: the iteration completes, the run
    is not stretched by the graceful stop, nothing is counted as interrupted."""
    rc, data, err = surge_json("run", scenario_file(LONG_PACE), "-b", test_server, "--vus", "2", "-d", "2s",
                               "--graceful-stop", "5s", "-w", "1")
    assert rc == 0, err
    assert data["duration_s"] < 4.0
    assert data["iterations"]["completed"] == 2 and data["iterations"]["interrupted"] == 0
