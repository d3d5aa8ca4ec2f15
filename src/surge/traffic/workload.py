"""A workload model derived from a log: endpoint mix, arrival-rate curve, sessions.

:class:`WorkloadBuilder` takes records one at a time (bounded memory: counters
per endpoint, per-second counts, open sessions), and :meth:`~WorkloadBuilder.finish`
returns a :class:`Workload`, plain data that ``surge model`` prints and turns
into a scenario file.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surge.traffic.normalise import template
from surge.traffic.rates import RateCounter, RateCurve, rate_curve
from surge.traffic.record import LogRecord
from surge.traffic.sessions import (
    DEFAULT_GAP_S,
    Sessionizer,
    ThinkFit,
    fit_think_time,
    length_table,
)

MAX_EXAMPLES = 20  # concrete URLs kept per endpoint (the ids a scenario picks from)
MAX_ENDPOINTS = 2000  # distinct endpoints tracked; the rest count as "(other)"


@dataclass(frozen=True)
class Endpoint:
    """One (method, template) of the mix; ``examples`` are concrete targets seen (with query)."""

    method: str
    template: str
    count: int
    share: float
    examples: tuple[str, ...]
    errors: int = 0  # responses with status >= 400


@dataclass(frozen=True)
class SessionModel:
    """Sessions found in the log (see :mod:`surge.traffic.sessions`)."""

    gap_s: float
    count: int
    mean_length: float
    median_length: float
    p90_length: float
    lengths: tuple[tuple[int, float], ...]  # (requests per session, share)
    think: ThinkFit
    mean_duration_s: float
    p95_duration_s: float
    rate: RateCurve  # session starts per second
    mean_rate: float


@dataclass(frozen=True)
class Workload:
    """What a log says about its traffic.

    Attributes:
        requests: requests read; duration_s: time they span (s); mean_rate / peak_rate:
            requests/s (peak over 1 s, or over the curve's bucket for long logs).
        endpoints: the mix, most frequent first.
        rate: the request-rate curve and its stages.
        sessions: sessions and think times.
        first_time: epoch s of the earliest request; whole_seconds: the log has 1 s resolution.
    """

    requests: int
    duration_s: float
    mean_rate: float
    peak_rate: float
    endpoints: tuple[Endpoint, ...]
    rate: RateCurve
    sessions: SessionModel
    first_time: float
    whole_seconds: bool
    other: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        s = self.sessions
        return {
            "requests": self.requests, "duration_s": round(self.duration_s, 3),
            "mean_rate": round(self.mean_rate, 3), "peak_rate": round(self.peak_rate, 3),
            "first_time": self.first_time, "timestamp_resolution_s": 1.0 if self.whole_seconds else None,
            "endpoints": [{"method": e.method, "template": e.template, "count": e.count, "share": round(e.share, 6),
                           "errors": e.errors, "examples": list(e.examples[:5])} for e in self.endpoints],
            "rate": {"bucket_s": self.rate.bucket_s, "rates": [round(r, 3) for r in self.rate.rates],
                     "start_rate": round(self.rate.start_rate, 3),
                     "stages": [{"duration_s": round(d, 3), "target": round(t, 3)} for d, t in self.rate.stages]},
            "sessions": {
                "gap_s": s.gap_s, "count": s.count, "mean_length": round(s.mean_length, 3),
                "median_length": s.median_length, "p90_length": s.p90_length,
                "lengths": [{"requests": k, "share": round(v, 6)} for k, v in s.lengths],
                "mean_duration_s": round(s.mean_duration_s, 3), "p95_duration_s": round(s.p95_duration_s, 3),
                "mean_rate": round(s.mean_rate, 4),
                "think_time": {"kind": s.think.kind, "mean_s": round(s.think.mean, 4),
                               "median_s": round(s.think.median, 4), "sigma": round(s.think.sigma, 4),
                               "gaps": s.think.n, "zero_share": round(s.think.zero_share, 4)},
            },
            **self.other,
        }


class WorkloadBuilder:
    """Aggregates :class:`LogRecord` values incrementally into a :class:`Workload`."""

    def __init__(self, gap_s: float = DEFAULT_GAP_S) -> None:
        self.counts: Counter = Counter()  # (method, template) -> requests
        self.errors: Counter = Counter()
        self.examples: dict[tuple[str, str], list[str]] = {}
        self.rate = RateCounter()
        self.session_starts = RateCounter()
        self.sessions = Sessionizer(gap_s, on_start=self.session_starts.add)
        self.gap_s = gap_s

    def __repr__(self) -> str:
        return f"<WorkloadBuilder requests={self.rate.n} endpoints={len(self.counts)}>"

    def add(self, rec: LogRecord) -> None:
        """Account for one request."""
        key = (rec.method, template(rec.target))
        if key not in self.counts and len(self.counts) >= MAX_ENDPOINTS:
            key = (rec.method, "(other)")
        self.counts[key] += 1
        if rec.status is not None and rec.status >= 400:
            self.errors[key] += 1
        ex = self.examples.get(key)
        if ex is None:
            ex = self.examples[key] = []
        if len(ex) < MAX_EXAMPLES and rec.target not in ex:
            ex.append(rec.target)
        self.rate.add(rec.time)
        self.sessions.add(rec.session_key(), rec.time)

    def finish(self) -> Workload:
        """The model of everything added so far (call once)."""
        n = self.rate.n
        self.sessions.close()
        endpoints = tuple(
            Endpoint(m, t, c, c / n if n else 0.0, tuple(self.examples[(m, t)]), self.errors[(m, t)])
            for (m, t), c in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        curve = rate_curve(self.rate)
        peak = float(self.rate.busiest_second())
        if curve.bucket_s > 1 and curve.rates:
            peak = max(curve.rates)
        return Workload(
            requests=n, duration_s=self.rate.duration(), mean_rate=self.rate.mean_rate(), peak_rate=peak,
            endpoints=endpoints, rate=curve, sessions=self._session_model(), first_time=self.rate.first,
            whole_seconds=self.rate.whole_seconds,
        )

    def _session_model(self) -> SessionModel:
        s = self.sessions
        lengths = np.repeat(np.fromiter(s.lengths.keys(), dtype=float), np.fromiter(s.lengths.values(), dtype=int)) \
            if s.lengths else np.zeros(0)
        durations = np.asarray(s.durations, dtype=float)
        count = int(sum(s.lengths.values()))

        def q(a: np.ndarray, p: float) -> float:
            return float(np.percentile(a, p)) if len(a) else 0.0

        return SessionModel(
            gap_s=self.gap_s, count=count, mean_length=float(lengths.mean()) if len(lengths) else 0.0,
            median_length=q(lengths, 50), p90_length=q(lengths, 90), lengths=tuple(length_table(s.lengths)),
            think=fit_think_time(s.gaps), mean_duration_s=float(durations.mean()) if len(durations) else 0.0,
            p95_duration_s=q(durations, 95), rate=rate_curve(self.session_starts),
            mean_rate=count / self.rate.duration() if self.rate.duration() > 0 else 0.0,
        )


def build_workload(records, gap_s: float = DEFAULT_GAP_S) -> Workload:
    """Derive a :class:`Workload` from an iterable of :class:`LogRecord` (streamed once)."""
    b = WorkloadBuilder(gap_s)
    for rec in records:
        b.add(rec)
    return b.finish()


def fmt_rate(r: float) -> str:
    """A rate for people: 3 significant digits, no scientific notation below 1e6."""
    if r == 0 or not math.isfinite(r):
        return "0"
    return f"{r:.3g}" if r < 1000 else f"{r:,.0f}"


__all__ = ["Endpoint", "SessionModel", "Workload", "WorkloadBuilder", "build_workload", "fmt_rate"]
