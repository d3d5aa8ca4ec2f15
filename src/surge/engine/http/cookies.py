"""A per-VU cookie jar: what ``Set-Cookie`` stored, sent back on later requests.

The basics of RFC 6265, enough for session cookies of the systems under test:
host-only and ``Domain`` cookies, ``Path`` (default: the request's directory),
``Expires`` / ``Max-Age`` (``Max-Age`` wins; zero or past deletes), ``Secure``
(sent over https only). Not done: public-suffix checks, ``SameSite`` (there is
no browsing context to apply it to), the 4 KB and per-domain limits.

Parsing follows RFC 6265 5.2 (the first ``name=value``, then ``;``-separated
attributes, unknown ones ignored) rather than ``http.cookies.SimpleCookie``, which
drops real-world cookies (``SameSite=Lax; Partitioned``, values with spaces or
braces) and turns ``Priority=High`` into a cookie of its own. Each ``Set-Cookie``
header is parsed on its own, since header values joined with ", " cannot be split
again (``Expires`` dates contain commas).
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import NamedTuple

_CACHE_MAX = 256  # (host, path, secure) -> Cookie header strings remembered between changes
_MAX_AGE_CAP = 400 * 86_400  # s: RFC 6265bis caps lifetimes at 400 days (and huge numbers cannot overflow)


class Cookie(NamedTuple):
    """One stored cookie; ``expires`` is a wall-clock time (s since the epoch) or None (session)."""

    name: str
    value: str
    domain: str
    path: str
    host_only: bool
    secure: bool
    expires: float | None
    created: int  # order of creation, for the order of the Cookie header


class CookieJar:
    """Cookies of one VU, keyed by (domain, path, name) as browsers do."""

    def __init__(self) -> None:
        self._cookies: dict[tuple[str, str, str], Cookie] = {}
        self._made = 0
        self._next_expiry = float("inf")  # earliest expiry among stored cookies
        self._cache: dict[tuple[str, str, bool], str | None] = {}

    def __len__(self) -> int:
        return len(self._cookies)

    def __repr__(self) -> str:
        return f"<CookieJar {len(self._cookies)} cookie(s)>"

    def __iter__(self):
        return iter(list(self._cookies.values()))

    def get(self, name: str, domain: str | None = None) -> str | None:
        """The value of cookie ``name`` (for ``domain`` when given), or None."""
        self._expire(time.time())
        for c in self._cookies.values():
            if c.name == name and (domain is None or c.domain == domain.lower()):
                return c.value
        return None

    def set(self, name: str, value: str, domain: str, path: str = "/", *, secure: bool = False) -> None:
        """Store a cookie by hand (host-only for ``domain``), as if a server had set it."""
        self._put(Cookie(name, value, domain.lower(), path, True, secure, None, self._tick()))

    def clear(self) -> None:
        """Forget every cookie (a VU "logging out")."""
        self._cookies.clear()
        self._cache.clear()
        self._next_expiry = float("inf")

    # -- what the client calls ----------------------------------------------------
    def store(self, host: str, path: str, set_cookies: list[str], now: float | None = None) -> None:
        """Store the cookies of ``Set-Cookie`` values received from ``host`` for request ``path``."""
        now = time.time() if now is None else now
        host = host.lower()
        for header in set_cookies:
            parsed = parse_set_cookie(header)
            if parsed is not None:  # a malformed cookie is ignored, as browsers do
                self._store_one(host, path, *parsed, now)

    def header(self, host: str, path: str, secure: bool, now: float | None = None) -> str | None:
        """The ``Cookie`` header value for a request to ``host`` and ``path``, or None."""
        now = time.time() if now is None else now
        if now >= self._next_expiry:
            self._expire(now)
        key = (host, path, secure)
        try:
            return self._cache[key]
        except KeyError:
            pass
        host = host.lower()
        match = [c for c in self._cookies.values()
                 if (not c.secure or secure) and _domain_match(host, c) and _path_match(path, c.path)]
        # RFC 6265 5.4: longer paths first, then earlier creation.
        match.sort(key=lambda c: (-len(c.path), c.created))
        value = "; ".join(f"{c.name}={c.value}" for c in match) or None
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = value
        return value

    # -- internals -----------------------------------------------------------------
    def _store_one(self, host: str, req_path: str, name: str, value: str, attrs: dict[str, str],
                   now: float) -> None:
        domain = attrs.get("domain", "").strip().lstrip(".").lower()
        if domain:
            if not (host == domain or (host.endswith("." + domain) and not _is_ip(host))):
                return  # a server may not set cookies for another site
            host_only = False
        else:
            domain, host_only = host, True
        path = attrs.get("path", "")
        if not path.startswith("/"):
            path = _default_path(req_path)
        expires: float | None = None
        if "max-age" in attrs:
            expires = now + min(int(attrs["max-age"]), _MAX_AGE_CAP)
        elif "expires" in attrs:
            try:
                expires = parsedate_to_datetime(attrs["expires"]).timestamp()
            except (TypeError, ValueError, OverflowError):
                expires = None
        key = (domain, path, name)
        if expires is not None and expires <= now:
            if self._cookies.pop(key, None) is not None:
                self._cache.clear()
            return
        old = self._cookies.get(key)
        created = old.created if old is not None else self._tick()
        self._put(Cookie(name, value, domain, path, host_only, "secure" in attrs, expires, created))

    def _put(self, c: Cookie) -> None:
        self._cookies[(c.domain, c.path, c.name)] = c
        self._cache.clear()
        if c.expires is not None and c.expires < self._next_expiry:
            self._next_expiry = c.expires

    def _tick(self) -> int:
        self._made += 1
        return self._made

    def _expire(self, now: float) -> None:
        gone = [k for k, c in self._cookies.items() if c.expires is not None and c.expires <= now]
        for k in gone:
            del self._cookies[k]
        if gone:
            self._cache.clear()
        self._next_expiry = min((c.expires for c in self._cookies.values() if c.expires is not None),
                                default=float("inf"))


def parse_set_cookie(header: str) -> tuple[str, str, dict[str, str]] | None:
    """(name, value, attributes) of one ``Set-Cookie`` value (RFC 6265 5.2), or None.

    Attribute names are lower-cased; the last of a repeated attribute wins; a
    ``Max-Age`` that is not an integer is ignored, as the RFC says.
    """
    pair, _, rest = header.partition(";")
    name, eq, value = pair.partition("=")
    name, value = name.strip(), value.strip()
    if not eq or not name:
        return None
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    attrs: dict[str, str] = {}
    for part in rest.split(";"):
        key, _, val = part.partition("=")
        key = key.strip().lower()
        if not key:
            continue
        val = val.strip()
        if key == "max-age":
            digits = val[1:] if val.startswith("-") else val
            if not digits.isdigit():
                continue
        attrs[key] = val
    return name, value, attrs


def set_cookie_values(raw_headers: list[tuple[bytes, bytes]]) -> list[str]:
    """The ``Set-Cookie`` values among raw response headers, each on its own."""
    return [v.decode("latin-1") for k, v in raw_headers if len(k) == 10 and k.lower() == b"set-cookie"]


def _domain_match(host: str, c: Cookie) -> bool:
    if c.host_only:
        return host == c.domain
    return host == c.domain or host.endswith("." + c.domain)


def _path_match(req_path: str, cookie_path: str) -> bool:
    if req_path == cookie_path:
        return True
    return req_path.startswith(cookie_path) and (cookie_path.endswith("/") or req_path[len(cookie_path)] == "/")


def _default_path(req_path: str) -> str:
    """RFC 6265 5.1.4: the request path up to, not including, its last "/" ("/" if none)."""
    path = req_path.split("?", 1)[0]
    if not path.startswith("/") or path.count("/") == 1:
        return "/"
    return path[: path.rindex("/")]


def _is_ip(host: str) -> bool:
    return ":" in host or host.replace(".", "").isdigit()
