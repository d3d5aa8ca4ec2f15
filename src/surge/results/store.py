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

This module opens the store (engine, SQLite pragmas, schema migration) and
turns driver errors into those messages; the rest lives beside it:
:mod:`~surge.results.store_url` (which store, URLs), :mod:`~surge.results.store_load`
(run directories into rows), :mod:`~surge.results.store_write` (recording),
:mod:`~surge.results.store_query` (reading) and :mod:`~surge.results.store_records`
(the records handed back). Import everything from here.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, func, insert, inspect, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import StaticPool

from surge.api.errors import RunError, UsageError
from surge.results import store_schema as S
from surge.results.store_load import scenario_key
from surge.results.store_records import METRICS, NameStats, RunRecord
from surge.results.store_url import (
    DEFAULT_URL,
    ENV_VAR,
    _display,
    _make_parent,
    _normalise,
    _sqlite_file,
    store_url,
)
from surge.results.store_write import StoreWrites

__all__ = [
    "DEFAULT_URL", "METRICS", "NameStats", "RunRecord", "Store", "scenario_key", "store_url",
]

SQLITE_BUSY_TIMEOUT_S = 30.0  # a writer waits this long for another one before giving up
PG_CONNECT_TIMEOUT_S = 5  # unless the URL says ?connect_timeout=N
_PG_LOCK_ID = 0x5375726765  # advisory lock serialising schema migrations ("Surge")


class Store(StoreWrites):
    """A run store; open with :meth:`Store.open`, close with :meth:`close` (or ``with``).

    Recording lives in :class:`~surge.results.store_write.StoreWrites`, reading in
    :class:`~surge.results.store_query.StoreQueries`; this class opens, migrates and
    guards.
    """

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
            read_only = False
            if path is not None:
                _make_parent(path, u)
                if path.is_dir():
                    raise RunError(f"run store {_display(u)}: {path} is a directory; "
                                   "give the path of a database file")
                read_only = _read_only(path)
            else:
                kwargs["poolclass"] = StaticPool  # in-memory: one shared connection
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
            if read_only:
                # A store on read-only media (a CI artifact, an archive): SQLite cannot create
                # the WAL's side files there, so open it immutable; writes fail cleanly.
                uri = path.resolve().as_uri() + "?mode=ro&immutable=1"
                kwargs["creator"] = lambda: sqlite3.connect(uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT_S,
                                                            check_same_thread=False)
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
            event.listen(engine, "connect", _sqlite_on_connect_ro if "creator" in kwargs else _sqlite_on_connect)
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


# --------------------------------------------------------------------------- helpers


def _enable_wal(cur: Any) -> None:
    """Switch a new database to WAL. Two processes opening a fresh store at once race for
    the switch, and SQLite answers the loser "database is locked" at once, without its busy
    timeout (test_two_processes_write_to_one_store_at_once failed 2 of 5): retry it here."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # the driver leaves transactions to us (see _sqlite_on_begin)
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys = ON")
        _enable_wal(cur)
        cur.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe with WAL
    finally:
        cur.close()


def _sqlite_on_connect_ro(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # as _sqlite_on_connect; no WAL switch on read-only media


def _read_only(path: Path) -> bool:
    """An existing SQLite file that cannot be written, or whose directory cannot (read-only media)."""
    return path.is_file() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("surge_write") else "BEGIN")


def _first_line(msg: str) -> str:
    line = " ".join(msg.strip().split("\n")[0].split())
    return line[:300] or "unknown error"
