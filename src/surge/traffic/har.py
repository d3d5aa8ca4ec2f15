"""HAR files (HTTP Archive 1.2) as browsers' developer tools save them.

Each entry's ``startedDateTime`` gives the time; its ``request`` the method,
URL, headers and body (``postData.text``, or ``params`` encoded as a form).
Entries that cannot be replayed are skipped and counted by reason:

- ``data:``, ``blob:``, browser-extension and other non-HTTP URLs;
- WebSocket entries (Chrome's ``_resourceType: "websocket"``, ``ws://``/``wss://``
  URLs, status 101);
- binary bodies: file uploads (params with ``fileName``), binary MIME types, and
  text with NULs or U+FFFD (the browser did not keep the bytes).

Headers are kept except hop-by-hop ones, HTTP/2 pseudo-headers, ``Host``,
``Cookie`` and ``Content-Length`` (the replaying client sets its own).

A HAR file is one JSON document, so it is read whole (DevTools' HAR files are
bounded by what a browser tab holds); access logs are streamed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from surge.traffic.clf import BadLine
from surge.traffic.jsonl import epoch_seconds
from surge.traffic.record import LogRecord

DROP_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade", "host", "cookie", "content-length",
})
BINARY_TYPES = ("image/", "audio/", "video/", "application/octet-stream", "application/zip", "application/pdf",
                "application/grpc", "application/x-protobuf", "application/protobuf", "font/")


class Skip(Exception):
    """An entry that is valid HAR but cannot be replayed; ``str()`` is the reason (a counter key)."""


def _body(req: dict[str, Any]) -> tuple[bytes | None, str | None]:
    """(body bytes, content type) of a HAR request; raises Skip for binary bodies."""
    pd = req.get("postData")
    if not isinstance(pd, dict):
        return None, None
    mime = str(pd.get("mimeType") or "")
    params = pd.get("params") or []
    if any(isinstance(p, dict) and p.get("fileName") for p in params):
        raise Skip("binary body (file upload)")
    if mime.lower().startswith(BINARY_TYPES):
        raise Skip("binary body")
    text = pd.get("text")
    if text is None and params:
        pairs = [(str(p.get("name", "")), str(p.get("value", ""))) for p in params if isinstance(p, dict)]
        return urlencode(pairs).encode(), mime or "application/x-www-form-urlencoded"
    if text is None:
        return None, mime or None
    if pd.get("encoding") == "base64":
        try:
            return base64.b64decode(text, validate=True), mime or None
        except ValueError:
            raise Skip("binary body (bad base64)") from None
    if "\x00" in text or "\ufffd" in text:
        raise Skip("binary body")
    return text.encode("utf-8"), mime or None


def parse_entry(entry: Any, number: int) -> LogRecord:
    """One HAR entry -> LogRecord; raises BadLine (malformed) or Skip (not replayable)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
        raise BadLine("entry has no request object")
    req = entry["request"]
    url = str(req.get("url") or "")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("ws", "wss") or entry.get("_resourceType") == "websocket" or (
        (entry.get("response") or {}).get("status") == 101
    ):
        raise Skip("websocket")
    if scheme not in ("http", "https"):
        raise Skip(f"{scheme or 'relative'}: URL" if scheme in ("data", "blob", "") else "non-HTTP URL")
    if "startedDateTime" not in entry:
        raise BadLine("entry has no startedDateTime")
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or 0 < parts.port
    except ValueError:  # a port out of range or not a number
        port_ok = False
    if not parts.hostname or not port_ok:
        raise BadLine(f"URL {url[:80]!r} names no usable host and port")
    origin = f"{parts.scheme}://{parts.netloc}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    body, ctype = _body(req)
    headers, cookie, ua = [], None, ""
    for h in req.get("headers") or []:
        if not isinstance(h, dict):
            continue
        name, value = str(h.get("name", "")), str(h.get("value", ""))
        low = name.lower()
        if low == "cookie":
            cookie = value
        if low == "user-agent":
            ua = value
        if name.startswith(":") or low in DROP_HEADERS:
            continue
        headers.append((name, value))
    if ctype and body is not None and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", ctype))
    status = (entry.get("response") or {}).get("status")
    return LogRecord(
        time=epoch_seconds(entry["startedDateTime"]), method=str(req.get("method") or "GET").upper(),
        target=target, status=int(status) if isinstance(status, int) and status > 0 else None,
        # One browser saved it: the session is its cookie, else its user agent.
        client="", user_agent=ua, session=_session_cookie(cookie),
        origin=origin, headers=tuple(headers), body=body, line=number,
    )


SESSION_COOKIES = ("session", "sessionid", "sid", "phpsessid", "jsessionid", "connect.sid", "_session_id")


def _session_cookie(cookie: str | None) -> str | None:
    """The value of a session-looking cookie in a Cookie header, if any."""
    if not cookie:
        return None
    for part in cookie.split(";"):
        k, _, v = part.strip().partition("=")
        if k.lower() in SESSION_COOKIES and v:
            return v
    return None


def read_entries(path: Path) -> Iterator[tuple[int, Any]]:
    """(1-based number, entry) of each entry of a HAR file; raises BadLine when it is not HAR."""
    try:
        with path.open("rb") as f:
            doc = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadLine(f"not valid JSON: {exc}") from None
    entries = doc.get("log", {}).get("entries") if isinstance(doc, dict) and isinstance(doc.get("log"), dict) else None
    if not isinstance(entries, list):
        raise BadLine("no log.entries list (not a HAR file)")
    yield from enumerate(entries, 1)


def looks_like(head: str) -> bool:
    """True when the start of a file looks like a HAR document (for detection)."""
    s = head.lstrip()
    return s.startswith("{") and '"log"' in s[:4096] and ('"entries"' in s or '"version"' in s or '"creator"' in s)


__all__ = ["DROP_HEADERS", "Skip", "looks_like", "parse_entry", "read_entries"]
