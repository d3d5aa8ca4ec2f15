"""Hot functions of the profiled SUT: where its CPU went, in the application's own code."""

from __future__ import annotations

import re

from surge.analysis.findings.base import Finding

MIN_SHARE = 0.10  # of all samples
# Frames of runtimes and frameworks: real work happens in them, but the fix is in the
# application code that called them, so the application's frames are named instead.
_LIBRARY = re.compile(
    r"(/lib/python3[^/]*/(?!site-packages)|/(site|dist)-packages/(uvicorn|starlette|anyio|uvloop|httptools|h11|"
    r"fastapi|django|flask|werkzeug|gunicorn|asgiref|sqlalchemy|pydantic|aiohttp)/|^<|\(<)")
_LINE = re.compile(r":\d+\)$")


def _function(frame: str) -> str:
    """``name (file.py:12)`` -> ``name (file.py)``: samples of one function on several lines add up."""
    return _LINE.sub(")", frame.strip())


def _short(fn: str) -> str:
    name, _, where = fn.partition(" (")
    return f"{name} ({where.rstrip(')').rsplit('/', 1)[-1]})" if where else name


def hot_functions(stacks: dict[str, int]) -> tuple[Finding | None, list[str]]:
    """The application functions with the largest total share of samples (at least 10 %).

    Returns the finding and the short names, hottest first (for other findings to cite).
    """
    total = sum(stacks.values())
    if total <= 0:
        return None, []
    tot: dict[str, int] = {}
    own: dict[str, int] = {}
    depth: dict[str, int] = {}
    for stack, n in stacks.items():
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        seen = set()
        for d, f in enumerate(frames):
            fn = _function(f)
            depth[fn] = max(depth.get(fn, 0), d)
            if fn not in seen:
                seen.add(fn)
                tot[fn] = tot.get(fn, 0) + n
        if frames:
            leaf = _function(frames[-1])
            own[leaf] = own.get(leaf, 0) + n
    app = [(fn, c) for fn, c in tot.items() if not _LIBRARY.search(fn) and c / total < 0.995]
    # the deepest of nested hot frames is the informative one: a handler that only calls
    # the hot function shares its total; prefer functions with the most self time among ties
    app.sort(key=lambda fc: (-fc[1], -own.get(fc[0], 0)))
    hot = [(fn, c) for fn, c in app if c / total >= MIN_SHARE][:5]
    if not hot:
        return None, []
    names = [_short(fn) for fn, _ in hot]
    # Name the deepest function that still holds most of the hottest total: a handler that
    # only calls compute_x() shares its total, and compute_x's helpers each hold less.
    top_total = hot[0][1]
    top_fn, top_c = max((fc for fc in hot if fc[1] >= 0.8 * top_total), key=lambda fc: depth.get(fc[0], 0))
    ev = tuple(f"{_short(fn)}: {c / total:.0%} of samples in it or below, {own.get(fn, 0) / total:.0%} in itself"
               for fn, c in hot)
    return Finding(
        kind="hot_functions", severity="info", subject=_short(top_fn),
        title=f"Hot code: {_short(top_fn)} is on the stack in {top_c / total:.0%} of the SUT's samples",
        detail=("These application functions were running (or calling what ran) most of the time the "
                f"profiler looked ({total} samples). Making the first of them cheaper shortens every "
                "request that reaches it."),
        evidence=ev), names
