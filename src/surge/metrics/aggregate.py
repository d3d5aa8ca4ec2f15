"""Running totals of a run, fed one merged second at a time."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from surge.metrics.stats import Key, RequestStats, SecondStats

_Q = (50, 95, 99)


def _ms(h, q: float) -> float | None:
    return round(h.percentile(q) / 1e6, 3) if h.count else None


def second_row(st: SecondStats) -> dict[str, Any]:
    """The compact per-second line used by the live panel, charts and findings."""
    tot = st.totals()
    row: dict[str, Any] = {
        "t": st.second,
        "requests": tot.count,
        "errors": tot.error_count,
        "errors_by_type": dict(tot.errors),
        "bytes_in": tot.bytes_in,
        "iterations": st.iterations,
        "iteration_errors": sum(st.iteration_errors.values()),
        "started": st.started,
        "dropped": st.dropped,
        "target_rate": round(st.target_rate, 3),
        "vus": st.vus,
        "cpu_max": max(st.cpu) if st.cpu else None,
        "loop_lag_ms_max": max(st.loop_lag_ms) if st.loop_lag_ms else None,
        "sched_lag_p99_ms_max": max(st.sched_lag_p99_ms) if st.sched_lag_p99_ms else None,
        "steal_max": max(st.steal) if st.steal else None,
    }
    for q in _Q:
        row[f"p{q}"] = _ms(tot.latency, q)
        row[f"service_p{q}"] = _ms(tot.service, q)
    return row


@dataclass
class RunAggregate:
    """Totals per key plus the per-second rows, built incrementally (bounded memory)."""

    by_key: dict[Key, RequestStats] = field(default_factory=dict)
    checks: dict[str, list[int]] = field(default_factory=dict)
    iterations: int = 0
    iteration_errors: Counter = field(default_factory=Counter)
    started: int = 0
    dropped: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, st: SecondStats) -> dict[str, Any]:
        """Merge one finished second and return its per-second row."""
        self.add_late(st)
        row = second_row(st)
        self.rows.append(row)
        return row

    def add_late(self, st: SecondStats) -> None:
        """Merge into the totals only (data for a second whose row was already written)."""
        for k, v in st.requests.items():
            mine = self.by_key.get(k)
            if mine is None:
                self.by_key[k] = RequestStats().merge(v)
            else:
                mine.merge(v)
        for name, (p, f) in st.checks.items():
            c = self.checks.setdefault(name, [0, 0])
            c[0] += p
            c[1] += f
        self.iterations += st.iterations
        self.iteration_errors.update(st.iteration_errors)
        self.started += st.started
        self.dropped += st.dropped

    def totals(self) -> RequestStats:
        out = RequestStats()
        for v in self.by_key.values():
            out.merge(v)
        return out

    def by_name(self) -> dict[tuple[str, str, str], RequestStats]:
        """Stats per (scenario, name, method), all status classes merged."""
        out: dict[tuple[str, str, str], RequestStats] = {}
        for (sc, name, method, _), v in self.by_key.items():
            out.setdefault((sc, name, method), RequestStats()).merge(v)
        return out

    def status_counts(self, scenario: str, name: str, method: str) -> dict[str, int]:
        return {k[3]: v.count for k, v in sorted(self.by_key.items()) if k[:3] == (scenario, name, method)}
