"""The writing half of the run store: recording run directories, tags, baselines, deletion.

:class:`StoreWrites` is a base of :class:`surge.results.store.Store`, which
provides the engine, the write-locking engine (``_writer``) and the error
guard; run lookup and tags come from :class:`StoreQueries`. Every change is
one transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from surge.api.errors import UsageError
from surge.metrics.stats import RequestStats
from surge.results import store_schema as S
from surge.results.store_load import (
    _BadRunDir,
    _fingerprint,
    _InvalidRun,
    _json_or_none,
    _load_run_dir,
    _name_entries,
    _parse_time,
    _RunData,
    _stats_rows,
    scenario_key,
)
from surge.results.store_query import StoreQueries

_TAG_KEY = re.compile(r"^[A-Za-z0-9_.:/-]{1,100}$")


class StoreWrites(StoreQueries):
    """Recording and changing runs; mixed into :class:`~surge.results.store.Store`."""

    if TYPE_CHECKING:  # provided by Store
        _writer: Engine

    # ------------------------------------------------------------------ recording

    def record_run(self, run_dir: Path, *, tags: dict[str, str] | None = None) -> str:
        """Record the run directory ``run_dir``; returns its run id.

        Stores metadata, labels (branch, commit, environment = tag ``env``),
        tags (``meta.json``'s own, then ``tags``), per-name summaries, final
        histograms per key and the per-second series, in one transaction.

        Idempotent: recording a run that is already stored adds ``tags`` and,
        if its files changed since (a run imported while it ran), replaces
        its data. A different run that happens to have the same id (another
        machine, same second and scenario) is stored as ``ID-2``, ``ID-3``...
        A tag ``branch=`` or ``commit=`` overrides what git said (a detached
        HEAD in CI has no branch).
        """
        return self._record(Path(run_dir), tags)[0]

    def _record(self, run_dir: Path, tags: dict[str, str] | None) -> tuple[str, bool]:
        try:
            data = _load_run_dir(run_dir)
        except _BadRunDir as exc:
            raise _InvalidRun(run_dir, str(exc)) from None
        all_tags = {str(k): str(v) for k, v in (data.meta.get("tags") or {}).items()}
        all_tags.update(tags or {})
        _check_tags(all_tags)
        attempts = 3
        for attempt in range(attempts):
            with self._guard("write"):
                try:
                    with self._writer.begin() as conn:
                        return self._write_run(conn, data, all_tags)
                except sa_exc.IntegrityError:
                    # Two writers racing on one new id (PostgreSQL): the loser retries and finds it.
                    if attempt == attempts - 1:
                        raise
        raise AssertionError("unreachable")

    def _write_run(self, conn: Connection, data: _RunData, tags: dict[str, str]) -> tuple[str, bool]:
        meta = data.meta
        fp = _fingerprint(meta)
        base_id = str(meta["run_id"])
        run_id, n = base_id, 1
        while True:
            row = conn.execute(select(S.runs.c.pk, S.runs.c.fingerprint, S.runs.c.content_hash)
                               .where(S.runs.c.run_id == run_id)).first()
            if row is None or row.fingerprint == fp:
                break
            n += 1
            run_id = f"{base_id}-{n}"
        values = self._run_values(data, run_id, fp, tags)
        if row is not None:
            pk = row.pk
            if row.content_hash == data.content_hash:  # already stored as it is
                if tags:
                    self._set_tags(conn, pk, tags, ())
                return run_id, False
            old_tags = self._tags_of(conn, [pk]).get(pk, {})
            for t in S.CHILD_TABLES:
                if t is not S.baselines:  # a baseline stays a baseline when its data is refreshed
                    conn.execute(delete(t).where(t.c.run_pk == pk))
            values["recorded_at"] = S.utcnow()
            conn.execute(update(S.runs).where(S.runs.c.pk == pk).values(**values))
            tags = {**old_tags, **tags}
        else:
            pk = conn.execute(insert(S.runs).values(**values).returning(S.runs.c.pk)).scalar_one()
        self._insert_children(conn, pk, data, tags)
        self._update_labels(conn, pk)
        return run_id, True

    def _run_values(self, data: _RunData, run_id: str, fp: str, tags: dict[str, str]) -> dict[str, Any]:
        meta, summary = data.meta, data.summary or {}
        git = meta.get("git") or {}
        sc = meta.get("scenario") or {}
        started = _parse_time(meta["started_at"], "meta.json started_at")
        ended = _parse_time(meta["ended_at"], "meta.json ended_at") if meta.get("ended_at") else None
        status = str(meta.get("status") or summary.get("status") or "unknown")
        if status == "running" and data.summary is None:
            status = "incomplete"  # the run died: what it wrote is kept, the rest is lost
        duration = meta.get("duration_s", summary.get("duration_s"))
        if duration is None:
            duration = float(len(data.series))
        ths = summary.get("thresholds") or []
        git_branch = git.get("branch")
        if git_branch == "HEAD":  # detached: no branch
            git_branch = None
        return {
            "run_id": run_id, "fingerprint": fp, "content_hash": data.content_hash,
            "scenario": scenario_key(sc.get("path"), meta.get("hit")),
            "scenario_path": sc.get("path"), "scenario_sha256": sc.get("sha256"),
            "model": meta.get("model") or summary.get("model"),
            "status": status,
            "thresholds_passed": all(t.get("passed") for t in ths) if ths else None,
            "started_at": started, "ended_at": ended, "duration_s": float(duration),
            "host": (meta.get("host") or {}).get("hostname"),
            "surge_version": meta.get("surge_version"),
            "git_branch": git_branch, "git_commit": git.get("commit"),
            "branch": git_branch, "commit": git.get("commit"),
            "dirty": git.get("dirty"),
            "environment": None,
            "argv": json.dumps(meta.get("argv") or []),
            "run_dir": str(data.path.resolve()),
            "recorded_at": S.utcnow(),
        }

    def _insert_children(self, conn: Connection, pk: int, data: _RunData, tags: dict[str, str]) -> None:
        if tags:
            conn.execute(insert(S.run_tags), [{"run_pk": pk, "key": k, "value": v} for k, v in tags.items()])
        duration = float(data.meta.get("duration_s") or (data.summary or {}).get("duration_s") or len(data.series))
        # An empty parameter list would make insert() write one row of NULLs: a run with
        # zero requests has no stats or keys, and must still be recorded.
        stats_rows = _stats_rows(pk, _name_entries(data, duration))
        if stats_rows:
            conn.execute(insert(S.run_stats), stats_rows)
        keys = sorted(set(data.histograms) | {k for st in data.series for k in st.requests})
        key_no = {k: i for i, k in enumerate(keys)}
        key_rows = [
            {"run_pk": pk, "key_no": i, "scenario": k[0], "name": k[1], "method": k[2], "status": k[3],
             "count": st.count, "errors": _json_or_none(dict(st.errors)), "bytes_in": st.bytes_in,
             "hists": S.pack_hists((st.latency, st.service, st.ttfb))}
            for k, i in key_no.items() for st in [data.histograms.get(k) or RequestStats()]
        ]
        if key_rows:
            conn.execute(insert(S.run_keys), key_rows)
        seconds, series = [], []
        seen: set[int] = set()
        for st in data.series:
            if st.second in seen:  # a duplicate line (should not happen): first one wins
                continue
            seen.add(st.second)
            seconds.append({
                "run_pk": pk, "second": st.second, "iterations": st.iterations, "started": st.started,
                "dropped": st.dropped, "target_rate": st.target_rate, "vus": st.vus,
                "extra": json.dumps({
                    "iteration_errors": dict(st.iteration_errors), "checks": st.checks, "cpu": st.cpu,
                    "loop_lag_ms": st.loop_lag_ms, "sched_lag_p99_ms": st.sched_lag_p99_ms,
                    "steal": st.steal,
                }, separators=(",", ":")),
            })
            for k, rs in st.requests.items():
                series.append({
                    "run_pk": pk, "second": st.second, "key_no": key_no[k], "count": rs.count,
                    "error_count": rs.error_count, "errors": _json_or_none(dict(rs.errors)),
                    "bytes_in": rs.bytes_in, "hists": S.pack_hists((rs.latency, rs.service, rs.ttfb)),
                })
        if seconds:
            conn.execute(insert(S.run_seconds), seconds)
        for i in range(0, len(series), 2000):
            conn.execute(insert(S.run_series), series[i:i + 2000])
        conn.execute(insert(S.run_documents).values(run_pk=pk, meta=data.meta_text, summary=data.summary_text))

    def import_dir(
        self,
        path: Path,
        *,
        tags: dict[str, str] | None = None,
        on_skip: Callable[[Path, str], None] | None = None,
    ) -> list[str]:
        """Record a run directory, or every run directory directly inside ``path``.

        Returns the ids of the runs newly recorded (or updated). Directories that
        are not valid run dirs, and runs already stored unchanged, are skipped:
        ``on_skip(dir, reason)`` is called for each. Raises :class:`UsageError`
        when ``path`` is neither a run directory nor contains any directory.
        """
        path = Path(path)
        _check_tags(tags or {})
        if not path.is_dir():
            raise UsageError(f"{path} is not a directory; give a run directory or a directory of runs")
        dirs = [path] if (path / "meta.json").exists() else sorted(p for p in path.iterdir() if p.is_dir())
        if not dirs:
            raise UsageError(f"{path} holds no run directories (no meta.json in it or in its subdirectories)")
        done = []
        for d in dirs:
            try:
                run_id, new = self._record(d, tags)
            except _InvalidRun as exc:
                if on_skip is not None:
                    on_skip(d, exc.reason)
                continue
            if new:
                done.append(run_id)
            elif on_skip is not None:
                on_skip(d, f"already in the store as {run_id}")
        return done

    # ------------------------------------------------------------------ changing

    def delete_run(self, run_id: str) -> None:
        """Delete a run (id, unique prefix or 'latest') and everything stored with it, baselines included."""
        with self._guard("write"), self._writer.begin() as conn:
            pk = self._resolve(conn, run_id)
            for t in S.CHILD_TABLES:
                conn.execute(delete(t).where(t.c.run_pk == pk))
            conn.execute(delete(S.runs).where(S.runs.c.pk == pk))

    def tag_run(self, run_id: str, tags: dict[str, str], remove: Sequence[str] = ()) -> None:
        """Set ``tags`` on a run and remove the tags named in ``remove``.

        Tags ``env``, ``branch`` and ``commit`` also set the run's labels
        (environment, and the branch/commit git recorded, which they override).
        """
        _check_tags(tags)
        with self._guard("write"), self._writer.begin() as conn:
            pk = self._resolve(conn, run_id)
            self._set_tags(conn, pk, tags, remove)

    def _set_tags(self, conn: Connection, pk: int, tags: dict[str, str], remove: Sequence[str]) -> None:
        t = S.run_tags
        gone = list({*remove, *tags})
        if gone:
            conn.execute(delete(t).where(t.c.run_pk == pk, t.c.key.in_(gone)))
        if tags:
            conn.execute(insert(t), [{"run_pk": pk, "key": k, "value": v} for k, v in tags.items()])
        self._update_labels(conn, pk)

    def _update_labels(self, conn: Connection, pk: int) -> None:
        tags = self._tags_of(conn, [pk]).get(pk, {})
        r = S.runs
        conn.execute(update(r).where(r.c.pk == pk).values(
            branch=tags["branch"] if "branch" in tags else r.c.git_branch,
            commit=tags["commit"] if "commit" in tags else r.c.git_commit,
            environment=tags.get("env"),
        ))

    def set_baseline(self, run_id: str, branch: str) -> None:
        """Make the run the baseline of ``branch`` for its scenario (replacing the previous one)."""
        if not branch or not branch.strip():
            raise UsageError("a baseline needs a branch name (--branch)")
        with self._guard("write"), self._writer.begin() as conn:
            pk = self._resolve(conn, run_id)
            scenario = conn.execute(select(S.runs.c.scenario).where(S.runs.c.pk == pk)).scalar_one()
            b = S.baselines
            conn.execute(delete(b).where(b.c.branch == branch, b.c.scenario == scenario))
            conn.execute(insert(b).values(branch=branch, scenario=scenario, run_pk=pk, set_at=S.utcnow()))


def _check_tags(tags: dict[str, str]) -> None:
    for k, v in tags.items():
        if not _TAG_KEY.match(str(k)):
            raise UsageError(f"tag {k!r}: a tag key is 1-100 letters, digits or _.:/- (as in --tag env=staging)")
        if len(str(v)) > 1000:
            raise UsageError(f"tag {k!r}: the value is longer than 1000 characters")
