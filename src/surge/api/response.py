"""The response a scenario gets back from ``client.get(...)`` and friends."""

from __future__ import annotations

import json as _json
from typing import Any

from surge.api.errors import ErrorKind


def header_pairs(head: bytes) -> list[tuple[bytes, bytes]]:
    """(name, value) pairs of a header block (status line first, no final blank line),
    values stripped of surrounding spaces and tabs, in the order received."""
    out: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\n")[1:]:
        line = line.rstrip(b"\r")
        if out and line[:1] in (b" ", b"\t"):  # obsolete line folding: continues the last value
            n, v = out[-1]
            out[-1] = (n, v + b" " + line.strip(b" \t"))
            continue
        name, sep, value = line.partition(b":")
        if sep:
            out.append((name, value.strip(b" \t")))
    return out


class HTTPStatusError(Exception):
    """Raised by :meth:`Response.raise_for_status` for errors and 4xx/5xx statuses."""


class Response:
    """An HTTP response (or a failed attempt: ``status == 0`` and ``error`` set).

    Attributes:
        status: HTTP status code; 0 when no response arrived.
        headers: dict of lower-cased header names to values (repeated headers joined by ", ").
        content: the body as bytes (decoded from gzip when the server compressed it).
        url: the URL requested.
        method: the request method.
        elapsed: s from send to the last byte (service time).
        error: the :class:`ErrorKind` of a failure, or ``ErrorKind.OK``.
        error_detail: a short text describing the failure, "" when none.
    """

    __slots__ = ("status", "_headers", "_raw_headers", "content", "url", "method", "elapsed", "error", "error_detail", "_text")

    def __init__(
        self,
        status: int,
        headers: dict[str, str] | list[tuple[bytes, bytes]] | bytes,
        content: bytes,
        url: str,
        method: str,
        elapsed: float,
        error: ErrorKind = ErrorKind.OK,
        error_detail: str = "",
    ) -> None:
        self.status = status
        # Raw (name, value) byte pairs, or the raw header block as the HTTP client
        # keeps it (status line first), are decoded only if a scenario reads them.
        if isinstance(headers, dict):
            self._headers: dict[str, str] | None = headers
            self._raw_headers: list = []
        else:
            self._headers, self._raw_headers = None, headers
        self.content = content
        self.url = url
        self.method = method
        self.elapsed = elapsed
        self.error = error
        self.error_detail = error_detail
        self._text: str | None = None

    def __repr__(self) -> str:
        if self.status == 0:
            return f"<Response {self.method} {self.url} failed: {self.error.label} {self.error_detail}>"
        return f"<Response {self.method} {self.url} {self.status} {len(self.content)}B>"

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            out: dict[str, str] = {}
            raw = self._raw_headers
            for k, v in header_pairs(raw) if isinstance(raw, bytes) else raw:
                key = k.decode("latin-1").lower()
                val = v.decode("latin-1")
                out[key] = f"{out[key]}, {val}" if key in out else val
            self._headers = out
        return self._headers

    @property
    def ok(self) -> bool:
        """True for a response with status < 400."""
        return 0 < self.status < 400

    @property
    def text(self) -> str:
        if self._text is None:
            ctype = self.headers.get("content-type", "")
            charset = "utf-8"
            if "charset=" in ctype:
                charset = ctype.split("charset=", 1)[1].split(";")[0].strip() or "utf-8"
            try:
                self._text = self.content.decode(charset, errors="replace")
            except LookupError:
                self._text = self.content.decode("utf-8", errors="replace")
        return self._text

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` when it is not JSON)."""
        return _json.loads(self.content)

    def raise_for_status(self) -> Response:
        if self.status == 0:
            raise HTTPStatusError(f"{self.method} {self.url}: {self.error.label} {self.error_detail}".strip())
        if self.status >= 400:
            raise HTTPStatusError(f"{self.method} {self.url}: HTTP {self.status}")
        return self
