"""A flame graph of a py-spy profile as a plotly figure (an icicle trace, root at the bottom)."""

from __future__ import annotations

from typing import Any

from surge.analysis.profile import function_of

MIN_SHARE = 0.005  # frames under 0.5 % of the samples are pruned: a huge profile stays small
MAX_NODES = 3000  # a hard cap on top of the share, for pathological profiles
ROOT = "all"


def _short(fn: str) -> str:
    """``Class.method (pkg/module.py)`` -> ``Class.method (module.py)`` for the bar label."""
    name, _, where = fn.partition(" (")
    return f"{name} ({where.rstrip(')').rsplit('/', 1)[-1]})" if where else name


def _tree(stacks: dict[str, int]) -> dict[tuple[str, ...], int]:
    """Samples of every stack prefix (a node of the flame graph is a path from the root)."""
    nodes: dict[tuple[str, ...], int] = {}
    for stack, n in stacks.items():
        if n <= 0:
            continue
        path: tuple[str, ...] = ()
        for frame in stack.split(";"):
            if not frame.strip():
                continue
            path = (*path, function_of(frame))
            nodes[path] = nodes.get(path, 0) + n
    return nodes


def flame_figure(stacks: dict[str, int], title: str = "SUT profile (py-spy)") -> dict[str, Any]:
    """A plotly figure dict: one icicle trace in flame orientation.

    Bar width is proportional to samples (the time on CPU in that call path);
    labels are function names, hover shows the share of all samples. Frames
    with under 0.5 % of the samples are left out, with everything above them.
    """
    total = sum(n for n in stacks.values() if n > 0)
    ids, labels, parents, values, hover = [ROOT], [ROOT], [""], [total], [f"all samples: {total}"]
    if total > 0:
        nodes = _tree(stacks)
        keep = sorted((p for p, n in nodes.items() if n >= MIN_SHARE * total), key=lambda p: (len(p), -nodes[p]))
        kept: set[tuple[str, ...]] = set()
        for path in keep[:MAX_NODES]:
            if len(path) > 1 and path[:-1] not in kept:
                continue  # its parent was cut by the cap
            kept.add(path)
            ids.append(ROOT + ";" + ";".join(path))
            labels.append(_short(path[-1]))
            parents.append(ROOT + ";" + ";".join(path[:-1]) if len(path) > 1 else ROOT)
            values.append(nodes[path])
            hover.append(f"{path[-1]}<br>{nodes[path]} samples, {100.0 * nodes[path] / total:.1f}% of all")
    trace = {
        "type": "icicle",
        "ids": ids,
        "labels": labels,
        "parents": parents,
        "values": values,
        "branchvalues": "total",
        "tiling": {"orientation": "v", "flip": "y"},  # root at the bottom: a flame graph
        "hovertext": hover,
        "hoverinfo": "text",
        "textinfo": "label",
        "maxdepth": -1,
    }
    return {"data": [trace], "layout": {"title": {"text": f"{title}: {total} samples"},
                                        "margin": {"t": 40, "l": 10, "r": 10, "b": 10}, "height": 600}}
