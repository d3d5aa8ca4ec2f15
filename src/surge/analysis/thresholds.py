"""Pass/fail thresholds: parsing (no ``eval``), evaluation and value formatting.

A threshold is one expression such as ``"p95<300ms"``, ``"error_rate<1%"`` or
``'p99{name:"/products/{id}"}<800ms'``::

    threshold := metric [ '{' tag ':' value (',' tag ':' value)* '}' ] op number [unit]
    op        := '<' | '<=' | '>' | '>=' | '==' | '!='

Whitespace is allowed between tokens. Every value is converted to a canonical
unit when parsed:

- latency statistics: ``p95``, ``p(95)``, ``p99.9``, ``avg`` (``mean``), ``min``, ``max``,
  ``med`` (= ``p50``), optionally prefixed ``latency.`` (same thing), ``service.``
  (service time) or ``ttfb.`` (time to first byte). Written with ``us``, ``ms``,
  ``s`` or ``m``; a bare number means ms. Canonical unit: ms.
- rates (``error_rate``, ``checks``, ``iteration_error_rate``): ``1%`` or ``0.01``.
  Canonical unit: a fraction from 0 to 1.
- ``rps``: a bare number or ``100/s``. Canonical unit: requests per second.
- counts (``requests``, ``iterations``, ``dropped_iterations``): a bare number.

Latency is measured from each request's *intended* start (free of coordinated
omission); service time from when the request was actually sent.

Evaluation is decoupled from the metrics store: :func:`evaluate` takes a
``lookup`` callable that returns the observed value (canonical unit) for a
threshold's metric and tags, or ``None`` when nothing matched. A threshold with
no data fails, so a typo in a request name cannot pass silently.

Every parse error is a :class:`~surge.api.errors.UsageError` whose message is one
line: it quotes the expression, names what is wrong and says how to fix it.

This module evaluates; the rest lives beside it: :mod:`~surge.analysis.thresholds_spec`
(the vocabulary and value formatting), :mod:`~surge.analysis.thresholds_model`
(:class:`Threshold`), :mod:`~surge.analysis.thresholds_lex` and
:mod:`~surge.analysis.thresholds_parse` (the parser). Import everything from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from surge.analysis.thresholds_model import Threshold
from surge.analysis.thresholds_parse import parse_threshold, parse_thresholds
from surge.analysis.thresholds_spec import (
    FAMILIES,
    LATENCY_FAMILIES,
    METRICS,
    OPERATORS,
    STAT_ALIASES,
    STATUS_VALUES,
    TAGS,
    UNITS,
    MetricSpec,
    Unit,
    format_value,
)

__all__ = [
    "FAMILIES",
    "LATENCY_FAMILIES",
    "METRICS",
    "OPERATORS",
    "STATUS_VALUES",
    "STAT_ALIASES",
    "TAGS",
    "UNITS",
    "MetricSpec",
    "Threshold",
    "ThresholdResult",
    "Unit",
    "evaluate",
    "format_value",
    "parse_threshold",
    "parse_thresholds",
]


@dataclass(frozen=True)
class ThresholdResult:
    """The outcome of one threshold.

    Attributes:
        threshold: what was checked.
        observed: the measured value in the threshold's canonical unit (ms, fraction,
            req/s, count); ``None`` when no data matched (e.g. the name never appeared).
        passed: whether it held; a threshold with no data fails.
    """

    threshold: Threshold
    observed: float | None
    passed: bool

    def observed_text(self) -> str:
        """``'312.4 ms'``, ``'0.52 %'``, ``'1,204 req/s'``, or ``'no data'``."""
        return format_value(self.threshold.family, self.observed)

    def describe(self) -> str:
        """One line: ``'FAIL p95<300ms: observed 312.4 ms'``."""
        verdict = "pass" if self.passed else "FAIL"
        extra = "" if self.observed is not None else " (no matching requests: check names and tags)"
        return f"{verdict} {self.threshold}: observed {self.observed_text()}{extra}"


def evaluate(
    thresholds: Iterable[Threshold], lookup: Callable[[Threshold], float | None]
) -> list[ThresholdResult]:
    """Check each threshold against ``lookup(threshold)``.

    ``lookup`` returns the observed value for the threshold's metric and tags in
    canonical units (ms, fraction, req/s, count), or ``None`` when nothing
    matched. No data (``None`` or NaN) fails and is reported as ``observed=None``.
    """
    results = []
    for th in thresholds:
        raw = lookup(th)
        observed = None if raw is None or math.isnan(float(raw)) else float(raw)
        results.append(ThresholdResult(th, observed, th.holds(observed)))
    return results
