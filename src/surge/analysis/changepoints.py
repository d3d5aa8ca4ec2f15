"""Change points in a metric's history across runs (``surge history``).

Three steps, after Matteson & James (2014) and Hunter/Apache Otava (Fleming et al. 2023):

0. **Isolated outliers are set aside.** A value more than 5 robust standard deviations
   from the median of the ``2 * min_segment - 1`` values centred on it is treated like a
   missing value. That median follows any run of ``min_segment`` or more values at a
   new level, so shifts are untouched, while a lone spike (or any run shorter than a
   segment may be) stands out from its neighbours and is skipped.
1. **E-divisive means** (energy statistic, alpha = 1) finds candidates by hierarchical
   bisection. Each step takes the split ``(tau, kappa)`` of one current segment that
   maximises the scaled energy divergence between ``x[start:tau]`` and ``x[tau:kappa]``,
   both at least ``min_segment`` long, and keeps it only if a permutation test (values
   shuffled within every current segment, ``permutations`` times, seeded) puts its
   p-value at or below ``alpha``. Bisection stops at the first split that is not significant.
2. **Welch confirmation.** Each candidate is tested against its neighbours with Welch's
   t-test (unbiased variances, Welch-Satterthwaite degrees of freedom). The weakest
   candidate whose p-value exceeds ``alpha`` (or, next, whose relative shift is below
   ``min_magnitude``) is removed and its neighbours retested, until every one passes.
   Otava's merge step passes ``ddof=0`` standard deviations into a pooled-variance test,
   which understates the variance of short windows and calls too many change points;
   Welch with ``ddof=1`` does not.

So a single outlier is not a shift twice over: it is set aside, and no segment is
shorter than ``min_segment`` (>= 2), so a lone point could never be split off anyway.

Pure numpy, no scipy: the Student t distribution is computed here (regularised
incomplete beta by continued fraction). Time and memory are O(n^2) per segment for the
distance matrices, times ``permutations`` for the test; 200 points take well under a second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["ChangePoint", "ChangePointConfig", "detect"]

# Permuted arrays are processed in batches of at most this many float64 elements per
# (batch, n, n) array, so a 200-point segment needs a few MB at a time.
_BATCH_ELEMENTS = 500_000
# Values further than this many robust standard deviations from their local median are
# isolated outliers, treated as missing (see _outliers).
_OUTLIER_K = 5.0


@dataclass(frozen=True)
class ChangePoint:
    """A shift in the level of a series.

    ``index`` is the first index (in the caller's original sequence, missing values
    counted) of the new segment. Means are over the finite values of the adjacent
    segments, i.e. from the previous change point (or the start) to this one, and from
    this one to the next (or the end), leaving out isolated outliers (see the module
    docstring), so one wild run does not move them. ``magnitude`` is ``after_mean / before_mean - 1``;
    ``ci_low``/``ci_high`` bound that relative change at confidence ``1 - alpha``
    (Fieller's interval for a ratio of means with Welch degrees of freedom; infinite
    when the before-mean is not itself distinguishable from zero). ``p_value`` is the
    two-sided Welch t-test p-value between the two segments.
    """

    index: int
    before_mean: float
    after_mean: float
    magnitude: float
    ci_low: float
    ci_high: float
    p_value: float
    direction: Literal["up", "down"]


@dataclass(frozen=True)
class ChangePointConfig:
    """Settings for :func:`detect`.

    ``min_segment``: fewest points on either side of a change point (>= 2).
    ``alpha``: significance level of both the permutation test and the Welch test, and
    ``1 - alpha`` is the confidence level of the magnitude interval.
    ``permutations``: permutations per segment for the E-divisive test; the smallest
    attainable p-value is ``1 / (permutations + 1)``, so keep it above ``1 / alpha - 1``.
    ``seed`` (>= 0): makes the permutation test reproducible.
    ``min_magnitude``: ignore shifts whose ``|after / before - 1|`` is below this.
    """

    min_segment: int = 3
    alpha: float = 0.01
    permutations: int = 199
    seed: int = 0
    min_magnitude: float = 0.0

    def __post_init__(self) -> None:
        if int(self.min_segment) != self.min_segment or self.min_segment < 2:
            raise ValueError(f"min_segment must be an integer >= 2, got {self.min_segment!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if int(self.permutations) != self.permutations or self.permutations < 1:
            raise ValueError(f"permutations must be an integer >= 1, got {self.permutations!r}")
        if int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not self.min_magnitude >= 0.0:
            raise ValueError(f"min_magnitude must be >= 0, got {self.min_magnitude!r}")


def detect(values: Sequence[float | None], config: ChangePointConfig = ChangePointConfig()) -> list[ChangePoint]:
    """Change points of ``values`` (one number per run, oldest first), ordered by index.

    ``None``, NaN and infinite values are skipped, and so are isolated outliers;
    indices still refer to ``values``. Fewer than ``2 * min_segment`` values left give ``[]``.
    """
    cfg = config
    raw = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    keep = np.flatnonzero(np.isfinite(raw))
    if len(keep) < 2 * cfg.min_segment:
        return []
    keep = keep[~_outliers(raw[keep], cfg.min_segment)]
    x = raw[keep]
    if len(x) < 2 * cfg.min_segment:
        return []
    cuts = _e_divisive(x, cfg)
    cuts = _confirm(x, cuts, cfg)
    bounds = [0, *cuts, len(x)]
    return [
        _describe(x[bounds[i - 1] : bounds[i]], x[bounds[i] : bounds[i + 1]], int(keep[bounds[i]]), cfg.alpha)
        for i in range(1, len(bounds) - 1)
    ]


# --------------------------------------------------------------------------- outliers


def _outliers(x: np.ndarray, ms: int, k: float = _OUTLIER_K) -> np.ndarray:
    """Mask of values more than k robust standard deviations from the median of the
    2 ms - 1 values centred on them (fewer at the ends).

    A median over 2 ms - 1 values follows any run of at least ms values at a new level,
    so the values on either side of a level shift are not flagged, while a run of fewer
    than ms outlying values (too short ever to be a segment) is. The scale is the median
    absolute first difference, robust to both shifts and spikes. Positive series are
    judged on a log scale, so "k standard deviations" is relative, as the run-to-run
    noise of latencies and throughputs is.
    """
    h = ms - 1
    y = np.log(x) if bool(np.all(x > 0)) else x
    diffs = np.abs(np.diff(y))
    scale = float(np.median(diffs)) / (0.6745 * math.sqrt(2.0))
    if scale == 0.0:  # quantised data: fall back to the mean absolute difference
        scale = float(np.mean(diffs)) * math.sqrt(math.pi) / 2.0
    if scale == 0.0:
        return np.zeros(len(x), dtype=bool)
    padded = np.concatenate([np.full(h, np.nan), y, np.full(h, np.nan)])
    local = np.nanmedian(sliding_window_view(padded, 2 * h + 1), axis=1)
    return np.abs(y - local) > k * scale


# --------------------------------------------------------------------------- E-divisive


@lru_cache(maxsize=64)
def _coefficients(n: int, ms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Constant grids over splits tau (rows, ms..n-ms) x kappa (cols, 0..n) of a length-n
    segment, such that Q = A * P[tau, kappa] - B * P[tau, tau] - C * P[kappa, kappa] + M,
    M being 0 where both sides have at least ms points and -inf elsewhere."""
    taus = np.arange(ms, n - ms + 1, dtype=np.float64)[:, None]
    kappas = np.arange(n + 1, dtype=np.float64)[None, :]
    ok = (kappas - taus) >= ms
    a = np.broadcast_to(taus, ok.shape)
    b = np.where(ok, kappas - taus, 2.0)
    c1 = 2.0 * b / (a - 1.0)  # within-X weight
    c2 = 2.0 * a / (b - 1.0)  # within-Y weight
    grids = [
        np.where(ok, (2.0 + c2) / (a + b), 0.0),
        np.where(ok, (2.0 + c1) / (a + b), 0.0),
        np.where(ok, c2 / (a + b), 0.0),
        np.where(ok, 0.0, -np.inf),
    ]
    for g in grids:
        g.setflags(write=False)
    return grids[0], grids[1], grids[2], grids[3]


