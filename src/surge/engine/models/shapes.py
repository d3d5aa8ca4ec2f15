"""Rate shapes compiled to a :class:`RateCurve` (pure: no I/O, no clock).

An open model's rate comes from ``--rate``/``--stages``; a shape (``--shape``,
parsed in :mod:`surge.api.shapes`) then modulates it, or a trace replaces it.
Everything ends as a piecewise-linear curve, so the one arrival generator
(:meth:`RateCurve.arrivals`, inverting the cumulative rate) serves every shape:

- ``sine``: rate(t) = base(t) × (1 + a·sin(2πt/P)), sampled every P/64; over
  whole periods the mean rate is the base rate (the trapezoid rule is exact for
  a sampled sine over whole periods);
- ``diurnal``: rate(t) = base(t) × (1 − a·cos(2πt/D)): a 24 h day compressed
  into D (default: the run's length), starting at the night trough, peaking
  mid-day (at D/2), back to the trough at D;
- ``step``: rate(t) = base(t) + by × floor(t/every), never below 0;
- ``trace``: the ``t_s,rate`` rows themselves, linearly interpolated; the run
  lasts from the first row to the last (``--duration`` cuts it shorter or holds
  the last rate longer).
"""

from __future__ import annotations

import math

from surge.api.errors import UsageError
from surge.api.options import Options
from surge.api.shapes import Shape
from surge.engine.models.schedule import RateCurve

SAMPLES_PER_PERIOD = 64
MAX_SEGMENTS = 200_000  # a 24 h run with a 1 s sine period is still ~1 MB of segments
DEFAULT_DURATION = 10.0  # s, like the constant models


def open_curve(o: Options) -> RateCurve:
    """The full (all workers) rate curve of an open model, shape applied."""
    shape = o.shape if isinstance(o.shape, Shape) else None
    if shape is not None and shape.kind == "trace":
        if o.stages:
            raise UsageError("a trace shape replaces --stages (and --rate): give one or the other")
        return trace_curve(shape.points, o.duration)
    if o.stages:
        base = RateCurve.from_stages(o.stages, o.rate or 0.0)
    else:
        if o.rate is None:
            raise UsageError("this shape modulates a rate: add --rate N (iterations per second)")
        base = RateCurve.constant(o.rate, o.duration if o.duration is not None else DEFAULT_DURATION)
    return base if shape is None else modulate(base, shape)


def trace_curve(points: tuple[tuple[float, float], ...], duration: float | None = None) -> RateCurve:
    """A curve through ``(t_s, rate)`` points, time shifted so the first point is t = 0.

    ``duration`` (s) cuts the curve there or holds the last rate until then.
    """
    t_first = points[0][0]
    segs = [(a - t_first, b - t_first, ra, rb) for (a, ra), (b, rb) in zip(points, points[1:], strict=False)]
    curve = RateCurve(segs)
    if duration is None or math.isclose(duration, curve.duration):
        return curve
    if duration < curve.duration:
        return cut(curve, duration)
    last = points[-1][1]
    return RateCurve([*curve.segments, (curve.duration, duration, last, last)])


def cut(curve: RateCurve, end: float) -> RateCurve:
    """``curve`` up to ``end`` s."""
    out = []
    for t0, t1, r0, r1 in curve.segments:
        if t0 >= end:
            break
        if t1 > end:
            r1, t1 = r0 + (r1 - r0) * (end - t0) / (t1 - t0), end
        out.append((t0, t1, r0, r1))
    return RateCurve(out)


def modulate(base: RateCurve, shape: Shape) -> RateCurve:
    """Apply a sine, diurnal or step ``shape`` to ``base``."""
    if shape.kind == "step":
        assert shape.every is not None
        return _steps(base, shape.every, shape.by)
    period = shape.period if shape.period is not None else base.duration
    a = shape.amplitude
    w = 2.0 * math.pi / period
    if shape.kind == "sine":
        def factor(t: float) -> float:
            return 1.0 + a * math.sin(w * t)
    else:  # diurnal
        def factor(t: float) -> float:
            return 1.0 - a * math.cos(w * t)
    dt = max(period / SAMPLES_PER_PERIOD, base.duration / MAX_SEGMENTS)
    segs = []
    for t0, t1, r0, r1 in base.segments:
        n = max(1, math.ceil((t1 - t0) / dt))
        knots = [t0 + (t1 - t0) * i / n for i in range(n + 1)]
        rates = [(r0 + (r1 - r0) * (t - t0) / (t1 - t0)) * factor(t) for t in knots]
        segs += [(knots[i], knots[i + 1], rates[i], rates[i + 1]) for i in range(n)]
    return RateCurve(segs)


def _steps(base: RateCurve, every: float, by: float) -> RateCurve:
    segs = []
    for t0, t1, r0, r1 in base.segments:
        a = t0
        while a < t1:
            k = math.floor(a / every + 1e-9)
            b = min(t1, (k + 1) * every)
            ra = r0 + (r1 - r0) * (a - t0) / (t1 - t0)
            rb = r0 + (r1 - r0) * (b - t0) / (t1 - t0)
            segs.append((a, b, max(0.0, ra + by * k), max(0.0, rb + by * k)))
            a = b
    return RateCurve(segs)


def peak_rate(curve: RateCurve) -> float:
    """Highest rate of a piecewise-linear curve (at a knot), iterations/s."""
    return max((max(r0, r1) for _, _, r0, r1 in curve.segments), default=0.0)
