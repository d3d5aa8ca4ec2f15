"""nginx / Apache access logs: the *combined* and *common* log formats.

common:   ``host ident user [time] "request" status bytes``
combined: common + ``"referer" "user-agent"`` (nginx's default ``combined``)

The bracketed time may be ``$time_local`` (``10/Oct/2000:13:55:36 -0700``, 1 s
resolution), ``$time_iso8601``, or ``$msec`` (``1700000000.123``, epoch seconds
with milliseconds). For sub-second timing, log ``[$msec]`` in place of
``[$time_local]``::

    log_format surge '$remote_addr - $remote_user [$msec] "$request" '
                     '$status $body_bytes_sent "$http_referer" "$http_user_agent"';

Fields after the user agent (``$request_time``, upstream times) are ignored.
"""

from __future__ import annotations

import re
from datetime import datetime

from surge.traffic.record import LogRecord

_QUOTED = r'"([^"\\]*(?:\\.[^"\\]*)*)"'  # a quoted field with \" escapes, unrolled (no backtracking)
LINE = re.compile(
    r"(\S+) \S+ \S+ \[([^\]]+)\] " + _QUOTED + r" (\d{3}|-) (\d+|-)"
    r"(?: " + _QUOTED + " " + _QUOTED + r")?"
)
_EPOCH = re.compile(r"\d{9,11}(?:\.\d+)?")


class BadLine(ValueError):
    """A line that does not match the format; ``str()`` says why."""


class BadRequest(ValueError):
    """A log line whose request field is not ``METHOD TARGET [PROTOCOL]`` (e.g. a TLS probe)."""


class TimeParser:
    """Parses log timestamps into epoch seconds, caching the last text (lines come in order)."""

    def __init__(self) -> None:
        self._last: tuple[str, float] = ("", 0.0)

    def __call__(self, text: str) -> float:
        if text == self._last[0]:
            return self._last[1]
        value = parse_time(text)
        self._last = (text, value)
        return value


def parse_time(text: str) -> float:
    """``10/Oct/2000:13:55:36 -0700``, ISO-8601, or epoch seconds -> epoch s (float)."""
    if _EPOCH.fullmatch(text):
        return float(text)
    try:
        return datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z").timestamp()
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadLine(f"unreadable time {text!r}") from None
    return dt.timestamp()


def _unescape(s: str) -> str:
    return s.replace('\\"', '"').replace("\\\\", "\\") if "\\" in s else s


def parse_line(line: str, number: int, times: TimeParser) -> LogRecord:
    """One combined/common line -> LogRecord; raises BadLine or BadRequest."""
    m = LINE.match(line)
    if m is None:
        raise BadLine("does not match the combined/common log format")
    client, when, request, status, _, _referer, ua = m.groups()
    parts = _unescape(request).split(" ")
    if len(parts) not in (2, 3) or not parts[0].isalpha() or not parts[1]:
        raise BadRequest(f"request {request[:60]!r} is not 'METHOD /path HTTP/x'")
    return LogRecord(
        time=times(when), method=parts[0].upper(), target=parts[1],
        status=None if status == "-" else int(status), client=client,
        user_agent=_unescape(ua) if ua and ua != "-" else "", line=number,
    )


def looks_like(line: str) -> str | None:
    """'combined' or 'common' when ``line`` is in that format, else None (for detection)."""
    m = LINE.match(line)
    if m is None:
        return None
    return "combined" if m.group(7) is not None else "common"


__all__ = ["BadLine", "BadRequest", "TimeParser", "looks_like", "parse_line", "parse_time"]
