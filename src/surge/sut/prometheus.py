"""``--prometheus URL --query NAME=PROMQL``: pull the SUT's own metrics over the run window.

After the run, each query is asked of ``/api/v1/query_range`` with the run's
start and end (unix s) and a 1 s step. What comes back is stored as
``prometheus.json``; an unreachable server, an error or an empty answer is a
warning line, never a lost run.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

TIMEOUT = 5.0  # s per query
STEP = 1.0  # s, the resolution of the run's own series


def query_range(base_url: str, query: str, start: float, end: float, step: float = STEP,
                timeout: float = TIMEOUT) -> tuple[list[Any] | None, str | None]:
    """One range query; (result, None) on success, (None, why) otherwise.

    ``result`` is Prometheus's ``data.result`` list (for a range query, series
    of ``{"metric": {...}, "values": [[unix_s, "value"], ...]}``).
    """
    params = urllib.parse.urlencode({"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                     "step": f"{step:g}"})
    url = f"{base_url.rstrip('/')}/api/v1/query_range?{params}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (a URL the user gave)
            body = resp.read()
    except urllib.error.HTTPError as exc:
        detail = _error_of(exc.read())
        return None, f"HTTP {exc.code}" + (f": {detail}" if detail else "")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"unreachable ({reason})"
    try:
        doc = json.loads(body)
    except ValueError:
        return None, "the answer is not JSON (is this a Prometheus server?)"
    if not isinstance(doc, dict) or doc.get("status") != "success":
        return None, (_error_of(body) or "status is not 'success'")
    result = (doc.get("data") or {}).get("result")
    if not isinstance(result, list):
        return None, "the answer has no data.result"
    return result, None


def _error_of(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    if isinstance(doc, dict) and doc.get("error"):
        return f"{doc.get('errorType', 'error')}: {doc['error']}"
    return ""


def pull(base_url: str, queries: tuple[tuple[str, str], ...], start: float, end: float,
         run_start: float) -> tuple[dict[str, Any], list[str]]:
    """Every query over [start, end] (unix s); returns (the prometheus.json document, warnings).

    ``run_start`` (unix s) is the instant of the run's second 0: a sample at unix
    time ``ts`` belongs to run second ``ts - run_start``.
    """
    doc: dict[str, Any] = {"url": base_url, "start": round(start, 3), "end": round(end, 3), "step": STEP,
                           "run_start_unix": round(run_start, 3), "queries": {}}
    warnings = []
    unreachable = False
    for name, q in queries:
        if unreachable:
            result, err = None, "skipped: the server was unreachable"
        else:
            result, err = query_range(base_url, q, start, end)
            unreachable = bool(err and err.startswith("unreachable"))
        if err is None and not result:
            err = "no data for the run window"
        doc["queries"][name] = {"query": q, "result": result or [], "error": err}
        if err and not err.startswith("skipped"):
            warnings.append(f"prometheus query {name!r} ({base_url}): {err}")
    return doc, warnings
