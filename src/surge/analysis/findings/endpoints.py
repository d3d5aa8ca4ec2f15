"""Per-request signatures: a consistently slow endpoint (many sequential waits, e.g. N+1
queries) versus a heavy tail (a slow, variable dependency)."""

from __future__ import annotations

import re
import statistics
from typing import Any

from surge.analysis.findings.base import Finding, fmt_ms

SLOW_FACTOR = 3.0  # service p50 at least 3x the median of the other endpoints'
SLOW_MIN_MS = 15.0  # below it, "slow" is relative only (the fixed demo's 10 ms checkout)
HEAVY_TAIL = 5.0  # p99/p50 above this: some requests wait much longer than the rest;
# below it a slow endpoint's cost is steady (the same work or waits on every request)
HEAVY_TAIL_MIN_MS = 100.0
MIN_REQUESTS = 50
COMPUTE_SHARE = 0.25  # a handler computes when its CPU per request is at least this share of
# the endpoint's service p50; below, it is in the profile but its time goes to waiting
# (the demo's N+1 list handler: ~1.5 ms of CPU in a 27 ms request, 13 % of the samples)


def _label(n: dict[str, Any]) -> str:
    return f"{n['method']} {n['name']}"


def _handler(name: str, hot: list[str]) -> str | None:
    """The hot function whose name carries a word of the endpoint's path (``/products/{id}/
    recommendations`` and ``Shop.recommendations``): a name match, not a trace, said as such."""
    words = [w.lower() for w in re.split(r"[/{}_.\-]+", name) if len(w) >= 4 and w != "id"]
    # the path's last word first: /products/{id}/recommendations is Shop.recommendations
    # even when Shop.list_products (via "products") is hotter
    for w in reversed(words):
        for fn in hot:
            base = fn.partition(" (")[0].lower()
            if base.rsplit(".", 1)[-1] == w or base.endswith(f"_{w}"):
                return fn
    return None


def _shared_tail(names: list[dict[str, Any]], hot: list[str]) -> Finding | None:
    """Most endpoints with a heavy tail at once: they queue behind something they share."""
    tails = [n for n in names if (n["service"].get("p99") or 0) >= HEAVY_TAIL_MIN_MS
             and n["service"]["p50"] > 0 and n["service"]["p99"] / n["service"]["p50"] >= HEAVY_TAIL]
    if len(tails) < 3 or len(tails) < 0.5 * len(names):
        return None
    p50s = sorted(n["service"]["p50"] for n in tails)
    p99s = sorted(n["service"]["p99"] for n in tails)
    cause = (f" The profile's hot code ({', '.join(hot[:2])}) runs on the server's threads: on an async server "
             "CPU work in a handler blocks the event loop and every request waits behind it." if hot else "")
    return Finding(
        kind="shared_tail", severity="warning",
        title=(f"{len(tails)} of {len(names)} endpoints share a heavy tail: p99 {fmt_ms(p99s[0])}-"
               f"{fmt_ms(p99s[-1])} while p50 is {fmt_ms(p50s[0])}-{fmt_ms(p50s[-1])}"),
        detail=("When fast and slow endpoints alike sometimes wait hundreds of ms, the wait is not their "
                "own: they queue behind something they all share: a blocked event loop (CPU work or "
                "blocking calls in async handlers), a lock, or a worker or connection pool." + cause),
        evidence=tuple(f"{_label(n)}: p50 {fmt_ms(n['service']['p50'])}, p99 {fmt_ms(n['service']['p99'])}"
                       for n in tails[:8]))


def _cpu_per_request_ms(handler: str, requests: int, hot_shares: dict[str, float] | None,
                        sut_cpu_s: float | None) -> float | None:
    """Estimated CPU ms per request of an endpoint: its handler's share of the profile's
    samples times the server's CPU s, over the endpoint's requests (None when unknown)."""
    share = (hot_shares or {}).get(handler)
    if share is None or not sut_cpu_s or requests <= 0:
        return None
    return share * sut_cpu_s * 1000.0 / requests


