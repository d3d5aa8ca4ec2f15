"""Plotly figures of a run, as plain dicts (``{"data": [...], "layout": {...}}``).

No statistics of their own: every number is read from the run's histograms and
per-second series (exact merges, nearest-rank percentiles of ``surge.metrics``).
Floats are rounded to 4 significant digits (finer than the histograms' 0.39 %
resolution) and long runs are bucketed to at most :data:`MAX_POINTS` points per
trace, with each bucket's percentiles computed exactly from its merged histograms.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surge.metrics.histogram import Histogram, bucket_mid
from surge.metrics.stats import RequestStats, SecondStats

MAX_POINTS = 1800  # per trace; a 1-hour run becomes 2-second buckets
MAX_COMPARISON_ROWS = 60  # (name, metric) rows drawn in the comparison chart
PCT_COLORS = {50: "#1f77b4", 95: "#ff7f0e", 99: "#d62728"}
BASELINE_COLOR = "#7f7f7f"
VERDICT_COLORS = {"REGRESSED": "#d62728", "IMPROVED": "#2ca02c", "SAME": "#7f7f7f", "INCONCLUSIVE": "#e6a700"}
# x = 1 / (1 - q) of the percentile spectrum, and how its ticks read
_SPECTRUM_TICKS = [(1, "0%"), (2, "50%"), (10, "90%"), (100, "99%"), (1e3, "99.9%"), (1e4, "99.99%"),
                   (1e5, "99.999%"), (1e6, "99.9999%")]


def r4(v: float | None) -> float | None:
    """Round to 4 significant digits; NaN/inf become None (JSON null: a gap in plotly)."""
    if v is None:
        return None
    v = float(v)
    if not math.isfinite(v):
        return None
    return float(f"{v:.4g}")


def figure_attr(fig: dict[str, Any]) -> str:
    """The figure as JSON, escaped for an HTML attribute value (quotes and ``<`` included)."""
    text = json.dumps(fig, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return html.escape(text, quote=True)


def chart(chart_id: str, fig: dict[str, Any], *, small: bool = False) -> str:
    """A ``<div class="surge-chart">`` that surge.js renders from its ``data-figure``."""
    cls = "surge-chart small" if small else "surge-chart"
    return f'<div class="{cls}" id="{html.escape(chart_id)}" data-figure="{figure_attr(fig)}"></div>'


def _layout(title: str, *, y: str = "", height: int = 320, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "title": {"text": title, "x": 0, "font": {"size": 14}},
        "height": height,
        "margin": {"l": 60, "r": 60, "t": 40, "b": 80},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.22, "yanchor": "top"},
        "xaxis": {"title": {"text": "seconds since start", "standoff": 4}, "zeroline": False},
        "yaxis": {"title": {"text": y}, "rangemode": "tozero"},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
    }
    out.update(extra)
    return out


def _line(x: list, y: list, name: str, color: str | None = None, *, dash: str = "solid", width: float = 1.5,
          **extra: Any) -> dict[str, Any]:
    line: dict[str, Any] = {"dash": dash, "width": width}
    if color:
        line["color"] = color
    return {"type": "scatter", "mode": "lines", "x": x, "y": y, "name": name, "line": line, **extra}


# --------------------------------------------------------------------------- time series


@dataclass
class Timeline:
    """Per-bucket arrays of a run for charts; a bucket is ``step`` seconds (1 for runs
    up to MAX_POINTS seconds). Rates are per second; latencies in ms."""

    step: int = 1
    t: list[float] = field(default_factory=list)
    rps: list[float | None] = field(default_factory=list)
    errors_ps: list[float | None] = field(default_factory=list)
    lat: dict[int, list[float | None]] = field(default_factory=dict)
    svc: dict[int, list[float | None]] = field(default_factory=dict)
    errors_by_type: dict[str, list[float | None]] = field(default_factory=dict)
    vus: list[float | None] = field(default_factory=list)
    target_rate: list[float | None] = field(default_factory=list)
    started_ps: list[float | None] = field(default_factory=list)
    dropped_ps: list[float | None] = field(default_factory=list)
    cpu_max: list[float | None] = field(default_factory=list)
    sched_lag_ms: list[float | None] = field(default_factory=list)
    loop_lag_ms: list[float | None] = field(default_factory=list)


def _max(xs: list[list[float]]) -> float | None:
    vals = [v for x in xs for v in x]
    return r4(max(vals)) if vals else None


def timeline(series: list[SecondStats], max_points: int = MAX_POINTS) -> Timeline:
    """Bucket the series into at most ``max_points`` buckets of whole seconds.

    Counts are summed and divided by the bucket's seconds present; percentiles come
    from the bucket's merged histograms (exact at that resolution); VUs and target
    rate are averaged; generator CPU and lags are the bucket's maximum.
    """
    if not series:
        return Timeline()
    seconds = sorted(series, key=lambda s: s.second)
    span = seconds[-1].second - seconds[0].second + 1
    step = max(1, math.ceil(span / max_points))
    groups: dict[int, list[SecondStats]] = {}
    for st in seconds:
        groups.setdefault(st.second // step, []).append(st)
    tl = Timeline(step=step, lat={q: [] for q in PCT_COLORS}, svc={q: [] for q in PCT_COLORS})
    err_types: list[Counter] = []
    for b, group in sorted(groups.items()):
        n = len(group)
        tot = RequestStats()
        for st in group:
            for rs in st.requests.values():
                tot.merge(rs)
        tl.t.append(b * step)
        tl.rps.append(r4(tot.count / n))
        tl.errors_ps.append(r4(tot.error_count / n))
        for q in PCT_COLORS:
            tl.lat[q].append(r4(tot.latency.percentile(q) / 1e6) if tot.latency.count else None)
            tl.svc[q].append(r4(tot.service.percentile(q) / 1e6) if tot.service.count else None)
        err_types.append(tot.errors)
        tl.vus.append(r4(sum(st.vus for st in group) / n))
        tl.target_rate.append(r4(sum(st.target_rate for st in group) / n))
        tl.started_ps.append(r4(sum(st.started for st in group) / n))
        tl.dropped_ps.append(r4(sum(st.dropped for st in group) / n))
        tl.cpu_max.append(_max([st.cpu for st in group]))
        tl.sched_lag_ms.append(_max([st.sched_lag_p99_ms for st in group]))
        tl.loop_lag_ms.append(_max([st.loop_lag_ms for st in group]))
    kinds = sorted({k for c in err_types for k in c})
    for k in kinds:
        tl.errors_by_type[k] = [r4(c.get(k, 0) / len(groups[int(t) // step])) for c, t in zip(err_types, tl.t,
                                                                                              strict=True)]
    return tl


def _step_note(tl: Timeline) -> str:
    return "" if tl.step == 1 else f" ({tl.step} s buckets)"


def finding_shapes(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shaded time ranges of findings (their ``t_range``) for the time-series charts."""
    out = []
    for f in findings:
        tr = f.get("t_range")
        if isinstance(tr, list | tuple) and len(tr) == 2 and all(isinstance(v, int | float) for v in tr):
            color = "#d62728" if f.get("severity") == "critical" else "#e6a700"
            out.append({"type": "rect", "xref": "x", "yref": "paper", "x0": tr[0], "x1": tr[1], "y0": 0,
                        "y1": 1, "fillcolor": color, "opacity": 0.08, "line": {"width": 0}})
    return out


