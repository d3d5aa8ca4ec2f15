"""Open a log, detect its format, and stream its requests in bounded memory.

::

    log = open_log("access.log")             # format detected from the first lines
    for rec in log:                           # LogRecord, one at a time
        ...
    log.stats.malformed, log.stats.examples   # what could not be read, with up to 5 examples

Line formats (combined, common, JSON lines) are read line by line, so a
multi-GB log needs no more memory than its longest line; ``.gz`` files are
decompressed on the fly. Malformed lines are counted, never fatal. A log with
no readable request is a :class:`~surge.api.errors.UsageError` naming the file.
"""

from __future__ import annotations

import gzip
import io
import math
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from surge.api.errors import UsageError
from surge.api.http_syntax import is_token
from surge.traffic import clf, har, jsonl
from surge.traffic.clf import BadLine, BadRequest
from surge.traffic.record import LogRecord

FORMATS = ("combined", "common", "jsonl", "har")
MAX_EXAMPLES = 5
DETECT_LINES = 20  # non-empty lines looked at to detect the format


@dataclass
class ReadStats:
    """What reading a log found. ``examples`` are (line number, text) of malformed lines."""

    path: str
    format: str
    lines: int = 0  # non-empty lines (or HAR entries) seen
    parsed: int = 0
    malformed: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> count (readable but not replayable)
    examples: list[tuple[int, str]] = field(default_factory=list)

    def bad(self, number: int, text: str, why: str) -> None:
        self.malformed += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append((number, f"{text[:200]}  ({why})"))

    def as_dict(self) -> dict:
        return {"path": self.path, "format": self.format, "lines": self.lines, "parsed": self.parsed,
                "malformed": self.malformed, "skipped": dict(self.skipped),
                "examples": [{"line": n, "text": t} for n, t in self.examples]}

    def report_lines(self) -> list[str]:
        """Human lines about what was not read (empty when everything was)."""
        out = []
        if self.malformed:
            out.append(f"{self.malformed} malformed line(s) in {self.path} ignored, e.g.:")
            out += [f"  line {n}: {t}" for n, t in self.examples]
        for why, n in sorted(self.skipped.items()):
            out.append(f"{n} request(s) skipped: {why}")
        return out


