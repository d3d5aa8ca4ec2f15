"""What the run store hands back: run records, per-name stats and the metrics it keeps.

Part of :mod:`surge.results.store`: :class:`RunRecord` (one stored run, as
listed), :class:`NameStats` (the stored summary of one request name) and
:data:`METRICS` (metric name -> ``run_stats`` column).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# metric name -> run_stats column; 'latency.X' and 'service.X' spell the histogram out.
_PCT_COLS = {"min": "min", "mean": "mean", "p50": "p50", "p90": "p90", "p95": "p95",
             "p99": "p99", "p99.9": "p99_9", "max": "max"}
METRICS: dict[str, str] = {
    "requests": "requests", "errors": "errors", "error_rate": "error_rate", "rps": "rps",
    "bytes_in": "bytes_in",
    **{m: f"lat_{c}" for m, c in _PCT_COLS.items()},
    **{f"latency.{m}": f"lat_{c}" for m, c in _PCT_COLS.items()},
    **{f"service.{m}": f"svc_{c}" for m, c in _PCT_COLS.items()},
}




@dataclass(frozen=True)
class RunRecord:
    """One stored run, as listed: labels plus overall figures (latencies in ms)."""

    id: str
    scenario: str  # scenario key: path relative to its git checkout, or 'hit METHOD URL'
    started_at: datetime  # UTC, aware
    ended_at: datetime | None
    duration_s: float | None
    status: str  # completed | interrupted | aborted | failed | running | incomplete
    model: str | None
    branch: str | None
    commit: str | None
    dirty: bool | None
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    requests: int = 0
    errors: int = 0
    rps: float = 0.0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    names: list[str] = field(default_factory=list, hash=False)  # request names, summary order
    run_dir: str | None = None
    environment: str | None = None  # the 'env' tag
    thresholds_passed: bool | None = None  # None: the run had no thresholds
    host: str | None = None
    error_rate: float = 0.0


@dataclass(frozen=True)
class NameStats:
    """The stored summary of one request name of a run (or of all requests: ``total``)."""

    scenario: str
    name: str
    method: str
    total: bool
    requests: int
    errors: int
    error_rate: float
    rps: float
    bytes_in: int
    latency: dict[str, float | None]  # min, mean, p50, p90, p95, p99, p99.9, max (ms)
    service: dict[str, float | None]
