"""Arrival processes (gamma burstiness) and rate shapes (sine, diurnal, step, trace): pure math, no clock."""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest
from scipy import stats

from surge.api.errors import UsageError
from surge.api.options import Options, Stage
from surge.api.shapes import parse_arrival, parse_shape
from surge.engine.models import build_model
from surge.engine.models.schedule import RateCurve
from surge.engine.models.shapes import open_curve, peak_rate, trace_curve
from surge.engine.runtime import Share


def gaps(times: list[float]) -> np.ndarray:
    return np.diff(np.asarray(times))


# --------------------------------------------------------------------------- gamma


def test_gamma_cv1_is_poisson():
    """cv = 1: exponential gaps (KS test against Exp(rate)), and counts per second with
    variance = mean (dispersion index 1), as for a Poisson process."""
    rate = 100.0
    t = list(RateCurve.constant(rate, 400.0).arrivals(rng=random.Random(7), cv=1.0))
    g = gaps(t)
    assert stats.kstest(g, "expon", args=(0, 1 / rate)).pvalue > 0.01
    counts = np.bincount(np.asarray(t).astype(int), minlength=400)
    assert counts.var() / counts.mean() == pytest.approx(1.0, abs=0.2)


def test_gamma_cv2_keeps_the_rate_and_is_bursty():
    rate, horizon = 50.0, 2000.0
    t = list(RateCurve.constant(rate, horizon).arrivals(rng=random.Random(3), cv=2.0))
    g = gaps(t)
    assert len(t) / horizon == pytest.approx(rate, rel=0.03)
    assert g.std() / g.mean() == pytest.approx(2.0, rel=0.1)
    # Not exponential: a KS test against Exp(rate) rejects it.
    assert stats.kstest(g, "expon", args=(0, 1 / rate)).pvalue < 1e-6


def test_gamma_low_cv_is_steadier_than_poisson():
    t = list(RateCurve.constant(100.0, 200.0).arrivals(rng=random.Random(1), cv=0.25))
    g = gaps(t)
    assert g.std() / g.mean() == pytest.approx(0.25, rel=0.1)


def test_gamma_follows_a_ramp():
    """Time-rescaling keeps a ramp: the count in each half matches the integral of the rate."""
    curve = RateCurve.from_stages((Stage(200.0, 100.0),))  # 0 -> 100/s
    t = np.asarray(list(curve.arrivals(rng=random.Random(5), cv=2.0)))
    assert len(t) == pytest.approx(curve.total, rel=0.05)
    first_half = (t < 100.0).sum()
    assert first_half / len(t) == pytest.approx(0.25, abs=0.03)  # N(100)/N(200) = 1/4


def test_gamma_split_over_workers_is_one_stream():
    """Workers keep every count-th arrival of one shared stream: together they are exactly
    the single-worker stream, so burstiness survives the split."""
    full = RateCurve.constant(40.0, 100.0)
    one = list(full.arrivals(rng=random.Random(9), cv=3.0))
    parts = [list(full.scaled(1 / 3).arrivals(rng=random.Random(9), cv=3.0, stride=3, offset=i)) for i in range(3)]
    merged = sorted(x for p in parts for x in p)
    assert merged == pytest.approx(one)


def test_parse_arrival():
    assert parse_arrival("poisson").kind == "poisson"
    a = parse_arrival("gamma:cv=2")
    assert (a.kind, a.cv) == ("gamma", 2.0)
    for bad in ("gamma", "gamma:cv=0", "gamma:cv=x", "gamma:k=2", "bursty", "uniform:cv=2"):
        with pytest.raises(UsageError) as e:
            parse_arrival(bad)
        assert "\n" not in str(e.value)


def test_model_uses_gamma_arrivals():
    m = build_model(Options(rate=100.0, duration=5.0, arrival="gamma:cv=2").normalised(), Share(0, 2))
    assert m.cv == 2.0 and not m.poisson
    assert m.curve.rate_at(1.0) == pytest.approx(50.0)


# --------------------------------------------------------------------------- shapes


def mean_rate(curve: RateCurve) -> float:
    return curve.total / curve.duration


def test_sine_keeps_the_mean_and_swings():
    o = Options(rate=100.0, duration=600.0, shape="sine:period=60s,amplitude=0.5").normalised()
    c = open_curve(o)
    assert mean_rate(c) == pytest.approx(100.0, rel=1e-3)
    assert c.rate_at(15.0) == pytest.approx(150.0, rel=1e-3)  # crest at P/4
    assert c.rate_at(45.0) == pytest.approx(50.0, rel=1e-3)  # trough at 3P/4
    assert peak_rate(c) == pytest.approx(150.0, rel=1e-3)
    # Arrivals over the whole horizon keep the mean rate.
    n = sum(1 for _ in c.arrivals(poisson=True, rng=random.Random(2)))
    assert n / 600.0 == pytest.approx(100.0, rel=0.02)


def test_diurnal_is_one_day_over_the_run():
    c = open_curve(Options(rate=10.0, duration=240.0, shape="diurnal:amplitude=0.8").normalised())
    assert c.rate_at(0.0) == pytest.approx(2.0)  # night
    assert c.rate_at(120.0) == pytest.approx(18.0, rel=1e-3)  # mid-day
    assert mean_rate(c) == pytest.approx(10.0, rel=1e-3)
    two_days = open_curve(Options(rate=10.0, duration=240.0, shape="diurnal:amplitude=0.8,day=2m").normalised())
    assert two_days.rate_at(60.0) == pytest.approx(18.0, rel=1e-3)


