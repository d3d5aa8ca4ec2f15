"""CPU-bound versus waiting: SUT CPU in the seconds when latency was high.

Sample ``t = k`` of ``sut.jsonl`` covers series second ``k - 1`` (docs/monitoring.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from surge.analysis.findings.base import Finding, Timeline, fmt_ms
from surge.analysis.findings.saturation import load_levels

CPU_BOUND = 0.85  # of the cores the SUT can use
CPU_IDLE = 0.50
LATENCY_RISE = 1.5  # p95 at the heaviest load vs the lightest


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


def _windows(tl: Timeline, open_model: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """(light, heavy) masks of seconds: the lowest and highest load levels of a stepped or
    ramped run, or the first and last third of a constant one."""
    ok = np.isfinite(tl.p95) & (tl.requests > 0)
    if ok.sum() < 6:
        return None
    levels = load_levels(tl, open_model)
    if len(levels) >= 2:
        lo, hi = levels[0], levels[-1]
        light = ok & (tl.t >= lo.t0) & (tl.t <= lo.t1)
        heavy = ok & (tl.t >= hi.t0) & (tl.t <= hi.t1)
    else:  # the seconds at the run's load: not the ramp-down or graceful-stop tail
        load = tl.target_rate if open_model else tl.vus
        vals, counts = np.unique(np.round(load[ok], 3), return_counts=True)
        idx = np.flatnonzero(ok & (np.round(load, 3) == vals[np.argmax(counts)]))
        if len(idx) < 6:
            return None
        third = max(len(idx) // 3, 2)
        light, heavy = np.zeros_like(ok), np.zeros_like(ok)
        light[idx[:third]] = True
        heavy[idx[-third:]] = True
    return light, heavy


def cpu_or_waiting(tl: Timeline, procs: dict[str, dict[str, np.ndarray]], *, open_model: bool = False,
                   hot: list[str] | None = None) -> tuple[Finding | None, float | None]:
    """A CPU-bound or a waiting finding, and the busiest process's mean CPU fraction.

    Judged at the heaviest load (the top load level, or the last third of a constant
    run) against the lightest: CPU-bound when the SUT's CPU is near its limit there;
    waiting when latency rose at least 1.5x while its CPU stayed under half.
    """
    if not procs:
        return None, None
    win = _windows(tl, open_model)
    if win is None:
        return None, None
    light, heavy = win
    light_p95, heavy_p95 = float(np.median(tl.p95[light])), float(np.median(tl.p95[heavy]))
    heavy_secs = tl.t[heavy].astype(int)
    best = None
    for label, d in procs.items():  # the process that worked hardest under the heaviest load
        m = np.isin(d["second"].astype(int), heavy_secs)
        if not m.any():
            continue
        frac = float(np.mean(d["cpu_frac"][m]))
        if best is None or frac > best[1]:
            best = (label, frac, float(np.mean(d["cpu_frac"])), int(d["usable_cores"][0]))
    if best is None:
        return None, None
    label, frac, mean_frac, usable = best
    rise = heavy_p95 / light_p95 if light_p95 > 0 else 1.0
    t_range = (float(heavy_secs.min()), float(heavy_secs.max()))
    ev = (f"{label}: {frac:.0%} of {usable} usable core(s) at the heaviest load "
          f"({t_range[0]:.0f}-{t_range[1]:.0f} s, p95 {fmt_ms(heavy_p95)}), {mean_frac:.0%} over the run",
          f"at the lightest load p95 was {fmt_ms(light_p95)} ({rise:.1f}x lower)")
    if frac >= CPU_BOUND:
        where = f" The hottest code: {', '.join(hot[:3])}." if hot else " Profile it (`--py-spy PID`) to see where."
        return Finding(
            kind="cpu_bound", severity="critical" if rise >= LATENCY_RISE else "warning", subject=label,
            title=f"CPU-bound: {label} used {frac:.0%} of its CPU at the heaviest load",
            detail=("The server is working, not waiting: its CPU is the bottleneck, so more load only "
                    "queues. Make the hot code cheaper, move it off the request path (precompute, cache), "
                    "or add processes/cores." + where),
            evidence=ev, t_range=t_range), mean_frac
    if frac <= CPU_IDLE and rise >= LATENCY_RISE:
        return Finding(
            kind="waiting", severity="warning", subject=label,
            title=f"Waiting, not working: latency rose {rise:.1f}x while {label} used only {frac:.0%} of its CPU",
            detail=("Latency grew with the load but the server's CPU did not: requests wait on something "
                    "other than computation: a lock, a connection or thread pool that is too small, a "
                    "database, disk or network I/O, or many sequential calls per request."),
            evidence=ev, t_range=t_range), mean_frac
    return None, mean_frac
