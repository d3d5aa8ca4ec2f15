"""JSON-lines logs: one JSON object per line, fields named by a mapping.

``--field time=ts,method=verb,path=url,status=code,client=ip`` says which key
holds what; dotted keys reach into nested objects (``http.method``). Fields not
mapped are looked up under common names (``time``/``timestamp``/``@timestamp``,
``method``, ``path``/``url``/``uri``, ...). Instead of method + path a log may
have one ``request`` field holding ``"GET /path HTTP/1.1"``.

Times may be ISO-8601 strings or epoch numbers in s, ms or us (told apart by
magnitude: anything above 1e11 is taken as ms, above 1e14 as us).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from surge.api.errors import UsageError
from surge.traffic.clf import BadLine, BadRequest
from surge.traffic.record import LogRecord

FIELDS = ("time", "method", "path", "status", "client", "user_agent", "session", "request")
DEFAULT_NAMES: dict[str, tuple[str, ...]] = {
    "time": ("time", "timestamp", "@timestamp", "ts", "time_local", "msec", "datetime", "date"),
    "method": ("method", "verb", "request_method", "http_method"),
    "path": ("path", "url", "uri", "request_uri", "target"),
    "status": ("status", "status_code", "code", "response_code"),
    "client": ("client", "ip", "remote_addr", "client_ip", "remote_ip", "host"),
    "user_agent": ("user_agent", "ua", "http_user_agent", "agent", "useragent"),
    "session": ("session", "session_id", "sid"),
    "request": ("request",),
}


def parse_mapping(text: str | None) -> dict[str, str]:
    """``"time=ts,method=verb"`` -> ``{"time": "ts", "method": "verb"}`` (checked)."""
    out: dict[str, str] = {}
    for part in [p.strip() for p in (text or "").split(",") if p.strip()]:
        k, sep, v = part.partition("=")
        k = k.strip().replace("-", "_")
        if not sep or not v.strip():
            raise UsageError(f"invalid --field {part!r}: write FIELD=KEY, e.g. --field time=ts,path=url")
        if k not in FIELDS:
            raise UsageError(f"unknown --field {k!r}: choose from {', '.join(FIELDS)}")
        out[k] = v.strip()
    return out


def _get(obj: Mapping[str, Any], key: str) -> Any:
    if key in obj:
        return obj[key]
    cur: Any = obj
    for part in key.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def epoch_seconds(value: Any) -> float:
    """An epoch number (s, ms or us by magnitude) or ISO-8601 string -> epoch s."""
    if isinstance(value, bool):
        raise BadLine(f"unreadable time {value!r}")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise BadLine(f"unreadable time {value!r} (use ISO-8601 or epoch s/ms)") from None
    if isinstance(value, int | float):
        v = float(value)
        return v / 1e6 if v > 1e14 else v / 1e3 if v > 1e11 else v
    raise BadLine(f"unreadable time {value!r}")


class JsonLinesParser:
    """Parses lines of one JSON-lines log with a fixed field mapping."""

    def __init__(self, mapping: dict[str, str] | None = None) -> None:
        self.mapping = dict(mapping or {})

    def _value(self, obj: Mapping[str, Any], field: str) -> Any:
        key = self.mapping.get(field)
        if key is not None:
            return _get(obj, key)
        for name in DEFAULT_NAMES[field]:
            if name in obj:
                return obj[name]
        return None

    def __call__(self, line: str, number: int) -> LogRecord:
        try:
            obj = json.loads(line)
        except ValueError:
            raise BadLine("not valid JSON") from None
        if not isinstance(obj, dict):
            raise BadLine("not a JSON object")
        when = self._value(obj, "time")
        if when is None:
            raise BadLine(f"no time field (map it with --field time=KEY; keys here: {', '.join(list(obj)[:8])})")
        method, path = self._value(obj, "method"), self._value(obj, "path")
        if path is None and (req := self._value(obj, "request")) is not None:
            parts = str(req).split(" ")
            if len(parts) not in (2, 3):
                raise BadRequest(f"request {str(req)[:60]!r} is not 'METHOD /path HTTP/x'")
            method, path = parts[0], parts[1]
        if path is None:
            raise BadLine(f"no path field (map it with --field path=KEY; keys here: {', '.join(list(obj)[:8])})")
        path = str(path)
        if "://" in path:  # a full URL: keep path + query
            rest = path.split("://", 1)[1]
            slash = rest.find("/")
            path = rest[slash:] if slash >= 0 else "/"
        status = self._value(obj, "status")
        try:
            status = int(status) if status not in (None, "", "-") else None
        except (TypeError, ValueError):
            status = None
        ua = self._value(obj, "user_agent")
        sess = self._value(obj, "session")
        return LogRecord(
            time=epoch_seconds(when), method=str(method or "GET").upper(), target=path or "/", status=status,
            client=str(self._value(obj, "client") or ""), user_agent=str(ua or ""),
            session=str(sess) if sess not in (None, "") else None, line=number,
        )


def looks_like(line: str) -> bool:
    """True when ``line`` is a JSON object (for detection)."""
    s = line.strip()
    if not (s.startswith("{") and s.endswith("}")):
        return False
    try:
        return isinstance(json.loads(s), dict)
    except ValueError:
        return False


__all__ = ["FIELDS", "JsonLinesParser", "epoch_seconds", "looks_like", "parse_mapping"]
