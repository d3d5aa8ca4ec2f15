"""Test data for scenarios: rows from CSV, JSON or JSONL files, handed out by a strategy.

::

    users = Feeder.csv("users.csv", strategy="unique", columns=["user", "password"])

    async def login(client, vu):
        row = users.next()            # {"user": "...", "password": "..."}

Files are read when the feeder is created, that is when the scenario module is
imported: a missing file, a missing column or a malformed line stops ``surge
run`` before any load, with one line naming the file and line. Each worker
process imports the scenario, so each holds its own copy of the rows and its own
cursor; nothing is shared between workers at run time. How each strategy
behaves across workers (docs/data.md has the table):

- ``sequential``: file order, one pass, per worker (every worker starts at row 0).
- ``circular``: file order, wrapping; worker ``w`` of ``N`` starts at row ``w*len/N``.
- ``random``: independent draws with replacement, seeded per worker.
- ``shuffle``: each pass a fresh random order; every row once per pass, per worker.
- ``unique``: each row at most once in the whole run: worker ``w`` of ``N`` takes
  rows ``w, w+N, w+2N, ...`` (disjoint by construction).

A feeder that runs out (``sequential``, ``unique``) raises :class:`FeederExhausted`.
"""

from __future__ import annotations

import csv
import json as _json
import random
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from surge.api.context import WorkerInfo, current_worker
from surge.api.errors import SurgeError, UsageError

STRATEGIES = ("sequential", "circular", "random", "shuffle", "unique")
_UNSET = object()


class FeederExhausted(SurgeError):
    """A ``sequential`` or ``unique`` feeder has no row left for this draw.

    Raised from :meth:`Feeder.next` (or :meth:`Feeder.for_vu`) inside an
    iteration, it ends that iteration and is counted under its type name; in a
    closed model (VUs) the VU that hit it stops, so a run out of data does not
    spin through empty iterations.
    """


