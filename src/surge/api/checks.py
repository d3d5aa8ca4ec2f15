"""``check``: assert-like validations that are counted, never fatal."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from surge.api.context import current_sink


def check(subject: Any, checks: Mapping[str, Callable[[Any], Any]] | str) -> bool:
    """Record named pass/fail checks; return True when all passed.

    ``check(resp, {"status 200": lambda r: r.status == 200})`` runs each
    predicate on ``subject``; ``check(resp.ok, "cart ok")`` records one
    boolean. A predicate that raises counts as failed. The iteration goes on
    either way; results appear per check name in the summary.
    """
    sink = current_sink.get()
    if isinstance(checks, str):
        ok = bool(subject)
        if sink is not None:
            sink.record_check(checks, ok)
        return ok
    all_ok = True
    for name, pred in checks.items():
        try:
            ok = bool(pred(subject))
        except Exception:
            ok = False
        if sink is not None:
            sink.record_check(name, ok)
        all_ok &= ok
    return all_ok
