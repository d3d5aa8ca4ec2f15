"""What a finding is, and the per-second view of a run that the rules read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surge.metrics.stats import SecondStats

SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One plain-language diagnosis with the numbers that back it.

    ``t_range`` is in seconds since the run's start (the time axis of the series
    and of the charts); ``subject`` is the endpoint or function it is about.
    """

    kind: str
    severity: str
    title: str
    detail: str
    evidence: tuple[str, ...] = ()
    t_range: tuple[float, float] | None = None
    subject: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "severity": self.severity, "title": self.title, "detail": self.detail,
            "evidence": list(self.evidence),
            "t_range": list(self.t_range) if self.t_range else None, "subject": self.subject,
        }


@dataclass
class Timeline:
    """Per-second arrays of a run (index i is second ``t[i]``); latencies in ms."""

    t: np.ndarray
    requests: np.ndarray
    errors: np.ndarray
    p50: np.ndarray
    p95: np.ndarray
    service_p50: np.ndarray
    vus: np.ndarray
    target_rate: np.ndarray
    started: np.ndarray
    errors_by_type: list[dict[str, int]] = field(default_factory=list)

    @classmethod
    def from_series(cls, series: list[SecondStats]) -> Timeline:
        """Build from merged per-second stats (empty seconds give NaN latencies)."""
        def pct(h, q: float) -> float:
            return h.percentile(q) / 1e6 if h.count else float("nan")

        t, req, err, p50, p95, s50, vus, tr, st, ebt = ([] for _ in range(10))
        for s in sorted(series, key=lambda s: s.second):
            tot = s.totals()
            t.append(s.second)
            req.append(tot.count)
            err.append(tot.error_count)
            p50.append(pct(tot.latency, 50))
            p95.append(pct(tot.latency, 95))
            s50.append(pct(tot.service, 50))
            vus.append(s.vus)
            tr.append(s.target_rate)
            st.append(s.started)
            ebt.append(dict(tot.errors))
        f = lambda xs: np.asarray(xs, dtype=float)  # noqa: E731
        return cls(f(t), f(req), f(err), f(p50), f(p95), f(s50), f(vus), f(tr), f(st), ebt)

    def __len__(self) -> int:
        return len(self.t)


def fmt_ms(v: float | None) -> str:
    """'12.3 ms' / '1.24 s' for a latency in ms."""
    if v is None or not np.isfinite(v):
        return "n/a"
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.3g} ms" if v < 100 else f"{v:.0f} ms"


def fmt_range(t0: float, t1: float) -> str:
    return f"{t0:.0f}-{t1:.0f} s"
