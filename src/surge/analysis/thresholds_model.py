"""One parsed threshold: its canonical metric, tags, operator and limit, and what it means.

:class:`Threshold` knows its family and unit, whether an observed value holds,
whether a failure mid-run is final, and how to say itself in words or as a
canonical expression. Part of :mod:`surge.analysis.thresholds`; import from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

from surge.analysis.thresholds_spec import (
    _PCT,
    FAMILIES,
    LATENCY_FAMILIES,
    METRICS,
    _num,
    format_limit,
)

_OP_WORDS = MappingProxyType(
    {
        "<": "below",
        "<=": "at most",
        ">": "above",
        ">=": "at least",
        "==": "exactly",
        "!=": "other than",
    }
)


def _ordinal(p: float) -> str:
    if not p.is_integer():
        return f"{_num(p)}th"
    n = int(p)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _compare(observed: float, op: str, limit: float) -> bool:
    if op == "<":
        return observed < limit
    if op == "<=":
        return observed <= limit
    if op == ">":
        return observed > limit
    if op == ">=":
        return observed >= limit
    if op == "==":
        return observed == limit
    if op == "!=":
        return observed != limit
    raise ValueError(f"unknown operator {op!r}")


@dataclass(frozen=True)
class Threshold:
    """One parsed threshold expression.

    Attributes:
        source: the original text, exactly as given.
        metric: canonical metric name: ``'p95'``, ``'p99.9'``, ``'avg'``, ``'min'``,
            ``'max'`` (``med`` becomes ``'p50'``, ``mean`` becomes ``'avg'``,
            ``latency.p95`` and ``p(95)`` become ``'p95'``); ``'service.p95'``,
            ``'ttfb.avg'``; or a name from :data:`METRICS` such as ``'error_rate'``.
        tags: ``(tag, value)`` pairs sorted by tag; ``method`` values are upper-cased.
        op: one of :data:`OPERATORS`.
        value: the limit in canonical units: ms for time metrics, a fraction (0..1)
            for rates, requests/s for ``rps``, a plain number for counts.
    """

    source: str
    metric: str
    tags: tuple[tuple[str, str], ...]
    op: str
    value: float

    @property
    def family(self) -> str:
        """``'latency'``, ``'service'``, ``'ttfb'``, ``'rate'``, ``'throughput'`` or ``'count'``."""
        spec = METRICS.get(self.metric)
        if spec is not None:
            return spec.family
        head, dot, _ = self.metric.partition(".")
        return head if dot and head in LATENCY_FAMILIES else "latency"

    @property
    def stat(self) -> str | None:
        """Latency statistic without the family prefix (``'p95'``, ``'avg'``, ...); else None."""
        if self.metric in METRICS:
            return None
        head, dot, rest = self.metric.partition(".")
        return rest if dot and head in LATENCY_FAMILIES else self.metric

    @property
    def percentile(self) -> float | None:
        """The percentile (0 < p <= 100) of a ``pNN``/``med`` threshold, e.g. 95.0; else None."""
        stat = self.stat
        if stat is None:
            return None
        m = _PCT.fullmatch(stat)
        return float(m.group(1)) if m else None

    @property
    def is_time(self) -> bool:
        """True for latency/service/ttfb statistics (values in ms)."""
        return self.family in LATENCY_FAMILIES

    @property
    def unit(self) -> str:
        """Canonical unit of :attr:`value`: ``'ms'``, ``'fraction'``, ``'req/s'`` or ``'count'``."""
        return FAMILIES[self.family][1]

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...], str, float]:
        """Identity independent of spelling: ``p95<0.3s`` and ``p(95) < 300`` share a key."""
        return (self.metric, self.tags, self.op, self.value)

    def expression(self) -> str:
        """Canonical expression that parses back to the same :attr:`key`.

        E.g. ``'p95<300ms'``, ``'error_rate<0.01'``, ``'p99{name:"/p/{id}"}<800ms'``.
        """
        tags = ""
        if self.tags:
            parts = []
            for k, v in self.tags:
                escaped = v.replace("\\", "\\\\").replace('"', '\\"')
                parts.append(f'{k}:"{escaped}"')
            tags = "{" + ",".join(parts) + "}"
        suffix = {"time": "ms", "throughput": "/s"}.get(FAMILIES[self.family][0], "")
        return f"{self.metric}{tags}{self.op}{_num(self.value)}{suffix}"

    def holds(self, observed: float | None) -> bool:
        """Whether ``observed`` (canonical unit) satisfies this threshold.

        ``None`` or NaN (no data) never holds.
        """
        if observed is None:
            return False
        observed = float(observed)
        if math.isnan(observed):
            return False
        return _compare(observed, self.op, self.value)

    @property
    def final_when_failed(self) -> bool:
        """Whether a failure seen mid-run can no longer turn into a pass.

        False for counts that must reach a minimum (``requests>1000``) or equal a
        value: counts only grow, so such a threshold is judged at the end only.
        Rates, latencies and upper bounds on counts are judged as they stand.
        """
        return not (self.family == "count" and self.op in (">", ">=", "==", "!="))

    def fails_early(self, observed: float | None) -> bool:
        """For ``--abort-on-fail``: True when the run may stop now because of this threshold.

        No data yet is not a failure mid-run (the request may simply not have
        happened yet); see :attr:`final_when_failed` for counts.
        """
        if observed is None or math.isnan(float(observed)):
            return False
        return self.final_when_failed and not self.holds(observed)

    def describe(self) -> str:
        """Human text, e.g. ``'95th percentile latency must be below 300 ms (name=/cart)'``."""
        family = self.family
        stat = self.stat
        if stat is not None:
            pct = self.percentile
            if pct == 50:
                what = "median"
            elif pct is not None:
                what = f"{_ordinal(pct)} percentile"
            else:
                what = {"avg": "average", "min": "minimum", "max": "maximum"}[stat]
            subject = f"{what} {LATENCY_FAMILIES[family]}"
        else:
            subject = METRICS[self.metric].description
        verb = "must not be" if self.op == "!=" else f"must be {_OP_WORDS[self.op]}"
        text = f"{subject} {verb} {format_limit(family, self.value)}"
        if self.tags:
            text += " (" + ", ".join(f"{k}={v}" for k, v in self.tags) + ")"
        return text[0].upper() + text[1:]

    def __str__(self) -> str:
        return self.source.strip()
