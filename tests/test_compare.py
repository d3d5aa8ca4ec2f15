"""surge.analysis.compare: calibration (A/A), power, verdict rules, BH, samples, repeats.

Synthetic runs: per-request latency log-normal around 10 ms (sigma 0.3) with AR(1)
dependence between consecutive requests (phi = 0.6), ~100 requests/s (Poisson per
second), 1 % errors. Everything is seeded; the loops use n_boot=1000 to stay fast.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from surge.analysis.compare import (
    METRICS,
    CompareConfig,
    Comparison,
    Sample,
    _block_weights,
    benjamini_hochberg,
    compare,
    samples_from_runs,
    samples_from_series,
    t_quantile,
    t_two_sided_p,
)
from surge.metrics.stats import RequestStats, SecondStats

PHI = 0.6
FAST = CompareConfig(n_boot=1000)


# --------------------------------------------------------------------------- simulation


def ar1(rng: np.random.Generator, n: int, phi: float = PHI) -> np.ndarray:
    """n values of a stationary, unit-variance AR(1) series (truncated MA form)."""
    k = int(math.log(1e-9) / math.log(phi)) + 1
    e = rng.standard_normal(n + k) * math.sqrt(1 - phi * phi)
    return np.convolve(e, phi ** np.arange(k))[k:n + k]


def run_latencies(rng, seconds: int, *, scale=1.0, rps=100, sigma=0.3, drift_sd=0.0):
    """(per-second request counts, latencies in ns in completion order)."""
    counts = rng.poisson(rps, seconds)
    z = sigma * ar1(rng, int(counts.sum()))
    if drift_sd:
        z += np.repeat(drift_sd * ar1(rng, seconds), counts)
    return counts, (10e6 * scale * np.exp(z)).astype(np.int64)


def to_sample(rng, counts, lat, *, error_rate=0.01) -> Sample:
    ends = np.cumsum(counts)
    units = []
    for s, c in enumerate(counts):
        st = RequestStats(count=int(c))
        st.latency.record_many(lat[ends[s] - c:ends[s]])
        ne = int(rng.binomial(c, error_rate)) if error_rate else 0
        if ne:
            st.errors["http_5xx"] = ne
        units.append(st)
    return Sample(units=units, unit="second", duration_s=float(len(counts)))


def sim(rng, seconds, *, names=1, **kw) -> dict[str, Sample]:
    er = kw.pop("error_rate", 0.01)
    return {f"GET /n{k}": to_sample(rng, *run_latencies(rng, seconds, **kw), error_rate=er)
            for k in range(names)}


def false_positive(c: Comparison, name: str) -> bool:
    return any(r.verdict in ("REGRESSED", "IMPROVED") for r in c.rows if r.name == name)


def mann_whitney_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value, normal approximation (continuous data, no ties)."""
    n1, n2 = x.size, y.size
    ranks = np.empty(n1 + n2)
    ranks[np.argsort(np.concatenate([x, y]), kind="stable")] = np.arange(1, n1 + n2 + 1)
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    z = (u - n1 * n2 / 2) / math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    return math.erfc(abs(z) / math.sqrt(2))


# --------------------------------------------------------------------------- A/A, power, MW


@pytest.fixture(scope="module")
def aa_pairs():
    """200 A/A pairs of 20 s runs: raw latencies (for Mann-Whitney) and their comparison."""
    rng = np.random.default_rng(20240601)
    pairs = []
    for i in range(200):
        (ca, la), (cb, lb) = run_latencies(rng, 20), run_latencies(rng, 20)
        a, b = {"GET /x": to_sample(rng, ca, la)}, {"GET /x": to_sample(rng, cb, lb)}
        pairs.append((la, lb, compare(a, b, CompareConfig(n_boot=1000, seed=i))))
    return pairs