def _open_bytes(path: Path) -> IO[bytes]:
    """``path`` for reading, decompressed when it ends in .gz."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _open_text(path: Path) -> IO[str]:
    raw = _open_bytes(path)
    # Logs are mostly ASCII; odd bytes (binary probes) must not stop the read. utf-8-sig:
    # a byte-order mark (Windows editors) is not part of the first line's client address.
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline=None)


def detect_format(path: Path) -> str | None:
    """The format of ``path`` from its first lines, or None when it is none of :data:`FORMATS`."""
    with _open_text(path) as f:
        head = f.read(8192)
    if har.looks_like(head):
        return "har"
    votes: Counter = Counter()
    for line in [ln for ln in head.splitlines() if ln.strip()][:DETECT_LINES]:
        if jsonl.looks_like(line):
            votes["jsonl"] += 1
        elif kind := clf.looks_like(line):
            votes[kind] += 1
    if not votes:
        return None
    best = votes.most_common(1)[0][0]
    # One combined line among common ones still means combined (same parser, more fields).
    return "combined" if best == "common" and votes["combined"] else best


class LogSource:
    """An opened log: iterate it for :class:`LogRecord` values; ``stats`` fills in as it goes.

    Iterating again re-reads the file (each pass starts fresh statistics).
    """

    def __init__(self, path: Path, fmt: str, fields: dict[str, str] | None = None) -> None:
        self.path, self.format, self.fields = path, fmt, fields or {}
        self.stats = ReadStats(str(path), fmt)

    def __repr__(self) -> str:
        return f"<LogSource {self.path} format={self.format}>"

    def __iter__(self) -> Iterator[LogRecord]:
        self.stats = ReadStats(str(self.path), self.format)
        if self.format == "har":
            yield from self._har()
        else:
            yield from self._lines()
        if self.stats.parsed == 0:
            raise UsageError(self._nothing_read())

    def _nothing_read(self) -> str:
        s = self.stats
        if s.lines == 0:
            return f"log {self.path} is empty: give a log with at least one request"
        first = f"; first problem: line {s.examples[0][0]}: {s.examples[0][1]}" if s.examples else ""
        skipped = f"; {sum(s.skipped.values())} skipped ({', '.join(s.skipped)})" if s.skipped else ""
        hint = " (map fields with --field time=KEY,path=KEY)" if self.format == "jsonl" else \
            " (is --format right? supported: " + ", ".join(FORMATS) + ")"
        return f"no readable request in {self.path} as {self.format}: {s.lines} line(s){skipped}{first}{hint}"

    def _lines(self) -> Iterator[LogRecord]:
        s = self.stats
        if self.format == "jsonl":
            parse_json = jsonl.JsonLinesParser(self.fields)

            def parse(line: str, n: int) -> LogRecord:
                return parse_json(line, n)
        else:
            times = clf.TimeParser()

            def parse(line: str, n: int) -> LogRecord:
                return clf.parse_line(line, n, times)

        try:
            yield from self._parsed_lines(parse)
        except (EOFError, OSError, zlib.error) as exc:  # a .gz cut short, a disk error
            raise UsageError(f"log {self.path} is truncated or corrupt after line {s.lines}: {exc}; "
                             "give the whole file (gzip -t checks a .gz)") from None

    def _parsed_lines(self, parse) -> Iterator[LogRecord]:
        s = self.stats
        with _open_text(self.path) as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                s.lines += 1
                try:
                    rec = checked(parse(line, n))
                except BadRequest:
                    s.skipped["not an HTTP request line"] += 1
                    continue
                except BadLine as exc:
                    s.bad(n, line, str(exc))
                    continue
                except (TypeError, ValueError, OverflowError) as exc:  # a value no reader expected
                    s.bad(n, line, f"unreadable value ({exc})")
                    continue
                s.parsed += 1
                yield rec

    def _har(self) -> Iterator[LogRecord]:
        s = self.stats
        try:
            entries = list(har.read_entries(self.path))
        except (EOFError, OSError, zlib.error) as exc:
            raise UsageError(f"cannot read {self.path}: it is truncated or corrupt ({exc})") from None
        except BadLine as exc:
            raise UsageError(f"cannot read {self.path} as HAR: {exc}; export it from the browser's "
                             "network panel ('Save all as HAR')") from None
        for n, entry in entries:
            s.lines += 1
            try:
                rec = checked(har.parse_entry(entry, n))
            except har.Skip as exc:
                s.skipped[str(exc)] += 1
                continue
            except BadLine as exc:
                s.bad(n, str(entry)[:200], str(exc))
                continue
            except (TypeError, ValueError, OverflowError) as exc:  # e.g. a postData text that is a number
                s.bad(n, str(entry)[:200], f"unreadable value ({exc})")
                continue
            s.parsed += 1
            yield rec


# s since the epoch: a time beyond this (the year 5138) is not a clock, it is a broken field.
MAX_EPOCH_S = 1e11


def checked(rec: LogRecord) -> LogRecord:
    """``rec`` if it can be modelled and sent as logged; else BadLine (the line is counted as
    malformed). NaN and 1e300 times reached numpy as a traceback or a terabyte allocation;
    a method, target or header the client refuses to send made every replayed request an
    iteration error, with 0 requests sent and exit 0."""
    t = rec.time
    if not math.isfinite(t) or abs(t) > MAX_EPOCH_S:
        raise BadLine(f"time {t!r} is not a usable timestamp")
    if not is_token(rec.method):
        raise BadLine(f"method {rec.method[:40]!r} is not an HTTP method")
    if any(c in rec.target for c in " \t\r\n"):
        raise BadLine(f"request target {rec.target[:60]!r} contains whitespace")
    for name, value in rec.headers:
        if not is_token(name) or "\r" in value or "\n" in value:
            raise BadLine(f"header {name[:40]!r} cannot be sent as logged (a line break, or not a header name)")
    return rec


def _is_utf16(path: Path) -> bool:
    """True when ``path`` starts with a UTF-16 byte-order mark (Windows "Unicode" text)."""
    with _open_bytes(path) as f:
        return f.read(2) in (b"\xff\xfe", b"\xfe\xff")


def open_log(path: str | Path, fmt: str | None = None, fields: dict[str, str] | None = None) -> LogSource:
    """Open ``path`` as ``fmt`` (one of :data:`FORMATS`; detected when None).

    Raises UsageError for a missing or empty file, an unknown ``fmt``, or a file
    in none of the supported formats.
    """
    p = Path(path)
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"unknown log format {fmt!r}: supported are {', '.join(FORMATS)}")
    if p.exists() and not p.is_file():
        raise UsageError(f"{p} is not a regular file: give the path of an access log, JSON-lines log or HAR file")
    if not p.is_file():
        raise UsageError(f"log file {p} not found: give the path of an access log, JSON-lines log or HAR file")
    try:
        empty = p.stat().st_size == 0
        if not empty and _is_utf16(p):
            raise UsageError(f"log {p} is UTF-16 text: convert it to UTF-8 first, e.g. "
                             f"iconv -f UTF-16 -t UTF-8 {p} > {p.stem}.utf8{p.suffix}")
        if not empty and fmt is None:
            fmt = detect_format(p)
    except (OSError, EOFError) as exc:
        raise UsageError(f"cannot read log file {p}: {exc}") from None
    if empty:
        raise UsageError(f"log {p} is empty: give a log with at least one request")
    if fmt is None:
        raise UsageError(
            f"cannot tell the format of {p}: supported are {', '.join(FORMATS)} "
            "(nginx/Apache combined or common, JSON lines, HAR); name it with --format"
        )
    if fields and fmt != "jsonl":
        raise UsageError(f"--field applies to JSON-lines logs, but {p} is read as {fmt}; drop --field or use --format jsonl")
    return LogSource(p, fmt, fields)


__all__ = ["FORMATS", "LogSource", "ReadStats", "detect_format", "open_log"]
