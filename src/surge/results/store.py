"""The run store: every run's metadata, summaries, histograms and series in a database.

SQLAlchemy Core over SQLite (default: ``.surge/surge.db`` in the working
directory, WAL mode) or PostgreSQL (``postgresql://user@host/db``) for a team.
The schema is versioned and migrated on open (see :mod:`surge.results.store_schema`).

>>> store = Store.open(store_url(None))          # doctest: +SKIP
>>> run_id = store.record_run(Path("runs/20261123-020727-hello"), tags={"env": "staging"})
>>> store.get_run("latest").p95

Errors a user can fix (unknown run id, bad URL) raise :class:`UsageError`; a
store that cannot be reached, is locked for too long, corrupt or too new
raises :class:`RunError`. Both carry one line naming the store and the fix.
A store object is not shareable between processes or threads: open one each.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    and_,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from surge.api.errors import RunError, UsageError
from surge.metrics.aggregate import RunAggregate
from surge.metrics.histogram import Histogram
from surge.metrics.stats import Key, RequestStats, SecondStats
from surge.results import store_schema as S
from surge.results.rundir import read_histograms, read_series

__all__ = [
    "DEFAULT_URL", "METRICS", "NameStats", "RunRecord", "Store", "scenario_key", "store_url",
]

DEFAULT_URL = "sqlite:///.surge/surge.db"
ENV_VAR = "SURGE_STORE"
SQLITE_BUSY_TIMEOUT_S = 30.0  # a writer waits this long for another one before giving up
PG_CONNECT_TIMEOUT_S = 5  # unless the URL says ?connect_timeout=N
_PG_LOCK_ID = 0x5375726765  # advisory lock serialising schema migrations ("Surge")

# metric name -> run_stats column; 'latency.X' and 'service.X' spell the histogram out.
_PCT_COLS = {"min": "min", "mean": "mean", "p50": "p50", "p90": "p90", "p95": "p95",
             "p99": "p99", "p99.9": "p99_9", "max": "max"}
METRICS: dict[str, str] = {
    "requests": "requests", "errors": "errors", "error_rate": "error_rate", "rps": "rps",
    "bytes_in": "bytes_in",
    **{m: f"lat_{c}" for m, c in _PCT_COLS.items()},
    **{f"latency.{m}": f"lat_{c}" for m, c in _PCT_COLS.items()},
    **{f"service.{m}": f"svc_{c}" for m, c in _PCT_COLS.items()},
}
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.:/-]{1,100}$")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class RunRecord:
    """One stored run, as listed: labels plus overall figures (latencies in ms)."""

    id: str
    scenario: str  # scenario key: path relative to its git checkout, or 'hit METHOD URL'
    started_at: datetime  # UTC, aware
    ended_at: datetime | None
    duration_s: float | None
    status: str  # completed | interrupted | aborted | failed | running | incomplete
    model: str | None
    branch: str | None
    commit: str | None
    dirty: bool | None
    tags: dict[str, str] = field(default_factory=dict, hash=False)
    requests: int = 0
    errors: int = 0
    rps: float = 0.0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    names: list[str] = field(default_factory=list, hash=False)  # request names, summary order
    run_dir: str | None = None
    environment: str | None = None  # the 'env' tag
    thresholds_passed: bool | None = None  # None: the run had no thresholds
    host: str | None = None
    error_rate: float = 0.0


@dataclass(frozen=True)
class NameStats:
    """The stored summary of one request name of a run (or of all requests: ``total``)."""

    scenario: str
    name: str
    method: str
    total: bool
    requests: int
    errors: int
    error_rate: float
    rps: float
    bytes_in: int
    latency: dict[str, float | None]  # min, mean, p50, p90, p95, p99, p99.9, max (ms)
    service: dict[str, float | None]


# --------------------------------------------------------------------------- URLs


def _display(url: str | URL) -> str:
    """The URL as shown in messages: password hidden."""
    try:
        u = url if isinstance(url, URL) else make_url(url)
        return u.render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL we cannot parse is shown as given
        return str(url)


def _normalise(raw: str, source: str) -> URL:
    raw = raw.strip()
    if "://" not in raw:  # a plain path means a SQLite file
        raw = "sqlite:///" + raw
    try:
        url = make_url(raw)
    except (sa_exc.ArgumentError, ValueError):
        raise UsageError(
            f"{source} {raw!r} is not a database URL; use sqlite:///PATH or postgresql://USER@HOST/DB"
        ) from None
    backend = url.get_backend_name()
    if backend in ("postgres", "postgresql"):
        if url.drivername in ("postgres", "postgresql"):
            url = url.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise UsageError(
            f"{source} {_display(url)}: unsupported database {backend!r}; "
            "use sqlite:///PATH or postgresql://USER@HOST/DB"
        )
    return url


def _make_parent(path: Path, url: Any) -> None:
    """Create the SQLite file's directory, or say in one line why it cannot be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"run store {_display(url)}: cannot create {path.parent}: {exc.strerror}; "
                       f"use --store or ${ENV_VAR} to put it elsewhere") from None