def test_aa_false_positive_rate_is_at_most_alpha(aa_pairs):
    # 200 pairs x 1 name; expected <= 5 %, asserted <= 8 % to allow for Monte Carlo noise
    # (binomial sd at 5 % is 1.5 points). Measured: 1 / 200 names.
    fp = sum(false_positive(c, "GET /x") for _, _, c in aa_pairs)
    assert fp / len(aa_pairs) <= 0.08
    # The unadjusted p-values themselves are calibrated (measured 0.5-4 % per metric).
    raw = Counter(r.metric for _, _, c in aa_pairs for r in c.rows
                  if r.p_value is not None and r.p_value < 0.05)
    for m in ("p50", "p95", "mean", "throughput", "error_rate"):
        assert raw[m] / len(aa_pairs) <= 0.09, (m, raw[m])


def test_mann_whitney_on_requests_is_inflated_but_block_bootstrap_is_not(aa_pairs):
    # Same A/A data. Theory for AR(1) phi=0.6: the rank-sum variance is ~3.9x the iid value,
    # so |z| > 1.96 happens ~31 % of the time. Measured here: 29.5 % vs 2 % for p50.
    mw = np.mean([mann_whitney_p(la, lb) < 0.05 for la, lb, _ in aa_pairs])
    boot = np.mean([c.rows[0].p_value < 0.05 for _, _, c in aa_pairs])
    assert aa_pairs[0][2].rows[0].metric == "p50"
    assert 0.2 <= mw <= 0.45, mw
    assert boot <= 0.09, boot


def test_power_for_20_percent_slower_server():
    # 40 pairs of 30 s runs, B 20 % slower (with a slow per-second drift as well).
    # Required >= 95 % REGRESSED; measured 40 / 40.
    rng = np.random.default_rng(7)
    hits = 0
    for i in range(40):
        a = sim(rng, 30, drift_sd=0.05)
        b = sim(rng, 30, drift_sd=0.05, scale=1.2)
        c = compare(a, b, CompareConfig(n_boot=1000, seed=i))
        hits += c.name_verdicts()["GET /n0"] == "REGRESSED"
        row = next(r for r in c.rows if r.metric == "p50")
        assert row.ci_low is not None and row.ci_low < row.ratio < row.ci_high
    assert hits / 40 >= 0.95


def test_long_identical_runs_are_same():
    rng = np.random.default_rng(3)
    a, b = sim(rng, 120, rps=200), sim(rng, 120, rps=200)
    c = compare(a, b, FAST)
    v = {r.metric: r.verdict for r in c.rows}
    assert v["p50"] == v["mean"] == v["throughput"] == "SAME", c.rows
    assert not c.regressed and c.worst in ("SAME", "INCONCLUSIVE")
    for r in c.rows:
        if r.verdict == "SAME" and r.metric != "error_rate":
            assert 0.95 <= r.ci_low <= r.ci_high <= 1.05


def test_short_noisy_runs_are_inconclusive_and_say_run_longer():
    rng = np.random.default_rng(4)
    c = compare(sim(rng, 8, rps=20), sim(rng, 8, rps=20), FAST)
    p99 = next(r for r in c.rows if r.metric == "p99")
    assert p99.verdict == "INCONCLUSIVE"
    assert "run longer" in p99.reason


def test_significant_alone_but_not_after_adjustment_says_so_not_too_wide():
    """A big change whose own CI excludes 1 but whose p-value does not survive Benjamini-
    Hochberg over many rows: the reason names the adjustment, not a too-wide CI."""
    rng = np.random.default_rng(0)
    a, b = sim(rng, 20, names=6), sim(rng, 20, names=6)  # six unchanged names: 36 more rows
    a["GET /x"] = sim(rng, 20, rps=20, sigma=0.8, drift_sd=0.3)["GET /n0"]
    b["GET /x"] = sim(rng, 20, rps=20, sigma=0.8, drift_sd=0.3, scale=0.75)["GET /n0"]
    c = compare(a, b, FAST)
    r = next(r for r in c.rows if (r.name, r.metric) == ("GET /x", "p50"))
    assert r.verdict == "INCONCLUSIVE" and r.p_value < 0.05 <= r.p_adjusted
    assert r.ci_high < 0.95  # the whole CI lies beyond the -5 % threshold
    n = sum(x.p_adjusted is not None for x in c.rows)
    assert f"significant alone (p={r.p_value:.2g}) but not after adjusting for the {n} comparisons" in r.reason
    assert f"adjusted p={r.p_adjusted:.2g}" in r.reason and "run longer" in r.reason
    assert "too wide" not in r.reason and "not significant" not in r.reason
    # a row that is not significant even on its own keeps "too wide to tell"
    wide = [x for x in c.rows if x.p_value is not None and x.p_value >= 0.05 and x.verdict == "INCONCLUSIVE"]
    assert wide and all("too wide to tell" in x.reason for x in wide)