def _q_stats(z: np.ndarray, ms: int) -> np.ndarray:
    """Scaled energy divergence Q(tau, kappa) for every admissible split of each row of z.

    z: (batch, n). Returns (batch, n - 2 ms + 1, n + 1): rows tau = ms.., columns kappa,
    -inf where a side would be shorter than ms. For X = z[:tau] (a points) and
    Y = z[tau:kappa] (b points), the U-statistic form of Matteson & James' q-hat, alpha = 1:
    Q = 2/(a+b) sum|X-Y| - 2b/((a+b)(a-1)) sum_{i<k}|X_i-X_k| - 2a/((a+b)(b-1)) sum_{j<k}|Y_j-Y_k|.
    With P[r, c] = sum_{i<r, i<k<c} |z_i - z_k|: within X = P[tau, tau], within
    Y = P[kappa, kappa] - P[tau, kappa], across = P[tau, kappa] - P[tau, tau].
    """
    bsz, n = z.shape
    coef_a, coef_b, coef_c, mask = _coefficients(n, ms)
    d = np.abs(z[:, :, None] - z[:, None, :])
    d *= _upper(n)
    p = np.zeros((bsz, n + 1, n + 1))
    np.cumsum(d, axis=1, out=d)
    np.cumsum(d, axis=2, out=p[:, 1:, 1:])
    diag = np.diagonal(p, axis1=1, axis2=2)  # (bsz, n+1): P[k, k]
    p_tk = p[:, ms : n - ms + 1, :]  # P[tau, kappa]
    q = p_tk * coef_a
    q -= diag[:, ms : n - ms + 1, None] * coef_b
    q -= diag[:, None, :] * coef_c
    q += mask
    return q


