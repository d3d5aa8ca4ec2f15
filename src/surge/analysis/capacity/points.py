"""(load, throughput, latency) points for capacity models, from runs or from a CSV.

From a run's per-second data (``SecondStats``): the run is cut into *plateaus*,
stretches of >= ``min_plateau_s`` consecutive seconds with the same load (the
active VU count for ``by="vus"``, the target arrival rate for ``by="rate"``).
The first ``warmup_s`` seconds of each plateau are dropped (the system is still
settling: connections opening, queues filling). Each plateau gives one point:

- load: the plateau's VUs or target rate (iterations/s);
- throughput: requests completed per second over the kept seconds (req/s);
- latency: p95 (or mean) of the merged latency histograms of those seconds (ms);
- concurrency: mean requests in flight by Little's law, throughput × mean latency.

A run without plateaus (a constant run) is one plateau; a stepped run
(``--stages 0s:1,30s:1,0s:2,30s:2,...``) gives one point per step.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from surge.api.errors import UsageError
from surge.metrics.histogram import Histogram
from surge.metrics.stats import SecondStats

BY = ("vus", "rate")
LATENCY = ("p95", "mean")
MIN_PLATEAU_S = 5
WARMUP_S = 2


@dataclass(frozen=True)
class Point:
    """One measured operating point. ``load`` in VUs or iterations/s (see ``by``),
    ``throughput`` in req/s, ``latency_ms`` in ms (None when unknown), ``seconds``
    the number of seconds averaged, ``source`` where it came from."""

    load: float
    throughput: float
    latency_ms: float | None = None
    error_rate: float | None = None
    concurrency: float | None = None
    seconds: int = 0
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _level(st: SecondStats, by: str) -> float:
    return float(st.vus) if by == "vus" else round(st.target_rate, 3)


def plateaus(series: list[SecondStats], by: str, min_plateau_s: int = MIN_PLATEAU_S) -> list[list[SecondStats]]:
    """Runs of >= ``min_plateau_s`` consecutive seconds at one non-zero load level."""
    out: list[list[SecondStats]] = []
    cur: list[SecondStats] = []
    for st in sorted(series, key=lambda s: s.second):
        if cur and (_level(st, by) != _level(cur[-1], by) or st.second != cur[-1].second + 1):
            out.append(cur)
            cur = []
        cur.append(st)
    if cur:
        out.append(cur)
    return [p for p in out if len(p) >= min_plateau_s and _level(p[0], by) > 0]


def point_from_seconds(seconds: list[SecondStats], by: str, latency: str, source: str) -> Point:
    """One point from a list of seconds at (nominally) one load level."""
    hist = Histogram()
    requests = errors = 0
    for st in seconds:
        tot = st.totals()
        requests += tot.count
        errors += tot.error_count
        hist.merge(tot.latency)
    n = len(seconds)
    load = sum(_level(st, by) for st in seconds) / n
    thr = requests / n
    lat = None
    if hist.count:
        lat = (hist.percentile(95) if latency == "p95" else hist.mean) / 1e6
    conc = thr * hist.mean / 1e9 if hist.count else None
    return Point(load=load, throughput=thr, latency_ms=_round(lat), error_rate=_round(errors / requests if requests else None, 6),
                 concurrency=_round(conc), seconds=n, source=source)


def points_from_series(series: list[SecondStats], by: str = "vus", latency: str = "p95", source: str = "",
                       min_plateau_s: int = MIN_PLATEAU_S, warmup_s: int = WARMUP_S) -> list[Point]:
    """One point per plateau of the run (see the module docstring)."""
    if by not in BY:
        raise UsageError(f"invalid --by {by!r}: use one of {', '.join(BY)}")
    if latency not in LATENCY:
        raise UsageError(f"invalid --latency {latency!r}: use one of {', '.join(LATENCY)}")
    out = []
    for i, plateau in enumerate(plateaus(series, by, min_plateau_s)):
        kept = plateau[warmup_s:]
        label = f"{source}#{i + 1}" if source else f"plateau {i + 1}"
        out.append(point_from_seconds(kept, by, latency, label))
    return out


def _round(v: float | None, nd: int = 3) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, nd)


# --------------------------------------------------------------------------- CSV

MAX_VALUE = 1e15  # beyond any real load or rate, and squares of it stay finite in the fit
LOAD_COLUMNS = ("load", "concurrency", "vus", "users", "n", "rate")
THROUGHPUT_COLUMNS = ("throughput", "rps", "tput", "x", "req_per_s")
LATENCY_COLUMNS = ("latency_ms", "latency", "p95_ms", "p95", "mean_ms")


def points_from_csv(path: Path) -> list[Point]:
    """Points from a CSV with a header: a load column (``load``, ``concurrency``, ``vus``...),
    a throughput column (``throughput``, ``rps``...) and optionally ``latency_ms``.
    Raises :class:`UsageError` naming the file, line and fix on bad input."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if not rows:
        raise UsageError(f"{path} is empty: write a header line 'load,throughput[,latency_ms]' and one row per load level")
    header = [h.strip().lower() for h in rows[0]]
    dup = sorted({h for h in header if h and header.count(h) > 1})
    if dup:
        raise UsageError(f"{path}: column {dup[0]!r} appears twice in the header {rows[0]}; name each column once")
    li = _column(header, LOAD_COLUMNS)
    ti = _column(header, THROUGHPUT_COLUMNS)
    if li is None or ti is None:
        missing = "load" if li is None else "throughput"
        raise UsageError(f"{path}: no {missing} column in the header {rows[0]}; "
                         "name the columns load,throughput (and optionally latency_ms)")
    lat_i = _column(header, LATENCY_COLUMNS)
    out = []
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):  # a shifted or cut row would put values under the wrong column
            raise UsageError(f"{path} line {lineno}: {len(row)} field(s) where the header has {len(header)} "
                             f"({','.join(rows[0])}); leave a cell empty rather than out")
        load = _cell(path, lineno, row, li, header)
        thr = _cell(path, lineno, row, ti, header)
        lat = _cell(path, lineno, row, lat_i, header) if lat_i is not None else None
        if load is None or thr is None:
            raise UsageError(f"{path} line {lineno}: empty {header[li if load is None else ti]} value")
        if load <= 0:
            raise UsageError(f"{path} line {lineno}: {header[li]} {row[li].strip()} must be > 0 "
                             "(a load level: VUs, concurrency or a rate)")
        if thr < 0:
            raise UsageError(f"{path} line {lineno}: {header[ti]} {row[ti].strip()} cannot be negative")
        if lat is not None and lat < 0:
            raise UsageError(f"{path} line {lineno}: {header[lat_i]} {row[lat_i].strip()} cannot be negative")
        out.append(Point(load=load, throughput=thr, latency_ms=lat, source=f"{Path(path).name}:{lineno}"))
    if not out:
        raise UsageError(f"{path} has a header but no data rows: add one row per load level")
    loads = [p.load for p in out]
    if sorted(loads) != loads:
        raise UsageError(f"{path}: the {header[li]} column is not in increasing order; "
                         "sort the rows by load (one row per load level)")
    return out


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    for name in names:
        if name in header:
            return header.index(name)
    return None


def _cell(path: Path, lineno: int, row: list[str], i: int | None, header: list[str]) -> float | None:
    if i is None:
        return None
    if i >= len(row) or not row[i].strip():
        return None
    try:
        v = float(row[i])
    except ValueError:
        raise UsageError(f"{path} line {lineno}: {header[i]} {row[i].strip()!r} is not a number") from None
    if not math.isfinite(v):
        raise UsageError(f"{path} line {lineno}: {header[i]} {row[i].strip()!r} is not a finite number")
    if abs(v) > MAX_VALUE:
        raise UsageError(f"{path} line {lineno}: {header[i]} {row[i].strip()} is out of range "
                         f"(at most {MAX_VALUE:g}); scale the column down (e.g. thousands of req/s)")
    return v
