"""Breakpoint search decisions: is a constant-rate step sustainable, and which rate next.

Pure functions on plain data (per-second rows, observed threshold values), so the
search logic is tested with synthetic steps and no server. ``surge breakpoint``
(cli/breakpoint_cmd.py) runs the steps and calls these.

A step at target rate R **passes** when, over its window (the whole seconds t of
the step with ``warmup_s`` <= t and t + 1 <= the step's duration: the step minus
its first ``warmup_s`` seconds, when connections and VUs are still being set up,
and minus the graceful stop after the schedule; see :func:`in_window`):

- every SLO holds, or it fails only as a blip (fewer than ``sustain_s`` seconds
  breach it on their own: one slow second is not a breaking point);
- the generator delivered: achieved throughput >= ``min_achieved`` × R and no
  iteration was dropped (no free VU);
- latency does not climb within the step: the median per-second p50 of the last
  third of the window is not above ``slope_factor`` × the first third's (and
  ``slope_min_ms`` more): a queue that grows for the whole step means the server
  is past its capacity even if the SLO has not caught up yet;
- errors stay under ``max_error_rate`` (only when no ``error_rate`` SLO is given).

Which numbers come from where: the SLO values and the step's p50/p95/p99 are
percentiles of the window's *merged* latency histogram (one distribution over all
its requests, the same numbers in the table, the JSON and the SLO reason). Only
two checks use the per-second values, because they are about time: the blip rule
(how many seconds breach an SLO on their own) and the latency-slope check (first
third vs last third of the window).

A generator-bound step (the generator's own CPU or schedule lag, see
``analysis/generator.py``) is judged as measured and noted: latency counts from
the scheduled start, so generator delay can only make a step look worse.

The search grows the rate geometrically from ``start`` until the first failing
step, then bisects between the highest pass and the lowest fail until they are
within ``tolerance`` of each other; it never exceeds ``max_rate``, never runs more
than ``max_steps`` steps, and the CLI adds a time budget.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from surge.analysis.thresholds import Threshold, format_value
from surge.analysis.thresholds_spec import format_limit
from surge.metrics.histogram import Histogram

_ROW_LATENCY = {"p50": "p50", "p95": "p95", "p99": "p99",
                "service.p50": "service_p50", "service.p95": "service_p95", "service.p99": "service_p99"}


@dataclass(frozen=True)
class Criteria:
    """When a step counts as failed (see the module docstring). Times in s, latencies in ms."""

    warmup_s: float = 1.0
    min_achieved: float = 0.95
    slope_factor: float = 2.0
    slope_min_ms: float = 5.0
    max_error_rate: float = 0.01
    sustain_s: int = 2


@dataclass(frozen=True)
class SloResult:
    """One SLO on one step: its value over the window and the seconds that breached it alone."""

    source: str
    observed: float | None
    passed: bool
    breach_seconds: int | None  # None: not observable per second (judged on the window only)


@dataclass(frozen=True)
class StepResult:
    """The verdict on one step.

    ``target`` and ``achieved`` are iterations/s (requests/s for a URL); ``p50``,
    ``p95``, ``p99`` are ms, percentiles of the window's merged latency histogram
    (the distribution the SLOs are judged on; None without one); ``window`` is
    ``(first, end)``, the step's seconds [first, end) they cover (after the
    warm-up, before the graceful stop); ``noise`` is the relative standard
    deviation of the per-second achieved rate.
    ``load`` is the largest observed/limit ratio of the upper-bound SLOs (how much
    of the SLO budget the step used), None without such SLOs.
    """

    target: float
    achieved: float
    p50: float | None
    p95: float | None
    p99: float | None
    error_rate: float
    dropped: int
    seconds: int
    passed: bool
    reasons: tuple[str, ...]
    noise: float = 0.0
    load: float | None = None
    slos: tuple[SloResult, ...] = ()
    generator_bound: bool = False
    run_dir: str | None = None
    window: tuple[float, float] | None = None

    def to_json(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("target", "achieved", "p50", "p95", "p99", "error_rate", "dropped",
                                           "seconds", "passed", "noise", "load", "generator_bound", "run_dir")}
        d["window"] = list(self.window) if self.window is not None else None
        d["reasons"] = list(self.reasons)
        d["slos"] = [s.__dict__ for s in self.slos]
        return d


def window_bounds(warmup_s: float, duration_s: float) -> tuple[int, int]:
    """``(first, end)``: the window is the step's whole seconds t with first <= t < end,
    i.e. those starting at or after ``warmup_s`` and ending by ``duration_s``."""
    return math.ceil(warmup_s), math.floor(duration_s + 1e-9)


def in_window(t: int, warmup_s: float, duration_s: float) -> bool:
    """Whether second ``t`` of a step (it covers [t, t+1) s) belongs to the judged window."""
    first, end = window_bounds(warmup_s, duration_s)
    return first <= t < end


def window(rows: Sequence[dict[str, Any]], warmup_s: float, duration_s: float) -> list[dict[str, Any]]:
    """The rows of whole seconds from ``warmup_s`` up to ``duration_s`` (the graceful stop after
    the schedule, when no new iterations start, is left out)."""
    return [r for r in rows if in_window(r["t"], warmup_s, duration_s)]


def second_value(th: Threshold, row: dict[str, Any]) -> float | None:
    """``th``'s metric in one per-second row, when the row carries it (untagged latency
    percentiles p50/p95/p99, error_rate, rps); None otherwise."""
    if th.tags:
        return None
    if th.metric in _ROW_LATENCY:
        return row.get(_ROW_LATENCY[th.metric])
    if th.metric == "error_rate":
        return row["errors"] / row["requests"] if row.get("requests") else None
    if th.metric == "rps":
        return float(row.get("requests", 0))
    return None


def _median(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def judge_step(
    target: float,
    rows: Sequence[dict[str, Any]],
    slos: Sequence[tuple[Threshold, float | None]] = (),
    *,
    criteria: Criteria = Criteria(),
    duration_s: float,
    generator_bound: bool = False,
    latency: Histogram | None = None,
) -> StepResult:
    """The verdict on one step at ``target`` iterations/s from its per-second ``rows``.

    ``slos`` pairs each threshold with its value observed over the window (the
    caller aggregates the window's histograms). ``latency``: the window's merged
    latency histogram (ns, all requests), read for the step's p50/p95/p99, so they
    are the same numbers the SLO values were read from. ``duration_s``: the step's
    schedule length, s.
    """
    win = window(rows, criteria.warmup_s, duration_s)
    bounds = window_bounds(criteria.warmup_s, duration_s)
    failed: list[str] = []
    notes: list[str] = []
    if not win:
        return StepResult(target, 0.0, None, None, None, 0.0, 0, 0, False, ("no complete second to judge",),
                          window=bounds)
    n = len(win)
    use_iterations = any(r.get("iterations") for r in win)
    per_s = [float(r["iterations"] if use_iterations else r["requests"]) for r in win]
    achieved = sum(per_s) / n
    noise = statistics.pstdev(per_s) / achieved if achieved > 0 and n > 1 else 0.0
    requests = sum(r["requests"] for r in win)
    errors = sum(r["errors"] for r in win)
    error_rate = errors / requests if requests else 0.0
    dropped = sum(r.get("dropped", 0) for r in win)
    # SLOs: the window's value decides; a breach confined to fewer than sustain_s seconds
    # (counted on the per-second values) is a blip.
    results, load = [], None
    for th, observed in slos:
        per = [second_value(th, r) for r in win]
        observable = any(v is not None for v in per)
        breach = sum(1 for v in per if v is not None and not th.holds(v)) if observable else None
        ok = th.holds(observed)
        if not ok and breach is not None and breach < min(criteria.sustain_s, n):
            ok = True
            notes.append(f"SLO {th.source}: blip ({slo_text(th, observed)} over the window, "
                         f"but only {breach} s breached it alone)")
        elif not ok:
            failed.append(f"SLO {th.source} failed: {slo_text(th, observed)}")
        results.append(SloResult(th.source, observed, ok, breach))
        if th.op in ("<", "<=") and th.value > 0 and observed is not None:
            load = max(load or 0.0, observed / th.value)
    if achieved < criteria.min_achieved * target:
        failed.append(f"achieved {achieved:.4g}/s < {criteria.min_achieved:.0%} of target")
    if dropped:
        failed.append(f"{dropped} dropped iterations")
    slope = _slope(win, criteria)
    if slope:
        failed.append(slope)
    if not any(th.metric == "error_rate" for th, _ in slos) and error_rate > criteria.max_error_rate:
        failed.append(f"error rate {error_rate:.2%} > {criteria.max_error_rate:.0%}")
    if generator_bound:
        # Not a verdict on the server: latency is timed from the schedule, so a late
        # generator makes the step look worse, never better. Noted, judged as measured.
        notes.append("generator-bound (its delay counts in the latency)")
    p50, p95, p99 = window_percentiles(latency)
    return StepResult(
        target=target, achieved=achieved, p50=p50, p95=p95, p99=p99,
        error_rate=error_rate, dropped=dropped, seconds=n, passed=not failed,
        reasons=tuple(failed + notes), noise=noise, load=load, slos=tuple(results),
        generator_bound=generator_bound, window=bounds,
    )


def window_percentiles(latency: Histogram | None) -> tuple[float | None, float | None, float | None]:
    """p50, p95, p99 in ms of a window's merged latency histogram (ns); Nones when empty."""
    if latency is None or latency.count == 0:
        return None, None, None
    p50, p95, p99 = (float(v) / 1e6 for v in latency.percentiles([50, 95, 99]))
    return p50, p95, p99


def slo_text(th: Threshold, observed: float | None) -> str:
    """The observed value against the limit, with units: ``'p95 359.7 ms > 300 ms'``."""
    name = th.metric + ("{" + ",".join(f"{k}:{v}" for k, v in th.tags) + "}" if th.tags else "")
    if observed is None or math.isnan(observed):
        return f"{name}: no data"
    rel = ">" if observed > th.value else "<" if observed < th.value else "="
    return f"{name} {format_value(th.family, observed)} {rel} {format_limit(th.family, th.value)}"


def _slope(win: Sequence[dict[str, Any]], c: Criteria) -> str | None:
    """A latency that climbs through the step: the median of the per-second p50s of the
    window's last third vs its first third's. This check is about time, so it uses the
    per-second values, not the window's merged histogram."""
    lat = [r.get("p50") for r in win]
    k = max(1, len(lat) // 3)
    start, end = _median(lat[:k]), _median(lat[-k:])
    if len(lat) < 2 or start is None or end is None:
        return None
    if end > c.slope_factor * start and end - start > c.slope_min_ms:
        return f"latency rising within the step (per-second p50 {start:,.1f} -> {end:,.1f} ms, first to last third)"
    return None


# --------------------------------------------------------------------------- next rate


@dataclass(frozen=True)
class SearchPolicy:
    """How the rate moves between steps (iterations/s; ``tolerance`` relative)."""

    start: float = 50.0
    max_rate: float = 5000.0
    growth: float = 2.0  # the largest growth factor between two passing steps
    min_growth: float = 1.2
    tolerance: float = 0.05
    max_steps: int = 20
    min_rate: float = 1.0


@dataclass(frozen=True)
class Bracket:
    """The highest passing rate below the lowest failing one (either may be None)."""

    passed: float | None
    failed: float | None


def bracket(history: Sequence[tuple[float, bool]]) -> Bracket:
    """``history``: (target, passed) of each step so far. A pass above the lowest fail
    (noise near the limit) is ignored: the conservative reading wins."""
    fails = [r for r, ok in history if not ok]
    hi = min(fails) if fails else None
    passes = [r for r, ok in history if ok and (hi is None or r < hi)]
    return Bracket(max(passes) if passes else None, hi)


def growth_factor(load: float | None, p: SearchPolicy) -> float:
    """Grow fast while the last pass used little of its SLO budget, slower near it."""
    if load is None or load < 0.5:
        return p.growth
    if load < 0.8:
        return max(p.min_growth, min(p.growth, 1.5))
    return p.min_growth


def next_rate(history: Sequence[tuple[float, bool]], policy: SearchPolicy,
              last_load: float | None = None) -> tuple[float | None, str]:
    """The next step's target rate, or ``(None, why the search is over)``.

    Grows by :func:`growth_factor` (capped at ``max_rate``) until a step fails,
    halves from the lowest rate while nothing has passed, then bisects the
    bracket until ``failed / passed - 1 <= tolerance``.
    """
    if not history:
        return min(policy.start, policy.max_rate), "start"
    if len(history) >= policy.max_steps:
        return None, f"step limit ({policy.max_steps}) reached"
    b = bracket(history)
    if b.failed is None:
        assert b.passed is not None
        if b.passed >= policy.max_rate:
            return None, f"--max {policy.max_rate:g}/s reached without a failing step (a lower bound)"
        return min(b.passed * growth_factor(last_load, policy), policy.max_rate), "grow"
    if b.passed is None:
        nxt = b.failed / 2.0
        if nxt < policy.min_rate:
            return None, f"fails even at {b.failed:g}/s"
        return nxt, "shrink"
    if b.failed / b.passed - 1.0 <= policy.tolerance:
        return None, f"bracket within {policy.tolerance:.0%}"
    return (b.passed + b.failed) / 2.0, "bisect"


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class Breakpoint:
    """The outcome of a search.

    ``max_rate``: the highest passing rate below the first failure (iterations/s),
    None when nothing passed. ``first_fail``: the lowest failing rate, None when
    none failed (``max_rate`` is then only a lower bound). ``band``: the range the
    true breaking point lies in: [max_rate widened down by the passing step's
    throughput noise, first_fail]. ``knee``: where latency (p95) bends upward
    against achieved throughput over all steps, or None.
    """

    max_rate: float | None
    first_fail: float | None
    band: tuple[float | None, float | None]
    stop_reason: str
    steps: tuple[StepResult, ...]
    knee: dict[str, Any] | None = None
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"max_sustainable_rate": self.max_rate, "first_failing_rate": self.first_fail,
                "band": list(self.band), "stop_reason": self.stop_reason, "knee": self.knee,
                "notes": list(self.notes), "steps": [s.to_json() for s in self.steps]}


def conclude(steps: Sequence[StepResult], stop_reason: str) -> Breakpoint:
    """Summarise the steps: bracket, band, knee of latency vs throughput."""
    b = bracket([(s.target, s.passed) for s in steps])
    low = None
    notes = []
    if b.passed is not None:
        lo_step = max((s for s in steps if s.passed and s.target == b.passed), key=lambda s: s.seconds)
        low = b.passed * (1.0 - min(lo_step.noise, 0.5))
    if b.failed is None and b.passed is not None:
        notes.append("no step failed: the maximum sustainable rate is at least the highest rate tried")
    if any(s.generator_bound and s.target in (b.passed, b.failed) for s in steps):
        notes.append("a step at the bracket was generator-bound: its latency includes generator delay, so the "
                     "breaking point may be higher; add --workers or machines to confirm")
    return Breakpoint(b.passed, b.failed, (low, b.failed), stop_reason, tuple(steps),
                      knee=_knee(steps), notes=tuple(notes))


def _knee(steps: Sequence[StepResult]) -> dict[str, Any] | None:
    from surge.analysis.capacity.knee import find_knee

    pts = sorted((s.achieved, s.p95) for s in steps if s.p95 is not None and s.achieved > 0)
    if len(pts) < 4:
        return None
    k = find_knee([x for x, _ in pts], [y for _, y in pts])
    return None if k is None else {"throughput": k.x, "p95_ms": k.y, "score": round(k.score, 4), "method": k.method}
