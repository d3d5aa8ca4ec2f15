"""Workload derivation (rates, sessions, think time), the scenario writer and the replay trace file."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from conftest import TESTS
from surge.engine.loader import load_scenarios
from surge.engine.replay_trace import TraceBuilder, load_trace
from surge.traffic.rates import RateCounter, rate_curve, simplify
from surge.traffic.read import open_log
from surge.traffic.record import LogRecord
from surge.traffic.scenario_writer import render_scenario
from surge.traffic.sessions import Sessionizer, fit_think_time, length_table
from surge.traffic.workload import build_workload

T0 = 1_700_000_000.0


def test_constant_rate_is_one_stage():
    c = RateCounter()
    for i in range(1000):
        c.add(T0 + 0.37 + i / 200)
    assert c.mean_rate() == pytest.approx(200, rel=1e-6)
    rc = rate_curve(c)
    assert len(rc.stages) == 1 and rc.stages[0][1] == pytest.approx(200)
    assert rc.stages_total() == pytest.approx(1000, rel=0.01)


def test_whole_second_timestamps_count_the_last_second():
    c = RateCounter()
    for s in range(10):
        for _ in range(30):
            c.add(T0 + s)
    assert c.whole_seconds and c.duration() == 10.0 and c.mean_rate() == 30.0


def test_ramp_and_daily_curve_are_followed_with_few_stages():
    rng = random.Random(7)
    c = RateCounter()
    t = T0
    while t < T0 + 3600:  # an hour: 20 req/s rising to 120 and back
        r = 20 + 100 * math.sin(math.pi * (t - T0) / 3600)
        t += rng.expovariate(r)
        c.add(t)
    rc = rate_curve(c, max_stages=12)
    assert rc.bucket_s == 60 and 2 <= len(rc.stages) <= 12
    assert rc.stages_total() == pytest.approx(c.n, rel=0.05)  # the stages produce the log's volume
    assert max(t for _, t in rc.stages) == pytest.approx(120, rel=0.15)
    assert sum(d for d, _ in rc.stages) == pytest.approx(c.duration(), rel=1e-6)


def test_simplify_keeps_corners():
    pts = np.array([[0, 0], [1, 1], [2, 2], [3, 10], [4, 10], [5, 10]], dtype=float)
    assert simplify(pts, 10, 0.5) == [0, 2, 3, 5]
    assert simplify(pts, 2, 0.5) == [0, 5]


def test_sessions_split_on_inactivity_gap():
    s = Sessionizer(gap_s=60)
    for t in (0, 10, 20, 200, 205):  # two sessions of user a
        s.add("a", T0 + t)
    s.add("b", T0 + 5)
    s.close()
    assert s.lengths == {3: 1, 2: 1, 1: 1}
    assert sorted(s.gaps) == [5, 10, 10]


def test_idle_sessions_are_swept_so_memory_follows_concurrency():
    s = Sessionizer(gap_s=10)
    for i in range(50_000):  # every user makes one request, one per ms... for 50 s
        s.add(f"user{i}", T0 + i / 1000)
    assert len(s.open) < 25_000  # those idle for more than the gap were closed
    s.close()
    assert sum(s.lengths.values()) == 50_000


def test_think_time_fit_recovers_lognormal_and_exponential():
    rng = np.random.default_rng(3)
    ln = fit_think_time(rng.lognormal(math.log(2.0), 0.8, 5000))
    assert ln.kind == "lognormal"
    assert ln.median == pytest.approx(2.0, rel=0.05) and ln.sigma == pytest.approx(0.8, rel=0.05)
    ex = fit_think_time(rng.exponential(3.0, 5000))
    assert ex.kind == "exponential" and ex.mean == pytest.approx(3.0, rel=0.05)
    few = fit_think_time([0.0, 0.0, 1.0])
    assert few.kind == "none" and few.zero_share == pytest.approx(2 / 3)
    assert ln.as_code().startswith("lognormal(median=") and ex.as_code().startswith("exponential(mean=")


def test_length_table_sums_to_one():
    from collections import Counter

    rows = length_table(Counter({i: 100 - i for i in range(1, 60)}), max_rows=10)
    assert len(rows) == 10 and sum(v for _, v in rows) == pytest.approx(1.0)


def _synthetic_log(n_users=40, per_user=6, think=2.0, seed=1):
    rng = random.Random(seed)
    recs = []
    for u in range(n_users):
        t = T0 + rng.uniform(0, 60)
        for k in range(per_user):
            path = f"/products/{rng.randint(1, 999)}" if k % 2 else "/search?q=x"
            recs.append(LogRecord(time=t, method="GET", target=path, status=200, client=f"10.0.0.{u}", user_agent="ua"))
            t += rng.lognormvariate(math.log(think), 0.5)
    return sorted(recs, key=lambda r: r.time)


def test_workload_mix_sessions_and_think_time():
    w = build_workload(_synthetic_log())
    assert [(e.method, e.template) for e in w.endpoints] == [("GET", "/products/{id}"), ("GET", "/search")]
    assert w.endpoints[0].share == pytest.approx(0.5)
    s = w.sessions
    assert s.count == 40 and s.mean_length == 6
    assert s.think.kind == "lognormal" and s.think.median == pytest.approx(2.0, rel=0.15)


@pytest.mark.parametrize("unit", ["request", "session"])
def test_written_scenario_loads_and_carries_the_model(tmp_path, unit):
    w = build_workload(_synthetic_log())
    path = tmp_path / f"model_{unit}.py"
    path.write_text(render_scenario(w, source="shop.log", base_url="http://127.0.0.1:9", unit=unit, out_name=path.name))
    loaded = load_scenarios(str(path))
    o = loaded.options
    assert o.resolved_model() == "ramping-arrival-rate" and o.base_url == "http://127.0.0.1:9"
    assert [s.name for s in loaded.scenarios] == [unit]
    ns: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), ns)  # the data tables are plain Python
    assert [(m[1], m[2]) for m in ns["MIX"]] == [("GET", "/products/{id}"), ("GET", "/search")]
    if unit == "session":
        assert ns["SESSION_LENGTHS"] == [(6, 1.0)] and o.max_vus >= 10
    else:
        total = sum(s.duration for s in o.stages)
        assert total == pytest.approx(w.duration_s, rel=0.01)


def test_model_of_fixture_log_via_reader():
    w = build_workload(open_log(TESTS / "data" / "traffic" / "combined.log"))
    assert w.requests == 5 and w.whole_seconds and w.duration_s == 6.0
    assert w.endpoints[0].template == "/products/{id}" and w.endpoints[0].examples == ("/products/17", "/products/42?ref=home")
    assert {e.template for e in w.endpoints if e.errors} == {"/orders/{id}"}


def test_trace_round_trip_sorted_and_split_round_robin(tmp_path):
    b = TraceBuilder()
    b.add(T0 + 2.0, "POST", "/cart", "/cart", (("X-A", "1"),), b"{}")
    b.add(T0 + 0.0, "GET", "/p/1", "/p/{id}")
    b.add(T0 + 1.0, "GET", "/p/2?x=1", "/p/{id}")
    b.add(T0 + 3.0, "GET", "/p/1", "/p/{id}")
    n, span = b.save(tmp_path / "t.npz")
    assert (n, span) == (4, 3.0)
    whole = load_trace(tmp_path / "t.npz")
    assert whole.offsets.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert [whole.target_table[i] for i in whole.targets] == ["/p/1", "/p/2?x=1", "/cart", "/p/1"]
    assert whole.header_table[whole.headers[2]] == {"X-A": "1"} and whole.body_table[whole.bodies[2]] == b"{}"
    assert whole.headers[0] == -1 and whole.bodies[0] == -1
    w0, w1 = load_trace(tmp_path / "t.npz", 0, 2), load_trace(tmp_path / "t.npz", 1, 2)
    assert w0.offsets.tolist() == [0.0, 2.0] and w1.offsets.tolist() == [1.0, 3.0]