class Feeder:
    """Rows of test data and the order in which ``next()`` hands them out.

    Args:
        rows: the rows, each a mapping of column name to value.
        strategy: one of :data:`STRATEGIES` (default ``"sequential"``).
        columns: column names every row must have; a missing one is a UsageError.
        seed: fixes the ``random``/``shuffle`` order; by default it derives from
            the run's ``--seed`` and the worker index.
        name: how messages refer to this feeder (the file path for file feeders).
    """

    def __init__(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        strategy: str = "sequential",
        columns: Sequence[str] | None = None,
        seed: int | None = None,
        name: str = "feeder",
    ) -> None:
        if strategy not in STRATEGIES:
            raise UsageError(f"unknown feeder strategy {strategy!r} for {name}: use one of {', '.join(STRATEGIES)}")
        self.name = name
        self.strategy = strategy
        self.seed = seed
        self.rows: tuple[dict[str, Any], ...] = tuple(dict(r) for r in rows)
        if not self.rows:
            raise UsageError(f"feeder {name} has no rows: give it at least one")
        if columns:
            for i, row in enumerate(self.rows):
                _require_columns(name, f"row {i + 1}", row, columns)
        self._info: object = _UNSET  # the WorkerInfo the cursor was set up for
        self._draw: Any = None

    # -- loading -------------------------------------------------------------------
    @classmethod
    def csv(
        cls,
        path: str | Path,
        *,
        strategy: str = "sequential",
        columns: Sequence[str] | None = None,
        seed: int | None = None,
        delimiter: str = ",",
        encoding: str = "utf-8-sig",
    ) -> Feeder:
        """Rows of a CSV file whose first line is the header (values are strings).

        A relative ``path`` is resolved against the directory of the file that
        calls this (the scenario file), not the current directory.
        """
        p = _resolve(path)
        text = _read(p, encoding)
        reader = csv.reader(text.splitlines(), delimiter=delimiter, strict=True)
        header: list[str] | None = None
        rows: list[dict[str, str]] = []
        try:
            for fields in reader:
                if not fields or fields == [""]:
                    continue  # blank lines carry no row
                if header is None:
                    header = [f.strip() for f in fields]
                    dup = sorted({h for h in header if header.count(h) > 1})
                    if dup:
                        raise UsageError(f"feeder file {p} line {reader.line_num}: duplicate column(s) "
                                         f"{', '.join(dup)} in the header: give each column its own name")
                    if columns:
                        _require_columns(str(p), f"line {reader.line_num} (the header)", dict.fromkeys(header), columns)
                    continue
                if len(fields) != len(header):
                    raise UsageError(
                        f"feeder file {p} line {reader.line_num}: {len(fields)} field(s) where the header has "
                        f"{len(header)}: fix the line, or quote values that contain {delimiter!r}")
                rows.append(dict(zip(header, fields, strict=True)))
        except csv.Error as exc:
            raise UsageError(f"feeder file {p} line {reader.line_num}: malformed CSV ({exc}): fix the line") from None
        if header is None:
            raise UsageError(f"feeder file {p} is empty: put a header row and at least one data row in it")
        if not rows:
            raise UsageError(f"feeder file {p} has a header but no data rows: add at least one row below line 1")
        return cls(rows, strategy=strategy, seed=seed, name=str(p))

    @classmethod
    def json(
        cls,
        path: str | Path,
        *,
        strategy: str = "sequential",
        columns: Sequence[str] | None = None,
        seed: int | None = None,
        encoding: str = "utf-8-sig",
    ) -> Feeder:
        """Rows of a JSON file holding an array of objects (relative paths as in :meth:`csv`)."""
        p = _resolve(path)
        text = _read(p, encoding)
        if not text.strip():
            raise UsageError(f"feeder file {p} is empty: put a JSON array of objects in it, e.g. [{{\"user\": \"a\"}}]")
        try:
            data = _json.loads(text)
        except ValueError as exc:
            raise UsageError(f"feeder file {p} line {getattr(exc, 'lineno', '?')}: invalid JSON "
                             f"({getattr(exc, 'msg', exc)}): fix the file") from None
        if not isinstance(data, list):
            raise UsageError(f"feeder file {p}: the JSON is a {type(data).__name__}, not an array: "
                             "a feeder needs an array of objects, e.g. [{\"user\": \"a\"}]")
        if not data:
            raise UsageError(f"feeder file {p} holds an empty array: add at least one object")
        for i, item in enumerate(data):
            where = f"item {i} of the array"
            if not isinstance(item, dict):
                raise UsageError(f"feeder file {p}, {where}: a {type(item).__name__}, not an object: "
                                 "every item must be an object such as {\"user\": \"a\"}")
            if columns:
                _require_columns(str(p), where, item, columns)
        return cls(data, strategy=strategy, seed=seed, name=str(p))

    @classmethod
    def jsonl(
        cls,
        path: str | Path,
        *,
        strategy: str = "sequential",
        columns: Sequence[str] | None = None,
        seed: int | None = None,
        encoding: str = "utf-8-sig",
    ) -> Feeder:
        """Rows of a JSON Lines file: one object per line, blank lines skipped."""
        p = _resolve(path)
        rows: list[dict[str, Any]] = []
        for n, line in enumerate(_read(p, encoding).splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = _json.loads(line)
            except ValueError as exc:
                raise UsageError(f"feeder file {p} line {n}: invalid JSON ({getattr(exc, 'msg', exc)}): "
                                 "each line must be one JSON object") from None
            if not isinstance(item, dict):
                raise UsageError(f"feeder file {p} line {n}: a {type(item).__name__}, not an object: "
                                 "each line must be one JSON object such as {\"user\": \"a\"}")
            if columns:
                _require_columns(str(p), f"line {n}", item, columns)
            rows.append(item)
        if not rows:
            raise UsageError(f"feeder file {p} is empty: put one JSON object per line in it")
        return cls(rows, strategy=strategy, seed=seed, name=str(p))

    # -- drawing -------------------------------------------------------------------
    def next(self) -> dict[str, Any]:
        """The next row (a fresh dict) by this feeder's strategy.

        Raises:
            FeederExhausted: a ``sequential`` feeder finished its pass, or a
                ``unique`` one used this worker's share of the rows.
        """
        if current_worker.get() is not self._info:
            self._start()
        return dict(self.rows[self._draw()])

    def for_vu(self, vu: Any) -> dict[str, Any]:
        """The row that belongs to ``vu`` for the whole run: row ``vu.id - 1``.

        VU ids are unique across workers, so no two VUs share a row (one account
        per VU). Raises :class:`FeederExhausted` when there are more VUs than rows.
        """
        i = vu.id - 1
        if i >= len(self.rows):
            raise FeederExhausted(f"feeder {self.name} has {len(self.rows)} row(s), too few for VU {vu.id}: "
                                  "add rows or run fewer VUs")
        return dict(self.rows[i])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"Feeder({self.name!r}, strategy={self.strategy!r}, rows={len(self.rows)})"

    def _start(self) -> None:
        """Set up the cursor for the worker we are drawn in: at the first draw, and
        again if the worker context changes (a feeder reused across test runs)."""
        info = self._info = current_worker.get()
        if info is None:
            info = WorkerInfo()
        n, w, count = len(self.rows), info.index, max(info.count, 1)
        seed = self.seed if self.seed is not None else info.seed
        # A string seed hashes with SHA-512: the same stream in every process.
        rng = random.Random(f"surge-feeder:{seed}:{w}:{self.name}")
        self._draw = _STRATEGY[self.strategy](self, n, w, count, rng)

    # Each strategy returns a closure: one call per draw, no branching on the strategy.
    def _sequential(self, n: int, w: int, count: int, rng: random.Random):
        k = 0

        def draw() -> int:
            nonlocal k
            if k >= n:
                raise FeederExhausted(f"feeder {self.name} (sequential) used all {n} row(s) in worker {w}: "
                                      "add rows, run fewer iterations, or use strategy='circular'")
            k += 1
            return k - 1

        return draw

    def _circular(self, n: int, w: int, count: int, rng: random.Random):
        k = w * n // count  # spread the workers over the file instead of all at row 0

        def draw() -> int:
            nonlocal k
            i = k % n
            k += 1
            return i

        return draw

    def _random(self, n: int, w: int, count: int, rng: random.Random):
        def draw() -> int:
            return rng.randrange(n)

        return draw

    def _shuffle(self, n: int, w: int, count: int, rng: random.Random):
        order: list[int] = []

        def draw() -> int:
            if not order:
                order.extend(range(n))
                rng.shuffle(order)
                order.reverse()  # pop() from the end is O(1); the order stays uniformly random
            return order.pop()

        return draw

    def _unique(self, n: int, w: int, count: int, rng: random.Random):
        k = 0
        share = unique_share(n, w, count)

        def draw() -> int:
            nonlocal k
            i = unique_index(k, w, count)
            if i >= n:
                raise FeederExhausted(
                    f"feeder {self.name} (unique) ran out: worker {w} of {count} used its {share} of {n} row(s); "
                    "add rows or run fewer iterations")
            k += 1
            return i

        return draw


def unique_index(k: int, worker: int, workers: int) -> int:
    """Row index of the ``k``-th unique draw (0-based) in worker ``worker`` of ``workers``.

    Workers take rows ``w, w+N, w+2N, ...``: disjoint sets whose union is every row.
    """
    return worker + k * workers


def unique_share(n: int, worker: int, workers: int) -> int:
    """How many of ``n`` rows worker ``worker`` of ``workers`` gets with the ``unique`` strategy."""
    return max(0, (n - worker + workers - 1) // workers)


_STRATEGY = {
    "sequential": Feeder._sequential,
    "circular": Feeder._circular,
    "random": Feeder._random,
    "shuffle": Feeder._shuffle,
    "unique": Feeder._unique,
}


def _require_columns(name: str, where: str, row: Mapping[str, Any], columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in row]
    if missing:
        have = ", ".join(map(str, row)) or "nothing"
        raise UsageError(f"feeder file {name} {where}: missing column(s) {', '.join(missing)} (found {have}): "
                         "add them to the file or fix columns=[...]")


def _resolve(path: str | Path) -> Path:
    """``path`` as given when absolute; else relative to the calling scenario file's directory."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        # Two frames up: past Feeder.csv/json/jsonl to the scenario module that called it.
        caller = sys._getframe(2).f_globals.get("__file__")
        base = Path(caller).resolve().parent if caller else Path.cwd()
        p = base / p
    return p


def _read(p: Path, encoding: str) -> str:
    try:
        return p.read_text(encoding=encoding)
    except FileNotFoundError:
        raise UsageError(f"feeder file {p} not found: check the path (a relative path is resolved "
                         "against the scenario file's directory)") from None
    except IsADirectoryError:
        raise UsageError(f"feeder file {p} is a directory: give a .csv, .json or .jsonl file") from None
    except UnicodeDecodeError as exc:
        line = p.read_bytes()[: exc.start].count(b"\n") + 1
        raise UsageError(f"feeder file {p} line {line}: not valid {encoding} text: "
                         "save it as UTF-8 or pass encoding=...") from None
    except OSError as exc:
        raise UsageError(f"feeder file {p} cannot be read: {exc.strerror or exc}") from None
