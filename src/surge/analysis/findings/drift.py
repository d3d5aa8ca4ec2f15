"""Soak-test trends: latency drift and memory growth (robust slopes, tested for a trend)."""

from __future__ import annotations

import numpy as np

from surge.analysis.findings.base import Finding, Timeline, fmt_ms

MIN_SOAK_S = 60
WINDOW_S = 10  # latency per 10 s window: per-second p95s are too noisy to trend
DRIFT_REL = 0.20  # fitted change over the run, relative to its start
MEMORY_MIB_PER_H = 50.0
ALPHA = 0.01


def _steady(tl: Timeline, open_model: bool) -> np.ndarray:
    """Seconds at the run's dominant load level (a soak holds its load constant)."""
    load = tl.target_rate if open_model else tl.vus
    if len(load) == 0:
        return np.zeros(0, dtype=bool)
    vals, counts = np.unique(np.round(load, 3), return_counts=True)
    top = vals[np.argmax(counts)]
    return (np.round(load, 3) == top) & (tl.requests > 0) & np.isfinite(tl.p95) & (top > 0)


def steady_seconds(tl: Timeline, open_model: bool) -> np.ndarray:
    """The seconds at the run's dominant load, minus the first 10 % of them (warm-up):
    memory and latency trends are only meaningful while the load holds still."""
    t = tl.t[_steady(tl, open_model)]
    return t[len(t) // 10:]


def latency_drift(tl: Timeline, *, open_model: bool) -> Finding | None:
    """p95 that trends up under constant load (Theil-Sen slope, Kendall's tau at 1 %)."""
    sel = _steady(tl, open_model)
    if sel.sum() < MIN_SOAK_S:
        return None
    t, p95 = tl.t[sel], tl.p95[sel]
    nwin = len(t) // WINDOW_S
    if nwin < 6:
        return None
    tw = t[: nwin * WINDOW_S].reshape(nwin, WINDOW_S).mean(axis=1)
    yw = np.median(p95[: nwin * WINDOW_S].reshape(nwin, WINDOW_S), axis=1)
    # imported here, not at module level: scipy.stats takes ~0.7 s, and most runs are too short
    from scipy import stats

    slope, icpt, _, _ = stats.theilslopes(yw, tw)
    tau, p = stats.kendalltau(tw, yw)
    start, end = icpt + slope * tw[0], icpt + slope * tw[-1]
    if start <= 0 or p >= ALPHA or tau <= 0 or (end - start) / start < DRIFT_REL:
        return None
    per_h = slope * 3600
    return Finding(
        kind="latency_drift", severity="warning",
        title=f"Latency drifts up under constant load: p95 {fmt_ms(start)} -> {fmt_ms(end)} "
              f"(+{(end - start) / start:.0%})",
        detail=("The load did not change but latency kept rising: something accumulates (a growing "
                "queue, cache or table, a leak, fragmentation). A longer soak will be worse; "
                f"the trend is {per_h:+.1f} ms per hour."),
        evidence=(f"Theil-Sen slope {slope * 1000:.3f} ms per 1000 s over {nwin} windows of {WINDOW_S} s",
                  f"Kendall tau {tau:.2f}, p = {p:.2g}"),
        t_range=(float(t[0]), float(t[-1])))


def memory_growth(t: np.ndarray, rss_mb: np.ndarray, label: str) -> Finding | None:
    """RSS that grows steadily (Theil-Sen slope > 50 MiB/h and a significant trend)."""
    ok = np.isfinite(rss_mb)
    t, rss = t[ok], rss_mb[ok]
    if len(t) < MIN_SOAK_S:
        return None
    from scipy import stats

    slope, icpt, _, _ = stats.theilslopes(rss, t)
    tau, p = stats.kendalltau(t, rss)
    per_h = slope * 3600
    if per_h < MEMORY_MIB_PER_H or p >= ALPHA or tau <= 0.3:
        return None
    return Finding(
        kind="memory_growth", severity="warning", subject=label,
        title=f"Memory of {label} grows {per_h:.0f} MiB per hour",
        detail=(f"RSS went from {icpt + slope * t[0]:.0f} to {icpt + slope * t[-1]:.0f} MiB during the run "
                f"and kept rising (Kendall tau {tau:.2f}). At this rate it adds {per_h * 24 / 1024:.1f} GiB a day: "
                "look for caches without a bound, growing lists or leaked connections."),
        evidence=(f"Theil-Sen slope {slope * 60:.2f} MiB/min over {len(t)} samples", f"p = {p:.2g}"),
        t_range=(float(t[0]), float(t[-1])))
