"""Turn what a user typed (run id, prefix, 'latest', a run directory, group:NAME,
or id,id,...) into the per-second data of one or more runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surge.api.errors import UsageError
from surge.metrics.stats import SecondStats
from surge.results.rundir import read_series


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a label and one series per run (several = repeats)."""

    label: str
    runs: list[list[SecondStats]]
    run_ids: list[str]
    scenario: str | None = None
    meta: dict[str, Any] | None = None


def _from_dir(path: Path) -> Side:
    if not (path / "series.jsonl").exists():
        raise UsageError(f"{path} is not a run directory (no series.jsonl): give a run id or a run directory")
    meta = {}
    if (path / "meta.json").exists():
        try:
            meta = json.loads((path / "meta.json").read_text())
        except ValueError:
            meta = {}
    series = read_series(path)
    if not series:
        raise UsageError(f"run directory {path} has no measurements (empty series.jsonl)")
    scen = (meta.get("scenario") or {}).get("path") if isinstance(meta.get("scenario"), dict) else None
    return Side(path.name, [series], [meta.get("run_id") or path.name], scen or (meta.get("hit") or {}).get("url"), meta)


def load_side(spec: str, store: Any | None) -> Side:
    """Resolve ``spec``: a run directory path, ``group:NAME`` (repeats tagged
    repeat_group=NAME), ``id1,id2,...`` (repeats), or a run id / unique prefix / 'latest'."""
    p = Path(spec)
    if p.is_dir():
        return _from_dir(p)
    if store is None:
        raise UsageError(f"{spec!r} is not a run directory, and no run store is open")
    if spec.startswith("group:"):
        group = spec.split(":", 1)[1]
        recs = [r for r in store.list_runs(tag=("repeat_group", group), limit=1000)]
        if not recs:
            raise UsageError(f"no runs tagged repeat_group={group} in the store: see `surge runs list`")
        recs.sort(key=lambda r: r.started_at)
        return Side(spec, [store.series(r.id) for r in recs], [r.id for r in recs], recs[0].scenario)
    ids = [s for s in spec.split(",") if s]
    recs = [store.get_run(i) for i in ids]
    label = recs[0].id if len(recs) == 1 else f"{len(recs)} runs"
    return Side(label, [store.series(r.id) for r in recs], [r.id for r in recs], recs[0].scenario)
