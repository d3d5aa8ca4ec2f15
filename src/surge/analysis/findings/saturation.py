"""The saturation knee: where adding load stops adding throughput and starts adding latency."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from surge.analysis.findings.base import Finding, Timeline, fmt_ms

MIN_SECONDS = 3  # per load level, after dropping its first (warm-up) second
EFFICIENCY_DROP = 0.8  # throughput per unit of load below 80 % of the lightest level's
LATENCY_RISE = 1.5  # and p95 at least 1.5x the lightest level's


@dataclass(frozen=True)
class Level:
    """Medians over the seconds spent at one load level (VUs or target arrivals/s)."""

    load: float
    throughput: float  # req/s
    p95_ms: float
    t0: float
    t1: float
    seconds: int


def load_levels(tl: Timeline, open_model: bool, max_bins: int = 8) -> list[Level]:
    """Group seconds by load: plateaus of a stepped run, or equal-width bins of a ramp.

    The first second of each plateau is dropped: it holds the ramp's transient.
    """
    load = tl.target_rate if open_model else tl.vus
    ok = (load > 0) & (tl.requests > 0) & np.isfinite(tl.p95)
    if ok.sum() < 2 * MIN_SECONDS:
        return []
    vals = np.round(load[ok], 3)
    distinct = np.unique(vals)
    if len(distinct) <= max_bins:
        keys = vals
    else:  # a ramp: bin loads into equal-width bins
        edges = np.linspace(distinct[0], distinct[-1], max_bins + 1)
        keys = edges[np.clip(np.searchsorted(edges, vals, side="right") - 1, 0, max_bins - 1)]
    idx = np.flatnonzero(ok)
    levels = []
    for k in np.unique(keys):
        sel = idx[keys == k]
        if len(distinct) <= max_bins and len(sel) > MIN_SECONDS:
            sel = sel[1:]  # warm-up second of the plateau
        if len(sel) < MIN_SECONDS:
            continue
        levels.append(Level(
            load=float(np.median(load[sel])), throughput=float(np.median(tl.requests[sel])),
            p95_ms=float(np.median(tl.p95[sel])), t0=float(tl.t[sel[0]]), t1=float(tl.t[sel[-1]]),
            seconds=len(sel)))
    return sorted(levels, key=lambda lv: lv.load)


def saturation_knee(tl: Timeline, *, open_model: bool) -> Finding | None:
    """The first load level whose throughput per unit of load fell below 80 % of the
    lightest level's while its p95 rose at least 1.5x: the system is saturated there."""
    levels = load_levels(tl, open_model)
    if len(levels) < 3:
        return None
    base = levels[0]
    eff0 = base.throughput / base.load
    knee = None
    for lv in levels[1:]:
        eff = lv.throughput / lv.load
        if eff < EFFICIENCY_DROP * eff0 and lv.p95_ms >= LATENCY_RISE * base.p95_ms:
            knee = lv
            break
    if knee is None:
        return None
    unit = "arrivals/s" if open_model else "VUs"
    before = [lv for lv in levels if lv.load < knee.load]
    last_ok = before[-1]
    top = levels[-1]
    gain = (top.throughput / last_ok.throughput - 1) * 100
    load_gain = (top.load / last_ok.load - 1) * 100
    evidence = tuple(
        f"{lv.load:.4g} {unit}: {lv.throughput:.0f} req/s, p95 {fmt_ms(lv.p95_ms)} ({lv.t0:.0f}-{lv.t1:.0f} s)"
        for lv in levels)
    return Finding(
        kind="saturation", severity="warning",
        title=(f"Saturation: throughput stops scaling at about {last_ok.throughput:.0f} req/s "
               f"({last_ok.load:.4g} {unit})"),
        detail=(f"From {last_ok.load:.4g} to {top.load:.4g} {unit} (+{load_gain:.0f} %) throughput grew only "
                f"{gain:+.0f} % while p95 went from {fmt_ms(last_ok.p95_ms)} to {fmt_ms(top.p95_ms)}. "
                "Beyond this knee extra load only queues: plan capacity below it "
                "(`surge capacity` fits a scalability model to these points)."),
        evidence=evidence, t_range=(knee.t0, top.t1))
