"""Observed values for thresholds, read off a run aggregate (pure)."""

from __future__ import annotations

from surge.analysis.thresholds import Threshold
from surge.metrics.aggregate import RunAggregate
from surge.metrics.stats import RequestStats

_TAG_POS = {"scenario": 0, "name": 1, "method": 2, "status": 3}


def _matching(agg: RunAggregate, th: Threshold) -> RequestStats | None:
    tags = [(pos, value) for key, value in th.tags if (pos := _TAG_POS.get(key)) is not None]
    out, found = RequestStats(), False
    for k, v in agg.by_key.items():
        if all(k[pos] == value for pos, value in tags):
            out.merge(v)
            found = True
    return out if found else None


def observe(th: Threshold, agg: RunAggregate, duration_s: float) -> float | None:
    """The value ``th`` is judged on, in its canonical unit (ms, fraction, req/s, count); None = no data."""
    m = th.metric
    if m == "checks":
        names = dict(th.tags).get("name")
        passes = fails = 0
        for name, (p, f) in agg.checks.items():
            if names is None or name == names:
                passes, fails = passes + p, fails + f
        return passes / (passes + fails) if passes + fails else None
    if m == "iterations":
        return float(agg.iterations)
    if m == "dropped_iterations":
        return float(agg.dropped)
    if m == "iteration_error_rate":
        return sum(agg.iteration_errors.values()) / agg.iterations if agg.iterations else None
    st = _matching(agg, th)
    if st is None or st.count == 0:
        return None
    if m == "requests":
        return float(st.count)
    if m == "rps":
        return st.count / duration_s if duration_s > 0 else None
    if m == "error_rate":
        return st.error_count / st.count
    hist = {"latency": st.latency, "service": st.service, "ttfb": st.ttfb}.get(th.family)
    if hist is None or hist.count == 0:
        return None
    stat = th.stat
    if th.percentile is not None:
        return hist.percentile(th.percentile) / 1e6
    if stat == "avg":
        return hist.mean / 1e6
    if stat == "min":
        return hist.min_ns / 1e6
    if stat == "max":
        return hist.max_ns / 1e6
    return None
