"""Universal Scalability Law: X(N) = λN / (1 + σ(N−1) + κN(N−1)).

N is the load (concurrency: VUs, threads, processors), X(N) the throughput
(req/s, or whatever unit the data has). σ (contention, 0..1) is the share of
the work that serialises; κ (coherency, >= 0) the cost of keeping N workers
consistent with each other, which makes throughput fall beyond a peak; λ the
throughput of one worker.

The fit is bounded nonlinear least squares (scipy ``least_squares``, trust
region reflective) on all three parameters, as the R ``usl`` package (the
reference) does: it needs no N = 1 measurement and does not normalise by one.
Confidence intervals are the asymptotic ones of R's ``nls``/``confint.default``:
standard errors from the Jacobian at the optimum, cov = s²(JᵀJ)⁻¹ with
s² = RSS/(n − 3), times the Student t quantile with n − 3 degrees of freedom.
The peak concurrency N* = sqrt((1 − σ)/κ) and the peak throughput X(N*) get
intervals by the delta method (their gradient through the same covariance).
All intervals are clipped to the parameters' domains (σ in [0, 1], κ >= 0).

The verdict (:func:`_verdict`) names a limit only when the data show it, and
never reads "near-linear" off intervals that merely include 0: with four points
and three parameters they nearly always do. Near-linear needs the *measured*
efficiency at the largest load (per-unit throughput X(N)/N relative to the
smallest load's) to stay >= ``LINEAR_EFFICIENCY`` and the fitted slowdown
1 + σ(N−1) + κN(N−1) over the measured range to be that small too; when the
efficiency fell but neither σ nor κ is significant, the verdict says the points
cannot tell contention from coherency apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from scipy.optimize import least_squares

from surge.api.errors import UsageError

MIN_DISTINCT_LOADS = 3  # three parameters: fewer distinct loads cannot pin them down
MAX_VALUE = 1e15  # any larger load or throughput is out of range: its squares overflow the fit
LINEAR_EFFICIENCY = 0.8  # efficiency at the largest load (vs the smallest) that still counts as near-linear

CI_METHOD = ("asymptotic t-interval from the Jacobian (as R nls confint.default), n-3 df; "
             "N* and X(N*) by the delta method")


@dataclass(frozen=True)
class Estimate:
    """A fitted quantity with its standard error and confidence interval (same unit)."""

    value: float
    se: float
    low: float
    high: float

    def to_json(self) -> dict[str, Any]:
        return {"value": _num(self.value), "se": _num(self.se), "low": _num(self.low), "high": _num(self.high)}


@dataclass(frozen=True)
class USLFit:
    """A USL fit of throughput against load.

    ``sigma`` (contention, 0..1), ``kappa`` (coherency, 1/load²), ``lam`` (throughput
    of one unit of load, in the throughput's unit). ``n_peak`` is N* = sqrt((1−σ)/κ)
    (None when κ = 0: throughput never falls), ``x_peak`` the throughput there
    (X(N*), or the asymptote λ/σ when κ = 0; inf when σ = κ = 0). ``limit`` is
    ``coherency``, ``contention``, ``linear`` or ``unresolved`` (throughput per unit of
    load fell, but the fit cannot tell contention from coherency); ``verdict`` says it
    in one line. ``efficiency`` is the measured X(N)/N at the largest load
    ``efficiency_load`` relative to X(N₁)/N₁ at the smallest, ``base_load`` (mean
    throughput per distinct load; NaN when the smallest load's throughput is 0).
    """

    sigma: Estimate
    kappa: Estimate
    lam: Estimate
    n_peak: Estimate | None
    x_peak: Estimate
    r2: float
    residuals: tuple[float, ...]
    load: tuple[float, ...]
    throughput: tuple[float, ...]
    level: float
    limit: str
    verdict: str
    method: str = CI_METHOD
    notes: tuple[str, ...] = field(default=())
    efficiency: float = math.nan
    efficiency_load: float = math.nan
    base_load: float = math.nan

    def predict(self, n: Any) -> np.ndarray:
        """Throughput the model predicts at load(s) ``n``."""
        return usl(np.asarray(n, dtype=np.float64), self.sigma.value, self.kappa.value, self.lam.value)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": "X(N) = lambda*N / (1 + sigma*(N-1) + kappa*N*(N-1))",
            "sigma": self.sigma.to_json(),
            "kappa": self.kappa.to_json(),
            "lambda": self.lam.to_json(),
            "n_peak": self.n_peak.to_json() if self.n_peak else None,
            "x_peak": self.x_peak.to_json(),
            "r2": _num(self.r2),
            "residuals": [_num(r) for r in self.residuals],
            "confidence_level": self.level,
            "ci_method": self.method,
            "limit": self.limit,
            "verdict": self.verdict,
            "efficiency": {"value": _num(self.efficiency), "load": _num(self.efficiency_load),
                           "base_load": _num(self.base_load)},
            "notes": list(self.notes),
        }


def usl(n: np.ndarray, sigma: float, kappa: float, lam: float) -> np.ndarray:
    """X(N) = λN / (1 + σ(N−1) + κN(N−1))."""
    return lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


def peak_load(sigma: float, kappa: float) -> float:
    """N* = sqrt((1 − σ)/κ), the load of maximum throughput; inf when κ = 0."""
    return math.sqrt(max(1.0 - sigma, 0.0) / kappa) if kappa > 0 else math.inf


def peak_throughput(sigma: float, kappa: float, lam: float) -> float:
    """X(N*), or the asymptote λ/σ when κ = 0 (inf when σ = κ = 0)."""
    if kappa > 0:
        return float(usl(np.float64(peak_load(sigma, kappa)), sigma, kappa, lam))
    return lam / sigma if sigma > 0 else math.inf


def check_points(load: Any, throughput: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated float arrays; :class:`UsageError` naming what is wrong."""
    n = np.asarray(load, dtype=np.float64).ravel()
    x = np.asarray(throughput, dtype=np.float64).ravel()
    if n.size != x.size:
        raise UsageError(f"load and throughput differ in length ({n.size} vs {x.size})")
    if not (np.all(np.isfinite(n)) and np.all(np.isfinite(x))):
        raise UsageError("load and throughput must be finite numbers (found NaN or inf)")
    if max(float(np.abs(n).max(initial=0.0)), float(np.abs(x).max(initial=0.0))) > MAX_VALUE:
        raise UsageError(f"load and throughput must be at most {MAX_VALUE:g}: scale the values down "
                         "(e.g. thousands of req/s) before fitting")
    if np.any(n <= 0):
        raise UsageError("every load must be > 0 (a USL point at load 0 carries no information)")
    if np.any(x < 0):
        raise UsageError("throughput cannot be negative")
    distinct = np.unique(n).size
    if distinct < MIN_DISTINCT_LOADS:
        raise UsageError(
            f"the USL needs measurements at >= {MIN_DISTINCT_LOADS} distinct loads to fit σ, κ and λ; "
            f"got {distinct}: measure more load levels (e.g. --stages 0s:1,30s:1,0s:4,30s:4,0s:16,30s:16)"
        )
    if not np.any(x > 0):
        raise UsageError("every throughput is 0: nothing completed, there is nothing to fit")
    return n, x


def efficiency(load: Any, throughput: Any) -> tuple[float, float, float]:
    """Measured scaling efficiency ``(e, n_max, n_min)``: X(n_max)/n_max over X(n_min)/n_min.

    1.0 is perfectly linear scaling between the smallest and the largest load; 0.5
    means each unit of load at ``n_max`` gets half the throughput it got at
    ``n_min``. Repeated loads use their mean throughput. NaN when X(n_min) is 0.
    """
    n = np.asarray(load, dtype=np.float64).ravel()
    x = np.asarray(throughput, dtype=np.float64).ravel()
    lo, hi = float(n.min()), float(n.max())
    x_lo, x_hi = float(x[n == lo].mean()), float(x[n == hi].mean())
    if x_lo <= 0:
        return math.nan, hi, lo
    return (x_hi / hi) / (x_lo / lo), hi, lo


def _best_lambda(n: np.ndarray, x: np.ndarray, sigma: float, kappa: float) -> float:
    """For fixed σ, κ the model is linear in λ: the least-squares λ in closed form."""
    f = usl(n, sigma, kappa, 1.0)
    return float(max(np.dot(f, x) / np.dot(f, f), 1e-12))


def _solve(n: np.ndarray, x: np.ndarray) -> Any:
    def resid(p: np.ndarray) -> np.ndarray:
        return usl(n, p[0], p[1], p[2]) - x

    nmax = float(n.max())
    best = None
    # Several starts: the surface is flat along κ when the data never turn down.
    for s0 in (0.001, 0.05, 0.3):
        for k0 in (0.0, 1e-3 / nmax**2, 0.1 / nmax**2, 1.0 / nmax**2):
            p0 = np.array([s0, k0, _best_lambda(n, x, s0, k0)])
            r = least_squares(resid, p0, bounds=([0.0, 0.0, 0.0], [1.0, np.inf, np.inf]),
                              method="trf", x_scale="jac", xtol=1e-15, ftol=1e-15, gtol=1e-15,
                              max_nfev=5000)
            if best is None or r.cost < best.cost * (1 - 1e-12):
                best = r
    return best


def fit_usl(load: Any, throughput: Any, level: float = 0.95) -> USLFit:
    """Fit the USL to measured (load, throughput) points.

    ``load`` > 0 (concurrency), ``throughput`` >= 0 (req/s or any rate unit),
    at least three distinct loads. ``level`` is the confidence level of the
    intervals (0.95 = 95 %). Raises :class:`UsageError` on unusable data.
    """
    n, x = check_points(load, throughput)
    res = _solve(n, x)
    sigma, kappa, lam = (float(v) for v in res.x)
    nmax = float(n.max())
    # The solver stops a hair inside a bound (κ = 1e-27): snap terms that cannot matter
    # over the measured loads to exactly 0, so N* is "none" rather than 10^13.
    if kappa * nmax * max(nmax - 1.0, 1.0) < 1e-9:
        kappa = 0.0
    if sigma * max(nmax - 1.0, 1.0) < 1e-9:
        sigma = 0.0
    resid = x - usl(n, sigma, kappa, lam)
    dof = n.size - 3
    rss = float(np.dot(resid, resid))
    notes = []
    if dof > 0:
        s2 = rss / dof
        jac = _jacobian(n, sigma, kappa, lam)
        cov = np.linalg.pinv(jac.T @ jac) * s2
        tq = float(stats.t.ppf(0.5 + level / 2.0, dof))
    else:
        cov, tq = np.full((3, 3), np.nan), math.nan
        notes.append("exactly 3 points for 3 parameters: the fit passes through them; no intervals")
    se = [float(v) for v in np.sqrt(np.clip(np.diag(cov), 0.0, None))]

    def est(v: float, s: float, lo_bound: float = -math.inf, hi_bound: float = math.inf) -> Estimate:
        return Estimate(v, s, max(v - tq * s, lo_bound), min(v + tq * s, hi_bound))

    e_sigma = est(sigma, se[0], 0.0, 1.0)
    e_kappa = est(kappa, se[1], 0.0)
    e_lam = est(lam, se[2], 0.0)
    if kappa == 0.0 or sigma == 0.0:
        notes.append("a parameter sits on its bound (σ or κ = 0): its interval is one-sided and approximate")
    n_star = peak_load(sigma, kappa)
    x_star = peak_throughput(sigma, kappa, lam)
    e_npeak = None
    if math.isfinite(n_star):
        g = _grad(lambda p: peak_load(p[0], p[1]), np.array([sigma, kappa, lam]))
        e_npeak = est(n_star, _delta_se(g, cov), 0.0)
    if math.isfinite(x_star):
        g = _grad(lambda p: peak_throughput(p[0], p[1], p[2]), np.array([sigma, kappa, lam]))
        e_xpeak = est(x_star, _delta_se(g, cov), 0.0)
    else:
        e_xpeak = Estimate(math.inf, math.nan, math.nan, math.inf)
    sst = float(np.sum((x - x.mean()) ** 2))
    r2 = 1.0 - rss / sst if sst > 0 else math.nan
    eff, eff_load, base = efficiency(n, x)
    limit, verdict = _verdict(e_sigma, e_kappa, e_lam, e_npeak, e_xpeak, nmax, float(n.min()), eff,
                              int(np.unique(n).size))
    if r2 == r2 and r2 < 0.8:
        notes.append(f"R² = {r2:.2f}: the USL explains the data poorly; check for noisy or non-steady points")
    return USLFit(e_sigma, e_kappa, e_lam, e_npeak, e_xpeak, r2, tuple(float(r) for r in resid),
                  tuple(float(v) for v in n), tuple(float(v) for v in x), level, limit, verdict,
                  notes=tuple(notes), efficiency=eff, efficiency_load=eff_load, base_load=base)


def _jacobian(n: np.ndarray, sigma: float, kappa: float, lam: float) -> np.ndarray:
    """Analytic ∂X/∂(σ, κ, λ) at every load."""
    d = 1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0)
    x = lam * n / d
    return np.column_stack([-x * (n - 1.0) / d, -x * n * (n - 1.0) / d, n / d])


def _grad(f: Any, p: np.ndarray) -> np.ndarray:
    """Central-difference gradient of a scalar function of (σ, κ, λ), relative steps."""
    g = np.zeros(3)
    for i in range(3):
        h = max(abs(p[i]) * 1e-6, 1e-12)
        lo, hi = p.copy(), p.copy()
        lo[i] = max(p[i] - h, 0.0)
        hi[i] = p[i] + h
        g[i] = (f(hi) - f(lo)) / (hi[i] - lo[i])
    return g


def _delta_se(g: np.ndarray, cov: np.ndarray) -> float:
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(cov))):
        return math.nan
    v = float(g @ cov @ g)
    return math.sqrt(v) if v >= 0 else math.nan


