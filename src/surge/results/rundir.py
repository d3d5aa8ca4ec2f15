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

from surge.metrics.aggregate import RunAggregate
from surge.metrics.stats import RequestStats, SecondStats

RUNDIR_VERSION = 1


def new_run_id(label: str, root: Path | None = None) -> str:
    """``YYYYmmdd-HHMMSS-<label>``; a suffix keeps two runs started in one second apart."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")[:40] or "run"
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}"
    if root is None:
        return base
    run_id, n = base, 1
    while (root / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


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
        self.path.mkdir(parents=True, exist_ok=False)
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


def read_series(path: Path) -> list[SecondStats]:
    """Per-second stats of a run directory; a truncated last line is skipped."""
    out = []
    with open(Path(path) / "series.jsonl", encoding="utf-8") as f:
        for line in f:
            try:
                out.append(SecondStats.from_json(json.loads(line)))
            except (ValueError, KeyError):
                continue
    return out


def read_histograms(path: Path) -> dict[tuple[str, str, str, str], RequestStats]:
    data = json.loads((Path(path) / "histograms.json").read_text())
    return {(d["scenario"], d["name"], d["method"], d["status"]): RequestStats.from_json(d) for d in data["keys"]}
