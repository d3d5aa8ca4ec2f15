"""Run store URLs: which store to use, how it is written, and how it is shown.

``store_url`` picks --store, ``$SURGE_STORE`` or the default; the helpers here
normalise a URL (a plain path is a SQLite file; ``postgresql://`` gets the
psycopg driver), hide its password for messages, and find and create the
directory of a SQLite file. Part of :mod:`surge.results.store`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from surge.api.errors import RunError, UsageError

DEFAULT_URL = "sqlite:///.surge/surge.db"
ENV_VAR = "SURGE_STORE"


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
    elif backend == "sqlite":
        if url.host or url.port or url.username or url.password:
            # sqlite://relative names a host, not a file: SQLAlchemy refuses it only on connect
            raise UsageError(
                f"{source} {_display(url)} is not a SQLite URL: a SQLite file needs three slashes, "
                "sqlite:///relative/path.db (four for an absolute one: sqlite:////abs/path.db)"
            )
    else:
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
        # click fills --store from $SURGE_STORE too: name both when they agree
        raw, source = explicit, ("--store" if os.environ.get(ENV_VAR) != explicit else f"--store/${ENV_VAR}")
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
