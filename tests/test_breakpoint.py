"""Breakpoint search: step verdicts and the next-rate policy on synthetic steps (pure), and one
search against a server of known capacity (marked: ~35 s)."""

from __future__ import annotations

import pytest
from tests.capacity_server import CapacityServer
from tests.conftest import assert_no_traceback, error_lines, surge_cli, surge_json

from surge.analysis.breakpoint import (
    Criteria,
    SearchPolicy,
    bracket,
    conclude,
    in_window,
    judge_step,
    next_rate,
    window,
)
from surge.analysis.observe import observe
from surge.analysis.thresholds import parse_threshold
from surge.metrics.histogram import Histogram
from surge.metrics.stats import RequestStats, SecondStats

P95 = parse_threshold("p95<300ms")
ERR = parse_threshold("error_rate<1%")


def rows(rate: float, seconds: int = 6, p50=20.0, p95=30.0, errors=0, dropped=0, achieved=None) -> list[dict]:
    """Synthetic per-second rows; p50/p95 may be a list (one value per second)."""
    out = []
    for t in range(seconds):
        n = int(achieved if achieved is not None else rate)
        out.append({"t": t, "requests": n, "errors": errors, "iterations": n, "dropped": dropped,
                    "p50": p50[t] if isinstance(p50, list) else p50,
                    "p95": p95[t] if isinstance(p95, list) else p95, "p99": 40.0})
    return out


def hist(*ms: float) -> Histogram:
    """A latency histogram (ns) holding the given values in ms."""
    h = Histogram()
    h.record_many([int(v * 1e6) for v in ms])
    return h


def second(t: int, latencies_ms: list[float]) -> tuple[SecondStats, dict]:
    """One second of a URL run: its stats (for the window's histograms) and its row."""
    from surge.metrics.aggregate import second_row

    st = SecondStats(second=t, iterations=len(latencies_ms), started=len(latencies_ms))
    st.requests[("hit", "/", "GET", "2xx")] = RequestStats(count=len(latencies_ms), latency=hist(*latencies_ms))
    return st, second_row(st)


# --------------------------------------------------------------------------- step verdict


def test_window_leaves_out_warmup_and_graceful_stop():
    r = rows(10, seconds=8)
    assert [x["t"] for x in window(r, 2.0, 6.0)] == [2, 3, 4, 5]
    assert [t for t in range(8) if in_window(t, 2.0, 6.0)] == [2, 3, 4, 5]
    assert [t for t in range(8) if in_window(t, 1.5, 5.5)] == [2, 3, 4]  # whole seconds only
    s = judge_step(10, r, duration_s=6, criteria=Criteria(warmup_s=2.0))
    assert s.window == (2, 6) and s.seconds == 4 and s.to_json()["window"] == [2, 6]


def test_healthy_step_passes():
    s = judge_step(100, rows(100), [(P95, 30.0), (ERR, 0.0)], duration_s=6, latency=hist(20, 25, 30))
    assert s.passed and s.reasons == () and s.achieved == 100 and s.seconds == 5
    assert s.load == pytest.approx(0.1)
    assert (s.p50, s.p95, s.p99) == pytest.approx((25, 30, 30), rel=0.01)


def test_percentiles_without_a_histogram_are_unknown_not_guessed():
    s = judge_step(100, rows(100), duration_s=6)
    assert (s.p50, s.p95, s.p99) == (None, None, None)


def test_sustained_slo_breach_fails_with_units():
    s = judge_step(100, rows(100, p95=400.0), [(P95, 400.0)], duration_s=6)
    assert not s.passed and s.reasons[0] == "SLO p95<300ms failed: p95 400.0 ms > 300 ms"
    e = judge_step(100, rows(100, errors=5), [(ERR, 0.05)], duration_s=6)
    assert e.reasons[0] == "SLO error_rate<1% failed: error_rate 5.00 % > 1 %"
    tagged = parse_threshold("p99{name:/a}<1s")
    t = judge_step(100, rows(100), [(tagged, 1500.0)], duration_s=6)
    assert t.reasons[0] == "SLO p99{name:/a}<1s failed: p99{name:/a} 1,500.0 ms > 1 s"
    none = judge_step(100, rows(100), [(tagged, None)], duration_s=6)
    assert none.reasons[0] == "SLO p99{name:/a}<1s failed: p99{name:/a}: no data"