def throughput_figure(tl: Timeline, base: Timeline | None = None, *, shapes: list | None = None) -> dict[str, Any]:
    data = [_line(tl.t, tl.rps, "requests/s", "#1f77b4", width=2),
            _line(tl.t, tl.errors_ps, "errors/s", "#d62728", fill="tozeroy")]
    if base is not None:
        data.append(_line(base.t, base.rps, "baseline requests/s", BASELINE_COLOR, dash="dot"))
    return {"data": data, "layout": _layout("Throughput and errors" + _step_note(tl), y="per second",
                                            shapes=shapes or [])}


def latency_figure(tl: Timeline, base: Timeline | None = None, *, shapes: list | None = None) -> dict[str, Any]:
    """p50/p95/p99 latency (from the intended start, solid) beside service time (from the send, dashed)."""
    data = []
    for q, color in PCT_COLORS.items():
        data.append(_line(tl.t, tl.lat[q], f"latency p{q}", color, width=2, legendgroup=f"p{q}"))
        data.append(_line(tl.t, tl.svc[q], f"service p{q}", color, dash="dash", legendgroup=f"p{q}"))
    if base is not None:
        for q in (95, 99):
            data.append(_line(base.t, base.lat[q], f"baseline latency p{q}", BASELINE_COLOR,
                              dash="dot" if q == 95 else "dashdot"))
    return {"data": data, "layout": _layout("Latency (solid: from intended start) and service time "
                                            "(dashed: from send)" + _step_note(tl), y="ms", shapes=shapes or [])}


