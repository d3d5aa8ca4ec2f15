"""Pure schedule math shared by the workload models (no I/O, no clock).

Times are seconds from the run's start; rates are iterations/s.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Iterator, Sequence

import numpy as np

from surge.api.options import Stage


def stages_duration(stages: Sequence[Stage]) -> float:
    """Total length of ``stages`` in s."""
    return float(sum(s.duration for s in stages))


def value_at(stages: Sequence[Stage], t: float, start: float = 0.0) -> float:
    """Piecewise-linear target at ``t`` s: ramps from ``start`` through each stage's target."""
    prev, t0 = start, 0.0
    for s in stages:
        if t < t0 + s.duration:
            frac = (t - t0) / s.duration if s.duration > 0 else 1.0
            return prev + (s.target - prev) * frac
        prev, t0 = s.target, t0 + s.duration
    return prev


def split_int(total: int, index: int, count: int) -> int:
    """This worker's share of ``total`` when split over ``count`` workers (shares sum to total)."""
    return (total * (index + 1)) // count - (total * index) // count


class RateCurve:
    """A piecewise-linear arrival rate (iterations/s) and its inverse cumulative count.

    ``segments`` are ``(t0, t1, r0, r1)``; the expected number of arrivals by
    time t is the integral of the rate, N(t), and :meth:`time_of` inverts it.
    """

    def __init__(self, segments: Sequence[tuple[float, float, float, float]]) -> None:
        self.segments = [s for s in segments if s[1] > s[0]]
        self._starts = [s[0] for s in self.segments]  # for bisection: shapes make thousands of segments
        self._cum = [0.0]
        for t0, t1, r0, r1 in self.segments:
            self._cum.append(self._cum[-1] + (r0 + r1) / 2.0 * (t1 - t0))
        self._seg = np.asarray(self.segments, dtype=np.float64).reshape(-1, 4)  # for times_of
        self._cum_arr = np.asarray(self._cum, dtype=np.float64)

    def __repr__(self) -> str:
        return f"RateCurve({self.segments!r})"

    @classmethod
    def constant(cls, rate: float, duration: float) -> RateCurve:
        return cls([(0.0, duration, rate, rate)])

    @classmethod
    def from_stages(cls, stages: Sequence[Stage], start_rate: float = 0.0) -> RateCurve:
        segs, t, r = [], 0.0, start_rate
        for s in stages:
            segs.append((t, t + s.duration, r, s.target))
            t, r = t + s.duration, s.target
        return cls(segs)

    def scaled(self, factor: float) -> RateCurve:
        return RateCurve([(t0, t1, r0 * factor, r1 * factor) for t0, t1, r0, r1 in self.segments])

    @property
    def duration(self) -> float:
        return self.segments[-1][1] if self.segments else 0.0

    @property
    def total(self) -> float:
        """Expected number of arrivals over the whole curve."""
        return self._cum[-1]

    def rate_at(self, t: float) -> float:
        i = bisect_right(self._starts, t) - 1
        if i >= 0:
            t0, t1, r0, r1 = self.segments[i]
            if t < t1:
                return r0 + (r1 - r0) * (t - t0) / (t1 - t0)
        return 0.0

    def time_of(self, n: float) -> float | None:
        """The time at which N(t) passes ``n``; None when it never does.

        Where N(t) stays at ``n`` for a while (the rate is 0), the end of that
        stretch: an arrival is due when traffic flows, and a curve of total 0
        (an all-zero trace) has no arrival at all, not one at t=0."""
        first = max(bisect_right(self._cum, n) - 1, 0)  # the first segment whose end passes n
        for i in range(first, len(self.segments)):
            t0, t1, r0, r1 = self.segments[i]
            if n < self._cum[i + 1]:
                d = n - self._cum[i]
                a = 0.5 * (r1 - r0) / (t1 - t0)
                # Clamp: at the end of a ramp down to 0 rounding makes it a tiny negative.
                disc = max(r0 * r0 + 4.0 * a * d, 0.0)
                denom = r0 + math.sqrt(disc)
                if denom <= 0:
                    return t0 if d <= 0 else None
                return min(t0 + 2.0 * d / denom, t1)
        return None

    def times_of(self, ns: np.ndarray) -> np.ndarray:
        """:meth:`time_of` of each of ``ns`` (ascending or not) at once; NaN where N(t)
        never reaches it. The same arithmetic, so the same floats, as :meth:`time_of`."""
        ns = np.asarray(ns, dtype=np.float64)
        nseg = len(self.segments)
        if nseg == 0:
            return np.full(ns.shape, np.nan)
        j = np.searchsorted(self._cum_arr, ns, side="right")  # the first segment whose end passes n
        i = np.clip(j - 1, 0, nseg - 1)
        t0, t1, r0, r1 = (self._seg[i, k] for k in range(4))
        d = ns - self._cum_arr[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = 0.5 * (r1 - r0) / (t1 - t0)
            disc = np.maximum(r0 * r0 + 4.0 * a * d, 0.0)
            denom = r0 + np.sqrt(disc)
            out = np.where(denom <= 0, np.where(d <= 0, t0, np.nan), np.minimum(t0 + 2.0 * d / denom, t1))
        out[j > nseg] = np.nan
        return out

    def arrivals(
        self, *, poisson: bool = False, phase: float = 0.0, rng: random.Random | None = None,
        cv: float | None = None, stride: int = 1, offset: int = 0,
    ) -> Iterator[float]:
        """Arrival times in s. Uniform: the k-th arrival where N(t) = k + phase.

        Poisson: a non-homogeneous Poisson process by time-rescaling, N(t_k) =
        E_1 + ... + E_k with E_i ~ Exp(1).

        Gamma (``cv`` given): the same time-rescaling with gaps G_i ~ Gamma(shape
        1/cv², scale cv²): mean 1 (so the rate curve is kept on average) and
        coefficient of variation ``cv`` (cv = 1 is Poisson). Gaps are drawn for the
        whole stream, of which this curve carries 1/``stride`` (the curve is the
        full rate divided by ``stride``): every ``stride``-th arrival from
        ``offset``. Workers sharing ``rng``'s seed thus split one bursty stream
        exactly, instead of superposing independent ones (which would smooth the
        bursts away).
        """
        rng = rng or random.Random(0)
        if cv is not None:
            yield from self._gamma_arrivals(rng, cv, stride, offset)
            return
        # In chunks, inverted with numpy: one time_of() call per arrival was ~10 % of a
        # worker's CPU at 5,000 req/s (py-spy). cumsum adds in order, so every n (and
        # time) is the float the one-at-a-time loop n += gap produced.
        n = phase if not poisson else rng.expovariate(1.0)
        chunk = 16
        while True:
            gaps = [rng.expovariate(1.0) for _ in range(chunk - 1)] if poisson else [1.0] * (chunk - 1)
            ns = np.cumsum(np.array([n, *gaps]))
            for t in self.times_of(ns).tolist():
                if t != t:  # NaN: the curve's arrivals are used up
                    return
                yield t
            n = float(ns[-1]) + (rng.expovariate(1.0) if poisson else 1.0)
            chunk = min(chunk * 2, 1024)  # short runs and slow rates compute little ahead

    def _gamma_arrivals(self, rng: random.Random, cv: float, stride: int, offset: int) -> Iterator[float]:
        k, theta = 1.0 / (cv * cv), cv * cv
        n, i = rng.gammavariate(k, theta) / stride, 0
        while True:
            if i % stride == offset:
                t = self.time_of(n)
                if t is None:
                    return
                yield t
            elif n > self.total:
                return
            n += rng.gammavariate(k, theta) / stride
            i += 1
