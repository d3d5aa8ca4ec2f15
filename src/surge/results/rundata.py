"""Everything recorded about one run, loaded for presentation (report, dashboard).

A run comes from a run directory or from the run store. Both give the same
:class:`RunData`. A run directory may be incomplete (the run crashed, the disk
filled up): loading then keeps what is there and says in ``notes`` what was
missing, so a report can still be drawn and says why it is partial. A file that
is there but damaged (not what surge writes) is an error naming it, never a report
that looks fine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surge.api.errors import UsageError
from surge.metrics.aggregate import RunAggregate
from surge.metrics.stats import Key, RequestStats, SecondStats
from surge.results.rundir import (
    CorruptRunFile,
    read_histograms,
    read_json_object,
    read_series_checked,
)
from surge.results.sut_files import PROFILE_FILE, SUT_FILE

__all__ = ["RunData", "from_store", "load_run_data", "read_run_dir"]


@dataclass
class RunData:
    """One run: ``meta.json`` and ``summary.json`` as dicts (``summary`` None when the
    run never finished), the per-second series, the final histograms per key, and the
    run directory when it is on disk (for optional files such as ``sut.jsonl``).

    ``notes`` lists what was missing or unreadable, one sentence each; ``tags`` are the
    store's labels (or meta.json's ``tags``).
    """

    run_id: str
    meta: dict[str, Any]
    summary: dict[str, Any] | None
    series: list[SecondStats]
    histograms: dict[Key, RequestStats]
    run_dir: Path | None
    tags: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        n = sum(st.count for st in self.histograms.values())
        return f"RunData({self.run_id!r}, {len(self.series)} s, {n} requests, status={self.status!r})"

    @property
    def status(self) -> str:
        """completed, interrupted, aborted, failed, or incomplete (no summary: the run died)."""
        if self.summary and self.summary.get("status"):
            return str(self.summary["status"])
        status = str(self.meta.get("status") or "")
        return status if status and status != "running" else "incomplete"

    @property
    def duration_s(self) -> float:
        """Measured run length in seconds (summary, meta, else the seconds in the series)."""
        for src in (self.summary or {}, self.meta):
            v = src.get("duration_s")
            if isinstance(v, int | float) and v > 0:
                return float(v)
        return float(len(self.series))

    @property
    def planned_duration_s(self) -> float | None:
        v = self.meta.get("planned_duration_s")
        return float(v) if isinstance(v, int | float) and v > 0 else None

    def totals(self) -> RequestStats:
        """All requests of the run merged (exact)."""
        out = RequestStats()
        for st in self.histograms.values():
            out.merge(st)
        return out


def _series(path: Path, notes: list[str]) -> list[SecondStats]:
    """The seconds of series.jsonl; a last line cut short is noted, other damage raises
    :class:`~surge.results.rundir.CorruptRunFile`."""
    if not (path / "series.jsonl").is_file():
        notes.append("series.jsonl is missing: no time series")
        return []
    series, truncated = read_series_checked(path)
    if truncated:
        notes.append("1 line(s) of series.jsonl were unreadable (cut short by a crash?) and were skipped")
    return series


def _check_text(path: Path) -> None:
    """An optional text file of the run (profile.collapsed, sut.jsonl) must be text when present."""
    if not path.is_file():
        return
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorruptRunFile(path, f"cannot read {path.name}: {exc.strerror}") from None
    body, _, tail = data.rpartition(b"\n")  # an unterminated last line may be cut short
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptRunFile(path, f"{path.name} is not text (binary data at byte {exc.start})") from None
    if not body and tail.strip(b"\0 \t\r"):
        try:
            tail.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptRunFile(path, f"{path.name} is not text (binary data at byte {exc.start})") from None


def _merged(series: list[SecondStats]) -> dict[Key, RequestStats]:
    agg = RunAggregate()
    for st in series:
        agg.add_late(st)
    return agg.by_key


def read_run_dir(path: Path | str) -> RunData:
    """Load a run directory, tolerating a run that crashed (see the module docstring).

    :class:`UsageError` when ``path`` holds neither meta.json nor series.jsonl, or no
    measurement at all; :class:`~surge.results.rundir.CorruptRunFile` (a UsageError) naming
    the file when one was damaged after it was written: meta.json or summary.json that is
    not a JSON object, series.jsonl with a bad line other than a last one cut short, a
    profile.collapsed or sut.jsonl that is not text.
    """
    path = Path(path)
    if not (path / "meta.json").is_file() and not (path / "series.jsonl").is_file():
        raise UsageError(f"{path} is not a run directory (no meta.json or series.jsonl): "
                         "give a run directory written by `surge run`, or a run id from `surge runs list`")
    notes: list[str] = []
    # meta.json and summary.json are replaced atomically by the writer: one that is there
    # but unreadable was damaged afterwards, and the run is not reported as if it were fine.
    meta: dict[str, Any] = {}
    if (path / "meta.json").is_file():
        meta = read_json_object(path / "meta.json")
    else:
        notes.append("meta.json is missing: no run metadata")
    summary: dict[str, Any] | None = None
    if (path / "summary.json").is_file():
        summary = read_json_object(path / "summary.json")
    else:
        notes.append("summary.json is missing: the run did not finish (crashed or still running); "
                     "the figures are rebuilt from the seconds in series.jsonl")
    series = _series(path, notes)
    if summary is None and not series:
        raise UsageError(f"{path} holds no measurements (no summary.json and no second in series.jsonl): "
                         "nothing to show; give a run that recorded at least one second")
    for optional in (PROFILE_FILE, SUT_FILE):
        _check_text(path / optional)
    histograms: dict[Key, RequestStats] | None = None
    if (path / "histograms.json").is_file():
        try:
            histograms = read_histograms(path)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
            notes.append("histograms.json is unreadable: final histograms rebuilt from series.jsonl")
    elif series:
        notes.append("histograms.json is missing: final histograms rebuilt from series.jsonl")
    if histograms is None:
        histograms = _merged(series)
    tags = meta.get("tags") if isinstance(meta.get("tags"), dict) else {}
    return RunData(run_id=str(meta.get("run_id") or path.name), meta=meta, summary=summary, series=series,
                   histograms=histograms, run_dir=path, tags={str(k): str(v) for k, v in tags.items()},
                   notes=notes)


def from_store(ref: str, store: Any) -> RunData:
    """A run of the store by id, unique prefix or ``latest`` (never reads a directory named by ``ref``)."""
    rec = store.get_run(ref)  # UsageError for an unknown or ambiguous id
    meta, summary = store.documents(rec.id)
    series = store.series(rec.id)
    histograms = store.histograms(rec.id) or _merged(series)
    run_dir = Path(rec.run_dir) if rec.run_dir and Path(rec.run_dir).is_dir() else None
    notes = [] if summary is not None else [
        "the run has no summary (it did not finish); the figures are rebuilt from its recorded seconds"]
    return RunData(run_id=rec.id, meta=meta or {}, summary=summary, series=series, histograms=histograms,
                   run_dir=run_dir, tags=dict(rec.tags), notes=notes)


def load_run_data(ref: str, store: Any | None = None) -> RunData:
    """``ref`` is a run directory, or a run id / unique id prefix / ``latest`` in ``store``."""
    p = Path(ref)
    if p.is_dir():
        return read_run_dir(p)
    if "/" in ref or ref.startswith("."):
        raise UsageError(f"{ref}: no such run directory; give an existing run directory "
                         "or a run id from `surge runs list`")
    if store is None:
        raise UsageError(f"{ref!r} is not a run directory, and no run store is open: "
                         "give a run directory or use --store")
    return from_store(ref, store)


_from_store = from_store  # the name the dashboard imported first
