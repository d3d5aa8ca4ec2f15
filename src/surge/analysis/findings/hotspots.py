"""Hot functions of the profiled SUT: where its CPU went, in the application's own code."""

from __future__ import annotations

from surge.analysis.findings.base import Finding
from surge.analysis.profile import app_function, hosts_of, is_library

MIN_SHARE = 0.10  # of all samples


def _short(fn: str) -> str:
    name, _, where = fn.partition(" (")
    return f"{name} ({where.rstrip(')').rsplit('/', 1)[-1]})" if where else name


def hot_functions(stacks: dict[str, int]) -> tuple[Finding | None, list[str], dict[str, float]]:
    """The application functions with the largest total share of samples (at least 10 %).

    Returns the finding, the short names hottest first (for other findings to cite), and
    each one's share (0-1) of the samples, in it or below.
    """
    total = sum(stacks.values())
    if total <= 0:
        return None, [], {}
    tot: dict[str, int] = {}
    own: dict[str, int] = {}
    depth: dict[str, int] = {}
    parsed = []
    for stack, n in stacks.items():
        frames = [app_function(f) for f in stack.split(";") if f and not f.startswith("process ")]
        parsed.append((frames, [is_library(fn) for fn in frames], n))
    # Frames that host a framework (main, a CLI command, run_app) are on the stack of
    # nearly every sample and are never the cause, wherever else they appear.
    hosts = hosts_of((frames, lib) for frames, lib, _ in parsed)
    for frames, lib, n in parsed:
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + n
        seen = set()
        for d, (fn, is_lib) in enumerate(zip(frames, lib, strict=True)):
            if is_lib or fn in hosts or fn in seen:
                continue
            seen.add(fn)
            depth[fn] = max(depth.get(fn, 0), d)
            tot[fn] = tot.get(fn, 0) + n
    app = list(tot.items())
    # the deepest of nested hot frames is the informative one: a handler that only calls
    # the hot function shares its total; prefer functions with the most self time among ties
    app.sort(key=lambda fc: (-fc[1], -own.get(fc[0], 0)))
    hot = [(fn, c) for fn, c in app if c / total >= MIN_SHARE][:5]
    if not hot:
        return None, [], {}
    names = [_short(fn) for fn, _ in hot]
    shares = {_short(fn): c / total for fn, c in hot}
    # The chain of functions that hold most of the hottest total, outermost first: a
    # handler, the function it calls for the work, and that one's helpers.
    top_total = hot[0][1]
    chain = sorted((fc for fc in hot if fc[1] >= 0.75 * top_total), key=lambda fc: depth.get(fc[0], 0))
    top_fn, top_c = chain[-1]
    path = " -> ".join(fn.partition(" (")[0] for fn, _ in chain[-3:])
    ev = tuple(f"{_short(fn)}: {c / total:.0%} of samples in it or below, {own.get(fn, 0) / total:.0%} in itself"
               for fn, c in hot)
    return Finding(
        kind="hot_functions", severity="info", subject=_short(top_fn),
        title=f"Hot code: {path} ({_short(top_fn).partition(' (')[2].rstrip(')')}) in "
              f"{chain[0][1] / total:.0%} of the SUT's samples",
        detail=(f"Of the {total} samples the profiler took, these application functions were on the stack "
                "in the shares below (running, or calling what ran). Making the hottest cheaper shortens "
                "every request that reaches it."),
        evidence=ev), names, shares
