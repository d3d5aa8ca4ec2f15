"""A per-VU cookie jar: what ``Set-Cookie`` stored, sent back on later requests.

The basics of RFC 6265, enough for session cookies of the systems under test:
host-only and ``Domain`` cookies, ``Path`` (default: the request's directory),
``Expires`` / ``Max-Age`` (``Max-Age`` wins; zero or past deletes), ``Secure``
(sent over https only). Not done: public-suffix checks, ``SameSite`` (there is
no browsing context to apply it to), the 4 KB and per-domain limits.

Parsing is ``http.cookies.SimpleCookie``'s; each ``Set-Cookie`` header is
parsed on its own, since header values joined with ", " cannot be split again
(``Expires`` dates contain commas).
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from http.cookies import CookieError, SimpleCookie
from typing import NamedTuple

_CACHE_MAX = 256  # (host, path, secure) -> Cookie header strings remembered between changes


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
            parsed = SimpleCookie()
            try:
                parsed.load(header)
            except CookieError:
                continue  # a malformed cookie is ignored, as browsers do
            for name, morsel in parsed.items():
                self._store_one(host, path, name, morsel, now)

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
    def _store_one(self, host: str, req_path: str, name: str, morsel, now: float) -> None:
        domain = (morsel["domain"] or "").strip().lstrip(".").lower()
        if domain:
            if not (host == domain or (host.endswith("." + domain) and not _is_ip(host))):
                return  # a server may not set cookies for another site
            host_only = False
        else:
            domain, host_only = host, True
        path = morsel["path"]
        if not path or not path.startswith("/"):
            path = _default_path(req_path)
        expires: float | None = None
        max_age = morsel["max-age"]
        if max_age:
            try:
                expires = now + int(max_age)
            except ValueError:
                expires = None
        elif morsel["expires"]:
            try:
                expires = parsedate_to_datetime(morsel["expires"]).timestamp()
            except (TypeError, ValueError):
                expires = None
        key = (domain, path, name)
        if expires is not None and expires <= now:
            if self._cookies.pop(key, None) is not None:
                self._cache.clear()
            return
        old = self._cookies.get(key)
        created = old.created if old is not None else self._tick()
        self._put(Cookie(name, morsel.value, domain, path, host_only, bool(morsel["secure"]), expires, created))

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
