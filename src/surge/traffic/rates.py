"""The arrival-rate curve of a log: counts per second, and stages that follow it.

Counting is incremental (a dict of second -> count, so a day of traffic is at
most 86,400 entries whatever the log's size). :func:`rate_stages` compresses
the curve into a few linear ramps (stages of a ramping-arrival-rate model) by
Douglas-Peucker simplification of the bucketed rate polyline.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from surge.api.errors import UsageError

NICE_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)  # s
MAX_BUCKETS = 120  # buckets the curve is averaged into before simplification
MAX_STAGES = 12
# s: a log spanning more than a year is a clock gone wrong, not traffic to model. Counts
# are sparse, so a month-long log costs nothing extra; only the buckets scale with the span.
MAX_LOG_SPAN_S = 366 * 86_400


class RateCounter:
    """Counts events per second, counted from the first event, and remembers the span.

    Second ``k`` holds the events in ``[first + k, first + k + 1)``, where
    ``first`` is the time of the first event added (events slightly out of order,
    as logs written at completion are, land in negative seconds and are kept).
    """

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.n = 0
        self.ref: float | None = None
        self.first = math.inf
        self.last = -math.inf
        self.whole_seconds = True  # every time an integer: a 1 s resolution log

    def add(self, t: float) -> None:
        if self.ref is None:
            self.ref = t
        self.counts[math.floor(t - self.ref)] += 1
        self.n += 1
        if t < self.first:
            self.first = t
        if t > self.last:
            self.last = t
        if self.whole_seconds and t != int(t):
            self.whole_seconds = False

    def duration(self) -> float:
        """Seconds the events cover: last - first plus one resolution step (s).

        With 1 s timestamps the step is 1 s; with finer ones it is the mean gap,
        so that ``n / duration`` is the rate of n evenly spread events.
        """
        if self.n == 0:
            return 0.0
        span = self.last - self.first
        if self.whole_seconds:
            return span + 1.0
        return span * self.n / (self.n - 1) if self.n > 1 and span > 0 else 1.0

    def mean_rate(self) -> float:
        """Events per second over :meth:`duration`."""
        d = self.duration()
        return self.n / d if d > 0 else 0.0

    def span_seconds(self) -> int:
        """Whole seconds from the earliest event's second to the latest's, both included."""
        if self.n == 0:
            return 0
        return max(self.counts) - min(self.counts) + 1

    def busiest_second(self) -> int:
        """Events in the busiest one-second slot (0 when there are none)."""
        return max(self.counts.values(), default=0)

    def bucket_rates(self, bucket_s: int) -> np.ndarray:
        """Mean rate (events/s) per bucket of ``bucket_s`` s; the last bucket is divided by
        the part of it the events cover, so a log ending mid-bucket is not read as a drop.

        Summed from the sparse per-second counts: a dense array of every second cost
        memory in proportion to the span (18 GB for a log with one line dated 2099)."""
        n = self.span_seconds()
        if n == 0:
            return np.zeros(0)
        keys = np.fromiter(self.counts.keys(), dtype=np.int64, count=len(self.counts))
        vals = np.fromiter(self.counts.values(), dtype=np.float64, count=len(self.counts))
        nb = math.ceil(n / bucket_s)
        sums = np.bincount((keys - keys.min()) // bucket_s, weights=vals, minlength=nb)
        widths = np.full(nb, float(bucket_s))
        covered = min(max(self.duration() - (nb - 1) * bucket_s, 1e-3), float(bucket_s))
        widths[-1] = covered
        if nb > 1 and covered < bucket_s / 2:  # a sliver of a bucket is noise: fold it into the one before
            sums[-2] += sums[-1]
            widths[-2] += covered
            sums, widths = sums[:-1], widths[:-1]
        return sums / widths


@dataclass(frozen=True)
class RateCurve:
    """The log's arrival rate, bucketed, and stages that approximate it.

    Attributes:
        bucket_s: width of a bucket in s.
        rates: mean rate in each bucket (events/s).
        start_rate: the rate the stages start from (events/s).
        stages: ``(duration s, target events/s)`` linear ramps, in order.
    """

    bucket_s: int
    rates: tuple[float, ...]
    start_rate: float
    stages: tuple[tuple[float, float], ...]

    def stages_total(self) -> float:
        """Events the stages produce (the integral of the ramps)."""
        total, prev = 0.0, self.start_rate
        for d, r in self.stages:
            total += (prev + r) / 2.0 * d
            prev = r
        return total


def _iso(t: float) -> str:
    """An epoch time (s) as UTC ISO-8601 to the second, for messages."""
    try:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{t:g} s"


def pick_bucket(seconds: int, max_buckets: int = MAX_BUCKETS) -> int:
    """The smallest nice bucket width (s) that cuts ``seconds`` into at most ``max_buckets``."""
    for b in NICE_BUCKETS:
        if math.ceil(seconds / b) <= max_buckets:
            return b
    return NICE_BUCKETS[-1]


def simplify(points: np.ndarray, max_points: int, tolerance: float) -> list[int]:
    """Indices of the polyline ``points`` (N x 2) kept by Douglas-Peucker (vertical distance).

    Keeps adding the point farthest from the simplified line until ``max_points``
    are kept or every point is within ``tolerance``.
    """
    n = len(points)
    if n <= 2:
        return list(range(n))
    keep = {0, n - 1}
    while len(keep) < max_points:
        ks = sorted(keep)
        best, best_d = -1, tolerance
        for a, b in zip(ks, ks[1:], strict=False):
            if b - a < 2:
                continue
            xs, ys = points[a + 1:b, 0], points[a + 1:b, 1]
            (x0, y0), (x1, y1) = points[a], points[b]
            line = y0 + (y1 - y0) * (xs - x0) / (x1 - x0)
            d = np.abs(ys - line)
            i = int(np.argmax(d))
            if d[i] > best_d:
                best, best_d = a + 1 + i, float(d[i])
        if best < 0:
            break
        keep.add(best)
    return sorted(keep)


def rate_curve(counter: RateCounter, max_stages: int = MAX_STAGES, tolerance: float = 0.1) -> RateCurve:
    """Stages (linear ramps) following ``counter``'s rate, at most ``max_stages`` of them.

    The rate is averaged into buckets (:func:`pick_bucket`), the polyline through
    the buckets' rates is simplified until every bucket is within ``tolerance`` x
    the mean rate, or ``max_stages`` are used. A flat curve becomes one stage.
    """
    seconds = counter.span_seconds()
    duration = counter.duration()
    if seconds == 0:
        return RateCurve(1, (), 0.0, ())
    if seconds > MAX_LOG_SPAN_S:
        raise UsageError(
            f"the log's times span {seconds / 86_400:,.0f} days ({_iso(counter.first)} to {_iso(counter.last)}): "
            "more than a year. A line with a wrong clock? Cut the log to the period to model (or fix that line)")
    bucket = pick_bucket(seconds)
    rates = counter.bucket_rates(bucket)
    if len(rates) <= 2:
        r = counter.mean_rate()
        return RateCurve(bucket, tuple(float(x) for x in rates), r, ((round(duration, 3), r),))
    # The polyline: each bucket's rate at its start, and the last one held to the end.
    xs = np.arange(len(rates) + 1, dtype=float) * bucket
    xs[-1] = max(duration, xs[-2] + 1.0)  # the last bucket ends where the log does
    ys = np.append(rates, rates[-1])
    pts = np.column_stack([xs, ys])
    keep = simplify(pts, max_stages + 1, tolerance * max(counter.mean_rate(), 1e-9))
    stages = tuple((float(xs[b] - xs[a]), float(ys[b])) for a, b in zip(keep, keep[1:], strict=False))
    return RateCurve(bucket, tuple(float(x) for x in rates), float(ys[0]), stages)


__all__ = ["RateCounter", "RateCurve", "pick_bucket", "rate_curve", "simplify"]
