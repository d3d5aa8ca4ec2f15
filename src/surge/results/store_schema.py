"""The run store's tables, their migrations and the compact histogram encoding.

Tables (SQLAlchemy Core, portable between SQLite and PostgreSQL)::

    schema_version  one row per applied migration (the store's version is the max)
    runs            one row per run: metadata and labels (branch, commit, environment)
    run_tags        free-form key=value tags of a run
    run_stats       per-name metric summaries of a run (plus one ``total`` row)
    run_keys        final counts and histograms per key (scenario, name, method, status)
    run_series      per-second counts and histograms per key
    run_seconds     per-second run-level figures (iterations, VUs, generator health)
    run_documents   the run directory's meta.json and summary.json as written (v2)
    baselines       the baseline run of a (branch, scenario)

Every child table is keyed by ``runs.pk`` (an integer), never by the run id
string, so rows stay small. Timestamps are stored as naive UTC.

Migrations are an ordered list: migration *n* takes a store from version n-1
to n. A migration is frozen once released: later changes to a table are new
migrations (ALTER TABLE ...), and the creating migration keeps creating the
table as it was then (copy the old definition into it when that happens).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTable

from surge.metrics.histogram import NBUCKETS, Histogram

metadata = MetaData()


def _run_fk() -> Column:
    return Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), primary_key=True)


schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", DateTime, nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(200), nullable=False, unique=True),
    # sha256 of what identifies a run (id, start, host): tells a re-import from an id clash
    Column("fingerprint", String(64), nullable=False),
    # sha256 of the files recorded: tells whether a re-import brings anything new
    Column("content_hash", String(64), nullable=False),
    Column("scenario", String(500), nullable=False),  # scenario key, see store.scenario_key()
    Column("scenario_path", Text),
    Column("scenario_sha256", String(64)),
    Column("model", String(40)),
    Column("status", String(20), nullable=False),
    Column("thresholds_passed", Boolean),  # None: the run had no thresholds
    Column("started_at", DateTime, nullable=False),
    Column("ended_at", DateTime),
    Column("duration_s", Float),
    Column("host", String(255)),
    Column("surge_version", String(40)),
    # labels: effective values (a 'branch'/'commit' tag overrides git), plus git's own
    Column("branch", String(255)),
    Column("commit", String(64)),
    Column("dirty", Boolean),
    Column("environment", String(255)),
    Column("git_branch", String(255)),
    Column("git_commit", String(64)),
    Column("argv", Text),  # JSON list
    Column("run_dir", Text),
    Column("recorded_at", DateTime, nullable=False),
)
RUNS_INDEXES = (
    Index("ix_runs_started_at", runs.c.started_at),
    Index("ix_runs_branch_started", runs.c.branch, runs.c.started_at),
    Index("ix_runs_scenario_started", runs.c.scenario, runs.c.started_at),
)

run_tags = Table(
    "run_tags", metadata,
    _run_fk(),
    Column("key", String(255), primary_key=True),
    Column("value", String(1000), nullable=False),
)

_STAT_COLS = ("min", "mean", "p50", "p90", "p95", "p99", "p99_9", "max")

run_stats = Table(
    "run_stats", metadata,
    _run_fk(),
    Column("ordinal", Integer, primary_key=True, autoincrement=False),  # 0 = total
    Column("total", Boolean, nullable=False),
    Column("scenario", String(255), nullable=False),
    Column("name", Text, nullable=False),
    Column("method", String(20), nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("error_rate", Float, nullable=False),
    Column("rps", Float, nullable=False),
    Column("bytes_in", BigInteger, nullable=False),
    *[Column(f"lat_{c}", Float) for c in _STAT_COLS],  # ms, latency from the intended start
    *[Column(f"svc_{c}", Float) for c in _STAT_COLS],  # ms, service time from the send
)

run_keys = Table(
    "run_keys", metadata,
    _run_fk(),
    Column("key_no", Integer, primary_key=True, autoincrement=False),
    Column("scenario", String(255), nullable=False),
    Column("name", Text, nullable=False),
    Column("method", String(20), nullable=False),
    Column("status", String(8), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("errors", Text),  # JSON {label: count}, NULL when none
    Column("bytes_in", BigInteger, nullable=False),
    Column("hists", LargeBinary, nullable=False),  # pack_hists(latency, service, ttfb)
)

run_series = Table(
    "run_series", metadata,
    _run_fk(),
    Column("second", Integer, primary_key=True, autoincrement=False),
    Column("key_no", Integer, primary_key=True, autoincrement=False),
    Column("count", BigInteger, nullable=False),
    Column("error_count", BigInteger, nullable=False),
    Column("errors", Text),  # JSON {label: count}, NULL when none
    Column("bytes_in", BigInteger, nullable=False),
    Column("hists", LargeBinary, nullable=False),
)

run_seconds = Table(
    "run_seconds", metadata,
    _run_fk(),
    Column("second", Integer, primary_key=True, autoincrement=False),
    Column("iterations", BigInteger, nullable=False),
    Column("started", BigInteger, nullable=False),
    Column("dropped", BigInteger, nullable=False),
    Column("target_rate", Float, nullable=False),
    Column("vus", Integer, nullable=False),
    # JSON: iteration_errors, checks, cpu, loop_lag_ms, sched_lag_p99_ms (the rare or per-worker parts)
    Column("extra", Text, nullable=False),
)

baselines = Table(
    "baselines", metadata,
    Column("branch", String(255), primary_key=True),
    Column("scenario", String(500), primary_key=True),
    Column("run_pk", Integer, ForeignKey("runs.pk", ondelete="CASCADE"), nullable=False),
    Column("set_at", DateTime, nullable=False),
)

run_documents = Table(
    "run_documents", metadata,
    _run_fk(),
    Column("meta", Text, nullable=False),  # meta.json
    Column("summary", Text),  # summary.json (NULL: the run dir had none)
)
TAGS_INDEX = Index("ix_run_tags_key_value", run_tags.c.key, run_tags.c.value)

# Children of a run, in the order they are deleted.
CHILD_TABLES = (run_series, run_seconds, run_keys, run_stats, run_tags, run_documents, baselines)


# --------------------------------------------------------------------------- migrations


def _v1(conn: Connection) -> None:
    # CreateTable, not Table.create: the latter would also create indexes added by later versions.
    for t in (runs, run_tags, run_stats, run_keys, run_series, run_seconds, baselines):
        conn.execute(CreateTable(t))
    for ix in RUNS_INDEXES:
        ix.create(conn)


def _v2(conn: Connection) -> None:
    conn.execute(CreateTable(run_documents))
    TAGS_INDEX.create(conn)


# (version, description, apply); never reorder or edit a released entry.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "runs, tags, per-name stats, histograms, series, baselines", _v1),
    (2, "run documents (meta.json, summary.json); index on tags", _v2),
]
LATEST_VERSION = MIGRATIONS[-1][0]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# --------------------------------------------------------------------------- histogram blobs

_BLOB_VERSION = 1
_HEAD = struct.Struct("<qqqqIB")  # count, sum_ns, min_ns (-1: none), max_ns (-1: none), nnz, width
_DTYPES = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4"), 8: np.dtype("<i8")}


def _pack_one(h: Histogram) -> bytes:
    nz = np.flatnonzero(h.counts)
    vals = h.counts[nz]
    top = int(vals.max()) if vals.size else 0
    width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4 if top < 1 << 32 else 8
    deltas = np.diff(nz, prepend=0).astype("<u2")  # NBUCKETS < 2**16
    head = _HEAD.pack(
        h.count, h.sum_ns,
        -1 if h.min_ns is None else h.min_ns, -1 if h.max_ns is None else h.max_ns,
        nz.size, width,
    )
    return head + deltas.tobytes() + vals.astype(_DTYPES[width]).tobytes()


def pack_hists(hists: Sequence[Histogram]) -> bytes:
    """Histograms as one compact blob: sparse buckets (delta-coded indices), zlib'd.

    A second's latency/service/ttfb histograms take a few hundred bytes; the
    dense text form (:meth:`Histogram.encode`) is several times larger.
    """
    return bytes([_BLOB_VERSION]) + zlib.compress(b"".join(_pack_one(h) for h in hists), 6)


def unpack_hists(blob: bytes) -> list[Histogram]:
    """Inverse of :func:`pack_hists`; ValueError when the blob is not one."""
    try:
        blob = bytes(blob)
        if not blob or blob[0] != _BLOB_VERSION:
            raise ValueError(f"unknown histogram blob version {blob[:1]!r}")
        raw = zlib.decompress(blob[1:])
        out, off = [], 0
        while off < len(raw):
            count, total, lo, hi, nnz, width = _HEAD.unpack_from(raw, off)
            off += _HEAD.size
            deltas = np.frombuffer(raw, dtype="<u2", count=nnz, offset=off)
            off += 2 * nnz
            vals = np.frombuffer(raw, dtype=_DTYPES[width], count=nnz, offset=off)
            off += width * nnz
            idx = np.cumsum(deltas, dtype=np.int64)
            if nnz and idx[-1] >= NBUCKETS:
                raise ValueError("bucket index out of range")
            h = Histogram()
            h.counts[idx] = vals
            h.count, h.sum_ns = count, total
            h.min_ns = None if lo < 0 else lo
            h.max_ns = None if hi < 0 else hi
            out.append(h)
        return out
    except (zlib.error, struct.error, KeyError, IndexError) as exc:
        raise ValueError(f"corrupt histogram blob: {exc}") from None