def test_method_line_says_where_latency_is_measured_from():
    rng = np.random.default_rng(2)
    a, b = sim(rng, 10), sim(rng, 10)
    assert compare(a, b, FAST).method.endswith(
        "latency: from each request's intended start (coordinated-omission free)")
    assert compare({}, {}, CompareConfig(latency_field="service")).method.endswith("latency: service time, from the send")


# --------------------------------------------------------------------------- estimates


def test_point_values_match_the_merged_histogram():
    rng = np.random.default_rng(5)
    a, b = sim(rng, 15), sim(rng, 15, scale=1.3)
    c = compare(a, b, FAST)
    for side, val in ((a, "a"), (b, "b")):
        merged = RequestStats()
        for u in side["GET /n0"].units:
            merged.merge(u)
        got = {r.metric: getattr(r, val) for r in c.rows}
        for m, q in (("p50", 50), ("p95", 95), ("p99", 99)):
            assert got[m] == pytest.approx(merged.latency.percentile(q) / 1e6, rel=1e-12)
        assert got["mean"] == pytest.approx(merged.latency.mean / 1e6, rel=1e-12)
        assert got["error_rate"] == pytest.approx(merged.error_count / merged.count)
        assert got["throughput"] == pytest.approx(merged.count / 15)


def test_block_weights_draw_n_units_in_circular_blocks():
    w = _block_weights(np.random.default_rng(0), 10, 3, 500)
    assert w.shape == (500, 10)
    assert np.all(w.sum(axis=1) == 10)
    assert abs(w.mean() - 1.0) < 0.05  # each second equally likely


def test_same_seed_same_answer_and_config_is_validated():
    rng = np.random.default_rng(6)
    a, b = sim(rng, 12), sim(rng, 12)
    assert compare(a, b, FAST).rows == compare(a, b, FAST).rows
    for bad in ({"delta": 0}, {"alpha": 0.7}, {"n_boot": 10}, {"per_metric_delta": {"p42": 0.1}},
                {"latency_field": "x"}, {"block_s": 0}):
        with pytest.raises(ValueError):
            CompareConfig(**bad)


def test_per_metric_delta_and_fixed_block():
    rng = np.random.default_rng(8)
    a, b = sim(rng, 40, error_rate=0), sim(rng, 40, scale=1.2, error_rate=0)
    c = compare(a, b, CompareConfig(n_boot=1000, per_metric_delta={"p99": 0.5}, block_s=4))
    v = {r.metric: r.verdict for r in c.rows}
    assert v["p50"] == "REGRESSED"
    assert v["p99"] != "REGRESSED"  # +20 % is inside a 50 % threshold
    assert "4 s" in c.method and "p99 50%" in c.method


def test_throughput_drop_is_a_regression_and_rise_an_improvement():
    rng = np.random.default_rng(9)
    a = sim(rng, 40, rps=100, error_rate=0)
    b = sim(rng, 40, rps=70, error_rate=0)
    rows = {r.metric: r for r in compare(a, b, FAST).rows}
    assert rows["throughput"].verdict == "REGRESSED" and not rows["throughput"].higher_is_worse
    rows = {r.metric: r for r in compare(b, a, FAST).rows}
    assert rows["throughput"].verdict == "IMPROVED"


# --------------------------------------------------------------------------- error rate


