"""One request read from a log: the common shape every reader produces."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class LogRecord:
    """A request as a log saw it.

    Attributes:
        time: when it was logged, seconds since the Unix epoch (float; sub-second
            when the log has it).
        method: HTTP method, upper case.
        target: path and query as sent (``/products/7?ref=home``).
        status: response status, or None when the log has none.
        client: client address (IP) or "" when unknown.
        user_agent: the User-Agent, or "".
        session: a session identifier from a cookie, when the log carries one.
        origin: ``scheme://host[:port]`` the request went to (HAR only), else None.
        headers: request headers worth replaying (HAR only).
        body: request body (HAR only), or None.
        line: 1-based line (or HAR entry) number, for messages.
    """

    time: float
    method: str
    target: str
    status: int | None = None
    client: str = ""
    user_agent: str = ""
    session: str | None = None
    origin: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    line: int = 0

    def session_key(self) -> str:
        """Who sent it: the session cookie when known, else client address + user agent."""
        return self.session if self.session else f"{self.client} {self.user_agent}"
