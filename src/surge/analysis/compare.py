"""Comparing two runs (or two groups of repeated runs): the statistics of ``surge compare A B``.

For every request name present on both sides and every metric of :data:`METRICS`,
:func:`compare` estimates the **ratio B / A** of the metric, a confidence interval
of that ratio and a p-value for "the ratio is not 1", adjusts the p-values for the
number of rows (Benjamini-Hochberg) and gives a verdict: ``REGRESSED``,
``IMPROVED``, ``SAME`` or ``INCONCLUSIVE`` (with the reason, in words).

Units of measure
    ``p50``, ``p95``, ``p99``, ``mean``: request latency in ms, from the *intended*
    start (``CompareConfig.latency_field`` picks ``service`` or ``ttfb`` instead);
    ``error_rate``: errors / requests, a fraction from 0 to 1 (HTTP 4xx/5xx and
    transport errors, as counted by the engine); ``throughput``: requests / s.

Why not a rank test on the requests
    Latencies of consecutive requests are autocorrelated (queues, GC, caches), so
    requests are not independent observations. Mann-Whitney on AR(1) latencies with
    phi = 0.6 rejects a true null about 31 % of the time at a nominal 5 % (the
    variance of the rank sum is ~3.9x what the test assumes). The *units* here are
    therefore whole seconds (one run) or whole runs (``surge run --repeat N``), and
    the dependence left between consecutive seconds is kept by resampling *blocks*
    of consecutive seconds.

Per-second units (one run per side): circular block bootstrap + t
    The n seconds of a side are resampled with replacement in blocks of L
    consecutive seconds (wrapping around the end) until n seconds are drawn; the
    drawn seconds' histograms are merged (exact: counts add) and the metric is
    computed from the merged histogram exactly as for the real run (nearest-rank
    percentile at the bucket midpoint, relative error <= 0.39 %). A and B are
    resampled independently, ``n_boot`` times each. What the bootstrap provides is
    the *standard error* of log(metric) on each side (for ``error_rate``: of the
    rate itself, which may be 0); the test and interval are then t-based:

    - Block length L: ``block_s``, or per side and name the larger of ceil(sqrt n)
      and the Politis-White (2004/2009) optimal block length of the per-second log
      mean latency (for latency and throughput), or of ceil(n^(1/3)) and
      Politis-White on the per-second error rate (for the error rate); at most
      n // 3 (so k = n / L >= 3 blocks).
    - With only k blocks a variance is estimated from few effective units, so each
      side's bootstrap variance is multiplied by k / (k - 1) and the statistic
      t = log(B/A) / se (``error_rate``: (B - A) / se) is referred to Student's t
      with Welch-Satterthwaite degrees of freedom (k - 1 per side). In simulations
      with AR(1) request latencies and a slowly drifting server (see
      eval/compare_aa_power.py) a plain z-test on the bootstrap SE rejected 10-28 %
      of A/A latency rows at a nominal 5 % for 10-60 s runs; this version stays near 5 %.
    - CI: exp(log(B/A) +/- t_(1-alpha/2, df) se), so the CI excludes 1 exactly when
      the unadjusted p-value is below alpha. For ``error_rate`` the CI of the ratio
      uses the delta method on the log scale; there is none when A had no errors.
    - Why not count replicates beyond 1 for the p-value: that p cannot go below
      1 / (n_boot + 1), and Benjamini-Hochberg across ~100 rows needs smaller ones
      to find a single regressed row.

Per-run units (repeats): Welch t on logs
    Each run of a group is merged into one unit and its metric computed once. For
    latency and throughput the per-run values are compared on the log scale with
    Welch's t-test (unequal variances, Satterthwaite degrees of freedom): ``a`` and
    ``b`` are geometric means over runs, ratio = b / a, CI = exp(t interval). For
    ``error_rate``: arithmetic means, Welch on the difference, ratio CI by the delta
    method on the log scale. Assumes per-run values roughly log-normal and runs
    independent; with 2-5 repeats the interval is honest but wide (df is small).

Multiplicity
    Benjamini-Hochberg over every row that has a p-value (all names x metrics),
    controlling the false discovery rate at ``alpha`` (and, when nothing changed
    at all, the chance of any REGRESSED/IMPROVED row at ``alpha``).

Verdicts (``d`` = the metric's practical threshold, ``delta`` by default; "worse"
is up for latency and error rate, down for throughput)
    - ``REGRESSED``: adjusted p < alpha and the point ratio is worse than 1 +/- d
      (above 1 + d; below 1 - d for throughput). For ``error_rate`` the rise must
      also exceed ``error_rate_tolerance`` in absolute terms.
    - ``IMPROVED``: the same on the better side.
    - ``SAME``: the whole CI lies inside [1 - d, 1 + d] (an equivalence test); for
      ``error_rate`` also when both sides had no errors, or when the CI of the
      difference lies inside +/- ``error_rate_tolerance``.
    - ``INCONCLUSIVE`` otherwise: a real but small change whose CI reaches past
      the threshold; a change beyond the threshold that is significant on its own
      (unadjusted p < alpha, so its CI excludes 1) but not after Benjamini-Hochberg
      across all rows; or too wide a CI to tell. The reason says which, and how much
      more data would likely settle it ("run about 3x longer", "more repeats").

Assumptions: the two sides ran the same scenario and load against comparable
environments (the caller checks meta.json); within a run the process is roughly
stationary after ``warmup_s``; dependence between seconds decays within a block.
A within-run bootstrap cannot see run-to-run variation (a noisy neighbour, a
different CPU frequency for the whole run): the practical threshold ``delta`` is
what keeps such shifts from being called regressions, and repeated runs measure
them directly.

Everything here is pure: samples in, dataclasses out, no I/O; randomness comes
from ``numpy.random.default_rng`` seeded by ``CompareConfig.seed`` and the name.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from surge.metrics.histogram import bucket_mid
from surge.metrics.stats import RequestStats, SecondStats

__all__ = [
    "METRICS",
    "VERDICTS",
    "CompareConfig",
    "Comparison",
    "MetricComparison",
    "Sample",
    "benjamini_hochberg",
    "compare",
    "samples_from_runs",
    "samples_from_series",
]

METRICS = ("p50", "p95", "p99", "mean", "error_rate", "throughput")
VERDICTS = ("REGRESSED", "INCONCLUSIVE", "IMPROVED", "SAME")  # worst first
_PCTS = {"p50": 50.0, "p95": 95.0, "p99": 99.0}
_HIGHER_IS_WORSE = {m: m != "throughput" for m in METRICS}
_MAX_NAN_SHARE = 0.05  # replicates with no requests for a name, above which we give up


@dataclass(frozen=True)
class CompareConfig:
    """Settings of a comparison (all optional).

    - ``delta``: practical threshold, a relative change (0.05 = 5 %) below which a
      change does not matter; ``per_metric_delta`` overrides it per metric name.
    - ``alpha``: significance level (after Benjamini-Hochberg) and 1 - CI level.
    - ``n_boot``: bootstrap replicates per side and name.
    - ``block_s``: block length in seconds; ``None`` chooses it from the data.
    - ``seed``: seed of the bootstrap (same seed, same data: same answer).
    - ``min_seconds``: fewer seconds with requests for a name on a side than this
      makes its rows INCONCLUSIVE.
    - ``warmup_s``: the seconds dropped from the start of each run. The sample
      builders drop them (``samples_from_series(..., warmup_s=)``,
      ``samples_from_runs(..., warmup_s=)``, or the caller's own slicing);
      :func:`compare` does not trim samples again, it only reports the value in
      ``method``.
    - ``error_rate_tolerance``: absolute error-rate difference (0.001 = 0.1
      percentage point) that does not matter.
    - ``latency_field``: which histogram: ``latency`` (from the intended start),
      ``service`` (from the send) or ``ttfb``.
    """

    delta: float = 0.05
    per_metric_delta: Mapping[str, float] = field(default_factory=dict)
    alpha: float = 0.05
    n_boot: int = 2000
    block_s: int | None = None
    seed: int = 0
    min_seconds: int = 5
    warmup_s: int = 0
    error_rate_tolerance: float = 0.001
    latency_field: str = "latency"

    def __post_init__(self) -> None:
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must be between 0 and 1 (a fraction), got {self.delta}")
        for m, d in self.per_metric_delta.items():
            if m not in METRICS:
                raise ValueError(f"unknown metric {m!r} in per_metric_delta; known: {', '.join(METRICS)}")
            if not 0 < d < 1:
                raise ValueError(f"delta for {m} must be between 0 and 1, got {d}")
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be between 0 and 0.5, got {self.alpha}")
        if self.n_boot < 100:
            raise ValueError(f"n_boot must be at least 100, got {self.n_boot}")
        if self.block_s is not None and self.block_s < 1:
            raise ValueError(f"block_s must be at least 1 second, got {self.block_s}")
        if self.min_seconds < 2 or self.warmup_s < 0 or self.error_rate_tolerance < 0:
            raise ValueError("min_seconds must be >= 2, warmup_s and error_rate_tolerance >= 0")
        if self.latency_field not in ("latency", "service", "ttfb"):
            raise ValueError(f"latency_field must be latency, service or ttfb, got {self.latency_field!r}")

    def delta_for(self, metric: str) -> float:
        return float(self.per_metric_delta.get(metric, self.delta))


@dataclass(frozen=True)
class Sample:
    """One side of a comparison for one request name.

    ``units`` are per-second buckets of one run in time order (``unit="second"``;
    seconds without requests for the name are present and empty) or whole runs
    (``unit="run"``). ``duration_s`` is the total time the units cover;
    ``unit_duration_s`` each unit's own (empty: ``duration_s`` split evenly).
    Units are read, never modified.
    """

    units: list[RequestStats]
    unit: str
    duration_s: float
    unit_duration_s: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.unit not in ("second", "run"):
            raise ValueError(f"unit must be 'second' or 'run', got {self.unit!r}")
        if self.unit_duration_s and len(self.unit_duration_s) != len(self.units):
            raise ValueError("unit_duration_s must have one entry per unit")

    def __repr__(self) -> str:
        n = sum(u.count for u in self.units)
        return f"Sample({len(self.units)} {self.unit}s, {n} requests, {self.duration_s:g} s)"


@dataclass(frozen=True)
class MetricComparison:
    """One row: a metric of one request name, A versus B.

    ``a``, ``b``: the metric on each side (ms, fraction or req/s; geometric means
    over runs in repeats mode); ``ratio`` = b / a; ``ci_low``..``ci_high``: its
    1 - alpha confidence interval; ``p_value``: for ratio != 1, ``p_adjusted`` after
    Benjamini-Hochberg. ``None`` where a value cannot be computed (no data, a
    ratio with a zero denominator, a row that needed no test).
    """

    name: str
    metric: str
    a: float | None
    b: float | None
    ratio: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_adjusted: float | None
    verdict: str
    reason: str
    higher_is_worse: bool


@dataclass(frozen=True)
class Comparison:
    """The whole answer: rows, names seen on one side only, the settings, the method."""

    rows: list[MetricComparison]
    only_in_a: list[str]
    only_in_b: list[str]
    config: CompareConfig
    method: str
    warnings: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> list[MetricComparison]:
        return [r for r in self.rows if r.verdict == "REGRESSED"]

    @property
    def worst(self) -> str:
        """The worst verdict of all rows (REGRESSED > INCONCLUSIVE > IMPROVED > SAME)."""
        return _worst(r.verdict for r in self.rows)

    @property
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(VERDICTS, 0)
        for r in self.rows:
            out[r.verdict] += 1
        return out

    def name_verdicts(self) -> dict[str, str]:
        """Request name -> worst verdict of its rows."""
        by: dict[str, list[str]] = {}
        for r in self.rows:
            by.setdefault(r.name, []).append(r.verdict)
        return {n: _worst(v) for n, v in by.items()}

    def __repr__(self) -> str:
        c = ", ".join(f"{k}={v}" for k, v in self.counts.items() if v)
        return f"Comparison({len(self.rows)} rows: {c or 'none'}; worst={self.worst})"


def _worst(verdicts) -> str:
    vs = set(verdicts)
    return next((v for v in VERDICTS if v in vs), "SAME")


# --------------------------------------------------------------------------- samples


def _label(method: str, name: str) -> str:
    return f"{method} {name}"


def _merge_all(parts: list[RequestStats]) -> RequestStats:
    if len(parts) == 1:
        return parts[0]  # shared, never modified
    out = RequestStats()
    for p in parts:
        out.merge(p)
    return out


def _second_range(seconds: Sequence[SecondStats], warmup_s: int, end_s: float | None) -> range:
    """Whole seconds to use: from the first present at or after ``warmup_s`` to the last
    one present, or to the last one that ends by ``end_s``."""
    present = [s.second for s in seconds if s.second >= warmup_s]
    if not present:
        return range(0)
    last = math.floor(end_s + 1e-9) - 1 if end_s is not None else max(present)
    return range(min(present), max(min(present), last + 1))


def samples_from_series(seconds: Sequence[SecondStats], *, warmup_s: int = 0,
                        end_s: float | None = None) -> dict[str, Sample]:
    """Per-second samples of one run, keyed by ``"METHOD name"``.

    Scenarios and status classes of a name are merged. Seconds are numbered from the
    run start (second s covers [s, s + 1) s); the units are the seconds from the first
    one present at or after ``warmup_s`` (a series already sliced by the caller works
    too) up to the last one present or, with ``end_s`` (pass meta.json's ``planned_duration_s``),
    up to the last second that ends by ``end_s``, which drops the partial second of
    in-flight requests finishing after the load stopped. Every second in that range is
    a unit, an empty one where the name had no requests (throughput counts it as 0).
    """
    rng_s = _second_range(seconds, warmup_s, end_s)
    if not rng_s:
        return {}
    first, n = rng_s.start, len(rng_s)
    per: dict[str, list[list[RequestStats]]] = {}
    for s in seconds:
        if s.second not in rng_s:
            continue
        for (_scen, name, method, _status), st in s.requests.items():
            slots = per.setdefault(_label(method, name), [[] for _ in range(n)])
            slots[s.second - first].append(st)
    empty = RequestStats()  # one shared empty unit, never modified
    out = {}
    for label, slots in sorted(per.items()):
        units = [_merge_all(p) if p else empty for p in slots]
        out[label] = Sample(units=units, unit="second", duration_s=float(n))
    return out


def samples_from_runs(runs: Sequence[Sequence[SecondStats]], *, warmup_s: int = 0,
                      end_s: float | None = None) -> dict[str, Sample]:
    """Repeats: each run's seconds (chosen as in :func:`samples_from_series`) merged into
    one unit per name. A name missing from some runs gets an empty unit there; a run's
    duration is its number of seconds used.
    """
    per_run = [samples_from_series(r, warmup_s=warmup_s, end_s=end_s) for r in runs]
    durations = [float(len(_second_range(r, warmup_s, end_s))) for r in runs]
    names = sorted({n for p in per_run for n in p})
    out = {}
    for name in names:
        units = [_merge_all(list(p[name].units)) if name in p else RequestStats() for p in per_run]
        out[name] = Sample(units=units, unit="run", duration_s=float(sum(durations)),
                           unit_duration_s=tuple(durations))
    return out


# --------------------------------------------------------------------------- arrays


@dataclass(frozen=True)
class _Side:
    """A sample as arrays: one row per unit, histogram columns only where non-empty."""

    cum: np.ndarray  # (n, nb) float64 cumulative counts over the non-empty buckets
    bins: np.ndarray  # (nb,) bucket index of each column
    count: np.ndarray  # (n,) requests
    errors: np.ndarray  # (n,) errors
    sum_ns: np.ndarray  # (n,) latency sum, ns
    dur: np.ndarray  # (n,) seconds
    lo: float  # exact min and max latency, ns (nan when empty)
    hi: float


def _arrays(s: Sample, fld: str) -> _Side:
    hists = [getattr(u, fld) for u in s.units]
    n = len(hists)
    nz = [np.flatnonzero(h.counts) for h in hists]
    bins = np.unique(np.concatenate(nz)) if n and any(x.size for x in nz) else np.zeros(0, np.int64)
    counts = np.zeros((n, bins.size))
    for i, (h, cols) in enumerate(zip(hists, nz, strict=True)):
        if cols.size:
            counts[i, np.searchsorted(bins, cols)] = h.counts[cols]
    los = [h.min_ns for h in hists if h.count]
    his = [h.max_ns for h in hists if h.count]
    dur = (np.asarray(s.unit_duration_s, float) if s.unit_duration_s
           else np.full(n, s.duration_s / n if n else 0.0))
    return _Side(
        cum=np.cumsum(counts, axis=1), bins=bins,
        count=np.array([u.count for u in s.units], float),
        errors=np.array([u.error_count for u in s.units], float),
        sum_ns=np.array([h.sum_ns for h in hists], float),
        dur=dur,
        lo=float(min(los)) if los else math.nan, hi=float(max(his)) if his else math.nan,
    )


def _percentiles(cum: np.ndarray, bins: np.ndarray, qs: Sequence[float], lo: float, hi: float) -> np.ndarray:
    """Nearest-rank percentiles (ns) of each row of cumulative counts, as Histogram.percentile.

    One searchsorted over all rows: row r's cumulative counts are shifted by
    r * (max total + 1), which keeps the flattened array sorted.
    """
    r, nb = cum.shape
    out = np.full((len(qs), r), np.nan)
    if nb == 0 or r == 0:
        return out
    tot = cum[:, -1]
    off = np.arange(r) * (tot.max() + 1.0)
    flat = (cum + off[:, None]).ravel()
    for i, q in enumerate(qs):
        rank = np.maximum(np.ceil(np.round(q * tot / 100.0, 9)), 1.0)
        idx = np.searchsorted(flat, rank + off, side="left") - np.arange(r) * nb
        idx = np.clip(idx, 0, nb - 1)
        vals = np.clip(bucket_mid(bins[idx]).astype(float), lo, hi)
        out[i] = np.where(tot > 0, vals, np.nan)
    return out


def _metrics(side: _Side, w: np.ndarray, only: Sequence[str] = METRICS) -> dict[str, np.ndarray]:
    """Metrics (all, or those in ``only``) for each row of weights ``w`` (R, n): how often
    each unit is drawn.

    Latency in ms, error rate as a fraction, throughput in requests/s; nan where a
    replicate has no requests. Done in chunks of rows to bound memory.
    """
    rows = w.shape[0]
    out = {m: np.empty(rows) for m in METRICS}
    pcts = any(m in _PCTS for m in only)
    nb = max(side.bins.size, 1)
    step = max(1, min(rows, 4_000_000 // nb))
    with np.errstate(invalid="ignore", divide="ignore"):
        for a in range(0, rows, step):
            ww = w[a:a + step]
            n = ww @ side.count
            if pcts:
                pct = _percentiles(ww @ side.cum, side.bins, list(_PCTS.values()), side.lo, side.hi)
                for i, m in enumerate(_PCTS):
                    out[m][a:a + step] = pct[i] / 1e6
            out["mean"][a:a + step] = np.where(n > 0, (ww @ side.sum_ns) / n / 1e6, np.nan)
            out["error_rate"][a:a + step] = np.where(n > 0, (ww @ side.errors) / n, np.nan)
            out["throughput"][a:a + step] = n / (ww @ side.dur)
    return out


def _optimal_block(x: np.ndarray) -> float:
    """Politis-White (2004, corrected 2009) optimal block length for a circular bootstrap.

    From the autocovariances of ``x`` up to the first lag after which ``kn`` in a row
    are insignificant (flat-top lag window). 1.0 when ``x`` shows no dependence.
    """
    n = x.size
    e = x - x.mean()
    if n < 4 or not float(e @ e) > 0:
        return 1.0
    kn = max(5, math.ceil(math.sqrt(math.log10(n))))
    m_max = min(math.ceil(math.sqrt(n)) + kn, n - 2)
    cv = 2.0 * math.sqrt(math.log10(n) / n)
    acv = np.array([e[k:] @ e[:n - k] / n for k in range(m_max + 1)])
    rho = np.abs(acv / acv[0])
    m_hat = next((m for m in range(1, m_max - kn + 2) if np.all(rho[m:m + kn] < cv)), None)
    big_m = min(2 * max(m_hat - 1, 1), m_max) if m_hat is not None else m_max
    k = np.arange(1, big_m + 1)
    lam = np.where(k / big_m <= 0.5, 1.0, 2.0 * (1.0 - k / big_m))
    g = float(2.0 * np.sum(lam * k * acv[1:big_m + 1]))
    lrv = float(acv[0] + 2.0 * np.sum(lam * acv[1:big_m + 1]))
    if lrv <= 0:
        return 1.0
    return (2.0 * g * g / (4.0 / 3.0 * lrv * lrv)) ** (1 / 3) * n ** (1 / 3)


def _block_lens(side: _Side, cfg: CompareConfig) -> tuple[int, int]:
    """Block lengths (s) for (latency and throughput, error rate).

    ``block_s`` (at most n/2) for both, or else at most n/3 (so >= 3 blocks):
    latency: max(ceil(sqrt n), Politis-White on the per-second log mean latency), the
    sqrt floor because a slow drift of the server's speed is real and hard to see in a
    short run; throughput shares it (in a closed model it moves with latency). Error
    rate: max(ceil(cbrt n), Politis-White on the per-second error rate), which catches
    error bursts without penalising errors scattered independently over the seconds.
    """
    n = side.count.size
    if cfg.block_s is not None:
        b = max(1, min(cfg.block_s, n // 2))
        return b, b
    ok = side.count > 0
    enough = ok.sum() >= 4
    pw_lat = _optimal_block(np.log(side.sum_ns[ok] / side.count[ok])) if enough else 1.0
    pw_err = _optimal_block(side.errors[ok] / side.count[ok]) if enough else 1.0
    cap = max(1, n // 3)
    return (int(min(max(math.ceil(math.sqrt(n)), math.ceil(pw_lat)), cap)),
            int(min(max(math.ceil(n ** (1 / 3)), math.ceil(pw_err)), cap)))


def _bootstrap(side: _Side, cfg: CompareConfig, rng: np.random.Generator,
               ) -> tuple[dict[str, np.ndarray], dict[str, float], tuple[int, int]]:
    """Replicates of every metric, the number of blocks k = n / L behind each, and the
    block lengths used."""
    n = side.count.size
    lens = _block_lens(side, cfg)
    reps = {b: _metrics(side, _block_weights(rng, n, b, cfg.n_boot),
                        METRICS if b == lens[0] else ("error_rate",)) for b in dict.fromkeys(lens)}
    pick = {m: lens[1] if m == "error_rate" else lens[0] for m in METRICS}
    return ({m: reps[b][m] for m, b in pick.items()}, {m: n / b for m, b in pick.items()}, lens)


def _block_weights(rng: np.random.Generator, n: int, block: int, reps: int) -> np.ndarray:
    """Circular block bootstrap: (reps, n) counts of how often each unit is drawn.

    ceil(n / block) blocks start at uniform positions and wrap around the end; the
    last is cut so that exactly n units are drawn.
    """
    k = -(-n // block)
    starts = rng.integers(0, n, size=(reps, k))
    idx = ((starts[:, :, None] + np.arange(block)) % n).reshape(reps, k * block)[:, :n]
    flat = (np.arange(reps)[:, None] * n + idx).ravel()
    return np.bincount(flat, minlength=reps * n).reshape(reps, n).astype(float)


def _rng(seed: int, name: str, side: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode()), side])


# --------------------------------------------------------------------------- small-sample t


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) (continued fraction, Lentz's method)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, 1.0 - x)
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(lbeta + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    f, c, d = 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1.0 - c * d) < 1e-14:
            break
    return front * (f - 1.0)


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` (> 0, not necessarily whole) degrees of freedom."""
    if not math.isfinite(t):
        return 0.0
    return min(1.0, _betainc(df / 2.0, 0.5, df / (df + t * t)))


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile (0.5 < p < 1) of Student's t with ``df`` degrees of freedom.

    Newton's method on the two-sided tail from the normal quantile, which lies below
    the root; the tail is convex there, so the iterates rise monotonically to it.
    """
    target = 2.0 * (1.0 - p)
    t = NormalDist().inv_cdf(p)
    logc = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    for _ in range(200):
        pdf = math.exp(logc - (df + 1) / 2 * math.log1p(t * t / df))
        step = (t_two_sided_p(t, df) - target) / (2.0 * pdf)
        t += step
        if abs(step) <= 1e-12 * max(1.0, t):
            break
    return t


def _welch(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(mean(y) - mean(x), its standard error, Welch-Satterthwaite df)."""
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(vx + vy)
    den = vx * vx / (x.size - 1) + vy * vy / (y.size - 1)
    df = (vx + vy) ** 2 / den if den > 0 else float(x.size + y.size - 2)
    return float(y.mean() - x.mean()), se, df


# --------------------------------------------------------------------------- tests per row


@dataclass(frozen=True)
class _Est:
    """A row before multiplicity and verdict."""

    a: float | None
    b: float | None
    ratio: float | None = None
    ci: tuple[float | None, float | None] = (None, None)
    p: float | None = None
    diff_ci: tuple[float, float] | None = None  # error_rate: CI of b - a
    log_halfwidth: float | None = None  # for "run about k x longer"
    note: str = ""  # a reason that overrides the verdict rules (INCONCLUSIVE/SAME)
    same: bool = False  # a SAME that needs no test (no errors on either side)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _se_df(va: float, vb: float, ka: float, kb: float) -> tuple[float, float]:
    """Standard error of B - A from bootstrap variances va, vb, each inflated by k/(k-1) for
    k blocks per side (the divide-by-n bias of a variance from k units), and the Welch-
    Satterthwaite degrees of freedom with k - 1 per side."""
    va, vb = va * ka / (ka - 1), vb * kb / (kb - 1)
    den = va * va / (ka - 1) + vb * vb / (kb - 1)
    return math.sqrt(va + vb), ((va + vb) ** 2 / den if den > 0 else ka + kb - 2)


def _t_test(est: float, se: float, df: float, alpha: float) -> tuple[float, float]:
    """(two-sided p of est = 0, CI half-width) for a t statistic est / se with df."""
    if se == 0:
        return (1.0 if est == 0 else 0.0), 0.0
    return t_two_sided_p(est / se, df), t_quantile(1 - alpha / 2, df) * se


def _boot_row(metric: str, a: float, b: float, ra: np.ndarray, rb: np.ndarray,
              ka: float, kb: float, alpha: float) -> _Est:
    """Point values a, b, bootstrap replicates ra, rb (k blocks per side) -> estimate, CI, p."""
    if metric == "error_rate":
        if a == 0 and b == 0:
            return _Est(a, b, 1.0, (1.0, 1.0), note="no errors on either side", same=True)
        ra, rb = ra[~np.isnan(ra)], rb[~np.isnan(rb)]
        se, df = _se_df(float(ra.var(ddof=1)), float(rb.var(ddof=1)), ka, kb)
        p, hw = _t_test(b - a, se, df, alpha)
        ci: tuple[float | None, float | None] = (None, None)
        if a > 0 and b > 0:  # ratio CI on the log scale (delta method)
            sl, dfl = _se_df(float(ra.var(ddof=1)) / a**2, float(rb.var(ddof=1)) / b**2, ka, kb)
            hl = _t_test(1.0, sl, dfl, alpha)[1]
            ci = (b / a * math.exp(-hl), b / a * math.exp(hl))
        elif a > 0:  # b == 0
            ci = (0.0, None if hw >= a else 1 + hw / a)
        return _Est(a, b, b / a if a > 0 else None, ci, p, (b - a - hw, b - a + hw))
    with np.errstate(divide="ignore", invalid="ignore"):
        la, lb = np.log(ra), np.log(rb)
    oka, okb = np.isfinite(la), np.isfinite(lb)
    if min(oka.mean(), okb.mean()) < 1 - _MAX_NAN_SHARE or not (a > 0 and b > 0):
        return _Est(a, b, b / a if a > 0 else None,
                    note="too few requests: many resampled stretches of the run have none")
    se, df = _se_df(float(la[oka].var(ddof=1)), float(lb[okb].var(ddof=1)), ka, kb)
    est = math.log(b / a)
    p, hw = _t_test(est, se, df, alpha)
    return _Est(a, b, b / a, (math.exp(est - hw), math.exp(est + hw)), p, log_halfwidth=hw)


def _run_row(metric: str, xa: np.ndarray, xb: np.ndarray, alpha: float) -> _Est:
    if xa.size < 2 or xb.size < 2:
        return _Est(None, None, note=f"needs at least 2 runs on each side (have {xa.size} and {xb.size})")
    if np.isnan(xa).any() or np.isnan(xb).any():
        return _Est(None, None, note="some runs have no requests for this name")
    if metric == "error_rate":
        a, b = float(xa.mean()), float(xb.mean())
        if a == 0 and b == 0:
            return _Est(a, b, 1.0, (1.0, 1.0), note="no errors on either side", same=True)
        d, se, df = _welch(xa, xb)
        tq = t_quantile(1 - alpha / 2, df) if se > 0 else 0.0
        ci: tuple[float | None, float | None] = (None, None)
        if a > 0 and b > 0:
            sl = math.sqrt(xa.var(ddof=1) / xa.size / a**2 + xb.var(ddof=1) / xb.size / b**2)
            ci = (b / a * math.exp(-tq * sl), b / a * math.exp(tq * sl))
        p = t_two_sided_p(d / se, df) if se > 0 else (1.0 if d == 0 else 0.0)
        return _Est(a, b, b / a if a > 0 else None, ci, p, (d - tq * se, d + tq * se))
    if np.any(xa <= 0) or np.any(xb <= 0):
        return _Est(None, None, note="some runs have no requests for this name")
    la, lb = np.log(xa), np.log(xb)
    d, se, df = _welch(la, lb)
    a, b = float(np.exp(la.mean())), float(np.exp(lb.mean()))
    if se == 0:
        return _Est(a, b, b / a, (b / a, b / a), 1.0 if d == 0 else 0.0, log_halfwidth=0.0)
    tq = t_quantile(1 - alpha / 2, df)
    return _Est(a, b, b / a, (math.exp(d - tq * se), math.exp(d + tq * se)),
                t_two_sided_p(d / se, df), log_halfwidth=tq * se)


# --------------------------------------------------------------------------- verdicts


def benjamini_hochberg(p: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (step-up; same order as ``p``; capped at 1).

    ``adj[(i)] = min over j >= i of p[(j)] * m / j`` with p sorted ascending.
    """
    arr = np.asarray(p, dtype=float)
    m = arr.size
    if m == 0:
        return []
    order = np.argsort(arr, kind="stable")
    scaled = arr[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out.tolist()


def pct_change(ratio: float) -> str:
    """A ratio B/A as the signed change in % with one decimal (1.129 -> "+12.9%"); never
    "-0.0%" (rounding a tiny negative). The one formatter of changes in reasons, gate
    lines, tables and the report."""
    return f"{round((ratio - 1) * 100, 1) + 0.0:+.1f}%"


def _more(est: _Est, d: float, unit: str) -> str:
    """What more data would likely settle an INCONCLUSIVE row, and roughly how much.

    The CI half-width shrinks like 1/sqrt(data): to call a change beyond the threshold
    the CI must exclude 1; to call SAME it must fit inside the band.
    """
    what = "run longer" if unit == "second" else "run more repeats"
    hw, r = est.log_halfwidth, est.ratio
    if not hw or r is None or r <= 0:
        return what
    lr, band = abs(math.log(r)), math.log1p(d)
    room = lr if lr > band else band - lr
    if room <= 0.1 * band:
        return f"{what} (the change is close to the {d:.0%} threshold)"
    k = (hw / room) ** 2
    if k <= 1.2:
        return what
    scale = "longer" if unit == "second" else "as many repeats"
    return f"{what} (about {math.ceil(k)}x {scale} should settle it)" if k < 20 else \
        f"{what} (much more data needed: the runs are very noisy)"


def _more_for_bh(p: float, p_adj: float, alpha: float, unit: str) -> str:
    """What more data would likely get a row that is significant on its own past the
    Benjamini-Hochberg adjustment: BH scaled this row's p by about p_adj / p, so it needs
    p <= alpha * p / p_adj; the z statistic grows like sqrt(data) (a rough guide: the other
    rows' p-values move too)."""
    what = "run longer" if unit == "second" else "run more repeats"
    need = alpha * p / p_adj
    if not 0 < p < 1 or not 0 < need < p:
        return what
    nd = NormalDist()
    k = (nd.inv_cdf(1 - need / 2) / nd.inv_cdf(1 - p / 2)) ** 2
    scale = "longer" if unit == "second" else "as many repeats"
    return f"{what} (about {max(2, math.ceil(k))}x {scale} should settle it)" if k < 20 else \
        f"{what} (much more data needed)"


def _verdict(metric: str, est: _Est, p_adj: float | None, cfg: CompareConfig, unit: str,
             n_tests: int = 1) -> tuple[str, str]:
    d = cfg.delta_for(metric)
    worse_up = _HIGHER_IS_WORSE[metric]
    more = "run longer" if unit == "second" else "run more repeats"
    if est.same:
        return "SAME", est.note
    if est.note:
        return "INCONCLUSIVE", f"{est.note}: {more}"
    r, (lo, hi) = est.ratio, est.ci
    tol = cfg.error_rate_tolerance
    if metric == "error_rate":
        change = f"{est.a:.2%} -> {est.b:.2%}"
        small = est.diff_ci is not None and -tol <= est.diff_ci[0] and est.diff_ci[1] <= tol
        big = abs(est.b - est.a) > tol
    else:
        change = pct_change(r) if r is not None else "n/a"
        small, big = False, True
    sig = p_adj is not None and p_adj < cfg.alpha
    up = (r is None and est.b > est.a) or (r is not None and r > 1 + d)
    down = r is not None and r < 1 - d
    ci_txt = f"CI {pct_change(lo)}..{pct_change(hi)}" if lo is not None and hi is not None else \
        f"CI {pct_change(lo)}..unbounded" if lo is not None else "CI n/a"
    ptxt = f"adjusted p={p_adj:.2g}" if p_adj is not None else ""
    if sig and big and (up or down):
        bad = up if worse_up else down
        verdict = "REGRESSED" if bad else "IMPROVED"
        return verdict, f"{change} ({ci_txt}), beyond the {d:.0%} threshold; {ptxt}"
    inside = lo is not None and hi is not None and 1 - d <= lo and hi <= 1 + d
    if inside or small:
        why = f"{ci_txt} lies within +/-{d:.0%}" if inside else \
            f"the error-rate difference is within +/-{tol:.2%}"
        return "SAME", f"{change}: {why}"
    thr = f"the {tol:.2%} error-rate tolerance" if not big else f"the {d:.0%} threshold"
    if sig:
        return "INCONCLUSIVE", (f"{change} is real ({ptxt}) but smaller than {thr} "
                                f"and its {ci_txt} reaches past it: {_more(est, d, unit)}")
    if est.p is not None and est.p < cfg.alpha and p_adj is not None:
        # Significant on its own (its CI excludes no change) but not once the p-values of all
        # the rows are adjusted together: the CI is not "too wide", there are many rows.
        alone = (f"significant alone (p={est.p:.2g}) but not after adjusting for the {n_tests} "
                 f"comparisons ({ptxt})")
        if big and (up or down):
            return "INCONCLUSIVE", f"{change} ({ci_txt}): {alone}; {_more_for_bh(est.p, p_adj, cfg.alpha, unit)}"
        return "INCONCLUSIVE", (f"{change}: {alone}, and smaller than {thr} with its "
                                f"{ci_txt} reaching past it: {_more(est, d, unit)}")
    return "INCONCLUSIVE", f"{change}, not significant ({ptxt}); {ci_txt} is too wide to tell: " \
        f"{_more(est, d, unit)}"


# --------------------------------------------------------------------------- compare


_LATENCY_FROM = {
    "latency": "from each request's intended start (coordinated-omission free)",
    "service": "service time, from the send",
    "ttfb": "time to first byte, from the send",
}


def _method(cfg: CompareConfig, unit: str, blocks: dict[str, tuple[int, int]]) -> str:
    ds = ", ".join(f"{m} {cfg.delta_for(m):.0%}" for m in METRICS if m in cfg.per_metric_delta)
    thr = f"practical threshold {cfg.delta:.0%}" + (f" ({ds})" if ds else "")
    if unit == "second":
        ls = sorted({x for v in blocks.values() for x in v})
        bl = f"{cfg.block_s} s" if cfg.block_s is not None else \
            "max(sqrt n, Politis-White) seconds for latency and throughput, max(cbrt n, " \
            "Politis-White) for error rate (" + (", ".join(f"{x} s" for x in ls) or "none") + ")"
        core = (f"units: seconds; circular block bootstrap ({cfg.n_boot} replicates per side, blocks "
                f"of {bl}) for the standard error of log(metric) on each side; t-test of log(B/A) "
                "(error rate: B-A) with Welch df from the number of blocks, and the matching "
                f"{1 - cfg.alpha:.0%} CI")
    else:
        core = ("units: runs (repeats); Welch t-test on the log of per-run values (error rate: on "
                f"the per-run rates); t-based {1 - cfg.alpha:.0%} CI of the ratio of geometric means. "
                "With few repeats the intervals are wide; per-run values are assumed log-normal")
    return (f"{core}; Benjamini-Hochberg across all rows at alpha={cfg.alpha:g}; {thr}; "
            f"warm-up dropped: {cfg.warmup_s} s; latency: {_LATENCY_FROM[cfg.latency_field]}")


def compare(a: Mapping[str, Sample], b: Mapping[str, Sample], config: CompareConfig | None = None) -> Comparison:
    """Compare every metric of every request name on both sides; B relative to A.

    Both sides must use the same unit ("second": one run each; "run": repeats).
    Deterministic for a given ``config.seed``.
    """
    cfg = config or CompareConfig()
    units = {s.unit for s in (*a.values(), *b.values())}
    if len(units) > 1:
        raise ValueError("cannot compare per-second samples with per-run samples: pass both sides "
                         "as single runs (samples_from_series) or both as repeats (samples_from_runs)")
    unit = units.pop() if units else "second"
    warnings: list[str] = []
    names = sorted(set(a) & set(b))
    ests: list[tuple[str, str, _Est]] = []
    blocks: dict[str, tuple[int, int]] = {}
    for name in names:
        sa, sb = a[name], b[name]
        xa, xb = _arrays(sa, cfg.latency_field), _arrays(sb, cfg.latency_field)
        if unit == "run":
            va, vb = (_metrics(x, np.eye(x.count.size)) for x in (xa, xb))
            few = min(len(sa.units), len(sb.units))
            if few < 3 and not any(w.startswith("fewer than 3") for w in warnings):
                warnings.append(f"fewer than 3 repeats on a side ({few}): intervals are very wide")
            for m in METRICS:
                ests.append((name, m, _run_row(m, va[m], vb[m], cfg.alpha)))
            continue
        busy = (int((xa.count > 0).sum()), int((xb.count > 0).sum()))
        if min(busy) < cfg.min_seconds:
            pa, pb = (_metrics(x, np.ones((1, x.count.size))) for x in (xa, xb))
            note = (f"too little data: {busy[0]} s with requests in A, {busy[1]} s in B "
                    f"(need {cfg.min_seconds})")
            for m in METRICS:
                va, vb = _finite(pa[m][0]), _finite(pb[m][0])
                r = vb / va if va and vb is not None else None
                ests.append((name, m, _Est(va, vb, r, note=note)))
            continue
        ra, ka, la = _bootstrap(xa, cfg, _rng(cfg.seed, name, 0))
        rb, kb, lb = _bootstrap(xb, cfg, _rng(cfg.seed, name, 1))
        blocks[name] = (*la, *lb)
        pa, pb = (_metrics(x, np.ones((1, x.count.size))) for x in (xa, xb))
        for m in METRICS:
            ests.append((name, m, _boot_row(m, float(pa[m][0]), float(pb[m][0]), ra[m], rb[m],
                                            ka[m], kb[m], cfg.alpha)))
    tested = [i for i, (_, _, e) in enumerate(ests) if e.p is not None and not e.note]
    adj = dict(zip(tested, benjamini_hochberg([ests[i][2].p for i in tested]), strict=True))
    rows = []
    for i, (name, m, e) in enumerate(ests):
        verdict, reason = _verdict(m, e, adj.get(i), cfg, unit, len(tested))
        rows.append(MetricComparison(
            name=name, metric=m, a=e.a, b=e.b, ratio=e.ratio, ci_low=e.ci[0], ci_high=e.ci[1],
            p_value=e.p, p_adjusted=adj.get(i), verdict=verdict, reason=reason,
            higher_is_worse=_HIGHER_IS_WORSE[m],
        ))
    return Comparison(rows=rows, only_in_a=sorted(set(a) - set(b)), only_in_b=sorted(set(b) - set(a)),
                      config=cfg, method=_method(cfg, unit, blocks), warnings=warnings)
