"""The reading half of the run store: finding runs, filtering them, reading their data back.

:class:`StoreQueries` is a base of :class:`surge.results.store.Store`, which
provides the engine and the error guard. Runs are named by id, unique id
prefix or ``latest``; lists and histories filter by scenario, branch, tag and
time; per-run data (stats, documents, histograms, series) comes back as the
run directory had it.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.engine import Connection, Engine

from surge.api.errors import UsageError
from surge.metrics.stats import Key, RequestStats, SecondStats
from surge.results import store_schema as S
from surge.results.store_load import _hist_stats, _to_utc_naive, scenario_key
from surge.results.store_records import _PCT_COLS, METRICS, NameStats, RunRecord


class StoreQueries:
    """Reading runs; mixed into :class:`~surge.results.store.Store`."""

    if TYPE_CHECKING:  # provided by Store
        _engine: Engine

        @property
        def url(self) -> str: ...

        def _guard(self, what: str) -> AbstractContextManager[None]: ...

    # ------------------------------------------------------------------ reading

    def _resolve(self, conn: Connection, ref: str) -> int:
        """runs.pk of an id, a unique id prefix, or 'latest'."""
        ref = (ref or "").strip()
        if not ref:
            raise UsageError("no run id given; `surge runs list` shows them")
        if ref == "latest":
            pk = conn.execute(select(S.runs.c.pk).order_by(S.runs.c.started_at.desc(), S.runs.c.pk.desc())
                              .limit(1)).scalar()
            if pk is None:
                raise UsageError(f"run store {self.url} has no runs yet; record one with `surge run`")
            return pk
        pk = conn.execute(select(S.runs.c.pk).where(S.runs.c.run_id == ref)).scalar()
        if pk is not None:
            return pk
        rows = conn.execute(select(S.runs.c.pk, S.runs.c.run_id)
                            .where(S.runs.c.run_id.startswith(ref, autoescape=True))
                            .order_by(S.runs.c.started_at.desc()).limit(50)).all()
        rows = [r for r in rows if r.run_id.startswith(ref)]  # SQLite's LIKE ignores case
        if not rows:
            raise UsageError(f"no run {ref!r} in run store {self.url}; `surge runs list` shows the runs")
        if len(rows) > 1:
            shown = ", ".join(r.run_id for r in rows[:5])
            more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
            raise UsageError(f"run id {ref!r} is ambiguous: it matches {shown}{more}; give more of the id")
        return rows[0].pk

    def _records(self, conn: Connection, where: list[Any], *, order_desc: bool = True,
                 limit: int | None = None, join_tag: tuple[str, str] | None = None) -> list[RunRecord]:
        r, st = S.runs, S.run_stats
        q = (select(r, st.c.requests, st.c.errors, st.c.error_rate, st.c.rps, st.c.lat_p50, st.c.lat_p95,
                    st.c.lat_p99)
             .select_from(r.outerjoin(st, and_(st.c.run_pk == r.c.pk, st.c.ordinal == 0))))
        if join_tag is not None:
            t = S.run_tags
            q = q.where(exists().where(t.c.run_pk == r.c.pk, t.c.key == join_tag[0], t.c.value == join_tag[1]))
        for w in where:
            q = q.where(w)
        if order_desc:
            q = q.order_by(r.c.started_at.desc(), r.c.pk.desc())
        else:
            q = q.order_by(r.c.started_at, r.c.pk)
        if limit is not None:
            q = q.limit(limit)
        rows = conn.execute(q).all()
        pks = [row.pk for row in rows]
        tags = self._tags_of(conn, pks)
        names: dict[int, list[str]] = {}
        for i in range(0, len(pks), 500):
            for n in conn.execute(select(st.c.run_pk, st.c.name).where(st.c.run_pk.in_(pks[i:i + 500]),
                                                                        st.c.total.is_(False))
                                  .order_by(st.c.run_pk, st.c.ordinal)):
                lst = names.setdefault(n.run_pk, [])
                if n.name not in lst:
                    lst.append(n.name)
        return [_record(row, tags.get(row.pk, {}), names.get(row.pk, [])) for row in rows]

    def _tags_of(self, conn: Connection, pks: Sequence[int]) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {}
        for i in range(0, len(pks), 500):
            for t in conn.execute(select(S.run_tags).where(S.run_tags.c.run_pk.in_(pks[i:i + 500]))
                                  .order_by(S.run_tags.c.key)):
                out.setdefault(t.run_pk, {})[t.key] = t.value
        return out

    def list_runs(
        self,
        *,
        scenario: str | None = None,
        branch: str | None = None,
        tag: tuple[str, str] | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[RunRecord]:
        """Runs, newest first, at most ``limit``.

        ``scenario``: part of the scenario key (``checkout`` matches
        ``bench/checkout.py``) or the scenario file's path; ``tag``: (key, value);
        ``since``: started at or after (naive datetimes are UTC).
        """
        where = _filters(scenario=scenario, branch=branch, since=since, substring=True)
        with self._guard("read"), self._engine.connect() as conn:
            return self._records(conn, where, limit=max(int(limit), 0), join_tag=tag)

    def get_run(self, run_id_or_prefix: str) -> RunRecord:
        """The run with this id, unique id prefix (like git), or ``latest``.

        :class:`UsageError` when no run or several runs match."""
        with self._guard("read"), self._engine.connect() as conn:
            pk = self._resolve(conn, run_id_or_prefix)
            return self._records(conn, [S.runs.c.pk == pk])[0]

    def has_run(self, run_id: str) -> bool:
        """Whether a run with exactly this id is stored."""
        with self._guard("read"), self._engine.connect() as conn:
            return conn.execute(select(S.runs.c.pk).where(S.runs.c.run_id == run_id)).first() is not None

    def name_stats(self, run_id: str) -> list[NameStats]:
        """The stored summary of the run: the total first, then each request name."""
        with self._guard("read"), self._engine.connect() as conn:
            pk = self._resolve(conn, run_id)
            rows = conn.execute(select(S.run_stats).where(S.run_stats.c.run_pk == pk)
                                .order_by(S.run_stats.c.ordinal)).all()
        return [
            NameStats(
                scenario=r.scenario, name=r.name, method=r.method, total=bool(r.total),
                requests=r.requests, errors=r.errors, error_rate=r.error_rate, rps=r.rps,
                bytes_in=r.bytes_in,
                latency={m: getattr(r, f"lat_{c}") for m, c in _PCT_COLS.items()},
                service={m: getattr(r, f"svc_{c}") for m, c in _PCT_COLS.items()},
            )
            for r in rows
        ]

    def documents(self, run_id: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The run's meta.json and summary.json (None when the run dir had none), as recorded."""
        with self._guard("read"), self._engine.connect() as conn:
            pk = self._resolve(conn, run_id)
            row = conn.execute(select(S.run_documents).where(S.run_documents.c.run_pk == pk)).first()
        if row is None:  # recorded before schema v2
            return {}, None
        return json.loads(row.meta), json.loads(row.summary) if row.summary else None

    def histograms(self, run_id: str) -> dict[Key, RequestStats]:
        """Final counts and histograms per key (scenario, name, method, status)."""
        with self._guard("read"), self._engine.connect() as conn:
            pk = self._resolve(conn, run_id)
            rows = conn.execute(select(S.run_keys).where(S.run_keys.c.run_pk == pk)
                                .order_by(S.run_keys.c.key_no)).all()
        return {(r.scenario, r.name, r.method, r.status): _request_stats(r.count, r.errors, r.bytes_in, r.hists)
                for r in rows if r.count or r.hists}

    def series(self, run_id: str) -> list[SecondStats]:
        """The per-second data of the run, as :func:`~surge.results.rundir.read_series` reads it."""
        with self._guard("read"), self._engine.connect() as conn:
            pk = self._resolve(conn, run_id)
            keys = {r.key_no: (r.scenario, r.name, r.method, r.status)
                    for r in conn.execute(select(S.run_keys.c.key_no, S.run_keys.c.scenario, S.run_keys.c.name,
                                                 S.run_keys.c.method, S.run_keys.c.status)
                                          .where(S.run_keys.c.run_pk == pk))}
            out: dict[int, SecondStats] = {}
            for r in conn.execute(select(S.run_seconds).where(S.run_seconds.c.run_pk == pk)
                                  .order_by(S.run_seconds.c.second)):
                x = json.loads(r.extra)
                out[r.second] = SecondStats(
                    second=r.second, iterations=r.iterations,
                    iteration_errors=Counter(x.get("iteration_errors", {})), started=r.started,
                    dropped=r.dropped, target_rate=r.target_rate, vus=r.vus,
                    checks={k: list(v) for k, v in x.get("checks", {}).items()},
                    cpu=list(x.get("cpu", [])), loop_lag_ms=list(x.get("loop_lag_ms", [])),
                    sched_lag_p99_ms=list(x.get("sched_lag_p99_ms", [])),
                    steal=list(x.get("steal", [])),
                )
            for r in conn.execute(select(S.run_series).where(S.run_series.c.run_pk == pk)
                                  .order_by(S.run_series.c.second, S.run_series.c.key_no)):
                st = out.setdefault(r.second, SecondStats(second=r.second))
                st.requests[keys[r.key_no]] = _request_stats(r.count, r.errors, r.bytes_in, r.hists)
        return [out[s] for s in sorted(out)]

    def last_runs(
        self,
        *,
        branch: str,
        scenario: str | None,
        n: int,
        before: str | None = None,
        statuses: Sequence[str] | None = ("completed",),
    ) -> list[RunRecord]:
        """The ``n`` latest runs on ``branch`` (and ``scenario``), newest first.

        ``before``: only runs that started before that run (id, prefix or
        'latest'), itself excluded. ``statuses``: which run statuses count
        (default: completed runs only; None: all).
        """
        with self._guard("read"), self._engine.connect() as conn:
            where = _filters(scenario=scenario, branch=branch, statuses=statuses)
            if before is not None:
                pk = self._resolve(conn, before)
                started = conn.execute(select(S.runs.c.started_at).where(S.runs.c.pk == pk)).scalar_one()
                where.append(S.runs.c.pk != pk)
                where.append(or_(S.runs.c.started_at < started,
                                 and_(S.runs.c.started_at == started, S.runs.c.pk < pk)))
            return self._records(conn, where, limit=max(int(n), 0))

    def metric_history(
        self,
        *,
        name: str | None,
        metric: str,
        branch: str | None = None,
        since: datetime | None = None,
        scenario: str | None = None,
        statuses: Sequence[str] | None = ("completed",),
    ) -> list[tuple[RunRecord, float]]:
        """One metric per run, oldest first: ``[(run, value), ...]``.

        ``metric``: one of :data:`METRICS` (``p95`` is latency; ``service.p95``
        the service time; ``rps``, ``error_rate``...). ``name``: a request name,
        or ``METHOD name``, or None for all requests. Where a name matches several
        methods or scenarios of one run, counts are added and latencies come from
        the merged final histograms. Runs without the name or the value are left out.
        """
        col = METRICS.get(metric)
        if col is None:
            raise UsageError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
        with self._guard("read"), self._engine.connect() as conn:
            runs = self._records(conn, _filters(scenario=scenario, branch=branch, since=since,
                                                statuses=statuses), order_desc=False)
            if not runs:
                return []
            by_id = {r.id: r for r in runs}
            st, rr = S.run_stats, S.runs
            q = (select(rr.c.run_id, rr.c.pk, st.c.ordinal, st.c.scenario, st.c.name, st.c.method,
                        st.c.requests, st.c.errors, st.c.bytes_in, st.c[col].label("value"))
                 .select_from(st.join(rr, rr.c.pk == st.c.run_pk)))
            for w in _filters(scenario=scenario, branch=branch, since=since, statuses=statuses):
                q = q.where(w)
            if name is None:
                q = q.where(st.c.total.is_(True))
            else:
                method, _, rest = name.partition(" ")
                cond = st.c.name == name
                if rest and method.isupper():
                    cond = or_(cond, and_(st.c.method == method, st.c.name == rest))
                q = q.where(st.c.total.is_(False), cond)
            matches: dict[str, list[Any]] = {}
            for row in conn.execute(q):
                if row.run_id in by_id:
                    matches.setdefault(row.run_id, []).append(row)
            values: dict[str, float | None] = {}
            for run_id, rows in matches.items():
                if len(rows) == 1:
                    values[run_id] = rows[0].value
                else:
                    values[run_id] = self._merged_metric(conn, rows, metric, by_id[run_id])
        out = []
        for r in runs:
            v = values.get(r.id)
            if v is not None:
                out.append((r, float(v)))
        return out

    def _merged_metric(self, conn: Connection, rows: list[Any], metric: str, run: RunRecord) -> float | None:
        """A metric over several stats rows of one run (same name, several methods/scenarios)."""
        if metric in ("requests", "errors", "bytes_in"):
            return float(sum(getattr(r, metric) for r in rows))
        if metric == "rps":
            return float(sum(r.value or 0.0 for r in rows))
        if metric == "error_rate":
            n = sum(r.requests for r in rows)
            return round(sum(r.errors for r in rows) / n, 6) if n else 0.0
        which = {(r.scenario, r.name, r.method) for r in rows}
        k = S.run_keys
        merged = RequestStats()
        for row in conn.execute(select(k).where(k.c.run_pk == rows[0].pk)):
            if (row.scenario, row.name, row.method) in which:
                merged.merge(_request_stats(row.count, row.errors, row.bytes_in, row.hists))
        kind, _, pct = metric.rpartition(".")
        stats = _hist_stats(merged.service if kind == "service" else merged.latency)
        return stats.get(pct)

    def get_baseline(self, branch: str, scenario: str | None = None) -> RunRecord | None:
        """The baseline run of ``branch``: for ``scenario`` if given (key or its tail),
        else the one set most recently on that branch; None when there is none."""
        b = S.baselines
        with self._guard("read"), self._engine.connect() as conn:
            q = select(b.c.run_pk).where(b.c.branch == branch)
            if scenario is not None:
                q = q.where(_scenario_match(b.c.scenario, scenario))
            pk = conn.execute(q.order_by(b.c.set_at.desc()).limit(1)).scalar()
            if pk is None:
                return None
            return self._records(conn, [S.runs.c.pk == pk])[0]

    def baselines(self) -> list[tuple[str, str, RunRecord]]:
        """Every baseline as (branch, scenario, run)."""
        b = S.baselines
        with self._guard("read"), self._engine.connect() as conn:
            rows = conn.execute(select(b).order_by(b.c.branch, b.c.scenario)).all()
            recs: dict[int, RunRecord] = {}
            for row in rows:  # a handful: one query each is fine
                if row.run_pk not in recs:
                    recs[row.run_pk] = self._records(conn, [S.runs.c.pk == row.run_pk])[0]
            return [(row.branch, row.scenario, recs[row.run_pk]) for row in rows]


