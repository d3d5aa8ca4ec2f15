"""Mergeable per-key request statistics and per-second buckets.

A *key* is ``(scenario, name, method, status_class)`` where status_class is
``"2xx"``..``"5xx"`` or ``"err"`` for requests that got no response.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from surge.metrics.histogram import Histogram

Key = tuple[str, str, str, str]


def status_class(status: int) -> str:
    return f"{status // 100}xx" if status else "err"


@dataclass
class RequestStats:
    """Counts and three histograms (ns) for one key over some time span.

    ``latency`` is measured from the intended start, ``service`` from the send,
    ``ttfb`` from the send to the first response byte.
    """

    count: int = 0
    errors: Counter = field(default_factory=Counter)  # error label -> count
    bytes_in: int = 0
    latency: Histogram = field(default_factory=Histogram)
    service: Histogram = field(default_factory=Histogram)
    ttfb: Histogram = field(default_factory=Histogram)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def merge(self, other: RequestStats) -> RequestStats:
        self.count += other.count
        self.errors.update(other.errors)
        self.bytes_in += other.bytes_in
        self.latency.merge(other.latency)
        self.service.merge(other.service)
        self.ttfb.merge(other.ttfb)
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "errors": dict(self.errors),
            "bytes_in": self.bytes_in,
            "latency": self.latency.encode(),
            "service": self.service.encode(),
            "ttfb": self.ttfb.encode(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RequestStats:
        return cls(
            count=int(d["count"]),
            errors=Counter(d.get("errors", {})),
            bytes_in=int(d.get("bytes_in", 0)),
            latency=Histogram.decode(d["latency"]),
            service=Histogram.decode(d["service"]),
            ttfb=Histogram.decode(d["ttfb"]),
        )


@dataclass
class SecondStats:
    """Everything measured in one second of the run (one worker, or merged)."""

    second: int
    requests: dict[Key, RequestStats] = field(default_factory=dict)
    iterations: int = 0  # completed iterations
    iteration_errors: Counter = field(default_factory=Counter)  # exception type -> count
    started: int = 0  # iterations started (achieved arrival rate in open models)
    dropped: int = 0  # iterations the schedule wanted but no VU was free for
    target_rate: float = 0.0  # iterations/s the schedule asked for (open models)
    vus: int = 0  # active VUs at the end of the second
    checks: dict[str, list[int]] = field(default_factory=dict)  # name -> [passes, fails]
    # Generator self-metrics, one entry per worker: cpu %, event-loop lag ms, schedule lag ms.
    cpu: list[float] = field(default_factory=list)
    loop_lag_ms: list[float] = field(default_factory=list)
    sched_lag_p99_ms: list[float] = field(default_factory=list)
    steal: list[float] = field(default_factory=list)  # hypervisor steal, % of the host's CPU time

    def merge(self, o: SecondStats) -> SecondStats:
        for k, v in o.requests.items():
            mine = self.requests.get(k)
            if mine is None:
                self.requests[k] = RequestStats().merge(v)
            else:
                mine.merge(v)
        self.iterations += o.iterations
        self.iteration_errors.update(o.iteration_errors)
        self.started += o.started
        self.dropped += o.dropped
        self.target_rate += o.target_rate
        self.vus += o.vus
        for name, (p, f) in o.checks.items():
            c = self.checks.setdefault(name, [0, 0])
            c[0] += p
            c[1] += f
        self.cpu += o.cpu
        self.loop_lag_ms += o.loop_lag_ms
        self.sched_lag_p99_ms += o.sched_lag_p99_ms
        self.steal += o.steal
        return self

    def totals(self) -> RequestStats:
        out = RequestStats()
        for v in self.requests.values():
            out.merge(v)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "second": self.second,
            "requests": [
                {"scenario": k[0], "name": k[1], "method": k[2], "status": k[3], **v.to_json()}
                for k, v in sorted(self.requests.items())
            ],
            "iterations": self.iterations,
            "iteration_errors": dict(self.iteration_errors),
            "started": self.started,
            "dropped": self.dropped,
            "target_rate": self.target_rate,
            "vus": self.vus,
            "checks": self.checks,
            "cpu": self.cpu,
            "loop_lag_ms": self.loop_lag_ms,
            "sched_lag_p99_ms": self.sched_lag_p99_ms,
            "steal": self.steal,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SecondStats:
        """The inverse of :meth:`to_json`; ``ValueError`` when ``d`` is not a JSON object."""
        if not isinstance(d, dict):
            raise ValueError(f"a second must be a JSON object, not {type(d).__name__}")
        reqs = {
            (r["scenario"], r["name"], r["method"], r["status"]): RequestStats.from_json(r)
            for r in d.get("requests", [])
        }
        return cls(
            second=int(d["second"]),
            requests=reqs,
            iterations=int(d.get("iterations", 0)),
            iteration_errors=Counter(d.get("iteration_errors", {})),
            started=int(d.get("started", 0)),
            dropped=int(d.get("dropped", 0)),
            target_rate=float(d.get("target_rate", 0.0)),
            vus=int(d.get("vus", 0)),
            checks={k: list(v) for k, v in d.get("checks", {}).items()},
            cpu=list(d.get("cpu", [])),
            loop_lag_ms=list(d.get("loop_lag_ms", [])),
            sched_lag_p99_ms=list(d.get("sched_lag_p99_ms", [])),
            steal=list(d.get("steal", [])),
        )
