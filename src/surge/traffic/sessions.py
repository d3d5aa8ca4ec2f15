"""Sessions in a log, and the think-time and session-length distributions they show.

A session is a run of requests from one client (session cookie, or IP + user
agent) with no pause longer than ``gap_s`` (30 min by default, the web
analytics convention). :class:`Sessionizer` consumes requests one at a time and
keeps only the sessions still open, closing those idle for longer than the gap
as time moves on, so memory follows the number of concurrent users, not the
log's length. Gaps between a session's requests are kept in a bounded uniform
sample (reservoir) for the think-time fit.
"""

from __future__ import annotations

import math
import random
from array import array
from collections import Counter
from dataclasses import dataclass

import numpy as np

DEFAULT_GAP_S = 1800.0
RESERVOIR = 100_000  # think-time gaps kept for fitting
SWEEP_EVERY = 10_000  # requests between sweeps of idle sessions


class Sessionizer:
    """Splits requests into sessions per client key.

    Attributes after :meth:`close`:
        lengths: Counter of requests per session.
        gaps: sample of within-session gaps in s (at most RESERVOIR).
        starts: epoch times of session starts (via ``on_start``).
    """

    def __init__(self, gap_s: float = DEFAULT_GAP_S, seed: int = 0, on_start=None) -> None:
        self.gap_s = gap_s
        self.open: dict[str, list[float]] = {}  # key -> [last time, requests, first time]
        self.lengths: Counter = Counter()
        # Samples as arrays of doubles (8 bytes each, not a 32-byte float object).
        self.durations = array("d")  # sample of session durations (s), bounded like gaps
        self.gaps = array("d")
        self.n_gaps = 0
        self._n_durations = 0
        self._rng = random.Random(seed)
        self._seen = 0
        self._now = -math.inf
        self._on_start = on_start

    def add(self, key: str, t: float) -> None:
        """One request of client ``key`` at epoch ``t`` s."""
        s = self.open.get(key)
        if s is not None and t - s[0] > self.gap_s:
            self._finish(s)
            s = None
        if s is None:
            self.open[key] = [t, 1, t]
            if self._on_start is not None:
                self._on_start(t)
        else:
            gap = t - s[0]
            if gap >= 0:  # logs written at completion are slightly out of order
                self._keep_gap(gap)
                s[0] = t
            s[1] += 1
        self._now = max(self._now, t)
        self._seen += 1
        if self._seen % SWEEP_EVERY == 0:
            self._sweep()

    def _keep_gap(self, gap: float) -> None:
        self.n_gaps += 1
        if len(self.gaps) < RESERVOIR:
            self.gaps.append(gap)
        else:
            j = self._rng.randrange(self.n_gaps)
            if j < RESERVOIR:
                self.gaps[j] = gap

    def _finish(self, s: list[float]) -> None:
        self.lengths[int(s[1])] += 1
        self._n_durations += 1
        d = s[0] - s[2]
        if len(self.durations) < RESERVOIR:
            self.durations.append(d)
        else:
            j = self._rng.randrange(self._n_durations)
            if j < RESERVOIR:
                self.durations[j] = d

    def _sweep(self) -> None:
        limit = self._now - self.gap_s
        idle = [k for k, s in self.open.items() if s[0] < limit]
        for k in idle:
            self._finish(self.open.pop(k))

    def close(self) -> None:
        """End every open session (call once, after the last request)."""
        for s in self.open.values():
            self._finish(s)
        self.open.clear()


@dataclass(frozen=True)
class ThinkFit:
    """The distribution chosen for think times (gaps between a session's requests).

    Attributes:
        kind: ``"lognormal"``, ``"exponential"`` or ``"none"`` (too few gaps).
        median: lognormal median in s; mean: sample mean in s.
        sigma: lognormal shape (std of log gap); n: gaps fitted.
        zero_share: share of gaps <= 1 ms (same-instant requests; with 1 s
            timestamps, requests within one second), left out of the fit.
        aic_lognormal / aic_exponential: Akaike criteria (lower is better).
    """

    kind: str
    mean: float = 0.0
    median: float = 0.0
    sigma: float = 0.0
    n: int = 0
    zero_share: float = 0.0
    aic_lognormal: float = math.nan
    aic_exponential: float = math.nan

    def as_code(self) -> str:
        """The ``surge`` think-time expression for a scenario file."""
        if self.kind == "lognormal":
            return f"lognormal(median={self.median:.3g}, sigma={self.sigma:.3g})"
        if self.kind == "exponential":
            return f"exponential(mean={self.mean:.3g})"
        return "0"


MIN_GAP = 1e-3  # s: shorter gaps are parallel requests (page assets), not thinking


def fit_think_time(gaps: list[float] | np.ndarray, min_n: int = 5) -> ThinkFit:
    """Fit lognormal and exponential distributions to ``gaps`` (s) by maximum likelihood;
    the one with the lower AIC wins. Gaps under 1 ms are left out (and counted)."""
    g = np.asarray(gaps, dtype=float)
    total = len(g)
    g = g[g > MIN_GAP]
    zero = 1.0 - len(g) / total if total else 0.0
    if len(g) < min_n:
        return ThinkFit("none", n=len(g), zero_share=zero)
    n = len(g)
    mean = float(g.mean())
    logs = np.log(g)
    mu, sigma = float(logs.mean()), float(logs.std())
    ll_exp = -n * math.log(mean) - n
    if sigma > 1e-9:
        ll_ln = float(-logs.sum() - n * math.log(sigma * math.sqrt(2 * math.pi)) - ((logs - mu) ** 2).sum() / (2 * sigma**2))
    else:
        ll_ln = math.inf  # every gap equal: a degenerate lognormal fits perfectly
    aic_ln, aic_exp = 4 - 2 * ll_ln, 2 - 2 * ll_exp
    kind = "lognormal" if aic_ln <= aic_exp else "exponential"
    return ThinkFit(kind, mean=mean, median=math.exp(mu), sigma=max(sigma, 1e-3), n=n, zero_share=zero,
                    aic_lognormal=aic_ln, aic_exponential=aic_exp)


def length_table(lengths: Counter, max_rows: int = 20) -> list[tuple[int, float]]:
    """Session lengths as ``(requests, share)`` rows, at most ``max_rows``: the most
    common lengths exactly, the rest folded into the nearest kept length."""
    total = sum(lengths.values())
    if not total:
        return []
    kept = sorted(k for k, _ in lengths.most_common(max_rows))
    shares: Counter = Counter()
    for k, c in lengths.items():
        nearest = min(kept, key=lambda x: (abs(x - k), x))
        shares[nearest] += c
    return [(k, shares[k] / total) for k in kept]


__all__ = ["DEFAULT_GAP_S", "Sessionizer", "ThinkFit", "fit_think_time", "length_table"]
