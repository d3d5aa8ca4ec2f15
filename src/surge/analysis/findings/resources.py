"""CPU-bound versus waiting: SUT CPU in the seconds when latency was high.

Sample ``t = k`` of ``sut.jsonl`` covers series second ``k - 1`` (docs/monitoring.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from surge.analysis.findings.base import Finding, Timeline, fmt_ms

CPU_BOUND = 0.85  # of the cores the SUT can use
CPU_IDLE = 0.50
LATENCY_RISE = 1.5  # p95 of the slowest quarter of seconds vs the fastest quarter


def proc_series(samples: list[dict[str, Any]], ncpu: int) -> dict[str, dict[str, np.ndarray]]:
    """Per monitored process label: ``second`` (series second), ``cpu_frac`` (0-1 of the cores
    it can use) and ``rss_mb`` arrays.

    Usable cores: one per process of the family (a Python process is bound by its GIL),
    or every core when the family was seen above that (threads running native code).
    """
    out: dict[str, dict[str, list[float]]] = {}
    peak: dict[str, float] = {}
    nprocs: dict[str, int] = {}
    for s in samples:
        for label, p in (s.get("procs") or {}).items():
            if not p.get("alive", True) or p.get("cpu_pct") is None:
                continue
            d = out.setdefault(label, {"second": [], "cpu_pct": [], "rss_mb": []})
            d["second"].append(round(float(s["t"])) - 1)
            d["cpu_pct"].append(float(p["cpu_pct"]))
            d["rss_mb"].append(float(p.get("rss_mb") or np.nan))
            peak[label] = max(peak.get(label, 0.0), float(p["cpu_pct"]))
            nprocs[label] = max(nprocs.get(label, 1), int(p.get("procs") or 1))
    res = {}
    for label, d in out.items():
        usable = min(ncpu, nprocs[label])
        if peak[label] > 110.0 * nprocs[label]:
            usable = ncpu
        res[label] = {"second": np.asarray(d["second"], dtype=float),
                      "cpu_frac": np.asarray(d["cpu_pct"]) / (100.0 * max(usable, 1)),
                      "rss_mb": np.asarray(d["rss_mb"]), "usable_cores": np.asarray([usable])}
    return res


def cpu_or_waiting(tl: Timeline, procs: dict[str, dict[str, np.ndarray]],
                   hot: list[str] | None = None) -> tuple[Finding | None, float | None]:
    """A CPU-bound or a waiting finding, and the busiest process's mean CPU fraction.

    Judged on the slowest quarter of the run's seconds (by p95), compared with the fastest.
    """
    if not procs:
        return None, None
    ok = np.isfinite(tl.p95) & (tl.requests > 0)
    if ok.sum() < 4:
        return None, None
    secs, p95 = tl.t[ok], tl.p95[ok]
    lo, hi = np.quantile(p95, [0.25, 0.75])
    slow_secs = set(secs[p95 >= hi].astype(int).tolist())
    fast_p95, slow_p95 = float(np.median(p95[p95 <= lo])), float(np.median(p95[p95 >= hi]))
    # the process that worked hardest in the slow seconds is the one to judge
    best = None
    for label, d in procs.items():
        m = np.isin(d["second"].astype(int), list(slow_secs))
        if not m.any():
            continue
        frac = float(np.mean(d["cpu_frac"][m]))
        if best is None or frac > best[1]:
            best = (label, frac, float(np.mean(d["cpu_frac"])), int(d["usable_cores"][0]))
    if best is None:
        return None, None
    label, frac, mean_frac, usable = best
    rise = slow_p95 / fast_p95 if fast_p95 > 0 else 1.0
    t_slow = sorted(slow_secs)
    t_range = (float(t_slow[0]), float(t_slow[-1]))
    ev = (f"{label}: {frac:.0%} of {usable} usable core(s) in the slowest quarter of seconds "
          f"(p95 {fmt_ms(slow_p95)}), {mean_frac:.0%} over the run",
          f"fastest quarter p95 {fmt_ms(fast_p95)} ({rise:.1f}x lower)")
    if frac >= CPU_BOUND:
        where = f" The hottest code: {', '.join(hot[:3])}." if hot else " Profile it (`--py-spy PID`) to see where."
        return Finding(
            kind="cpu_bound", severity="critical" if rise >= LATENCY_RISE else "warning", subject=label,
            title=f"CPU-bound: {label} used {frac:.0%} of its CPU when latency was highest",
            detail=("The server is working, not waiting: its CPU is the bottleneck, so more load only "
                    "queues. Make the hot code cheaper, move it off the request path (precompute, cache), "
                    "or add processes/cores." + where),
            evidence=ev, t_range=t_range), mean_frac
    if frac <= CPU_IDLE and rise >= LATENCY_RISE:
        return Finding(
            kind="waiting", severity="warning", subject=label,
            title=f"Waiting, not working: latency rose {rise:.1f}x while {label} used only {frac:.0%} of its CPU",
            detail=("Latency grew but the server's CPU did not: requests wait on something other than "
                    "computation: a lock, a connection or thread pool that is too small, a database, "
                    "disk or network I/O, or many sequential calls per request."),
            evidence=ev, t_range=t_range), mean_frac
    return None, mean_frac
