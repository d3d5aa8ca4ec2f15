"""Reading a run directory for the run store: validated files in, database rows out.

:func:`_load_run_dir` reads and checks ``meta.json``, ``summary.json``,
``histograms.json`` and ``series.jsonl`` into a :class:`_RunData` (or says in
one line why the directory cannot be recorded); the helpers below turn it into
``run_stats`` rows, and :func:`scenario_key` into the key runs are grouped by.
Part of :mod:`surge.results.store`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from surge.api.errors import UsageError
from surge.metrics.aggregate import RunAggregate
from surge.metrics.histogram import Histogram
from surge.metrics.stats import Key, RequestStats, SecondStats
from surge.results.rundir import CorruptRunFile, read_histograms, read_series
from surge.results.store_records import _PCT_COLS


def scenario_key(path: str | None, hit: dict[str, Any] | None = None) -> str:
    """How runs of one scenario are grouped: its path relative to the git checkout it lives in.

    Checkouts on different machines agree on it (``bench/checkout.py``); a file
    outside a checkout is known by its name. ``surge hit`` runs are ``hit METHOD URL``.
    """
    if not path:
        if hit:
            return f"hit {hit.get('method', 'GET')} {hit.get('url', '')}"
        return "-"
    p = Path(path)
    if p.is_absolute():
        for parent in p.parents:
            if (parent / ".git").exists():
                return p.relative_to(parent).as_posix()
    return p.name



class _BadRunDir(Exception):
    """A directory that cannot be recorded; ``str()`` is the reason."""


class _InvalidRun(UsageError):
    """record_run on a directory that is not a (readable) run directory."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} cannot be recorded: {reason}")
        self.path, self.reason = path, reason


@dataclass
class _RunData:
    path: Path
    meta: dict[str, Any]
    summary: dict[str, Any] | None
    meta_text: str
    summary_text: str | None
    histograms: dict[Key, RequestStats]
    series: list[SecondStats]
    content_hash: str


