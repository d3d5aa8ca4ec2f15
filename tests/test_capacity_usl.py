"""USL fit against published reference fits, synthetic recovery, and the knee finder.

References
----------
specsdm91 and raytracer: datasets of Gunther, *Guerrilla Capacity Planning*
(Springer 2007), shipped by the R package ``usl`` (Stefan Möding,
https://github.com/smoeding/usl). The data values below, fitted by R ``usl``
(nls on σ, κ and the scale factor γ = λ, no normalisation):

- specsdm91 (README of smoeding/usl, ``usl(throughput ~ load, specsdm91)``):
  alpha 0.0277285 (SE 0.0091217), beta 0.0001044 (SE 0.0000199),
  gamma 89.9952330 (SE 14.2134894).
- raytracer (tests/confint.Rout.save of smoeding/usl): alpha 0.0578, beta 0.0000,
  gamma 21.8488.

Cisco: the benchmark of Baron Schwartz, *Practical Scalability Analysis with the
Universal Scalability Law* (VividCortex, 2015), with the fit listed in the book:
σ 0.02671591, κ 7.690945e-4, λ 995.6486, N* 35, X(N*) 12341 (as quoted by the
usl4j test suite, https://github.com/codahale/usl4j, and its ports).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from surge.analysis.capacity.knee import find_knee
from surge.analysis.capacity.usl import fit_usl, peak_load, usl
from surge.api.errors import UsageError

SPECSDM91 = ([1, 18, 36, 72, 108, 144, 216], [64.9, 995.9, 1652.4, 1853.2, 1828.9, 1775.0, 1702.2])
RAYTRACER = ([1, 4, 8, 12, 16, 20, 24, 28, 32, 48, 64], [20, 78, 130, 170, 190, 200, 210, 230, 260, 280, 310])
CISCO = (list(range(1, 33)), [
    955.16, 1878.91, 2688.01, 3548.68, 4315.54, 5130.43, 5931.37, 6531.08, 7219.8, 7867.61, 8278.71,
    8646.7, 9047.84, 9426.55, 9645.37, 9897.24, 10097.6, 10240.5, 10532.39, 10798.52, 11151.43,
    11518.63, 11806, 12089.37, 12075.41, 12177.29, 12211.41, 12158.93, 12155.27, 12118.04, 12140.4, 12074.39])


def close(got: float, want: float, rel: float = 0.02) -> bool:
    return abs(got - want) <= rel * abs(want)


def test_specsdm91_matches_r_usl():
    f = fit_usl(*SPECSDM91)
    assert close(f.sigma.value, 0.0277285)
    assert close(f.kappa.value, 0.0001044)
    assert close(f.lam.value, 89.9952330)
    assert close(f.n_peak.value, peak_load(0.0277285, 0.0001044))
    # Standard errors as R's nls reports them: the asymptotic covariance is the same.
    assert close(f.sigma.se, 0.0091217)
    assert close(f.kappa.se, 0.0000199)
    assert close(f.lam.se, 14.2134894)
    assert f.limit == "coherency"
    assert "coherency-limited" in f.verdict and "N*≈96" in f.verdict


def test_specsdm91_interval_is_t_based_with_n_minus_3_df():
    from scipy import stats

    f = fit_usl(*SPECSDM91, level=0.95)
    t = stats.t.ppf(0.975, 7 - 3)
    assert f.sigma.low == pytest.approx(f.sigma.value - t * f.sigma.se)
    assert f.kappa.high == pytest.approx(f.kappa.value + t * f.kappa.se)
    assert f.n_peak.low < f.n_peak.value < f.n_peak.high
    assert f.x_peak.low < f.x_peak.value < f.x_peak.high


def test_raytracer_matches_r_usl_contention_only():
    f = fit_usl(*RAYTRACER)
    assert close(f.sigma.value, 0.0578)
    assert close(f.lam.value, 21.8488)
    assert f.kappa.value == 0.0  # R reports beta 0.0000: on the bound
    assert f.n_peak is None
    assert close(f.x_peak.value, 21.8488 / 0.0578)  # asymptote λ/σ
    assert f.limit == "contention"
    assert "contention-limited" in f.verdict and "flattens" in f.verdict


def test_cisco_matches_schwartz_book():
    f = fit_usl(*CISCO)
    assert close(f.sigma.value, 0.02671591, 0.002)
    assert close(f.kappa.value, 7.690945e-4, 0.002)
    assert close(f.lam.value, 995.6486, 0.002)
    assert math.floor(f.n_peak.value) == 35
    assert close(f.x_peak.value, 12341, 0.002)
    assert f.r2 > 0.99


def test_fit_needs_no_n1_point():
    n, x = SPECSDM91
    f = fit_usl(n[1:], x[1:])  # drop N = 1: λ is a free parameter
    assert f.kappa.value > 0 and f.n_peak is not None
    assert 60 < f.n_peak.value < 140


@pytest.mark.parametrize("sigma,kappa", [(0.05, 0.0005), (0.1, 0.0), (0.02, 0.002)])
def test_recovers_known_parameters_from_noisy_synthetic_data(sigma, kappa):
    rng = np.random.default_rng(7)
    n = np.array([1, 2, 4, 8, 12, 16, 24, 32, 48, 64], dtype=float)
    x = usl(n, sigma, kappa, 100.0) * (1 + rng.normal(0, 0.01, n.size))
    f = fit_usl(n, x)
    assert f.sigma.value == pytest.approx(sigma, abs=0.01)
    assert f.kappa.value == pytest.approx(kappa, abs=2e-4)
    assert f.lam.value == pytest.approx(100.0, rel=0.03)
    # The truth lies inside the 95% intervals.
    assert f.sigma.low <= sigma <= f.sigma.high
    assert f.kappa.low <= kappa <= f.kappa.high


def test_linear_data_says_near_linear():
    n = np.array([1, 2, 4, 8, 16])
    f = fit_usl(n, 50.0 * n)
    assert f.limit == "linear"
    assert f.sigma.value == pytest.approx(0.0, abs=1e-6)
    assert f.efficiency == pytest.approx(1.0)
    assert f.verdict.startswith("near-linear up to load 16: efficiency 100% at 16")


# A tutorial run (20261123-040916-shop): 4 steps of 8 s, throughput flattening and p95
# rising 52 ms -> ~2 s. With 4 points both intervals include 0; it is not near-linear.
SHOP = ([100, 300, 600, 900], [235.5, 610.8, 686.3, 785.6])


def test_saturated_four_steps_is_not_near_linear():
    f = fit_usl(*SHOP)
    assert f.sigma.low == 0.0 and f.kappa.low == 0.0  # neither is significant ...
    assert f.efficiency == pytest.approx((785.6 / 900) / (235.5 / 100))  # ... but efficiency fell to 37%
    assert (f.efficiency_load, f.base_load) == (900.0, 100.0)
    assert f.limit == "unresolved"
    assert "near-linear" not in f.verdict
    assert f.verdict.startswith("too few points to separate contention from coherency: "
                                "efficiency fell to 37% at 900")
    assert f.verdict.endswith("measure more load levels")
    js = f.to_json()
    assert js["limit"] == "unresolved" and js["efficiency"]["value"] == pytest.approx(0.3707, abs=1e-4)


def test_noisy_near_linear_with_wide_intervals_is_near_linear():
    n = np.array([10, 20, 40, 80])
    f = fit_usl(n, 50.0 * n * np.array([1.01, 0.98, 1.0, 0.97]))
    assert f.sigma.low == 0.0 and f.kappa.low == 0.0
    assert f.efficiency >= 0.8
    assert f.limit == "linear" and "near-linear up to load 80: efficiency 96% at 80" in f.verdict


def test_many_noisy_points_that_fell_are_unresolved_not_linear():
    """Efficiency falls but the noise hides which term: more points do not make it 'near-linear'."""
    n = np.array([10, 20, 30, 40, 50, 60], dtype=float)
    x = 50.0 * n * np.array([1.0, 0.55, 0.95, 0.5, 0.85, 0.7])
    f = fit_usl(n, x)
    assert f.efficiency < 0.8
    assert f.limit == "unresolved" and "near-linear" not in f.verdict
    assert f.verdict.startswith("the points are too noisy to separate contention from coherency: efficiency fell to 70%")


def test_contention_only_with_tight_intervals():
    """κ = 0 (on its bound) and σ > 0 with a tight interval: contention, flattening to λ/σ, no peak."""
    rng = np.random.default_rng(3)
    n = np.array([1, 2, 4, 8, 16, 24, 32, 48, 64], dtype=float)
    f = fit_usl(n, usl(n, 0.05, 0.0, 100.0) * (1 + rng.normal(0, 0.003, n.size)))
    assert f.kappa.value == 0.0 and f.n_peak is None
    assert 0.0 < f.sigma.low < f.sigma.value < f.sigma.high < 0.06
    assert f.limit == "contention"
    asym = f.lam.value / f.sigma.value
    assert f.verdict.startswith(f"contention-limited: throughput flattens toward ~{asym:,.0f}/s "
                                f"(σ={f.sigma.value:.3g}: {f.sigma.value * 100:.3g}% of the work serialises)")
    assert "efficiency 24% at 64 (throughput per unit of load, vs load 1)" in f.verdict
    assert "peak" not in f.verdict and "N*" not in f.verdict and "e+" not in f.verdict
    assert any("bound" in note for note in f.notes)


def test_small_significant_contention_on_near_linear_data_says_both():
    rng = np.random.default_rng(3)
    n = np.array([1, 2, 4, 8, 16], dtype=float)
    f = fit_usl(n, usl(n, 0.002, 0.0, 100.0) * (1 + rng.normal(0, 0.0005, n.size)))
    assert f.sigma.low > 0 and f.efficiency >= 0.8
    assert f.limit == "contention"
    assert f.verdict.startswith("contention measured, though still near-linear up to load 16")


def test_three_points_without_intervals_go_by_the_data():
    f = fit_usl([1, 2, 4], [50, 99, 195])  # tiny σ > 0, no interval: near-linear, not "contention"
    assert f.limit == "linear"
    g = fit_usl([1, 2, 4], [50, 90, 150])
    assert g.limit == "contention"


def test_residuals_and_prediction():
    f = fit_usl(*SPECSDM91)
    n, x = SPECSDM91
    assert np.allclose(np.asarray(x) - f.predict(n), f.residuals)
    assert 0.98 < f.r2 < 1.0
    js = f.to_json()
    assert js["sigma"]["value"] == pytest.approx(f.sigma.value)
    assert "delta method" in js["ci_method"]


@pytest.mark.parametrize("n,x,msg", [
    ([1, 2], [10, 20], "distinct loads"),
    ([1, 1, 2, 2], [10, 11, 20, 21], "distinct loads"),
    ([1, 2, 0], [10, 20, 5], "> 0"),
    ([1, 2, 3], [10, float("nan"), 30], "finite"),
    ([1, 2, 3], [0, 0, 0], "nothing to fit"),
])
def test_bad_input_is_a_usage_error(n, x, msg):
    with pytest.raises(UsageError, match=msg):
        fit_usl(n, x)


# --------------------------------------------------------------------------- knee


def test_knee_of_a_hockey_stick():
    thr = [100, 200, 300, 400, 480, 520, 540]
    lat = [10, 10.5, 11, 12, 20, 60, 200]
    k = find_knee(thr, lat)
    assert k is not None
    assert k.x == 480 and k.y == 20 and k.index == 4
    assert 0 < k.score <= 1


def test_knee_index_refers_to_unsorted_input():
    thr = [540, 100, 300, 200, 480, 400, 520]
    lat = [200, 10, 11, 10.5, 20, 12, 60]
    k = find_knee(thr, lat)
    assert k is not None and k.index == 4 and thr[k.index] == 480


@pytest.mark.parametrize("x,y", [
    ([1, 2, 3, 4, 5], [10, 20, 30, 40, 50]),       # straight line
    ([1, 2, 3, 4, 5], [10, 30, 40, 45, 47]),       # concave: rises then flattens
    ([1, 2, 3, 4, 5], [50, 40, 30, 20, 10]),       # falling
    ([1, 2, 3], [1, 1, 100]),                      # too few points
    ([1, 2, 3, 4, 5], [5, 5, 5, 5, 5]),            # flat
])
def test_no_knee(x, y):
    assert find_knee(x, y) is None