def _sqlite_file(url: URL) -> Path | None:
    db = url.database
    if url.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db)


def store_url(explicit: str | None) -> str:
    """The store URL to use: ``explicit`` (--store), else ``$SURGE_STORE``, else :data:`DEFAULT_URL`.

    A plain path means a SQLite file; ``postgresql://`` uses the psycopg driver.
    Creates the directory of a SQLite file (``.surge/`` for the default).
    Raises :class:`UsageError` for a URL that is not one.
    """
    if explicit and explicit.strip():
        raw, source = explicit, "--store"
    elif os.environ.get(ENV_VAR, "").strip():
        raw, source = os.environ[ENV_VAR], f"${ENV_VAR}"
    else:
        raw, source = DEFAULT_URL, "the default store"
    url = _normalise(raw, source)
    path = _sqlite_file(url)
    if path is not None:
        _make_parent(path, url)
    raw = raw.strip()
    return raw if "://" in raw else "sqlite:///" + raw


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


# --------------------------------------------------------------------------- reading run dirs


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
    except (OSError, UnicodeDecodeError) as exc:
        raise _BadRunDir(f"cannot read series.jsonl: {exc}") from None
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


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None else None


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


# --------------------------------------------------------------------------- the store


class Store:
    """A run store; open with :meth:`Store.open`, close with :meth:`close` (or ``with``)."""

    def __init__(self, engine: Engine, url: URL, shown: str | None = None) -> None:
        self._engine = engine
        self._url = url
        self._shown = shown or _display(url)
        self._sqlite = url.get_backend_name() == "sqlite"
        # Writers take the write lock when they begin (SQLite: BEGIN IMMEDIATE): a deferred
        # transaction that reads first and then upgrades can fail at once instead of waiting.
        self._writer = engine.execution_options(surge_write=True)

    def __repr__(self) -> str:
        return f"<Store {self.url}>"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The store's URL as given, password hidden."""
        return self._shown

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to the store at ``url``, creating or migrating its schema.

        SQLite files (and their directory) are created on first use, in WAL mode
        with a busy timeout so that concurrent writers wait for each other.
        Raises :class:`UsageError` for a bad URL, :class:`RunError` when the
        store is unreachable, corrupt, not a surge store, or of a newer schema.
        """
        u = _normalise(url, "store URL")
        engine = cls._engine_for(u)
        store = cls(engine, u, _display(url) if "://" in url else _display(u))
        try:
            store._migrate()
        except BaseException:
            engine.dispose()
            raise
        return store

    @staticmethod
    def _engine_for(u: URL) -> Engine:
        kwargs: dict[str, Any] = {}
        if u.get_backend_name() == "sqlite":
            path = _sqlite_file(u)
            if path is not None:
                _make_parent(path, u)
                if path.is_dir():
                    raise RunError(f"run store {_display(u)}: {path} is a directory; "
                                   "give the path of a database file")
            else:
                kwargs["poolclass"] = StaticPool  # in-memory: one shared connection
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
        else:
            if "connect_timeout" not in u.query:
                kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S,
                                          "application_name": "surge"}
            kwargs["pool_pre_ping"] = True
        try:
            engine = create_engine(u, **kwargs)
        except (ImportError, sa_exc.NoSuchModuleError) as exc:
            raise RunError(f"run store {_display(u)} needs a database driver that is not installed "
                           f"({exc}); install it: pip install 'psycopg[binary]'") from None
        if u.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    def _migrate(self) -> None:
        # Read first: an up-to-date store is opened without taking the write lock.
        with self._guard("open"), self._engine.connect() as conn:
            current, tables = self._version(conn)
        if current == S.LATEST_VERSION:
            return
        with self._guard("open"), self._writer.begin() as conn:
            if not self._sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_ID})
            current, tables = self._version(conn)  # again: another process may have migrated
            if "schema_version" not in tables:
                S.schema_version.create(conn)
            for version, description, apply in S.MIGRATIONS:
                if version > current:
                    apply(conn)
                    conn.execute(insert(S.schema_version).values(
                        version=version, description=description, applied_at=S.utcnow()))

    def _version(self, conn: Connection) -> tuple[int, set[str]]:
        """The schema version and table names; RunError for a foreign or newer database."""
        tables = set(inspect(conn).get_table_names())
        if "schema_version" in tables:
            current = conn.execute(select(func.max(S.schema_version.c.version))).scalar() or 0
        elif tables:
            shown = ", ".join(sorted(tables)[:5])
            raise RunError(
                f"run store {self.url} is a database but not a surge run store (it has tables "
                f"{shown} and no schema_version); point --store or ${ENV_VAR} at another database"
            )
        else:
            current = 0
        if current > S.LATEST_VERSION:
            raise RunError(
                f"run store {self.url} has schema version {current}, newer than this surge "
                f"understands ({S.LATEST_VERSION}); upgrade surge (pip install -U surge) "
                f"or use another store"
            )
        return int(current), tables

    def schema_version(self) -> int:
        """The store's schema version (the latest migration applied)."""
        with self._guard("read"), self._engine.connect() as conn:
            return int(conn.execute(select(func.max(S.schema_version.c.version))).scalar() or 0)

    def close(self) -> None:
        """Release the store's connections."""
        self._engine.dispose()

    # ------------------------------------------------------------------ errors

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Turn driver errors into one-line RunErrors naming the store and the fix."""
        try:
            yield
        except (UsageError, RunError):
            raise
        except sa_exc.DBAPIError as exc:
            raise RunError(self._explain(exc, what)) from None
        except sa_exc.SQLAlchemyError as exc:
            raise RunError(f"run store {self.url}: {type(exc).__name__}: {_first_line(str(exc))}") from None

    def _explain(self, exc: sa_exc.DBAPIError, what: str) -> str:
        msg = _first_line(str(exc.orig) if exc.orig is not None else str(exc))
        low = msg.lower()
        where = f"run store {self.url}"
        env = f"--store or ${ENV_VAR}"
        if self._sqlite:
            if "not a database" in low or "malformed" in low or "corrupt" in low:
                return (f"{where} is corrupt ({msg}): move the file aside (and its -wal/-shm files) "
                        f"and re-import your run directories with `surge runs import`, or use {env}")
            if "locked" in low or "busy" in low:
                return (f"{where} is locked by another process (waited {SQLITE_BUSY_TIMEOUT_S:.0f} s): "
                        "retry when it is done; nothing was written")
            if "unable to open" in low or "readonly" in low or "read-only" in low or "disk" in low:
                return f"{where}: cannot {'open' if what == 'open' else 'write'} the file ({msg}); check the path and its permissions, or use {env}"
            return f"{where}: {msg}; check the file, or use {env}"
        if "database" in low and "does not exist" in low:
            return f"{where}: {msg}: create it (createdb NAME) or fix the URL in {env}"
        if isinstance(exc, sa_exc.OperationalError) and (
            "connect" in low or "timeout" in low or "refused" in low or "resolve" in low
            or "does not exist" in low or "authentication" in low or "password" in low
        ):
            return f"cannot reach {where} ({msg}): check the server is up and the URL in {env}"
        return f"{where}: {msg}"

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


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # the driver leaves transactions to us (see _sqlite_on_begin)
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe with WAL
    finally:
        cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("surge_write") else "BEGIN")


def _first_line(msg: str) -> str:
    line = " ".join(msg.strip().split("\n")[0].split())
    return line[:300] or "unknown error"


def _check_tags(tags: dict[str, str]) -> None:
    for k, v in tags.items():
        if not _TAG_KEY.match(str(k)):
            raise UsageError(f"tag {k!r}: a tag key is 1-100 letters, digits or _.:/- (as in --tag env=staging)")
        if len(str(v)) > 1000:
            raise UsageError(f"tag {k!r}: the value is longer than 1000 characters")


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
