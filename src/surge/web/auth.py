"""Who may read the dashboard: a token for anything not on loopback, a Host check for loopback.

Two threats, two defences:

- **Other machines** (``--host 0.0.0.0``): every request needs the token, given
  once as ``?token=`` (then kept in an HttpOnly, SameSite=Strict cookie and
  removed from the address bar by a redirect) or as ``Authorization: Bearer``.
- **Other web sites in the user's own browser** (DNS rebinding: a page whose
  name resolves to 127.0.0.1 reading the dashboard): without a token, only
  requests whose ``Host`` is a loopback name are served.

Tokens are compared with :func:`hmac.compare_digest` (constant time).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

COOKIE = "surge_token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this machine only."""
    h = host.strip().strip("[]").lower()
    if h in LOOPBACK_NAMES or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The name part of a Host header (``[::1]:8089`` -> ``::1``, ``a:80`` -> ``a``)."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison; a missing value never matches."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8"))


class AccessGuard:
    """ASGI middleware: the token check (when a token is set) or the loopback Host check (when not)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.token is None:
            if is_loopback(_host_name(headers.get("host", ""))):
                await self.app(scope, receive, send)
            else:
                await _deny(send, 403, "This dashboard answers only to http://127.0.0.1 or http://localhost "
                                       "(without a token it is not served under other host names).")
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        from_query = next((v for k, v in query if k == "token"), None)
        if token_matches(from_query, self.token):
            await self._enter(scope, query, send)
            return
        auth = headers.get("authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is just no cookie
            cookie = SimpleCookie()
        from_cookie = cookie[COOKIE].value if COOKIE in cookie else None
        if token_matches(bearer, self.token) or token_matches(from_cookie, self.token):
            await self.app(scope, receive, send)
            return
        await _deny(send, 401, "This dashboard needs its token: open the URL that `surge dashboard` printed "
                               "(it ends in ?token=...), or send 'Authorization: Bearer TOKEN'.")

    async def _enter(self, scope: Scope, query: list[tuple[str, str]], send: Any) -> None:
        """A valid ?token=: keep it in a cookie and redirect to the same page without it in the URL."""
        rest = urlencode([(k, v) for k, v in query if k != "token"])
        location = scope.get("path", "/") + (f"?{rest}" if rest else "")
        if not location.startswith("/") or location.startswith("//"):
            location = "/"  # never an open redirect
        cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", location.encode("latin-1", "replace")),
                                (b"set-cookie", cookie.encode("latin-1")),
                                (b"cache-control", b"no-store"),
                                (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


async def _deny(send: Any, status: int, message: str) -> None:
    """A short fixed page (``message`` is our own text, never the request's)."""
    body = (f"<!doctype html><meta charset=utf-8><title>surge dashboard</title>"
            f"<p>{message}</p>").encode()
    headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store")]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