def test_error_rate_both_zero_is_same_without_a_test():
    rng = np.random.default_rng(10)
    c = compare(sim(rng, 10, error_rate=0), sim(rng, 10, error_rate=0), FAST)
    row = next(r for r in c.rows if r.metric == "error_rate")
    assert row.verdict == "SAME" and row.p_value is None and row.p_adjusted is None


def test_new_errors_are_a_regression_with_an_unbounded_ratio():
    rng = np.random.default_rng(11)
    c = compare(sim(rng, 20, error_rate=0), sim(rng, 20, error_rate=0.05), FAST)
    row = next(r for r in c.rows if r.metric == "error_rate")
    assert row.verdict == "REGRESSED"
    assert row.a == 0 and row.b > 0.03 and row.ratio is None and row.ci_high is None
    assert "0.00% -> " in row.reason


def test_error_rate_change_below_the_absolute_tolerance_is_not_a_regression():
    rng = np.random.default_rng(12)
    a, b = sim(rng, 120, rps=400, error_rate=0.0002), sim(rng, 120, rps=400, error_rate=0.0006)
    row = next(r for r in compare(a, b, FAST).rows if r.metric == "error_rate")
    assert row.verdict != "REGRESSED"  # tripled, but +0.04 points < 0.1 point tolerance
    row = next(r for r in compare(a, b, CompareConfig(n_boot=1000, error_rate_tolerance=0)).rows
               if r.metric == "error_rate")
    assert row.verdict == "REGRESSED"


# --------------------------------------------------------------------------- BH, t


