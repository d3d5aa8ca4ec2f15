"""The ``sut`` block of summary.json: a few figures per monitored process, from the samples."""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_GROWTH_SPAN_S = 10.0  # s: a shorter span says nothing about memory growth


def sut_summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"procs": {label: {...}}}`` from ``sut.jsonl`` records (pure).

    Per label, over the samples where the process was alive: ``cpu_pct_mean``
    and ``cpu_pct_max`` (% of one core), ``rss_mb_max`` (MB) and
    ``rss_mb_growth_mb_per_h``: the least-squares slope of RSS over time in MB
    per hour (None over less than 10 s), a first hint of a leak in a soak run.
    """
    by_label: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for s in samples:
        for label, rec in (s.get("procs") or {}).items():
            if rec.get("alive", True) and rec.get("procs", 1):
                by_label.setdefault(label, []).append((float(s["t"]), rec))
    procs: dict[str, Any] = {}
    for label, rows in by_label.items():
        t = np.array([r[0] for r in rows])
        cpu = np.array([r[1].get("cpu_pct") or 0.0 for r in rows], dtype=float)
        rss = np.array([r[1].get("rss_mb") or 0.0 for r in rows], dtype=float)
        growth = None
        if len(t) >= 3 and t[-1] - t[0] >= MIN_GROWTH_SPAN_S:
            growth = round(float(np.polyfit(t, rss, 1)[0]) * 3600.0, 1)
        procs[label] = {
            "pid": rows[0][1].get("pid"),
            "samples": len(rows),
            "cpu_pct_mean": round(float(cpu.mean()), 1),
            "cpu_pct_max": round(float(cpu.max()), 1),
            "rss_mb_max": round(float(rss.max()), 1),
            "rss_mb_growth_mb_per_h": growth,
        }
    return {"procs": procs}