def endpoint_signatures(summary: dict[str, Any], *, sut_cpu_fraction: float | None = None,
                        hot: list[str] | None = None, hot_shares: dict[str, float] | None = None,
                        sut_cpu_s: float | None = None) -> list[Finding]:
    """Findings for endpoints much slower than the rest, told apart by the shape of their tail.

    ``sut_cpu_fraction`` (0-1 of the SUT's usable cores, mean over the run) sharpens the
    wording: a slow endpoint on an idle server is waiting, not working. ``hot`` (the
    profile's hot application functions) tells a computing endpoint from a waiting one;
    with ``hot_shares`` (each one's share of the samples, 0-1) and ``sut_cpu_s`` (the
    server's CPU s over the run) a handler in the profile counts as computing only when
    its CPU per request is a real part of the endpoint's time.
    """
    # One row per (method, name): several scenarios may call the same endpoint; the row
    # with the most requests speaks for it (percentiles of rows cannot be merged).
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    totals: dict[tuple[str, str], int] = {}
    for n in summary.get("names", []):
        key = (n["method"], n["name"])
        totals[key] = totals.get(key, 0) + int(n.get("requests", 0))
        if n.get("requests", 0) >= MIN_REQUESTS and (n.get("service") or {}).get("p50") is not None:
            if key not in rows or n["requests"] > rows[key]["requests"]:
                rows[key] = n
    names = list(rows.values())
    if len(names) < 2:
        return []
    # A handler matched by several endpoints spends its CPU on the requests of all of them.
    handlers = {(n["method"], n["name"]): _handler(n["name"], hot or []) for n in names}
    handler_requests: dict[str, int] = {}
    for key, fn in handlers.items():
        if fn is not None:
            handler_requests[fn] = handler_requests.get(fn, 0) + totals[key]
    out = []
    shared = _shared_tail(names, hot or [])
    if shared is not None:
        out.append(shared)
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
        handler = handlers[(n["method"], n["name"])]
        cpu_ms = _cpu_per_request_ms(handler, handler_requests[handler], hot_shares, sut_cpu_s) \
            if handler else None
        if handler and cpu_ms is not None and cpu_ms < COMPUTE_SHARE * p50:
            ev = (*ev, f"its handler (by name) {handler} is in the profile, but at about {fmt_ms(cpu_ms)} of CPU "
                       f"per request of a {fmt_ms(p50)} median: it waits more than it computes")
            handler = None
        if slow and shared is not None and handler is None:
            # its tail belongs to the shared queue: the steady cost cannot be read from its shape
            out.append(Finding(
                kind="slow_endpoint", severity="warning", subject=_label(n),
                title=(f"{_label(n)} is slow on its own: service p50 {fmt_ms(p50)}, "
                       f"{p50 / typical:.1f}x the other endpoints' median"),
                detail=("Its median is far above the others' on top of the shared queue: it has a cost of its "
                        "own: many sequential round trips (N+1 queries), a slow dependency, or computation. "
                        "Run it at a lower load, where the queue is short, to tell them apart."),
                evidence=ev))
        elif slow and (tail < HEAVY_TAIL or shared is not None) and handler is not None:
            out.append(Finding(
                kind="slow_endpoint", severity="warning", subject=_label(n),
                title=(f"{_label(n)} is consistently slow: service p50 {fmt_ms(p50)}, "
                       f"{p50 / typical:.1f}x the other endpoints' median, and it computes"),
                detail=(f"Its handler (by name) {handler} is among the profile's hot code: the time goes to "
                        "computation on every request. Cache or precompute the result, or make the "
                        "computation cheaper; on an async server it also blocks every other request."),
                evidence=(*ev, f"hot function matching the path: {handler}"
                               + (f", about {fmt_ms(cpu_ms)} of CPU per request" if cpu_ms is not None else ""))))
        elif slow and tail < HEAVY_TAIL:
            out.append(Finding(
                kind="slow_endpoint", severity="warning", subject=_label(n),
                title=(f"{_label(n)} is consistently slow: service p50 {fmt_ms(p50)}, "
                       f"{p50 / typical:.1f}x the other endpoints' median"),
                detail=(f"Its cost is steady: p99 is only {tail:.1f}x p50{cpu_txt}. "
                        + ("The server is waiting, not working: a" if idle else "A")
                        + " steady cost on each request that is not the profile's hot code points to many "
                          "sequential round trips, such as N+1 queries (one query per item of a list), or a "
                          "fixed-cost call. Count the queries per request; batch them with a JOIN or an "
                          "IN (...) query."),
                evidence=ev))
        elif tail >= HEAVY_TAIL and p99 >= HEAVY_TAIL_MIN_MS and shared is None:
            out.append(Finding(
                kind="heavy_tail", severity="warning", subject=_label(n),
                title=f"{_label(n)} has a heavy tail: p50 {fmt_ms(p50)} but p99 {fmt_ms(p99)} ({tail:.0f}x)",
                detail=("Most requests are quick and a few wait far longer: typical of a slow, variable "
                        "dependency (a remote API, a lock, a GC pause, a cold cache). Averages hide it; "
                        "put a timeout and a p99 threshold on it, and look at the dependency's own latency."),
                evidence=ev))
    return out
