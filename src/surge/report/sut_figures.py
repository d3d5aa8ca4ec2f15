"""Charts of the SUT's resource samples (sut.jsonl) as plotly figure dicts.

The x axis is the run's second, as in the load charts: a sample taken at
``t`` covers ``(t - dt, t]``, and is drawn at ``t - dt``, the start of that
interval, which is how ``series.jsonl`` numbers its seconds (second ``s`` is
``[s, s + 1)``).
"""

from __future__ import annotations

from typing import Any


def _x(s: dict[str, Any]) -> float:
    return round(float(s["t"]) - float(s.get("dt") or 1.0), 3)


def _labels(samples: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for s in samples:
        for label in s.get("procs") or {}:
            if label not in out:
                out.append(label)
    return out


def _proc_series(samples: list[dict[str, Any]], label: str, key: str, scale: float = 1.0) -> tuple[list, list]:
    xs, ys = [], []
    for s in samples:
        rec = (s.get("procs") or {}).get(label)
        if rec is None:
            continue
        v = rec.get(key)
        xs.append(_x(s))
        ys.append(None if v is None else round(float(v) * scale, 3))
    return xs, ys


def _figure(title: str, ytitle: str, traces: list[dict[str, Any]], yrange: list[float] | None = None) -> dict[str, Any]:
    yaxis: dict[str, Any] = {"title": {"text": ytitle}, "rangemode": "tozero"}
    if yrange is not None:
        yaxis["range"] = yrange
    return {"data": traces, "layout": {
        "title": {"text": title}, "height": 320, "margin": {"t": 40, "l": 60, "r": 20, "b": 40},
        "xaxis": {"title": {"text": "s since start"}}, "yaxis": yaxis, "legend": {"orientation": "h"},
        "hovermode": "x unified"}}


def _line(name: str, xs: list, ys: list, dash: str | None = None) -> dict[str, Any]:
    tr: dict[str, Any] = {"type": "scatter", "mode": "lines", "name": name, "x": xs, "y": ys}
    if dash:
        tr["line"] = {"dash": dash}
    return tr


def sut_figures(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Figures for the HTML report: process CPU %, RSS, threads and fds, system CPU per core,
    network. ``[]`` without samples; a chart with no data is left out."""
    if not samples:
        return []
    labels = _labels(samples)
    figs = []
    if labels:
        figs.append(_figure("SUT process CPU (100 % = one core, children included)", "CPU %",
                            [_line(lb, *_proc_series(samples, lb, "cpu_pct")) for lb in labels]))
        figs.append(_figure("SUT process memory (RSS, children included)", "MB",
                            [_line(lb, *_proc_series(samples, lb, "rss_mb")) for lb in labels]))
        tf = []
        for lb in labels:
            tf.append(_line(f"{lb} threads", *_proc_series(samples, lb, "threads")))
            tf.append(_line(f"{lb} open fds", *_proc_series(samples, lb, "fds"), dash="dot"))
        figs.append(_figure("SUT threads and open file descriptors", "count", tf))
    xs = [_x(s) for s in samples]
    ncores = max((len((s.get("sys") or {}).get("per_core") or []) for s in samples), default=0)
    if ncores:
        cores = [_line(f"core {i}", xs, [_core(s, i) for s in samples]) for i in range(ncores)]
        cores.append(_line("all cores", xs, [(s.get("sys") or {}).get("cpu_pct") for s in samples], dash="dash"))
        figs.append(_figure("System CPU per core", "busy %", cores, yrange=[0, 105]))
    rx = [_mbps((s.get("sys") or {}).get("net_rx_bps")) for s in samples]
    tx = [_mbps((s.get("sys") or {}).get("net_tx_bps")) for s in samples]
    if any(v is not None for v in rx + tx):
        figs.append(_figure("Network (all interfaces, loopback included)", "MB/s",
                            [_line("received", xs, rx), _line("sent", xs, tx)]))
    return figs


def _core(s: dict[str, Any], i: int) -> float | None:
    per_core = (s.get("sys") or {}).get("per_core") or []
    return per_core[i] if i < len(per_core) else None


def _mbps(bps: Any) -> float | None:
    """Bytes/s into MB/s (10^6 bytes)."""
    return None if bps is None else round(float(bps) / 1e6, 4)