def _bh_reference(p):
    """Straight from the definition: adj_i = min over j with p_j >= p_i of p_j * m / rank_j."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    rank = {i: r + 1 for r, i in enumerate(order)}
    return [min(1.0, min(p[j] * m / rank[j] for j in range(m) if rank[j] >= rank[i])) for i in range(m)]


def test_benjamini_hochberg_matches_reference():
    rng = np.random.default_rng(13)
    for _ in range(20):
        p = (rng.uniform(size=int(rng.integers(1, 40))) ** 3).tolist()
        assert benjamini_hochberg(p) == pytest.approx(_bh_reference(p), abs=1e-12)
    assert benjamini_hochberg([]) == []
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5])


def test_benjamini_hochberg_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    p = np.random.default_rng(14).uniform(size=60) ** 2
    assert benjamini_hochberg(p.tolist()) == pytest.approx(stats.false_discovery_control(p), abs=1e-12)


def test_rows_are_adjusted_together():
    rng = np.random.default_rng(15)
    c = compare(sim(rng, 20, names=3), sim(rng, 20, names=3), FAST)
    tested = [r for r in c.rows if r.p_value is not None]
    assert [r.p_adjusted for r in tested] == pytest.approx(benjamini_hochberg([r.p_value for r in tested]))


def test_student_t():
    assert t_quantile(0.975, 1) == pytest.approx(12.7062047, rel=1e-7)
    assert t_quantile(0.975, 10) == pytest.approx(2.2281389, rel=1e-7)
    assert t_two_sided_p(2.2281389, 10) == pytest.approx(0.05, rel=1e-6)
    stats = pytest.importorskip("scipy.stats")
    for df in (0.8, 2.5, 7.0, 45.0, 900.0):
        for t in (0.2, 1.5, 4.0):
            assert t_two_sided_p(t, df) == pytest.approx(2 * stats.t.sf(t, df), rel=1e-9)
        assert t_quantile(0.99, df) == pytest.approx(stats.t.ppf(0.99, df), rel=1e-9)


# --------------------------------------------------------------------------- samples, names, repeats


def _second(s: int, items) -> SecondStats:
    st = SecondStats(second=s)
    for key, n, errs in items:
        rs = RequestStats(count=n)
        rs.latency.record_many([5_000_000] * n)
        if errs:
            rs.errors["http_5xx"] = errs
        st.requests[key] = rs
    return st


def test_samples_from_series_groups_names_and_fills_empty_seconds():
    seconds = [
        _second(0, [(("a", "/x", "GET", "2xx"), 5, 0)]),
        _second(1, [(("a", "/x", "GET", "2xx"), 3, 0), (("b", "/x", "GET", "5xx"), 2, 2),
                    (("a", "/x", "POST", "2xx"), 1, 0)]),
        # second 2 missing entirely: a zero-throughput second
        _second(3, [(("a", "/x", "GET", "2xx"), 4, 0)]),
        _second(4, [(("a", "/x", "GET", "2xx"), 1, 0)]),  # the partial tail second
    ]
    s = samples_from_series(seconds)
    assert sorted(s) == ["GET /x", "POST /x"]
    assert [u.count for u in s["GET /x"].units] == [5, 5, 0, 4, 1]
    assert s["GET /x"].units[1].error_count == 2 and s["GET /x"].duration_s == 5
    assert [u.count for u in s["POST /x"].units] == [0, 1, 0, 0, 0]
    s = samples_from_series(seconds, warmup_s=1, end_s=4.0)
    assert [u.count for u in s["GET /x"].units] == [5, 0, 4] and s["GET /x"].duration_s == 3
    assert samples_from_series([]) == {}


def test_names_only_in_one_side():
    rng = np.random.default_rng(16)
    a, b = sim(rng, 10, names=2), sim(rng, 10, names=1)
    b["GET /new"] = b.pop("GET /n0")
    c = compare(a, b, FAST)
    assert c.only_in_a == ["GET /n0", "GET /n1"] and c.only_in_b == ["GET /new"]
    assert c.rows == [] and c.worst == "SAME"


def test_too_little_data_is_inconclusive():
    rng = np.random.default_rng(17)
    a = sim(rng, 20)
    b = {"GET /n0": Sample(units=a["GET /n0"].units[:3], unit="second", duration_s=3.0)}
    c = compare(a, b, FAST)
    assert {r.verdict for r in c.rows} == {"INCONCLUSIVE"}
    assert "too little data" in c.rows[0].reason and c.rows[0].b is not None


def _runs(rng, n, seconds=20, **kw):
    runs = []
    for _ in range(n):
        counts, lat = run_latencies(rng, seconds, **kw)
        ends = np.cumsum(counts)
        runs.append([_series_second(s, lat[ends[s] - counts[s]:ends[s]]) for s in range(seconds)])
    return runs


def _series_second(s, lat):
    st = SecondStats(second=s)
    rs = RequestStats(count=lat.size)
    rs.latency.record_many(lat)
    st.requests[("sc", "/r", "GET", "2xx")] = rs
    return st


def test_repeats_mode():
    rng = np.random.default_rng(18)
    a = samples_from_runs(_runs(rng, 5))
    b = samples_from_runs(_runs(rng, 5, scale=1.2))
    assert a["GET /r"].unit == "run" and len(a["GET /r"].units) == 5
    assert a["GET /r"].unit_duration_s == (20.0,) * 5
    c = compare(a, b)
    v = {r.metric: r for r in c.rows}
    assert v["p50"].verdict == v["mean"].verdict == "REGRESSED"
    assert v["p50"].ratio == pytest.approx(1.2, rel=0.05)
    assert "Welch" in c.method and not c.warnings
    # A/A with repeats: nothing called
    aa = compare(samples_from_runs(_runs(rng, 4)), samples_from_runs(_runs(rng, 4)))
    assert not any(r.verdict in ("REGRESSED", "IMPROVED") for r in aa.rows)
    # two repeats: a warning; one repeat: no test at all
    two = compare(samples_from_runs(_runs(rng, 2)), samples_from_runs(_runs(rng, 2)))
    assert two.warnings
    one = compare(samples_from_runs(_runs(rng, 1)), samples_from_runs(_runs(rng, 1)))
    assert {r.verdict for r in one.rows} == {"INCONCLUSIVE"} and "2 runs" in one.rows[0].reason


def test_units_must_match():
    rng = np.random.default_rng(19)
    with pytest.raises(ValueError, match="per-run"):
        compare(sim(rng, 10), samples_from_runs(_runs(rng, 3)))


def test_comparison_summaries():
    rng = np.random.default_rng(20)
    a, b = sim(rng, 30, names=2, error_rate=0), sim(rng, 30, names=2, error_rate=0)
    b["GET /n1"] = sim(rng, 30, scale=1.5, error_rate=0)["GET /n0"]
    c = compare(a, b, FAST)
    assert c.worst == "REGRESSED"
    assert c.name_verdicts()["GET /n1"] == "REGRESSED"
    assert "GET /n1" in {r.name for r in c.regressed}
    assert all(r.verdict == "REGRESSED" for r in c.regressed)
    assert sum(c.counts.values()) == len(c.rows) == 2 * len(METRICS)
    assert "REGRESSED" in repr(c)


def test_result_is_plain_json():
    import dataclasses
    import json

    rng = np.random.default_rng(21)
    a = sim(rng, 20, names=2, error_rate=0)
    b = sim(rng, 20, names=2, error_rate=0.05)
    b["GET /n1"] = Sample(units=b["GET /n1"].units[:3], unit="second", duration_s=3.0)
    c = compare(a, b, FAST)
    text = json.dumps(dataclasses.asdict(c), allow_nan=False)
    assert '"verdict": "REGRESSED"' in text and "too little data" in text


def test_presliced_series_get_no_phantom_seconds():
    seconds = [_second(s, [(("a", "/x", "GET", "2xx"), 5, 0)]) for s in range(10)]
    s = samples_from_series(seconds[3:])
    assert len(s["GET /x"].units) == 7 and s["GET /x"].duration_s == 7
    s = samples_from_series(seconds[3:], end_s=8.5)  # seconds 3..7 end by 8.5
    assert len(s["GET /x"].units) == 5
    r = samples_from_runs([seconds[2:], seconds[2:]], end_s=9.0)
    assert r["GET /x"].unit_duration_s == (7.0, 7.0) and r["GET /x"].units[0].count == 35


def test_a_run_on_both_sides_is_flagged():
    from surge.results.select import Side, mismatches

    a = Side("A", [[]], ["20261123-120000-x"])
    b = Side("B", [[]], ["20261123-120000-x"])
    assert any("on both sides" in m for m in mismatches(a, b))
    assert not any("on both sides" in m for m in mismatches(a, Side("C", [[]], ["20261123-120500-x"])))


def test_runs_with_different_arrival_slots_are_flagged():
    from surge.results.select import Side, mismatches

    def side(name, model="constant-arrival-rate", **meta):
        meta = {"model": model, **meta}
        return Side(name, [[]], [name], None, meta, (meta,))

    def slot_warnings(a, b):
        return [m for m in mismatches(a, b) if "slots" in m]

    new2, new0, old = side("A", arrival_slot_ms=2.0), side("B", arrival_slot_ms=0.0), side("C")
    assert any("2 ms vs exact times (0)" in m for m in slot_warnings(new2, new0))
    assert any("exact times (older surge) vs 2 ms" in m for m in slot_warnings(old, new2))
    assert not slot_warnings(new2, side("E", arrival_slot_ms=2.0))
    # hit: closed before and after slots (no schedule) against an open run: the model differs
    # in kind, not in slots; an older open hit is told by its rate
    hit_open = side("F", "hit", arrival_slot_ms=2.0, options={"rate": 100.0})
    assert not slot_warnings(side("G", "hit", options={"iterations": 50}), hit_open)
    assert not slot_warnings(side("H", "hit", arrival_slot_ms=None), hit_open)
    assert slot_warnings(side("I", "hit", options={"rate": 100.0}), hit_open)
    # a slot given explicitly equal to the default is not an options difference
    explicit = side("J", arrival_slot_ms=2.0, options={"rate": 5.0, "arrival_slot": 0.002})
    assert not mismatches(explicit, side("K", arrival_slot_ms=2.0, options={"rate": 5.0}))
