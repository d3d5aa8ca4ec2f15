"""Schedule math of the workload models: stages, splitting, rate curves and arrivals."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.api.options import Stage
from surge.engine.models.schedule import RateCurve, split_int, stages_duration, value_at

fast = settings(max_examples=80, deadline=None)


def count_arrivals(curve: RateCurve, **kw) -> int:
    return sum(1 for _ in curve.arrivals(**kw))


def expected_count(curve: RateCurve, t: float) -> float:
    """N(t), the integral of the rate from 0 to t (closed form per segment)."""
    total = 0.0
    for t0, t1, r0, r1 in curve.segments:
        if t <= t0:
            break
        x = min(t, t1) - t0
        total += r0 * x + 0.5 * (r1 - r0) / (t1 - t0) * x * x
    return total


# --------------------------------------------------------------------------- value_at


STAGES = (Stage(1.0, 10.0), Stage(1.0, 10.0), Stage(2.0, 0.0))


@pytest.mark.parametrize(
    ("t", "want"),
    [(0.0, 0.0), (0.25, 2.5), (0.5, 5.0), (1.0, 10.0), (1.5, 10.0), (2.0, 10.0), (3.0, 5.0),
     (3.999, 0.005), (4.0, 0.0), (100.0, 0.0)],
)
def test_value_at_ramps_linearly(t, want):
    assert value_at(STAGES, t) == pytest.approx(want)


def test_value_at_uses_start_value():
    assert value_at((Stage(2.0, 10.0),), 0.0, start=20.0) == pytest.approx(20.0)
    assert value_at((Stage(2.0, 10.0),), 1.0, start=20.0) == pytest.approx(15.0)
    assert value_at((Stage(2.0, 10.0),), 5.0, start=20.0) == pytest.approx(10.0)


def test_value_at_zero_length_stage_jumps():
    stages = (Stage(0.0, 7.0), Stage(1.0, 7.0))
    assert value_at(stages, 0.0) == pytest.approx(7.0)
    assert value_at(stages, 0.5) == pytest.approx(7.0)


def test_value_at_no_stages_is_start():
    assert value_at((), 3.0, start=4.0) == 4.0


def test_stages_duration():
    assert stages_duration(STAGES) == 4.0
    assert stages_duration(()) == 0.0


@fast
@given(
    st.lists(st.tuples(st.floats(0.01, 100), st.floats(0, 1000)), min_size=1, max_size=6),
    st.floats(0, 200),
)
def test_value_at_stays_within_stage_targets(raw, t):
    stages = tuple(Stage(d, x) for d, x in raw)
    v = value_at(stages, t)
    lo = min([0.0] + [s.target for s in stages])
    hi = max([0.0] + [s.target for s in stages])
    assert lo - 1e-9 <= v <= hi + 1e-9


# --------------------------------------------------------------------------- split_int


@fast
@given(st.integers(0, 10**7), st.integers(1, 64))
def test_split_int_sums_to_total_and_is_even(total, count):
    shares = [split_int(total, i, count) for i in range(count)]
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1
    assert all(s >= 0 for s in shares)


def test_split_int_table():
    assert [split_int(10, i, 3) for i in range(3)] == [3, 3, 4]
    assert [split_int(1, i, 2) for i in range(2)] == [0, 1]
    assert [split_int(0, i, 4) for i in range(4)] == [0, 0, 0, 0]
    assert split_int(7, 0, 1) == 7


# --------------------------------------------------------------------------- RateCurve


@pytest.mark.parametrize(("rate", "duration"), [(1, 1), (10, 3), (500, 3), (0.5, 7), (333.3, 2.5), (7, 0.1)])
def test_constant_curve(rate, duration):
    c = RateCurve.constant(rate, duration)
    assert c.total == pytest.approx(rate * duration)
    assert c.duration == duration
    assert c.rate_at(duration / 2) == rate
    assert c.rate_at(duration) == 0.0
    assert abs(count_arrivals(c) - round(c.total)) <= 1
    times = list(c.arrivals())
    assert times[0] == 0.0
    assert all(0.0 <= t <= duration for t in times)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(g == pytest.approx(1 / rate) for g in gaps)


def test_arrivals_before_end_are_exact_for_integer_totals():
    # The dispatcher stops at t >= end: 500/s for 3 s is exactly 1500 starts.
    c = RateCurve.constant(500, 3.0)
    assert sum(1 for t in c.arrivals() if t < 3.0) == 1500


@pytest.mark.parametrize(
    "stages",
    [
        (Stage(2.0, 100.0),),
        (Stage(1.0, 100.0), Stage(1.0, 100.0), Stage(1.0, 0.0)),
        (Stage(3.0, 50.0), Stage(2.0, 200.0)),
        (Stage(1.0, 0.0), Stage(1.0, 300.0)),
        (Stage(0.5, 40.0), Stage(0.0, 80.0), Stage(0.5, 80.0)),
    ],
)
def test_ramp_curves_count_and_shape(stages):
    c = RateCurve.from_stages(stages)
    want = sum((a + s.target) / 2 * s.duration
               for a, s in zip([0.0] + [x.target for x in stages], stages, strict=False))
    assert c.total == pytest.approx(want)
    assert c.duration == pytest.approx(stages_duration(stages))
    assert abs(count_arrivals(c) - round(c.total)) <= 1


def test_ramp_up_puts_more_arrivals_late():
    c = RateCurve.from_stages((Stage(2.0, 200.0),))
    times = list(c.arrivals())
    first = sum(1 for t in times if t < 1.0)
    second = sum(1 for t in times if 1.0 <= t < 2.0)
    assert first == pytest.approx(50, abs=1)
    assert second == pytest.approx(150, abs=1)


def test_start_rate_and_scaling():
    c = RateCurve.from_stages((Stage(1.0, 100.0),), start_rate=100.0)
    assert c.total == pytest.approx(100.0)
    half = c.scaled(0.5)
    assert half.total == pytest.approx(50.0)
    assert half.rate_at(0.5) == pytest.approx(50.0)


segments = st.lists(
    st.tuples(st.floats(0.05, 5.0), st.floats(0.0, 300.0)), min_size=1, max_size=5
).map(lambda raw: tuple(Stage(round(d, 3), round(r, 2)) for d, r in raw))


@fast
@given(segments, st.floats(0, 300))
def test_time_of_is_monotonic_and_inverts_the_count(stages, start):
    c = RateCurve.from_stages(stages, start_rate=round(start, 2))
    if c.total <= 0:
        return
    prev = -1.0
    # Counts strictly inside the curve: exact segment ends of ramps down to 0 hit
    # the bug shown by test_ramp_down_to_zero_then_up_keeps_later_arrivals.
    for k in range(40):
        n = c.total * (k + 0.37) / 40
        t = c.time_of(n)
        assert t is not None, f"time_of({n}) is None for a count the curve reaches ({c})"
        assert 0.0 <= t <= c.duration + 1e-9
        assert t >= prev - 1e-9
        assert expected_count(c, t) == pytest.approx(n, rel=1e-6, abs=1e-6)
        prev = t
    assert c.time_of(c.total + 1.0) is None


@fast
@given(segments, st.floats(0, 300))
def test_uniform_arrival_count_matches_total(stages, start):
    # Includes ramps down to 0 followed by more stages (once lost to rounding).
    c = RateCurve.from_stages(stages, start_rate=round(start, 2))
    assert abs(count_arrivals(c) - round(c.total)) <= 1


def test_ramp_down_to_zero_then_up_keeps_later_arrivals():
    c = RateCurve.from_stages((Stage(10.0, 11.0), Stage(10.0, 0.0), Stage(10.0, 11.0)))
    assert c.total == pytest.approx(165.0)
    assert c.time_of(110.0) == pytest.approx(20.0)
    assert abs(count_arrivals(c) - 165) <= 1


@pytest.mark.parametrize(("rate", "duration"), [(100, 10), (1000, 3), (37.5, 20)])
@pytest.mark.parametrize("seed", [0, 1, 42])
def test_poisson_count_is_statistically_right(rate, duration, seed):
    c = RateCurve.constant(rate, duration)
    n = count_arrivals(c, poisson=True, rng=random.Random(seed))
    mean = c.total
    assert abs(n - mean) <= 5 * math.sqrt(mean)  # a 5-sigma bound: never fails by chance in practice


def test_poisson_is_reproducible_and_irregular():
    c = RateCurve.constant(200, 2)
    a = list(c.arrivals(poisson=True, rng=random.Random(7)))
    b = list(c.arrivals(poisson=True, rng=random.Random(7)))
    assert a == b
    assert a == sorted(a)
    gaps = [y - x for x, y in zip(a, a[1:], strict=False)]
    mean = sum(gaps) / len(gaps)
    assert mean == pytest.approx(1 / 200, rel=0.15)
    cv = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps)) / mean
    assert 0.8 < cv < 1.2  # exponential gaps have a coefficient of variation of 1


def test_poisson_ramp_follows_the_rate():
    c = RateCurve.from_stages((Stage(10.0, 400.0),))
    times = list(c.arrivals(poisson=True, rng=random.Random(3)))
    first = sum(1 for t in times if t < 5)
    second = sum(1 for t in times if t >= 5)
    # expected 500 and 1500
    assert abs(first - 500) < 5 * math.sqrt(500)
    assert abs(second - 1500) < 5 * math.sqrt(1500)


@pytest.mark.parametrize("workers", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("rate", [100.0, 500.0, 33.0])
def test_worker_phases_interleave_evenly(workers, rate):
    duration = 2.0
    curve = RateCurve.constant(rate, duration)
    per_worker = curve.scaled(1.0 / workers)
    merged = sorted(
        (t, i)
        for i in range(workers)
        for t in per_worker.arrivals(phase=i / workers)
        if t < duration
    )
    single = [t for t in curve.arrivals() if t < duration]
    assert len(merged) == len(single) == round(rate * duration)
    gaps = [b[0] - a[0] for a, b in zip(merged, merged[1:], strict=False)]
    assert all(g == pytest.approx(1 / rate, rel=1e-6) for g in gaps)
    # round-robin: worker 0, 1, ..., N-1, 0, 1, ...
    assert [i for _, i in merged] == [k % workers for k in range(len(merged))]


@pytest.mark.parametrize("workers", [2, 3])
def test_worker_phases_reproduce_a_ramp(workers):
    curve = RateCurve.from_stages((Stage(1.0, 100.0), Stage(1.0, 300.0)))
    single = list(curve.arrivals())
    per = curve.scaled(1.0 / workers)
    merged = sorted(t for i in range(workers) for t in per.arrivals(phase=i / workers))
    assert abs(len(merged) - len(single)) <= workers
    for a, b in zip(single, merged, strict=False):
        assert a == pytest.approx(b, abs=1e-6)


def _one_at_a_time(curve, poisson, phase, rng):
    """The reference: invert N(t) per arrival with time_of (what arrivals() did before chunks)."""
    n = phase if not poisson else rng.expovariate(1.0)
    while True:
        t = curve.time_of(n)
        if t is None:
            return
        yield t
        n += rng.expovariate(1.0) if poisson else 1.0


@pytest.mark.parametrize("poisson", [False, True])
@pytest.mark.parametrize("phase", [0.0, 1 / 3, 0.5])
def test_chunked_arrivals_are_the_same_floats_as_one_at_a_time(poisson, phase):
    import random

    curves = [RateCurve.constant(5000, 2), RateCurve([(0, 2, 0, 300), (2, 5, 300, 300), (5, 6, 300, 0)]),
              RateCurve([(0, 1, 10, 10), (1, 2, 0, 0), (2, 3, 7, 7)]), RateCurve.constant(1 / 3, 10)]
    for c in curves:
        ref = list(_one_at_a_time(c, poisson, phase, random.Random(7)))
        assert list(c.arrivals(poisson=poisson, phase=phase, rng=random.Random(7))) == ref
