"""The capacity figure: measured throughput with the USL fit, and latency against
throughput with its knee. A plain plotly figure dict (data + layout), so the HTML
report can embed it; :func:`capacity_html` wraps it in a self-contained page."""

from __future__ import annotations

import html
import json
import math
from typing import Any

import numpy as np

_BLUE, _RED, _GREY, _ORANGE = "#1f77b4", "#d62728", "#7f7f7f", "#ff7f0e"


def capacity_figure(points: list[Any], fit: Any | None = None, knee: Any | None = None,
                    load_label: str = "load (VUs)", title: str = "Capacity") -> dict[str, Any]:
    """Figure dict: throughput against load (points + USL curve + peak) on the left,
    latency against throughput (+ knee) on the right when the points have latency.

    ``points``: objects with ``load``, ``throughput`` (req/s), ``latency_ms``;
    ``fit``: a :class:`~surge.analysis.capacity.usl.USLFit` or None;
    ``knee``: a :class:`~surge.analysis.capacity.knee.Knee` on (throughput, latency) or None.
    """
    loads = [float(p.load) for p in points]
    thr = [float(p.throughput) for p in points]
    lat = [p.latency_ms for p in points]
    has_lat = any(v is not None for v in lat)
    data: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "markers", "name": "measured", "x": loads, "y": thr,
        "marker": {"color": _BLUE, "size": 9}, "xaxis": "x", "yaxis": "y",
        "hovertemplate": "load %{x:.3g}<br>%{y:.4g} req/s<extra></extra>",
    }]
    if fit is not None:
        top = max(loads) * 1.3
        if fit.n_peak is not None and math.isfinite(fit.n_peak.value):
            top = max(top, min(fit.n_peak.value * 1.5, max(loads) * 4))
        grid = np.linspace(min(loads) * 0.5 if min(loads) > 1 else 0.0, top, 200)
        grid = grid[grid > 0]
        data.append({
            "type": "scatter", "mode": "lines", "name": "USL fit", "x": grid.round(4).tolist(),
            "y": fit.predict(grid).round(4).tolist(), "line": {"color": _RED}, "xaxis": "x", "yaxis": "y",
            "hovertemplate": "load %{x:.3g}<br>%{y:.4g} req/s (model)<extra></extra>",
        })
        if fit.n_peak is not None and math.isfinite(fit.x_peak.value):
            data.append({
                "type": "scatter", "mode": "markers+text", "name": "peak N*",
                "x": [fit.n_peak.value], "y": [fit.x_peak.value], "text": [f"N*≈{fit.n_peak.value:.3g}"],
                "textposition": "top center", "marker": {"color": _RED, "symbol": "star", "size": 13},
                "xaxis": "x", "yaxis": "y",
            })
        elif math.isfinite(fit.x_peak.value):
            data.append({
                "type": "scatter", "mode": "lines", "name": "asymptote λ/σ", "x": [grid[0], grid[-1]],
                "y": [fit.x_peak.value] * 2, "line": {"color": _GREY, "dash": "dash"}, "xaxis": "x", "yaxis": "y",
            })
    layout: dict[str, Any] = {
        "title": {"text": html.escape(title)},
        "xaxis": {"title": {"text": load_label}, "domain": [0, 0.46] if has_lat else [0, 1], "rangemode": "tozero"},
        "yaxis": {"title": {"text": "throughput (req/s)"}, "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": -0.2},
        "margin": {"t": 60, "l": 60, "r": 20, "b": 60},
    }
    if has_lat:
        xs = [t for t, v in zip(thr, lat, strict=True) if v is not None]
        ys = [v for v in lat if v is not None]
        data.append({
            "type": "scatter", "mode": "lines+markers", "name": "latency", "x": xs, "y": ys,
            "marker": {"color": _ORANGE}, "line": {"color": _ORANGE}, "xaxis": "x2", "yaxis": "y2",
            "hovertemplate": "%{x:.4g} req/s<br>%{y:.4g} ms<extra></extra>",
        })
        if knee is not None:
            data.append({
                "type": "scatter", "mode": "markers+text", "name": "knee", "x": [knee.x], "y": [knee.y],
                "text": ["knee"], "textposition": "top left",
                "marker": {"color": _RED, "symbol": "diamond", "size": 12}, "xaxis": "x2", "yaxis": "y2",
            })
        layout["xaxis2"] = {"title": {"text": "throughput (req/s)"}, "domain": [0.54, 1], "anchor": "y2",
                            "rangemode": "tozero"}
        layout["yaxis2"] = {"title": {"text": "latency (ms)"}, "anchor": "x2", "rangemode": "tozero"}
    return {"data": data, "layout": layout}


def capacity_html(fig: dict[str, Any], title: str = "surge capacity", summary_lines: list[str] | None = None) -> str:
    """A self-contained HTML page (plotly.js inlined: works offline) showing ``fig``."""
    from plotly.offline import get_plotlyjs
    from plotly.utils import PlotlyJSONEncoder

    body = "".join(f"<p>{html.escape(s)}</p>" for s in (summary_lines or []))
    fig_json = json.dumps(fig, cls=PlotlyJSONEncoder).replace("</", "<\\/")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title>"
        f"<script>{get_plotlyjs()}</script></head>"
        "<body style=\"font-family:sans-serif;margin:1.5em\">"
        f"<h2>{html.escape(title)}</h2>{body}"
        "<div id=\"capacity\" style=\"width:100%;height:560px\"></div>"
        f"<script>var f={fig_json};Plotly.newPlot('capacity',f.data,f.layout,{{responsive:true}});</script>"
        "</body></html>\n"
    )