# --------------------------------------------------------------------------- helpers


def _scenario_match(col: Any, scenario: str, *, substring: bool = False) -> Any:
    """A scenario key, its trailing part (``checkout.py``), or a scenario file's path."""
    if os.path.isabs(scenario):
        scenario = scenario_key(scenario)
    conds = [col == scenario, col.endswith("/" + scenario, autoescape=True)]
    if substring:
        conds.append(col.contains(scenario, autoescape=True))
    return or_(*conds)


def _filters(*, scenario: str | None = None, branch: str | None = None, since: datetime | None = None,
             statuses: Sequence[str] | None = None, substring: bool = False) -> list[Any]:
    r = S.runs
    where: list[Any] = []
    if scenario:
        where.append(_scenario_match(r.c.scenario, scenario, substring=substring))
    if branch:
        where.append(r.c.branch == branch)
    if since is not None:
        where.append(r.c.started_at >= _to_utc_naive(since))
    if statuses is not None:
        where.append(r.c.status.in_(list(statuses)))
    return where


def _request_stats(count: int, errors: str | None, bytes_in: int, hists: bytes) -> RequestStats:
    lat, svc, ttfb = S.unpack_hists(hists)
    return RequestStats(count=count, errors=Counter(json.loads(errors) if errors else {}), bytes_in=bytes_in,
                        latency=lat, service=svc, ttfb=ttfb)


def _record(row: Any, tags: dict[str, str], names: list[str]) -> RunRecord:
    return RunRecord(
        id=row.run_id, scenario=row.scenario, started_at=_aware(row.started_at),  # type: ignore[arg-type]
        ended_at=_aware(row.ended_at), duration_s=row.duration_s, status=row.status, model=row.model,
        branch=row.branch, commit=row.commit, dirty=row.dirty, tags=tags,
        requests=row.requests or 0, errors=row.errors or 0, rps=row.rps or 0.0,
        p50=row.lat_p50, p95=row.lat_p95, p99=row.lat_p99, names=names, run_dir=row.run_dir,
        environment=row.environment, thresholds_passed=row.thresholds_passed, host=row.host,
        error_rate=row.error_rate or 0.0,
    )


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None else None
