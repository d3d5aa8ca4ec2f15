"""Turn what a user typed (run id, prefix, 'latest', a run directory, group:NAME,
or id,id,...) into the per-second data of one or more runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surge.api.errors import UsageError
from surge.metrics.stats import SecondStats
from surge.results.meta import open_schedule
from surge.results.rundir import read_json_object, read_series


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a label and one series per run (several = repeats).

    Each run's series is cut at its planned duration: the seconds after it hold
    only the in-flight tail and would bias throughput and widen every interval.
    """

    label: str
    runs: list[list[SecondStats]]
    run_ids: list[str]
    scenario: str | None = None
    meta: dict[str, Any] | None = None
    metas: tuple[dict[str, Any], ...] = ()
    path: str | None = None  # the run directory, when the side was given as one


def _cut(series: list[SecondStats], meta: dict[str, Any] | None) -> list[SecondStats]:
    planned = (meta or {}).get("planned_duration_s")
    if not planned or (meta or {}).get("model") in ("per-vu-iterations", "shared-iterations"):
        return series  # iteration models end when their work is done, not at a planned time
    cut = [st for st in series if st.second < int(planned)]
    return cut or series


def mismatches(a: Side, b: Side) -> list[str]:
    """Differences in what was run that make a comparison questionable (scenario, model, options)."""
    out = []
    same = [r for r in a.run_ids if r in b.run_ids]
    if same:
        out.append(f"run {same[0]} is on both sides: a run compared with itself shows no change by construction")
    ma, mb = (a.metas or (a.meta,))[0] or {}, (b.metas or (b.meta,))[0] or {}
    sa, sb = (ma.get("scenario") or {}), (mb.get("scenario") or {})
    if sa.get("sha256") and sb.get("sha256") and sa["sha256"] != sb["sha256"]:
        out.append("the scenario files differ (sha256): the workloads may not be comparable")
    for key in ("model", "options", "workers"):
        va, vb = ma.get(key), mb.get(key)
        if key == "options" and isinstance(va, dict) and isinstance(vb, dict):
            # the slot is compared as run, below: a 2ms given and the 2ms default are the same
            va, vb = ({k: v for k, v in d.items() if k != "arrival_slot"} for d in (va, vb))
        if va is not None and vb is not None and va != vb:
            out.append(f"the runs differ in {key}: {va} vs {vb}")
    slot_a, slot_b = _slot_of(ma), _slot_of(mb)
    if slot_a != slot_b and "closed" not in (slot_a, slot_b) and None not in (slot_a, slot_b) \
            and ma.get("model") == mb.get("model"):
        def says(v):
            return "exact times (older surge)" if v == "older" else f"{v:g} ms" if v else "exact times (0)"
        out.append(f"the runs sent arrivals in different slots ({says(slot_a)} vs {says(slot_b)}): "
                   "sub-millisecond latency differences may come from the generator, not the server")
    ha, hb = (ma.get("host") or {}).get("hostname"), (mb.get("host") or {}).get("hostname")
    if ha and hb and ha != hb:
        out.append(f"the runs were made on different hosts ({ha} vs {hb})")
    return out


def _slot_of(meta: dict) -> float | str | None:
    """A run's arrival slot in ms; "closed" for a run with no schedule; "older" for an open
    run from before arrival slots; None when that cannot be told."""
    if "arrival_slot_ms" in meta:
        return "closed" if meta["arrival_slot_ms"] is None else meta["arrival_slot_ms"]
    model = meta.get("model")
    if not model:
        return None
    return "older" if open_schedule(model, meta.get("options") if isinstance(meta.get("options"), dict) else {}) \
        else "closed"


def _from_dir(path: Path) -> Side:
    if not (path / "series.jsonl").exists():
        raise UsageError(f"{path} is not a run directory (no series.jsonl): give a run id or a run directory")
    meta = read_json_object(path / "meta.json") if (path / "meta.json").is_file() else {}
    series = read_series(path)  # CorruptRunFile names a damaged file and line
    if not series:
        raise UsageError(f"run directory {path} has no measurements (empty series.jsonl)")
    scen = (meta.get("scenario") or {}).get("path") if isinstance(meta.get("scenario"), dict) else None
    return Side(path.name, [_cut(series, meta)], [meta.get("run_id") or path.name],
                scen or (meta.get("hit") or {}).get("url"), meta, (meta,), str(path))


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
        if not group.strip():
            raise UsageError(f"{spec!r} names no group: write group:NAME, NAME being a repeat_group tag "
                             "(see `surge runs list`)")
        recs = [r for r in store.list_runs(tag=("repeat_group", group), limit=1000)]
        if not recs:
            raise UsageError(f"no runs tagged repeat_group={group} in the store: see `surge runs list`")
        recs.sort(key=lambda r: r.started_at)
        return _from_store(spec, recs, store)
    ids = [s.strip() for s in spec.split(",") if s.strip()]
    if not ids:
        raise UsageError(f"{spec!r} names no run: give a run id, a unique id prefix, 'latest', a run directory, "
                         "group:NAME or id1,id2,... (see `surge runs list`)")
    recs, seen = [], set()
    for rec in (store.get_run(i) for i in ids):
        if rec.id not in seen:  # a run named twice (or by id and by prefix) counts once
            seen.add(rec.id)
            recs.append(rec)
    return _from_store(recs[0].id if len(recs) == 1 else f"{len(recs)} runs", recs, store)


def _from_store(label: str, recs: list[Any], store: Any) -> Side:
    metas = tuple(store.documents(r.id)[0] for r in recs)
    runs = [_cut(store.series(r.id), m) for r, m in zip(recs, metas, strict=True)]
    return Side(label, runs, [r.id for r in recs], recs[0].scenario, None, metas)
