"""The run summary: one JSON-able dict, the same for --json, summary.json and the tables.

Latencies are in ms. ``latency`` is measured from the intended start
(coordinated-omission free in open models); ``service`` from the send.
"""

from __future__ import annotations

from typing import Any

from surge.analysis.generator import GeneratorHealth
from surge.metrics.aggregate import RunAggregate
from surge.metrics.histogram import Histogram
from surge.metrics.stats import RequestStats

SUMMARY_VERSION = 1  # v1: first format
PCTS = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p99.9", 99.9))


def hist_summary(h: Histogram) -> dict[str, float | None]:
    """min/mean/p50/p90/p95/p99/p99.9/max in ms (None when empty)."""
    if not h.count:
        return {k: None for k in ("min", "mean", *[p for p, _ in PCTS], "max")}
    vals = h.percentiles([q for _, q in PCTS])
    out: dict[str, float | None] = {"min": round(h.min_ns / 1e6, 3), "mean": round(h.mean / 1e6, 3)}
    for (label, _), v in zip(PCTS, vals, strict=True):
        out[label] = round(float(v) / 1e6, 3)
    out["max"] = round(h.max_ns / 1e6, 3)
    return out


def stats_summary(st: RequestStats, duration_s: float) -> dict[str, Any]:
    lat = hist_summary(st.latency)
    return {
        "requests": st.count,
        "errors": st.error_count,
        "error_rate": round(st.error_count / st.count, 6) if st.count else 0.0,
        "errors_by_type": dict(sorted(st.errors.items())),
        "rps": round(st.count / duration_s, 3) if duration_s > 0 else 0.0,
        "bytes_in": st.bytes_in,
        **lat,
        "latency": lat,
        "service": hist_summary(st.service),
        "ttfb": hist_summary(st.ttfb),
    }


def build_summary(
    agg: RunAggregate,
    *,
    duration_s: float,
    generator: GeneratorHealth,
    status: str,
    interrupted_iterations: int = 0,
    thresholds: list[dict[str, Any]] | None = None,
    warnings: list[str] | None = None,
    iteration_tracebacks: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Everything a reader of the run needs, overall and per request name."""
    names = []
    for (sc, name, method), st in sorted(agg.by_name().items()):
        names.append({
            "scenario": sc, "name": name, "method": method,
            "status": agg.status_counts(sc, name, method),
            **stats_summary(st, duration_s),
        })
    checks = [
        {"name": n, "passes": p, "fails": f, "rate": round(p / (p + f), 6) if p + f else None}
        for n, (p, f) in sorted(agg.checks.items())
    ]
    started = agg.started
    return {
        "version": SUMMARY_VERSION,
        "status": status,
        "duration_s": round(duration_s, 3),
        **stats_summary(agg.totals(), duration_s),
        "names": names,
        "checks": checks,
        "iterations": {
            "completed": agg.iterations,
            "errors": dict(agg.iteration_errors),
            "error_rate": round(sum(agg.iteration_errors.values()) / agg.iterations, 6) if agg.iterations else 0.0,
            "started": started,
            "dropped": agg.dropped,
            "interrupted": interrupted_iterations,
            "first_tracebacks": iteration_tracebacks or {},
        },
        "generator": {
            "bound": generator.bound,
            "explanation": generator.explain(),
            "reasons": generator.reasons,
            "cpu_max": generator.cpu_max,
            "sched_lag_p99_ms_max": generator.sched_lag_p99_ms_max,
            "sched_lag_p99_ms_median": generator.sched_lag_p99_ms_median,
            "loop_lag_ms_max": generator.loop_lag_ms_max,
            "steal_max": generator.steal_max,
        },
        "thresholds": thresholds or [],
        "warnings": warnings or [],
    }