def errors_figure(tl: Timeline) -> dict[str, Any]:
    data = [_line(tl.t, ys, kind, stackgroup="errors") for kind, ys in tl.errors_by_type.items()]
    return {"data": data, "layout": _layout("Errors by type (stacked)" + _step_note(tl), y="errors/s",
                                            height=260)}


def load_figure(tl: Timeline) -> dict[str, Any]:
    """Active VUs (left axis) and target vs achieved arrival rate (right axis)."""
    data = [_line(tl.t, tl.vus, "active VUs", "#9467bd", width=2)]
    if any(v for v in tl.target_rate):
        data += [
            _line(tl.t, tl.target_rate, "target iterations/s", "#8c564b", dash="dash", yaxis="y2"),
            _line(tl.t, tl.started_ps, "started iterations/s", "#17becf", yaxis="y2"),
            _line(tl.t, tl.dropped_ps, "dropped iterations/s", "#d62728", dash="dot", yaxis="y2"),
        ]
    layout = _layout("Load: active VUs, target vs achieved arrival rate" + _step_note(tl), y="VUs", height=280,
                     yaxis2={"title": {"text": "iterations/s"}, "overlaying": "y", "side": "right",
                             "rangemode": "tozero", "showgrid": False})
    return {"data": data, "layout": layout}


def generator_figure(tl: Timeline) -> dict[str, Any]:
    data = [_line(tl.t, tl.cpu_max, "worker CPU % (max)", "#7f7f7f"),
            _line(tl.t, tl.sched_lag_ms, "schedule lag p99 ms (max)", "#e377c2", yaxis="y2"),
            _line(tl.t, tl.loop_lag_ms, "event-loop lag ms (max)", "#bcbd22", dash="dot", yaxis="y2")]
    layout = _layout("Load generator self-metrics" + _step_note(tl), y="CPU %", height=220,
                     yaxis2={"title": {"text": "ms"}, "overlaying": "y", "side": "right", "rangemode": "tozero",
                             "showgrid": False})
    return {"data": data, "layout": layout}


# --------------------------------------------------------------------------- distribution


def spectrum_xy(h: Histogram) -> tuple[list[float | None], list[float | None]]:
    """Percentile spectrum: x = 1 / (1 - q) (q the fraction at or below), y = value in ms.

    One point per non-empty bucket (its upper bound, clamped to the exact max); the
    100th percentile is drawn at x = count, the resolution a run of that size has.
    """
    if not h.count:
        return [], []
    pts = h.spectrum()
    n = h.count
    xs: list[float | None] = [1.0]
    ys: list[float | None] = [r4((h.min_ns or 0) / 1e6)]
    for pct, val in pts:
        q = min(pct / 100.0, 1.0 - 1.0 / max(n, 2))
        xs.append(r4(1.0 / (1.0 - q)))
        ys.append(r4(val / 1e6))
    return xs, ys


def spectrum_figure(run: RequestStats, base: RequestStats | None = None) -> dict[str, Any]:
    data = []
    for label, st, dash, color in (("latency", run.latency, "solid", "#1f77b4"),
                                   ("service time", run.service, "dash", "#1f77b4")):
        x, y = spectrum_xy(st)
        data.append(_line(x, y, label, color, dash=dash, width=2, line_shape="vh"))
    if base is not None:
        for label, st, dash in (("baseline latency", base.latency, "solid"),
                                ("baseline service time", base.service, "dash")):
            x, y = spectrum_xy(st)
            data.append(_line(x, y, label, BASELINE_COLOR, dash=dash, line_shape="vh"))
    xmax = max([max(t["x"] or [1]) for t in data] + [10])
    ticks = [(v, t) for v, t in _SPECTRUM_TICKS if v <= xmax * 1.01]
    ys = [v for t in data for v in t["y"] if v]
    wide = bool(ys) and min(ys) > 0 and max(ys) / min(ys) > 50
    layout = _layout("Percentile spectrum (latency vs service time)", y="ms", height=360,
                     hovermode="closest",
                     xaxis={"type": "log", "title": {"text": "percentile"}, "tickvals": [v for v, _ in ticks],
                            "ticktext": [t for _, t in ticks], "range": [0, math.log10(xmax * 1.1)]},
                     yaxis={"title": {"text": "ms" + (" (log)" if wide else "")},
                            "type": "log" if wide else "linear", "rangemode": "tozero"})
    return {"data": data, "layout": layout}


