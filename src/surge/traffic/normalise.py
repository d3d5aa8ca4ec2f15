"""URLs into endpoint templates: ``/products/7?ref=x`` -> ``/products/{id}``.

A load test reports per endpoint, not per URL: a log with a million product
ids is one row, ``/products/{id}``. A path segment becomes ``{id}`` when it is
an opaque identifier:

- a number (``42``), or a number with a file extension (``42.json`` -> ``{id}.json``);
- a UUID (``0b5e...-...``);
- a hex string of 16 or more characters (hashes, object ids), or of 8 or more
  with both digits and letters (short hashes);
- an opaque token of 16 or more characters from the base64/URL-safe alphabet
  that contains both digits and letters (``dGhpcyBpcyBhIHRva2Vu1``, slugs such
  as ``iphone-15-pro-max-256gb``).

Words (``search``, ``checkout``, ``v2``) are kept. The query string is dropped
from the template (it stays in the replayed URL).
"""

from __future__ import annotations

import re
from functools import lru_cache

ID = "{id}"
_NUMBER = re.compile(r"\d+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_TOKEN = re.compile(r"[A-Za-z0-9_\-=.~+%]+")
_EXT = re.compile(r"(.+)(\.[A-Za-z][A-Za-z0-9]{0,4})")
_DIGIT = re.compile(r"\d")
_ALPHA = re.compile(r"[A-Za-z]")
MIN_TOKEN = 16  # chars: shorter mixed strings are too often real words or versions (v2, utf8)
MIN_SHORT_HEX = 8


def is_identifier(segment: str) -> bool:
    """True when one path segment looks like an opaque id rather than a word."""
    if not segment:
        return False
    if _NUMBER.fullmatch(segment) or _UUID.fullmatch(segment):
        return True
    mixed = bool(_DIGIT.search(segment)) and bool(_ALPHA.search(segment))
    if _HEX.fullmatch(segment):
        return len(segment) >= MIN_TOKEN or (len(segment) >= MIN_SHORT_HEX and mixed)
    return len(segment) >= MIN_TOKEN and mixed and bool(_TOKEN.fullmatch(segment))


@lru_cache(maxsize=4096)  # path words repeat on every line; a log's ids cycle through
def _segment(seg: str) -> str:
    if is_identifier(seg):
        return ID
    m = _EXT.fullmatch(seg)
    if m and is_identifier(m.group(1)):
        return ID + m.group(2)
    return seg


def template(target: str) -> str:
    """The endpoint template of a request target (path + optional query, or an absolute URL).

    >>> template("/users/123/orders/9f8e7d6c5b4a39281706f5e4d3c2b1a0?page=2")
    '/users/{id}/orders/{id}'
    """
    path = target.split("?", 1)[0].split("#", 1)[0]
    if "://" in path:  # absolute URL: keep only the path
        rest = path.split("://", 1)[1]
        slash = rest.find("/")
        path = rest[slash:] if slash >= 0 else "/"
    if not path.startswith("/"):
        path = "/" + path
    return "/".join([_segment(s) for s in path.split("/")])


__all__ = ["ID", "is_identifier", "template"]
