"""The run directory: self-describing files, written as the run goes.

Layout (format version 1)::

    meta.json        scenario, its hash, CLI args, surge version, host, git, times, status
    series.jsonl     one line per second: full per-key stats with encoded histograms
    summary.json     the final summary (see results/summary.py)
    histograms.json  final encoded latency/service/ttfb histograms per key

series.jsonl is appended and flushed every second, so a crash loses at most
the last second and the summary can be rebuilt from it.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from surge.api.errors import UsageError
from surge.metrics.aggregate import RunAggregate
from surge.metrics.stats import RequestStats, SecondStats

RUNDIR_VERSION = 1


def new_run_id(label: str) -> str:
    """``YYYYmmdd-HHMMSS-<label>``; :func:`reserve_run_dir` adds a suffix to keep two runs
    started in one second apart."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")[:40] or "run"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}"


def reserve_run_dir(root: Path, label: str) -> Path:
    """Create ``root/<new run id>`` and return it. ``mkdir`` is atomic, so two runs started
    in the same second by two processes get two directories (choosing a free name first
    and creating it later raced: the second run died with FileExistsError)."""
    root.mkdir(parents=True, exist_ok=True)
    base = new_run_id(label)
    run_id, n = base, 1
    while True:
        try:
            (root / run_id).mkdir()
            return root / run_id
        except FileExistsError:
            n += 1
            run_id = f"{base}-{n}"


def drop_if_empty(path: Path) -> None:
    """Remove a reserved run directory that nothing was written to (a run that failed to start)."""
    try:
        path.rmdir()  # only succeeds when empty
    except OSError:
        pass


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)  # atomic: a reader never sees half a file


class RunDirWriter:
    """Output that writes a run directory (start / second / finish)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._series = None
        self._meta: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<RunDirWriter {self.path}>"

    def start(self, meta: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)  # reserved by reserve_run_dir
        self._meta = {"format_version": RUNDIR_VERSION, **meta, "status": "running"}
        _write_json(self.path / "meta.json", self._meta)
        self._series = open(self.path / "series.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    def second(self, st: SecondStats, row: dict[str, Any]) -> None:
        if self._series is not None:
            self._series.write(json.dumps({"row": row, **st.to_json()}, separators=(",", ":")) + "\n")
            self._series.flush()

    def finish(self, summary: dict[str, Any], agg: RunAggregate, meta_update: dict[str, Any]) -> None:
        if self._series is not None:
            self._series.close()
            self._series = None
        _write_json(self.path / "summary.json", summary)
        _write_json(self.path / "histograms.json", {
            "format_version": RUNDIR_VERSION,
            "keys": [
                {"scenario": k[0], "name": k[1], "method": k[2], "status": k[3], **v.to_json()}
                for k, v in sorted(agg.by_key.items())
            ],
        })
        self._meta.update(meta_update)
        _write_json(self.path / "meta.json", self._meta)


class CorruptRunFile(UsageError):
    """A file of a run directory that is damaged (not text, not JSON, not what surge writes).

    ``str()`` is one line naming the file and what to do; ``reason`` is the same without
    the path (for messages that already name the directory).
    """

    def __init__(self, path: Path, reason: str) -> None:
        path = Path(path)
        # the reason starts with the file's name ("series.jsonl line 3 is ..."): name it by its path
        shown = f"{path}{reason[len(path.name):]}" if reason.startswith(path.name) else f"{path}: {reason}"
        super().__init__(f"{shown}; the run directory is damaged: run the test again, or give another run")
        self.path, self.reason = Path(path), reason


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object file of a run directory (meta.json, summary.json); :class:`CorruptRunFile`
    when it cannot be read, is empty, is not JSON or is not an object."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorruptRunFile(path, f"cannot read {path.name}: {exc.strerror}") from None
    if not data.strip():
        raise CorruptRunFile(path, f"{path.name} is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptRunFile(path, f"{path.name} is not text (binary data at byte {exc.start})") from None
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise CorruptRunFile(path, f"{path.name} is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise CorruptRunFile(path, f"{path.name} is not a JSON object (found {type(obj).__name__})")
    return obj


def _cut_short(raw: bytes) -> bool:
    """Whether an unterminated last line looks like a line cut short by a crash: the
    start of a JSON object, or zeros the file system left after the last write."""
    body = raw.strip(b"\0 \t\r")
    return not body or body.startswith(b"{")


def read_series_checked(path: Path) -> tuple[list[SecondStats], bool]:
    """Per-second stats of a run directory, and whether a last line cut short was skipped.

    series.jsonl is written a line per second, so a crash can cut only its last line,
    which is then skipped. Any other unreadable line (binary data, JSON that is not a
    second of a run) raises :class:`CorruptRunFile` naming the file and the line.
    """
    f = Path(path) / "series.jsonl"
    try:
        data = f.read_bytes()
    except OSError as exc:
        raise CorruptRunFile(f, f"cannot read series.jsonl: {exc.strerror}") from None
    lines = data.split(b"\n")
    last = len(lines) - 1  # the text after the last newline: empty unless the file was cut short
    out: list[SecondStats] = []
    truncated = False
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        if i == last and _cut_short(raw):
            try:
                out.append(SecondStats.from_json(json.loads(raw)))
            except (ValueError, KeyError, TypeError, AttributeError):
                truncated = True  # the second being written when the run died
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptRunFile(f, f"series.jsonl line {i + 1} is not text (binary data)") from None
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise CorruptRunFile(f, f"series.jsonl line {i + 1} is not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise CorruptRunFile(f, f"series.jsonl line {i + 1} is {_shown(text)}, "
                                    "not a second of a surge run (a JSON object)")
        try:
            out.append(SecondStats.from_json(obj))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            what = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
            raise CorruptRunFile(f, f"series.jsonl line {i + 1} is not a second of a surge run ({what})") from None
    return out, truncated


def _shown(text: str, limit: int = 40) -> str:
    t = text.strip()
    return repr(t if len(t) <= limit else t[:limit] + "...")


def read_series(path: Path) -> list[SecondStats]:
    """Per-second stats of a run directory; a truncated last line is skipped, any other
    damage raises :class:`CorruptRunFile` (see :func:`read_series_checked`)."""
    return read_series_checked(path)[0]


def read_histograms(path: Path) -> dict[tuple[str, str, str, str], RequestStats]:
    data = json.loads((Path(path) / "histograms.json").read_text())
    return {(d["scenario"], d["name"], d["method"], d["status"]): RequestStats.from_json(d) for d in data["keys"]}
