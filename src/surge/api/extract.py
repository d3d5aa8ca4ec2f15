"""Pull values out of responses for later requests (correlation)::

    from surge import extract

    token = extract.json(r, "$.data.token", required=True)
    ids = extract.json(r, "$.items[*].id")              # a list
    csrf = extract.regex(r, r'name="csrf" value="([^"]+)"')
    where = extract.header(r, "Location")

A value that is not there gives ``default`` (None unless given); with
``required=True`` it raises :class:`ExtractionError` instead, which ends the
iteration and is counted under that name in the summary's iteration errors.

The JSON path language is a small subset of JSONPath: ``$`` (optional) then
``.key``, ``['key']`` / ``["key"]``, ``[index]`` (negative counts from the end)
and ``[*]`` / ``.*`` (every item: the result becomes a list). A path that is not
valid in this subset is a UsageError, since it would fail in every iteration.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from surge.api.errors import SurgeError, UsageError

_MISSING = object()
_WILD = object()  # the [*] step

_STEP = re.compile(
    r"""\.(?P<key>[^.\[\]]+)            # .key (or .* )
      | \[(?P<index>-?\d+)\]            # [3]
      | \[(?P<star>\*)\]                # [*]
      | \[(?P<q>['"])(?P<qkey>.*?)(?P=q)\]  # ['key with . or spaces']
    """,
    re.VERBOSE,
)


class ExtractionError(SurgeError):
    """A ``required=True`` extraction found nothing (counted as an iteration error)."""


def json(response: Any, path: str, default: Any = None, *, required: bool = False) -> Any:
    """The value at ``path`` in the response's JSON body (or in an already parsed value).

    With a ``[*]`` step the result is a list of what matched (empty when nothing
    did, which counts as missing). A body that is not JSON counts as missing.
    """
    steps = _compile(path)
    if hasattr(response, "json") and callable(response.json):
        try:
            doc = response.json()
        except ValueError:
            return _missing(default, required, f"no JSON body to take {path} from ({_describe(response)})")
    else:
        doc = response
    found = _walk(doc, steps)
    if found is _MISSING or (isinstance(found, list) and _WILD in steps and not found):
        return _missing(default, required, f"nothing at {path} in the JSON of {_describe(response)}")
    return found


def regex(response: Any, pattern: str | re.Pattern[str], default: Any = None, *, required: bool = False,
          group: int | str = 1) -> Any:
    """The first match of ``pattern`` in the response text: its ``group`` (the first
    group by default), or the whole match when the pattern has no groups.

    ``response`` may be a Response or a str.
    """
    text = response if isinstance(response, str) else response.text
    m = re.search(pattern, text)
    if m is None:
        pat = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
        return _missing(default, required, f"no match for {pat!r} in {_describe(response)}")
    if not m.re.groups:
        return m.group(0)
    try:
        return m.group(group)
    except IndexError:
        raise UsageError(f"regex {m.re.pattern!r} has no group {group!r}: fix the pattern or group=") from None


def header(response: Any, name: str, default: Any = None, *, required: bool = False) -> Any:
    """The value of header ``name`` (any case); repeated headers come joined by ``", "``."""
    value = response.headers.get(name.lower())
    if value is None:
        return _missing(default, required, f"no {name} header in {_describe(response)}")
    return value


# -- the path language ---------------------------------------------------------------


@lru_cache(maxsize=256)
def _compile(path: str) -> tuple[Any, ...]:
    """Parse ``path`` once into steps: str keys, int indices and the wildcard."""
    p = path.strip()
    if p.startswith("$"):
        p = p[1:]
    elif p and p[0] not in ".[":
        p = "." + p  # "data.id" reads as "$.data.id"
    steps: list[Any] = []
    pos = 0
    while pos < len(p):
        m = _STEP.match(p, pos)
        if m is None:
            raise UsageError(f"invalid JSON path {path!r} at {p[pos:]!r}: use $.key, [0], [*] or ['key'], "
                             "e.g. $.data.items[0].id")
        if m.group("key") is not None:
            steps.append(_WILD if m.group("key") == "*" else m.group("key"))
        elif m.group("index") is not None:
            steps.append(int(m.group("index")))
        elif m.group("star"):
            steps.append(_WILD)
        else:
            steps.append(m.group("qkey"))
        pos = m.end()
    return tuple(steps)


def _walk(doc: Any, steps: tuple[Any, ...]) -> Any:
    """Follow ``steps`` from ``doc``; after a wildcard, follow the rest from each item."""
    cur = doc
    for i, step in enumerate(steps):
        if step is _WILD:
            items = cur.values() if isinstance(cur, dict) else cur if isinstance(cur, list) else None
            if items is None:
                return _MISSING
            rest = steps[i + 1:]
            out = []
            for item in items:
                v = _walk(item, rest)
                if v is _MISSING:
                    continue
                # A second wildcard flattens: $.a[*].b[*] is one list, as in JSONPath.
                if _WILD in rest and isinstance(v, list):
                    out.extend(v)
                else:
                    out.append(v)
            return out
        if isinstance(step, int):
            if not isinstance(cur, list) or not -len(cur) <= step < len(cur):
                return _MISSING
            cur = cur[step]
        else:
            if not isinstance(cur, dict) or step not in cur:
                return _MISSING
            cur = cur[step]
    return cur


def _missing(default: Any, required: bool, why: str) -> Any:
    if required:
        raise ExtractionError(why)
    return default


def _describe(response: Any) -> str:
    method, url, status = (getattr(response, a, None) for a in ("method", "url", "status"))
    if url is None:
        return "the value given"
    return f"{method} {url} (status {status})"

