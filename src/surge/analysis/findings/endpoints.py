"""Per-request signatures: a consistently slow endpoint (many sequential waits, e.g. N+1
queries) versus a heavy tail (a slow, variable dependency)."""

from __future__ import annotations

import statistics
from typing import Any

from surge.analysis.findings.base import Finding, fmt_ms

SLOW_FACTOR = 3.0  # service p50 at least 3x the median of the other endpoints'
SLOW_MIN_MS = 10.0
STEADY_TAIL = 2.5  # p99/p50 below this: the time is spent the same way on every request
HEAVY_TAIL = 5.0  # p99/p50 above this: some requests wait much longer than the rest
HEAVY_TAIL_MIN_MS = 100.0
MIN_REQUESTS = 50


def _label(n: dict[str, Any]) -> str:
    return f"{n['method']} {n['name']}"


def endpoint_signatures(summary: dict[str, Any], *, sut_cpu_fraction: float | None = None) -> list[Finding]:
    """Findings for endpoints much slower than the rest, told apart by the shape of their tail.

    ``sut_cpu_fraction`` (0-1 of the SUT's usable cores, mean over the run) sharpens the
    wording: a slow endpoint on an idle server is waiting, not working.
    """
    names = [n for n in summary.get("names", []) if n.get("requests", 0) >= MIN_REQUESTS
             and (n.get("service") or {}).get("p50") is not None]
    if len(names) < 2:
        return []
    out = []
    idle = sut_cpu_fraction is not None and sut_cpu_fraction < 0.5
    cpu_txt = (f" while the server used {sut_cpu_fraction:.0%} of its CPU" if sut_cpu_fraction is not None else "")
    for n in names:
        # compared with the *other* endpoints: with few endpoints, a slow one would drag
        # a median that included itself up towards its own value
        typical = statistics.median(o["service"]["p50"] for o in names if o is not n)
        s = n["service"]
        p50, p99 = s["p50"], s.get("p99") or s["p50"]
        tail = p99 / p50 if p50 > 0 else 0.0
        slow = p50 >= SLOW_FACTOR * typical and p50 >= SLOW_MIN_MS
        ev = (f"service p50 {fmt_ms(p50)}, p99 {fmt_ms(p99)} (p99/p50 {tail:.1f}) over {n['requests']} requests",
              f"median of the other endpoints: service p50 {fmt_ms(typical)}")
        if slow and tail < STEADY_TAIL:
            out.append(Finding(
                kind="slow_endpoint", severity="warning", subject=_label(n),
                title=(f"{_label(n)} is consistently slow: service p50 {fmt_ms(p50)}, "
                       f"{p50 / typical:.1f}x the other endpoints' median"),
                detail=(f"Every request takes about as long (p99 only {tail:.1f}x p50){cpu_txt}. "
                        + ("The server is waiting, not working: " if idle else "")
                        + "a steady cost on each request points to many sequential round trips, such as "
                          "N+1 queries (one query per item of a list), or a fixed-cost call. Count the queries "
                          "per request; batch them with a JOIN or an IN (...) query."),
                evidence=ev))
        elif tail >= HEAVY_TAIL and p99 >= HEAVY_TAIL_MIN_MS:
            out.append(Finding(
                kind="heavy_tail", severity="warning", subject=_label(n),
                title=f"{_label(n)} has a heavy tail: p50 {fmt_ms(p50)} but p99 {fmt_ms(p99)} ({tail:.0f}x)",
                detail=("Most requests are quick and a few wait far longer: typical of a slow, variable "
                        "dependency (a remote API, a lock, a GC pause, a cold cache). Averages hide it; "
                        "put a timeout and a p99 threshold on it, and look at the dependency's own latency."),
                evidence=ev))
    return out