def _significant(e: Estimate) -> bool:
    """The estimate differs from 0: its interval excludes 0, or (exactly 3 points: no
    interval) the point estimate is all there is and it is above 0."""
    if math.isnan(e.low):
        return e.value > 0
    return e.value > 0 and e.low > 0.0


def _pct(v: float) -> str:
    return f"{v * 100:.0f}%"


def _q(v: float, digits: int = 4) -> str:
    """A quantity in plain digits: ``96.5``, ``1,884``, ``49,360`` (no ``e+04``)."""
    return f"{v:,.0f}" if abs(v) >= 10 ** (digits - 1) else f"{v:.{digits}g}"


def _verdict(sigma: Estimate, kappa: Estimate, lam: Estimate, npeak: Estimate | None,
             xpeak: Estimate, nmax: float, nmin: float, eff: float, distinct: int) -> tuple[str, str]:
    """Which limit shows in the data: ``(limit, one-line verdict)``.

    - coherency: κ significant, or the fitted peak N* lies within the measured loads;
    - contention: σ significant (with a note when the data still scale near-linearly);
    - linear: neither, *and* the data scale near-linearly: measured efficiency at the
      largest load >= LINEAR_EFFICIENCY and the fitted slowdown over the measured loads,
      D(N₁)/D(N_max) with D(N) = 1 + σ(N−1) + κN(N−1), at least as high (small σ, κ);
    - unresolved: neither is significant but throughput per unit of load fell (or the
      fit and the data disagree): the points are too few or too noisy to tell which.
    """
    at = f"at {_q(nmax)}"
    vs = f"(throughput per unit of load, vs load {_q(nmin)})"
    eff_text = "efficiency unknown (no throughput at the smallest load)" if math.isnan(eff) \
        else f"efficiency {_pct(eff)} {at} {vs}"

    def slowdown(n: float) -> float:
        return 1.0 + sigma.value * (n - 1.0) + kappa.value * n * (n - 1.0)

    model_eff = slowdown(nmin) / slowdown(nmax)
    scales = not math.isnan(eff) and eff >= LINEAR_EFFICIENCY and model_eff >= LINEAR_EFFICIENCY

    def shows(e: Estimate) -> bool:
        # Without an interval (3 points) a small positive estimate is no evidence against
        # data that scale near-linearly.
        return _significant(e) and not (scales and math.isnan(e.low))

    if npeak is not None and (shows(kappa) or npeak.value <= nmax):
        where = "within" if npeak.value <= nmax else "beyond"
        return "coherency", (
            f"coherency-limited: throughput peaks at N*≈{_q(npeak.value, 3)} (~{_q(xpeak.value)}/s) and falls "
            f"beyond ({where} the measured loads, max {_q(nmax)}); {eff_text}")
    if shows(sigma):
        # κ is not significant (or 0, on its bound): the curve flattens toward λ/σ (Amdahl).
        what = (f"throughput flattens toward ~{_q(lam.value / sigma.value)}/s "
                f"(σ={sigma.value:.3g}: {sigma.value * 100:.3g}% of the work serialises)")
        if scales:
            return "contention", f"contention measured, though still near-linear up to load {_q(nmax)}: {what}; {eff_text}"
        return "contention", f"contention-limited: {what}; {eff_text}"
    if scales:
        return "linear", (
            f"near-linear up to load {_q(nmax)}: {eff_text}, no contention or coherency shows; "
            "load it harder to find the limit")
    few = "too few points" if distinct <= 5 else "the points are too noisy"
    if not math.isnan(eff) and eff < LINEAR_EFFICIENCY:
        return "unresolved", (
            f"{few} to separate contention from coherency: efficiency fell to {_pct(eff)} {at} {vs}; "
            "measure more load levels")
    return "unresolved", (
        f"{few} to name a limit: σ and κ are not significant, yet the fitted curve slows throughput per unit "
        f"of load to {_pct(model_eff)} {at} ({eff_text}); measure more load levels")


def _num(v: float) -> float | None:
    """JSON-safe number: NaN becomes None, inf stays a string-free large marker (None)."""
    return float(v) if v is not None and math.isfinite(v) else None
