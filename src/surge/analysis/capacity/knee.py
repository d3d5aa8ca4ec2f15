"""Knee of a latency curve: the point after which latency climbs steeply.

Method: Kneedle (Satopää, Albrecht, Irwin, Raghavan, "Finding a 'Kneedle' in a
Haystack", ICDCSW 2011) on the normalised curve. Points are sorted by x, both
axes are scaled to [0, 1]; for a latency curve (increasing, convex: flat, then
a hockey stick) the curve lies below the chord from the first to the last point,
and the knee is the point farthest below it, i.e. the largest x̂ − ŷ.

Why Kneedle and not a two-segment piecewise-linear fit: it needs no iterative
fit and no choice of breakpoint grid, works on as few as 4 points (a stepped
run gives 4-8), is invariant to the units of both axes, and its score (the
normalised distance below the chord) gives a clear "no knee" rule: a straight
or concave curve has no point far below its chord.

"No knee" (None) when: fewer than 4 points, latency does not rise overall, the
farthest point is the first or last point (the bend is outside the data), or
its score is below ``min_score`` (default 0.1: the curve never sags more than
10 % of its range below the chord, so it is close to a straight line).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_POINTS = 4
MIN_SCORE = 0.1


@dataclass(frozen=True)
class Knee:
    """Where a curve bends upward.

    ``index``: position of the knee point in the arrays as given to :func:`find_knee`.
    ``x``, ``y``: its coordinates, in the caller's units (e.g. throughput req/s and
    latency ms). ``score``: its distance below the chord of the normalised curve
    (0..1; larger = sharper knee). ``method``: ``"kneedle"``.
    """

    index: int
    x: float
    y: float
    score: float
    method: str = "kneedle"

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "x": self.x, "y": self.y, "score": round(self.score, 4), "method": self.method}


def find_knee(x: Any, y: Any, min_score: float = MIN_SCORE) -> Knee | None:
    """The knee of y(x) for an increasing, convex curve (latency against load or
    throughput), or None when the curve has none. Non-finite points are ignored;
    x need not be sorted. Pure: arrays in, a :class:`Knee` out."""
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.size != ya.size:
        raise ValueError(f"x and y differ in length ({xa.size} vs {ya.size})")
    keep = np.flatnonzero(np.isfinite(xa) & np.isfinite(ya))
    if keep.size < MIN_POINTS:
        return None
    order = keep[np.argsort(xa[keep], kind="stable")]
    xs, ys = xa[order], ya[order]
    xr, yr = xs[-1] - xs[0], ys[-1] - ys[0]
    if xr <= 0 or yr <= 0:
        return None  # no spread in x, or latency does not rise overall
    xn = (xs - xs[0]) / xr
    yn = (ys - ys[0]) / yr
    diff = xn - yn  # distance below the chord y = x (convex increasing curve)
    i = int(np.argmax(diff))
    if i == 0 or i == xs.size - 1 or diff[i] < min_score:
        return None
    return Knee(index=int(order[i]), x=float(xs[i]), y=float(ys[i]), score=float(diff[i]))