def _log_bins(h: Histogram, per_decade: int = 20) -> tuple[list[float | None], list[float | None]]:
    """The histogram re-binned on log-spaced bins (ms), as % of requests per bin."""
    nz = np.flatnonzero(h.counts)
    if nz.size == 0 or not h.count:
        return [], []
    ms = np.maximum(bucket_mid(nz) / 1e6, 1e-6)
    bins = np.floor(np.log10(ms) * per_decade).astype(np.int64)
    lo = int(bins.min())
    share = np.bincount(bins - lo, weights=h.counts[nz]) / h.count * 100.0
    x = 10 ** ((np.arange(share.size) + lo + 0.5) / per_decade)
    return [r4(v) for v in x], [r4(v) for v in share]


def histogram_figure(run: RequestStats, base: RequestStats | None = None) -> dict[str, Any]:
    data = []
    for label, h, color, dash in (("latency", run.latency, "#1f77b4", "solid"),
                                  ("service time", run.service, "#ff7f0e", "dash")):
        x, y = _log_bins(h)
        fill = {"fill": "tozeroy"} if dash == "solid" else {}
        data.append(_line(x, y, label, color, dash=dash, line_shape="hvh", **fill))
    if base is not None:
        x, y = _log_bins(base.latency)
        data.append(_line(x, y, "baseline latency", BASELINE_COLOR, dash="dot", line_shape="hvh"))
    layout = _layout("Latency distribution", y="% of requests", height=320, hovermode="closest",
                     xaxis={"type": "log", "title": {"text": "ms (log)"}})
    return {"data": data, "layout": layout}


# --------------------------------------------------------------------------- comparison


def comparison_figure(rows: list[dict[str, Any]], delta: float) -> dict[str, Any] | None:
    """Relative change B/A - 1 (%) per (name, metric) with its CI as error bars, and the
    +-delta band of "no practical change"."""
    rows = [r for r in rows if r.get("ratio") is not None]
    if not rows:
        return None
    if len(rows) > MAX_COMPARISON_ROWS:
        # many names: keep the rows worth a look (worst verdicts, then largest changes); the table has all
        order = {v: i for i, v in enumerate(("REGRESSED", "INCONCLUSIVE", "IMPROVED", "SAME"))}
        keep = sorted(rows, key=lambda r: (order.get(r.get("verdict"), 4), -abs(r["ratio"] - 1)))
        chosen = {id(r) for r in keep[:MAX_COMPARISON_ROWS]}
        rows = [r for r in rows if id(r) in chosen]
    labels = [f"{r['name']} · {r['metric']}" for r in rows]
    x = [r4((r["ratio"] - 1) * 100) for r in rows]
    plus = [r4((r["ci_high"] - r["ratio"]) * 100) if r.get("ci_high") is not None else 0 for r in rows]
    minus = [r4((r["ratio"] - r["ci_low"]) * 100) if r.get("ci_low") is not None else 0 for r in rows]
    colors = [VERDICT_COLORS.get(r.get("verdict", ""), "#333") for r in rows]
    trace = {"type": "scatter", "mode": "markers", "x": x, "y": labels, "name": "B/A - 1",
             "marker": {"color": colors, "size": 9},
             "error_x": {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus,
                         "thickness": 1.5, "width": 4, "color": "#444"},
             "text": [r.get("verdict", "") for r in rows],
             "hovertemplate": "%{y}: %{x:+.1f}% (%{text})<extra></extra>"}
    d = delta * 100
    # One very wide CI (a p99 of a short run: +6,000 %) would stretch the axis until every
    # point sits on zero: the range covers the estimates, +-2 delta and most CI ends, and
    # wider bars run off the edge (the table has their numbers).
    lows = sorted(v - m for v, m in zip(x, minus, strict=True))
    highs = sorted(v + p for v, p in zip(x, plus, strict=True))
    lo = min(-2 * d, min(x), lows[len(lows) // 10])
    hi = max(2 * d, max(x), highs[(len(highs) * 9) // 10 - (1 if len(highs) >= 10 else 0)])
    pad = (hi - lo) * 0.08
    x_range = [max(lo - pad, -100.0), hi + pad]
    layout = _layout("Change vs baseline with 95 % CI (band: ±delta, no practical change)",
                     height=max(220, 60 + 22 * len(rows)), hovermode="closest",
                     margin={"l": 220, "r": 20, "t": 40, "b": 40},
                     xaxis={"title": {"text": "B / A − 1 (%)"}, "zeroline": True, "ticksuffix": "%",
                            "range": x_range},
                     yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
                     showlegend=False,
                     shapes=[{"type": "rect", "xref": "x", "yref": "paper", "x0": -d, "x1": d, "y0": 0, "y1": 1,
                              "fillcolor": "#2ca02c", "opacity": 0.1, "line": {"width": 0}}])
    return {"data": [trace], "layout": layout}