def test_table_percentiles_are_the_slo_window_not_medians_of_seconds():
    """The step's p95 is read from the same merged histogram as the SLO value (the tutorial
    showed p95 355.4 ms in the table next to 'failed (359.7)')."""
    from surge.cli.breakpoint_cmd import WindowCollector

    per_second = {
        0: [900.0] * 50,                          # warm-up: left out
        1: [10.0] * 45 + [200.0] * 5,             # per-second p95 200
        2: [10.0] * 40 + [360.0] * 10,            # per-second p95 360
        3: [10.0] * 48 + [400.0] * 2,             # per-second p95 10
        4: [10.0] * 44 + [380.0] * 6,             # per-second p95 380
        5: [5000.0] * 50,                         # graceful stop: left out
    }
    collector, all_rows = WindowCollector(1.0, 5.0), []
    for t, lat in per_second.items():
        st, row = second(t, lat)
        all_rows.append(row)
        collector.second(st, row)
    assert [r["t"] for r in collector.agg.rows] == [1, 2, 3, 4]
    observed = observe(P95, collector.agg, len(collector.agg.rows))
    s = judge_step(50, all_rows, [(P95, observed)], duration_s=5, latency=collector.agg.totals().latency,
                   criteria=Criteria(sustain_s=2))
    assert s.p95 == observed  # one number for the table, the JSON and the SLO
    median_of_seconds = sorted(r["p95"] for r in all_rows[1:5])[1:3]
    assert s.p95 != pytest.approx(sum(median_of_seconds) / 2, rel=0.01)
    assert 355 < s.p95 < 385 and s.p50 == pytest.approx(10, rel=0.01)
    assert not s.passed and s.reasons[0] == f"SLO p95<300ms failed: p95 {s.p95:,.1f} ms > 300 ms"


def test_one_second_blip_is_not_a_failure():
    p95 = [30, 30, 30, 2000, 30, 30]  # one slow second drags the window's p95 over
    s = judge_step(100, rows(100, p95=p95), [(P95, 350.0)], duration_s=6)
    assert s.passed
    assert s.reasons == ("SLO p95<300ms: blip (p95 350.0 ms > 300 ms over the window, but only 1 s breached "
                         "it alone)",)
    two = judge_step(100, rows(100, p95=[30, 30, 2000, 2000, 30, 30]), [(P95, 350.0)], duration_s=6)
    assert not two.passed


def test_saturation_achieved_below_target():
    s = judge_step(200, rows(200, achieved=180), duration_s=6)
    assert not s.passed and "achieved" in s.reasons[0]
    assert judge_step(200, rows(200, achieved=192), duration_s=6).passed  # 96 %


def test_saturation_dropped_iterations():
    s = judge_step(100, rows(100, dropped=3), duration_s=6)
    assert not s.passed and "dropped" in s.reasons[0]


def test_latency_rising_within_the_step():
    climbing = [20, 40, 80, 160, 320, 640]
    s = judge_step(100, rows(100, p50=climbing, p95=climbing), [(P95, 100.0)], duration_s=6)
    assert not s.passed and any("latency rising" in r for r in s.reasons)
    assert "latency rising within the step (per-second p50 40.0 -> 640.0 ms, first to last third)" in s.reasons
    flat_noise = [1.0, 1.2, 0.9, 2.5, 2.4, 2.6]  # more than doubles, but by < 5 ms: noise
    assert judge_step(100, rows(100, p50=flat_noise), duration_s=6).passed


def test_errors_without_error_slo():
    s = judge_step(100, rows(100, errors=5), duration_s=6)
    assert not s.passed and "error rate" in s.reasons[0]
    # with an error_rate SLO, the SLO decides (5 % < 10 %)
    assert judge_step(100, rows(100, errors=5), [(parse_threshold("error_rate<10%"), 0.05)], duration_s=6).passed


def test_generator_bound_step_is_judged_as_measured_and_noted():
    s = judge_step(100, rows(100), duration_s=6, generator_bound=True)
    assert s.passed and any("generator-bound" in r for r in s.reasons)
    bad = judge_step(200, rows(200, achieved=150), duration_s=6, generator_bound=True)
    r = conclude([s, bad], "bracket within 5%")
    assert not bad.passed and any("generator-bound" in n for n in r.notes)


def test_no_rows_fails():
    assert not judge_step(100, [], duration_s=6).passed


# --------------------------------------------------------------------------- next rate


def simulate(capacity: float, policy: SearchPolicy) -> tuple[list[float], str]:
    """Run the policy against a server that passes every rate below ``capacity``."""
    history: list[tuple[float, bool]] = []
    while True:
        rate, why = next_rate(history, policy)
        if rate is None:
            return [r for r, _ in history], why
        history.append((rate, rate < capacity))


@pytest.mark.parametrize("capacity", [3.0, 37.0, 200.0, 1234.5, 4999.0])
def test_search_converges_and_never_exceeds_max(capacity):
    policy = SearchPolicy(start=50, max_rate=5000, tolerance=0.05, max_steps=40)
    rates, why = simulate(capacity, policy)
    assert max(rates) <= 5000
    assert why.startswith("bracket within")
    b = bracket([(r, r < capacity) for r in rates])
    assert b.passed < capacity <= b.failed
    assert b.failed / b.passed - 1 <= 0.05
    # growth is capped: no step more than doubles the last pass
    passes = sorted(r for r in rates if r < capacity)
    assert all(b2 / a <= 2.0 + 1e-9 for a, b2 in zip(passes, passes[1:], strict=False))