def test_sine_over_stages_follows_the_ramp():
    c = open_curve(Options(rate=0.001, stages="60s:100", shape="sine:period=10s,amplitude=0.2").normalised())
    assert c.rate_at(52.5) == pytest.approx(0.001 + (100 - 0.001) * 52.5 / 60 * 1.2, rel=1e-2)


def test_step_shape():
    c = open_curve(Options(rate=50.0, duration=90.0, shape="step:every=30s,by=50").normalised())
    assert [c.rate_at(t) for t in (1, 29, 31, 59, 61, 89)] == pytest.approx([50, 50, 100, 100, 150, 150])
    assert c.total == pytest.approx(30 * (50 + 100 + 150))
    down = open_curve(Options(rate=50.0, duration=90.0, shape="step:every=30s,by=-40").normalised())
    assert down.rate_at(65) == 0.0  # never below 0


def write_trace(tmp_path, text: str):
    p = tmp_path / "trace.csv"
    p.write_text(text)
    return p


def test_trace_is_interpolated(tmp_path):
    p = write_trace(tmp_path, "t_s,rate,comment\n10,0,night\n20,100,\n40,100,\n")
    o = Options(shape=f"trace:{p}").normalised()
    assert o.resolved_model() == "constant-arrival-rate"  # a trace needs no --rate
    c = open_curve(o)
    assert c.duration == 30.0  # from the first row to the last
    assert c.rate_at(5.0) == pytest.approx(50.0)
    assert c.total == pytest.approx(500 + 2000)
    m = build_model(o, Share(0, 1))
    assert m.planned_duration == 30.0
    assert len(list(trace_curve(o.shape.points, 15.0).arrivals())) == pytest.approx(500 + 500, abs=1)
    assert trace_curve(o.shape.points, 40.0).rate_at(35.0) == 100.0  # holds the last rate


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("time,rate\n0,1\n1,2\n", "lacks column(s) t_s"),
        ("t_s,qps\n0,1\n1,2\n", "lacks column(s) rate"),
        ("", "lacks column(s) t_s, rate"),
        ("t_s,rate\n0,1\n", "at least two rows"),
        ("t_s,rate\n0,1\n1,abc\n", "invalid rate"),
        ("t_s,rate\n0,1\n0,2\n", "not after"),
        ("t_s,rate\n0,1\n1,-2\n", "negative"),
        ("t_s,rate\n0,0\n5,0\n", "rate of 0 in every row"),
    ],
)
def test_bad_trace(tmp_path, content, words):
    p = write_trace(tmp_path, content)
    with pytest.raises(UsageError) as e:
        parse_shape(f"trace:{p}")
    assert words in str(e.value) and "\n" not in str(e.value)


def test_missing_trace_file(tmp_path):
    with pytest.raises(UsageError, match="cannot read trace"):
        parse_shape(f"trace:{tmp_path / 'nope.csv'}")


@pytest.mark.parametrize(
    "bad",
    ["wave:period=1s", "sine", "sine:period=0s", "sine:period=10s,amplitude=2", "sine:period=1m,foo=1",
     "step:every=30s", "step:every=30s,by=x", "diurnal:day=-1s", "trace:", "sine:period"],
)
def test_bad_shapes(bad):
    with pytest.raises(UsageError) as e:
        parse_shape(bad)
    assert "\n" not in str(e.value)


def test_shape_needs_an_open_model():
    with pytest.raises(UsageError, match="open model"):
        build_model(Options(vus=2, shape="sine:period=10s").normalised())
    with pytest.raises(UsageError, match="add --rate"):
        open_curve(Options(model="constant-arrival-rate", shape="sine:period=10s").normalised())


def test_many_segments_stay_fast():
    """A long sine has thousands of segments; inversion bisects instead of scanning."""
    c = open_curve(Options(rate=1000.0, duration=3600.0, shape="sine:period=10s,amplitude=0.9").normalised())
    assert len(c.segments) > 20_000
    times = []
    for i, t in enumerate(c.arrivals()):
        times.append(t)
        if i >= 200_000:
            break
    assert statistics.fmean(np.diff(times)) == pytest.approx(1e-3, rel=0.05)
    assert all(math.isfinite(x) for x in times[:10])


def test_no_arrival_while_the_rate_is_zero():
    """N(t) is flat while the rate is 0: the first arrival comes when traffic starts, and a
    curve of total 0 has none (it used to send one at t=0)."""
    assert list(RateCurve.constant(0.0, 5.0).arrivals()) == []
    held = RateCurve.from_stages((Stage(5.0, 0.0), Stage(5.0, 10.0)))  # 0/s for 5 s, then a ramp
    t = list(held.arrivals())
    assert t[0] == 5.0 and len(t) == 25
    assert list(RateCurve.constant(100.0, 1.0).arrivals())[:2] == [0.0, 0.01]  # unchanged elsewhere
    assert len(list(RateCurve.constant(100.0, 1.0).arrivals())) == 100
