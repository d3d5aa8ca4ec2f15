"""Erlang C / M/M/c sizing and the growth projection.

Reference values: the Call Centre Helper worked example "Erlang C formula –
made simple with an worked example"
(https://www.callcentrehelper.com/erlang-c-formula-example-121281.htm):
100 calls in 30 minutes, average handling time 180 s → A = 10 Erlangs; target
80 % answered within 20 s. Published: 11 agents → probability of waiting 68.21 %;
14 agents → probability of waiting 17.41 %, service level 88.84 %, occupancy
71.4 %, and 14 is the fewest agents meeting 80/20. The same figures
(0.1741319335950498, 0.8883500191794669, raw positions 14) are the expected
results in the test suite of pyworkforce (rodrigo-arenas/pyworkforce), which
reproduces that example.
"""

from __future__ import annotations

import math
from datetime import date

import pytest

from surge.analysis.capacity.erlang import (
    erlang_b,
    erlang_c,
    mean_wait,
    response_within,
    service_level,
    size_instances,
)
from surge.analysis.capacity.growth import project_growth
from surge.api.errors import UsageError


def sig4(v: float) -> float:
    return float(f"{v:.4g}")


def test_call_centre_helper_example():
    a, mu = 10.0, 1 / 180  # 10 Erlangs; service rate per agent 1/180 s
    assert sig4(erlang_c(11, a)) == 0.6821
    assert sig4(erlang_c(14, a)) == 0.1741
    assert sig4(service_level(14, a, mu, 20)) == 0.8884
    # The fewest agents with >= 80% answered within 20 s is 14 (13 gives 79.6%).
    assert service_level(13, a, mu, 20) < 0.80 <= service_level(14, a, mu, 20)
    s = size_instances(target_rate=100 / 1800, per_instance=mu, slo_s=20, percentile=80)
    assert s.instances == 14
    assert sig4(s.utilisation) == 0.7143


def test_erlang_c_equals_the_factorial_formula():
    def direct(c: int, a: float) -> float:
        top = a**c / math.factorial(c) * c / (c - a)
        return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)

    for c, a in [(1, 0.5), (2, 1.5), (25, 24.0), (30, 24.0), (60, 48.0), (55, 48.0)]:
        assert erlang_c(c, a) == pytest.approx(direct(c, a), rel=1e-12)


def test_mm1_closed_forms():
    # M/M/1: P(wait) = ρ, mean wait = ρ / (μ − λ).
    lam, mu = 8.0, 10.0
    assert erlang_c(1, lam / mu) == pytest.approx(0.8)
    assert mean_wait(1, lam / mu, mu) == pytest.approx(0.8 / (mu - lam))
    # Response time of M/M/1 is Exp(μ − λ).
    assert response_within(1, lam / mu, mu, 0.3) == pytest.approx(1 - math.exp(-(mu - lam) * 0.3))


def test_response_within_matches_simulation():
    import numpy as np

    rng = np.random.default_rng(3)
    c, a, mu, t = 4, 3.0, 1.0, 2.0
    cw = erlang_c(c, a)
    n = 200_000
    waits = np.where(rng.random(n) < cw, rng.exponential(1 / ((c - a) * mu), n), 0.0)
    total = waits + rng.exponential(1 / mu, n)
    assert response_within(c, a, mu, t) == pytest.approx(float(np.mean(total <= t)), abs=0.005)
    # c − a − 1 = 0 takes the limit branch; it must agree with its neighbours.
    mid = response_within(5, 4.0, mu, t)
    assert response_within(5, 4.0 - 1e-6, mu, t) == pytest.approx(mid, abs=1e-5)


def test_stable_for_large_systems():
    from scipy.stats import poisson

    # Erlang B is the truncated Poisson: pmf(c) / cdf(c), an independent way to compute it.
    for c, a in [(2000, 1950.0), (5000, 4900.0), (300, 150.0)]:
        assert erlang_b(c, a) == pytest.approx(poisson.pmf(c, a) / poisson.cdf(c, a), rel=1e-9)
        assert 0 < erlang_c(c, a) < 1
    assert erlang_c(10, 10.0) == 1.0 and erlang_c(10, 12.0) == 1.0
    assert mean_wait(3, 3.0, 1.0) == math.inf


def test_sizing_meets_slo_and_is_minimal():
    s = size_instances(target_rate=5000, per_instance=800, slo_s=0.3, percentile=99, base_latency_s=0.05)
    assert s.instances >= math.ceil(5000 / 800)
    assert s.p_within_slo >= 0.99
    fewer = service_level(s.instances - 1, 5000 / 800, 800, 0.25)
    assert fewer < 0.99 or s.instances - 1 <= 5000 / 800


@pytest.mark.parametrize("kw,msg", [
    ({"target_rate": 100, "per_instance": 50, "slo_s": 0.1, "base_latency_s": 0.2}, "unloaded latency"),
    ({"target_rate": 100, "per_instance": 50, "slo_s": 0.1, "percentile": 100}, "percentile"),
    ({"target_rate": 0, "per_instance": 50, "slo_s": 0.1}, "> 0"),
])
def test_sizing_errors(kw, msg):
    with pytest.raises(UsageError, match=msg):
        size_instances(**kw)


def test_growth_compounds():
    g = project_growth(peak=1000, capacity=2000, growth=0.05, start=date(2026, 1, 1))
    assert g.months_left == pytest.approx(math.log(2) / math.log(1.05))  # 14.2 months
    assert g.runs_out == date(2027, 3, 9)  # 14.21 months x 30.44 days = 432 days after 2026-01-01
    assert g.table[0] == (0, 1000)
    assert g.table[-1][1] >= 2000 > g.table[-2][1]


def test_growth_edges():
    assert project_growth(2000, 1000, 0.05, date(2026, 1, 1)).months_left == 0
    flat = project_growth(1000, 2000, 0.0, date(2026, 1, 1))
    assert flat.runs_out is None and flat.months_left == math.inf
    with pytest.raises(UsageError):
        project_growth(0, 1000, 0.05, date(2026, 1, 1))