def test_search_stops_at_max_without_failure():
    rates, why = simulate(1e9, SearchPolicy(start=50, max_rate=300))
    assert rates == [50, 100, 200, 300] and "--max 300" in why


def test_search_stops_when_even_the_lowest_rate_fails():
    rates, why = simulate(0.1, SearchPolicy(start=50, min_rate=1))
    assert rates[-1] >= 1 and "fails even at" in why


def test_step_cap_bounds_the_search():
    rates, why = simulate(777.0, SearchPolicy(start=1, max_steps=5, tolerance=0.001))
    assert len(rates) == 5 and "step limit" in why


def test_growth_slows_near_the_slo():
    assert next_rate([(100, True)], SearchPolicy(), last_load=0.1)[0] == 200
    assert next_rate([(100, True)], SearchPolicy(), last_load=0.6)[0] == 150
    assert next_rate([(100, True)], SearchPolicy(), last_load=0.9)[0] == pytest.approx(120)


def test_pass_above_a_fail_is_ignored():
    assert bracket([(100, True), (200, False), (300, True), (150, True)]) == bracket([(150, True), (200, False)])


def test_conclude_band_and_knee():
    steps = [judge_step(r, rows(r, p95=p), duration_s=6, latency=hist(10, p)) for r, p in
             [(50, 20.0), (100, 21.0), (150, 22.0), (200, 25.0), (220, 120.0)]]
    steps.append(judge_step(240, rows(240, achieved=200, p95=900.0), duration_s=6, latency=hist(10, 900)))
    r = conclude(steps, "bracket within 5%")
    assert r.max_rate == 220 and r.first_fail == 240
    assert r.band == (220, 240)  # uniform synthetic seconds: no noise to widen by
    assert r.knee is not None and 150 <= r.knee["throughput"] <= 220


# --------------------------------------------------------------------------- end to end


@pytest.fixture
def capacity_server():
    srv = CapacityServer(slots=4, service_s=0.02).start()  # theory: 4 / 0.02 s = 200 req/s
    yield srv
    srv.stop()


def test_breakpoint_finds_known_capacity_slow(capacity_server):
    """SLOW (~35 s): 4 s steps against a 200 req/s server; the answer lands within 10 % of theory."""
    r = surge_json("breakpoint", capacity_server.url + "/", "--slo", "p95<300ms", "--slo", "error_rate<1%",
                   "--start", "50", "--max", "1000", "--step-duration", "4s", "--time-budget", "100s",
                   "-w", "1", timeout=130)
    assert r.rc == 0, r
    d = r.data
    steps = [(round(s["target"]), round(s["achieved"]), s["p95"], s["reasons"]) for s in d["steps"]]
    assert d["max_sustainable_rate"] == pytest.approx(capacity_server.capacity, rel=0.10), steps
    assert d["first_failing_rate"] is not None and d["first_failing_rate"] > d["max_sustainable_rate"]
    assert d["band"][0] <= d["max_sustainable_rate"] <= d["band"][1]
    assert max(s["target"] for s in d["steps"]) <= 1000
    for s in d["steps"]:  # the table's p95 is the SLO's window value, over seconds 1..4 of the step
        slo = next(x for x in s["slos"] if x["source"] == "p95<300ms")
        assert s["p95"] == slo["observed"] and s["window"] == [1, 4] and s["seconds"] == 3, s
    assert len(d["steps"]) <= 20
    assert r.wall < 110  # the time budget (100 s) plus one step's start-up


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--start", "100", "--max", "50"], "is below --start"),
        (["--slo", "p95<<3"], "threshold"),
        (["--step-duration", "1s"], "too short"),
        (["--step-duration", "4s", "--warmup", "4s"], "--warmup"),
        (["--arrival-slot", "3ms"], "divides 1 s"),
    ],
)
def test_breakpoint_bad_input(args, words, refused_url):
    r = surge_cli("breakpoint", refused_url + "/", "--no-preflight", *args)
    assert r.rc == 2, r
    lines = error_lines(r.stderr)
    assert len(lines) == 1 and words in lines[0], r.stderr
    assert_no_traceback(r.stderr)


def test_breakpoint_unreachable_target_exits_1(refused_url):
    r = surge_cli("breakpoint", refused_url + "/", "--slo", "p95<300ms", "--no-save")
    assert r.rc == 1, r
    lines = error_lines(r.stderr)
    assert len(lines) == 1 and "cannot connect" in lines[0], r.stderr
    assert_no_traceback(r.stderr)


def test_breakpoint_bad_target(tmp_path):
    r = surge_cli("breakpoint", str(tmp_path / "nope.py"))
    assert r.rc == 2 and "neither a URL" in r.stderr
    assert_no_traceback(r.stderr)