@lru_cache(maxsize=64)
def _upper(n: int) -> np.ndarray:
    u = np.triu(np.ones((n, n)), 1)
    u.setflags(write=False)
    return u


def _best_split(z: np.ndarray, ms: int) -> tuple[int, float]:
    q = _q_stats(z[None, :], ms)[0]
    i, _ = np.unravel_index(int(np.argmax(q)), q.shape)
    return int(i) + ms, float(q.max())


def _permuted_maxima(z: np.ndarray, ms: int, permutations: int, rng: np.random.Generator) -> np.ndarray:
    n = len(z)
    out = np.empty(permutations)
    batch = max(1, _BATCH_ELEMENTS // (n * n))
    for lo in range(0, permutations, batch):
        hi = min(permutations, lo + batch)
        zz = rng.permuted(np.broadcast_to(z, (hi - lo, n)), axis=1)
        out[lo:hi] = _q_stats(zz, ms).reshape(hi - lo, -1).max(axis=1)
    return out


class _Segment:
    """A current segment x[a:b]: its best split and, grown on demand, the maxima of Q
    over its permutations. Each segment draws from its own stream seeded by
    (seed, a, b), in a fixed schedule of chunks, so results depend neither on the order
    segments are created in nor on how far earlier tests ran."""

    __slots__ = ("z", "ms", "tau", "q", "rng", "null")

    def __init__(self, z: np.ndarray, a: int, b: int, ms: int, seed: int) -> None:
        self.z, self.ms = z, ms
        tau, self.q = _best_split(z, ms)
        self.tau = a + tau
        self.rng = np.random.default_rng([seed, a, b])
        self.null = np.empty(0)

    def permuted(self, k: int) -> np.ndarray:
        if len(self.null) < k:
            more = _permuted_maxima(self.z, self.ms, k - len(self.null), self.rng)
            self.null = np.concatenate([self.null, more])
        return self.null[:k]


def _e_divisive(x: np.ndarray, cfg: ChangePointConfig) -> list[int]:
    """Hierarchical bisection with a permutation test; returns sorted split indices.

    The test runs its permutations in growing chunks and stops as soon as the count of
    permuted maxima at least as large as the observed one already puts the p-value
    above alpha: the decision is the one the full test would reach, sooner.
    """
    ms, nperm = cfg.min_segment, cfg.permutations
    schedule = [k for k in (16, 32, 64, 128, 256, 512, 1024) if k < nperm] + [nperm]
    cache: dict[tuple[int, int], _Segment | None] = {}

    def segment(a: int, b: int) -> _Segment | None:
        if (a, b) not in cache:
            cache[(a, b)] = _Segment(x[a:b], a, b, ms, cfg.seed) if b - a >= 2 * ms else None
        return cache[(a, b)]

    cuts: list[int] = []
    while True:
        bounds = [0, *cuts, len(x)]
        segs = [s for s in (segment(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)) if s]
        if not segs:
            break
        best = max(segs, key=lambda s: s.q)
        # ties count as extreme: a constant series gets p = 1
        threshold = best.q - 1e-12 * abs(best.q)
        for k in schedule:
            null = np.max(np.stack([s.permuted(k) for s in segs]), axis=0)
            p = (1 + int(np.sum(null >= threshold))) / (nperm + 1)
            if p > cfg.alpha:
                return cuts
        cuts = sorted([*cuts, best.tau])
    return cuts


# --------------------------------------------------------------------------- Welch


def _confirm(x: np.ndarray, cuts: list[int], cfg: ChangePointConfig) -> list[int]:
    """Drop the weakest candidate (largest Welch p above alpha, else smallest relative
    shift below min_magnitude) and retest, until every remaining one passes."""
    cuts = list(cuts)
    while cuts:
        bounds = [0, *cuts, len(x)]
        tests = []
        for i in range(1, len(bounds) - 1):
            left, right = x[bounds[i - 1] : bounds[i]], x[bounds[i] : bounds[i + 1]]
            _, p, _ = _welch(left, right)
            tests.append((p, abs(_rel(float(left.mean()), float(right.mean())))))
        worst = max(range(len(cuts)), key=lambda i: tests[i][0])
        if tests[worst][0] > cfg.alpha:
            del cuts[worst]
            continue
        smallest = min(range(len(cuts)), key=lambda i: tests[i][1])
        if tests[smallest][1] < cfg.min_magnitude:
            del cuts[smallest]
            continue
        break
    return cuts


def _rel(before: float, after: float) -> float:
    if before == 0.0:
        return 0.0 if after == 0.0 else math.copysign(math.inf, after)
    return after / before - 1.0


def _welch(left: np.ndarray, right: np.ndarray) -> tuple[float, float, float]:
    """Welch's two-sample t-test, unbiased variances: (t, two-sided p, df)."""
    n1, n2 = len(left), len(right)
    v1 = float(left.var(ddof=1)) / n1
    v2 = float(right.var(ddof=1)) / n2
    diff = float(right.mean() - left.mean())
    se2 = v1 + v2
    if se2 <= 0.0:
        df = float(n1 + n2 - 2)
        return (0.0, 1.0, df) if diff == 0.0 else (math.copysign(math.inf, diff), 0.0, df)
    df = se2 * se2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
    t = diff / math.sqrt(se2)
    return t, _t_sf2(abs(t), df), df


def _describe(left: np.ndarray, right: np.ndarray, index: int, alpha: float) -> ChangePoint:
    m1, m2 = float(left.mean()), float(right.mean())
    _, p, df = _welch(left, right)
    v1 = float(left.var(ddof=1)) / len(left)
    v2 = float(right.var(ddof=1)) / len(right)
    lo, hi = _fieller(m1, m2, v1, v2, _t_ppf(1.0 - alpha / 2.0, df))
    return ChangePoint(
        index=index,
        before_mean=m1,
        after_mean=m2,
        magnitude=_rel(m1, m2),
        ci_low=lo - 1.0,
        ci_high=hi - 1.0,
        p_value=p,
        direction="up" if m2 > m1 else "down",
    )


def _fieller(m1: float, m2: float, v1: float, v2: float, tq: float) -> tuple[float, float]:
    """Fieller's confidence interval for m2 / m1 from independent means with variances
    v1, v2 of the means: {r : (m2 - r m1)^2 <= tq^2 (v2 + r^2 v1)}."""
    a = m1 * m1 - tq * tq * v1
    if a <= 0.0:
        return -math.inf, math.inf
    disc = tq * tq * (m1 * m1 * v2 + m2 * m2 * v1 - tq * tq * v1 * v2)
    root = math.sqrt(max(disc, 0.0))
    return (m1 * m2 - root) / a, (m1 * m2 + root) / a


# --------------------------------------------------------------------------- Student t


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for the regularised incomplete beta (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def _t_sf2(t: float, df: float) -> float:
    """Two-sided tail probability P(|T| >= t) of Student's t with df degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


def _t_ppf(q: float, df: float) -> float:
    """Quantile of Student's t for q in (0.5, 1), by bisection on the tail probability."""
    target = 2.0 * (1.0 - q)
    lo, hi = 0.0, 1.0
    while _t_sf2(hi, df) > target:
        lo, hi = hi, hi * 2.0
        if hi > 1e12:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_sf2(mid, df) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return 0.5 * (lo + hi)
