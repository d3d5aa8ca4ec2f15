"""HTTP syntax shared by the client, the CLI and the log readers."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 tchar+


def is_token(text: str) -> bool:
    """True when ``text`` is an HTTP token (RFC 9110): what a method or a header name must be."""
    return isinstance(text, str) and _TOKEN.fullmatch(text) is not None