def _load_json(path: Path) -> tuple[Any, str]:
    try:
        txt = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _BadRunDir(f"cannot read {path.name}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise _BadRunDir(f"{path.name} is not text") from None
    try:
        return json.loads(txt), txt
    except ValueError as exc:
        raise _BadRunDir(f"{path.name} is not valid JSON ({exc})") from None


def _load_run_dir(path: Path) -> _RunData:
    path = Path(path)
    if not path.is_dir():
        raise _BadRunDir("not a directory")
    if not (path / "meta.json").is_file():
        raise _BadRunDir("no meta.json (not a surge run directory)")
    meta, meta_text = _load_json(path / "meta.json")
    if not isinstance(meta, dict) or not meta.get("started_at"):
        raise _BadRunDir("meta.json has no started_at (not a surge run directory)")
    if not meta.get("run_id"):
        meta["run_id"] = path.name
    _parse_time(meta["started_at"], "meta.json started_at")
    summary, summary_text = None, None
    if (path / "summary.json").is_file():
        summary, summary_text = _load_json(path / "summary.json")
        if not isinstance(summary, dict) or "requests" not in summary:
            raise _BadRunDir("summary.json is not a run summary")
    try:
        series = read_series(path) if (path / "series.jsonl").is_file() else []
    except CorruptRunFile as exc:
        raise _BadRunDir(exc.reason) from None
    hist_text = ""
    if (path / "histograms.json").is_file():
        try:
            histograms = read_histograms(path)
            hist_text = (path / "histograms.json").read_text(encoding="utf-8")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise _BadRunDir(f"histograms.json is corrupt ({exc})") from None
    else:  # rebuilt from the series (a run that died before writing it)
        agg = RunAggregate()
        for st in series:
            agg.add_late(st)
        histograms = agg.by_key
    if summary is None and not series:
        raise _BadRunDir("neither summary.json nor any second in series.jsonl: nothing to record")
    h = hashlib.sha256()
    for part in (meta_text, summary_text or "", hist_text, str(len(series))):
        h.update(part.encode())
        h.update(b"\0")
    return _RunData(path, meta, summary, meta_text, summary_text, histograms, series, h.hexdigest())


def _parse_time(value: Any, what: str) -> datetime:
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        raise _BadRunDir(f"{what} is not a timestamp: {value!r}") from None
    return _to_utc_naive(dt)


def _to_utc_naive(dt: datetime) -> datetime:
    """Naive datetimes are taken as UTC."""
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt



def _fingerprint(meta: dict[str, Any]) -> str:
    ident = [meta.get("run_id"), meta.get("started_at"), meta.get("start_ns"),
             (meta.get("host") or {}).get("hostname")]
    return hashlib.sha256(json.dumps(ident, default=str).encode()).hexdigest()


def _hist_stats(h: Histogram) -> dict[str, float | None]:
    """min/mean/percentiles/max in ms, rounded as summary.json does."""
    if not h.count:
        return {k: None for k in _PCT_COLS}
    qs = [50.0, 90.0, 95.0, 99.0, 99.9]
    vals = h.percentiles(qs)
    out: dict[str, float | None] = {"min": round(h.min_ns / 1e6, 3), "mean": round(h.mean / 1e6, 3)}
    for label, v in zip(("p50", "p90", "p95", "p99", "p99.9"), vals, strict=True):
        out[label] = round(float(v) / 1e6, 3)
    out["max"] = round(h.max_ns / 1e6, 3)
    return out


def _stats_row(st: RequestStats, duration_s: float) -> dict[str, Any]:
    return {
        "requests": st.count, "errors": st.error_count,
        "error_rate": round(st.error_count / st.count, 6) if st.count else 0.0,
        "rps": round(st.count / duration_s, 3) if duration_s > 0 else 0.0,
        "bytes_in": st.bytes_in, "latency": _hist_stats(st.latency), "service": _hist_stats(st.service),
    }


def _name_entries(data: _RunData, duration_s: float) -> list[dict[str, Any]]:
    """[total, *names]: dicts with scenario/name/method, counts and latency/service stats."""
    s = data.summary
    if s is not None:
        total = {"scenario": "", "name": "", "method": "", **s}
        return [total, *s.get("names", [])]
    total_st = RequestStats()
    by_name: dict[tuple[str, str, str], RequestStats] = {}
    for k, v in sorted(data.histograms.items()):
        total_st.merge(v)
        by_name.setdefault(k[:3], RequestStats()).merge(v)
    out = [{"scenario": "", "name": "", "method": "", **_stats_row(total_st, duration_s)}]
    for (sc, name, method), st in by_name.items():
        out.append({"scenario": sc, "name": name, "method": method, **_stats_row(st, duration_s)})
    return out


def _num(d: dict[str, Any], key: str, default: float = 0.0) -> Any:
    v = d.get(key)
    return default if v is None else v


def _stats_rows(run_pk: int, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for i, e in enumerate(entries):
        lat = e.get("latency") or {k: e.get(k) for k in _PCT_COLS}
        svc = e.get("service") or {}
        row = {
            "run_pk": run_pk, "ordinal": i, "total": i == 0,
            "scenario": str(e.get("scenario", "")), "name": str(e.get("name", "")),
            "method": str(e.get("method", "")),
            "requests": int(_num(e, "requests", 0)), "errors": int(_num(e, "errors", 0)),
            "error_rate": float(_num(e, "error_rate")), "rps": float(_num(e, "rps")),
            "bytes_in": int(_num(e, "bytes_in", 0)),
        }
        for m, c in _PCT_COLS.items():
            row[f"lat_{c}"] = lat.get(m)
            row[f"svc_{c}"] = svc.get(m)
        rows.append(row)
    return rows


def _json_or_none(d: dict[str, Any]) -> str | None:
    return json.dumps(d, sort_keys=True, separators=(",", ":")) if d else None
