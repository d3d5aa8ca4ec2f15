"""Was the load generator itself the bottleneck? (pure function on per-second rows)"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

CPU_LIMIT = 90.0  # % of one core, per worker process
SCHED_LAG_LIMIT_MS = 10.0  # p99 delay between an arrival's scheduled and actual start
FLAG_FRACTION = 0.10  # of the run's seconds
MIN_FLAGGED = 2  # seconds: one noisy second does not make a short run generator-bound
STEAL_NOTE = 2.0  # % of the host's CPU time taken by the hypervisor in a second: worth saying


@dataclass(frozen=True)
class GeneratorHealth:
    bound: bool
    seconds: int
    cpu_seconds: int  # seconds with a worker above CPU_LIMIT
    lag_seconds: int  # seconds with schedule lag p99 above SCHED_LAG_LIMIT_MS
    cpu_max: float | None
    sched_lag_p99_ms_max: float | None
    loop_lag_ms_max: float | None
    reasons: list[str] = field(default_factory=list)
    sched_lag_p99_ms_median: float | None = None  # the typical second's p99
    steal_max: float | None = None  # hypervisor steal, % of the host's CPU time, worst second
    steal_seconds: int = 0  # seconds with steal above STEAL_NOTE

    def steal_note(self) -> str | None:
        """A sentence about hypervisor steal when there was enough to matter, else None."""
        if not self.steal_seconds or self.steal_max is None:
            return None
        return (f"the hypervisor took up to {self.steal_max:.3g} % of this host's CPU time "
                f"({self.steal_seconds} of {self.seconds} s above {STEAL_NOTE:g} %): schedule-lag "
                "and latency spikes in those seconds come from the VM, not from surge or the server")

    def explain(self) -> str:
        note = self.steal_note()
        if not self.bound:
            base = "generator kept up: the figures describe the server"
            return f"{base}; {note}" if note else base
        return (
            "GENERATOR-BOUND: " + "; ".join(self.reasons) + ". The generator, not only the server, limited "
            "this run: throughput is a lower bound of what the server can do; in closed models latencies "
            "include generator delay; add --workers or machines, or lower the load"
            + (f"; {note}" if note else "")
        )


def steal_noted(generator: dict[str, Any]) -> bool:
    """Whether a summary's ``generator`` section names hypervisor steal (see :meth:`GeneratorHealth.steal_note`):
    shown by the terminal and the report even when the generator kept up."""
    return "the hypervisor took" in str(generator.get("explanation") or "")


def assess(rows: list[dict[str, Any]], open_model: bool) -> GeneratorHealth:
    """Flag a run whose generator was saturated (CPU > 90 % or schedule lag p99 > 10 ms)
    for more than 10 % of its seconds, and at least 2 of them."""
    n = len(rows)
    cpu = [r["cpu_max"] for r in rows if r.get("cpu_max") is not None]
    lag = [r["sched_lag_p99_ms_max"] for r in rows if r.get("sched_lag_p99_ms_max") is not None]
    loop = [r["loop_lag_ms_max"] for r in rows if r.get("loop_lag_ms_max") is not None]
    steal = [r["steal_max"] for r in rows if r.get("steal_max") is not None]
    cpu_s = sum(1 for c in cpu if c > CPU_LIMIT)
    lag_s = sum(1 for x in lag if x > SCHED_LAG_LIMIT_MS) if open_model else 0
    reasons = []
    if cpu_s >= MIN_FLAGGED and cpu_s > FLAG_FRACTION * n:
        reasons.append(f"a worker's CPU was above {CPU_LIMIT:.0f} % in {cpu_s} of {n} s")
    if lag_s >= MIN_FLAGGED and lag_s > FLAG_FRACTION * n:
        reasons.append(f"schedule lag p99 was above {SCHED_LAG_LIMIT_MS:.0f} ms in {lag_s} of {n} s")
    return GeneratorHealth(
        bound=bool(reasons), seconds=n, cpu_seconds=cpu_s, lag_seconds=lag_s,
        cpu_max=max(cpu) if cpu else None, sched_lag_p99_ms_max=max(lag) if lag else None,
        loop_lag_ms_max=max(loop) if loop else None, reasons=reasons,
        sched_lag_p99_ms_median=float(statistics.median(lag)) if lag else None,
        steal_max=round(max(steal), 2) if steal else None,
        steal_seconds=sum(1 for x in steal if x > STEAL_NOTE),
    )
