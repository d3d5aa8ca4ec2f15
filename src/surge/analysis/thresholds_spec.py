"""The threshold vocabulary: units, operators, tags, metrics and families, and how values read.

The tables say what a threshold may name and in which unit its value is
written; :func:`format_value` writes a value in a family's canonical unit for
people. Part of :mod:`surge.analysis.thresholds`; import from there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple


class Unit(NamedTuple):
    """A unit a threshold value may be written in.

    ``dimension`` is ``"time"``, ``"fraction"`` or ``"throughput"``; ``factor``
    multiplies the written number to give the canonical unit (ms, fraction, req/s).
    """

    dimension: str
    factor: Decimal
    label: str


#: Units by symbol. A bare number means ms for time metrics, a fraction for rates,
#: requests/s for ``rps`` and a plain count for counts.
UNITS: Mapping[str, Unit] = MappingProxyType(
    {
        "us": Unit("time", Decimal("0.001"), "microseconds"),
        "ms": Unit("time", Decimal(1), "milliseconds"),
        "s": Unit("time", Decimal(1000), "seconds"),
        "m": Unit("time", Decimal(60000), "minutes"),
        "%": Unit("fraction", Decimal("0.01"), "percent"),
        "/s": Unit("throughput", Decimal(1), "requests per second"),
        "req/s": Unit("throughput", Decimal(1), "requests per second"),
    }
)

#: Operators, in the order the tokenizer tries them (two-character ones first).
OPERATORS: tuple[str, ...] = ("<=", ">=", "==", "!=", "<", ">")

#: Tags a threshold may filter on.
TAGS: tuple[str, ...] = ("name", "method", "scenario", "status")

#: Values the ``status`` tag takes: a status class, or ``err`` for no response.
STATUS_VALUES: tuple[str, ...] = ("1xx", "2xx", "3xx", "4xx", "5xx", "err")

_REQUEST_TAGS = TAGS
_CHECK_TAGS = ("name",)  # the check's name
_ITERATION_TAGS: tuple[str, ...] = ()


class MetricSpec(NamedTuple):
    """What a non-latency metric measures, its family and which tags apply."""

    family: str
    description: str
    tags: tuple[str, ...]


#: Latency-like families: the optional ``family.`` prefix of a latency statistic.
LATENCY_FAMILIES: Mapping[str, str] = MappingProxyType(
    {
        "latency": "latency",
        "service": "service time",
        "ttfb": "time to first byte",
    }
)

#: Named latency statistics -> canonical statistic (percentiles are ``pNN``).
STAT_ALIASES: Mapping[str, str] = MappingProxyType(
    {"avg": "avg", "mean": "avg", "min": "min", "max": "max", "med": "p50"}
)

#: Non-latency metrics by name.
METRICS: Mapping[str, MetricSpec] = MappingProxyType(
    {
        "error_rate": MetricSpec("rate", "error rate", _REQUEST_TAGS),
        "checks": MetricSpec("rate", "share of checks passed", _CHECK_TAGS),
        "iteration_error_rate": MetricSpec("rate", "iteration error rate", _ITERATION_TAGS),
        "rps": MetricSpec("throughput", "throughput", _REQUEST_TAGS),
        "requests": MetricSpec("count", "requests", _REQUEST_TAGS),
        "iterations": MetricSpec("count", "iterations", _ITERATION_TAGS),
        "dropped_iterations": MetricSpec("count", "dropped iterations", _ITERATION_TAGS),
    }
)

#: Every family, with the dimension of its values and its canonical unit.
FAMILIES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "latency": ("time", "ms"),
        "service": ("time", "ms"),
        "ttfb": ("time", "ms"),
        "rate": ("fraction", "fraction"),
        "throughput": ("throughput", "req/s"),
        "count": ("count", "count"),
    }
)

_PCT = re.compile(r"p(\d+(?:\.\d+)?)")


def _num(value: float) -> str:
    """Shortest text that parses back to exactly ``value`` (``300``, ``0.5``, ``1e-05``)."""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def format_value(metric_family: str, value: float | None) -> str:
    """Human text for a value in the canonical unit of ``metric_family``.

    Time families (``latency``/``service``/``ttfb``; value in ms) give ``'0.412 ms'``,
    ``'12.35 ms'``, ``'312.4 ms'``, or seconds from 10 s up (``'12.35 s'``); ``rate``
    (a fraction) gives ``'0.52 %'``; ``throughput`` (req/s) ``'1,204 req/s'``;
    ``count`` ``'1,204'``. ``None`` gives ``'no data'``.
    """
    if metric_family not in FAMILIES:
        raise ValueError(
            f"unknown metric family {metric_family!r}: expected one of {', '.join(FAMILIES)}"
        )
    if value is None:
        return "no data"
    value = float(value)
    dimension = FAMILIES[metric_family][0]
    if not math.isfinite(value):
        text = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        unit = {"time": " ms", "fraction": " %", "throughput": " req/s"}.get(dimension, "")
        return text + unit
    if dimension == "time":
        a = abs(value)
        if a >= 10_000:
            return f"{value / 1000:,.2f} s"
        if a >= 100:
            return f"{value:,.1f} ms"
        if a >= 1 or a == 0:
            return f"{value:.2f} ms"
        return f"{value:.3f} ms"
    if dimension == "fraction":
        pct = value * 100
        if pct != 0 and abs(pct) < 0.01:
            return f"{pct:.2g} %"
        return f"{pct:.2f} %"
    if dimension == "throughput":
        a = abs(value)
        if a >= 1000:
            return f"{value:,.0f} req/s"
        if a >= 10:
            return f"{value:,.1f} req/s"
        return f"{value:.2f} req/s"
    # count
    if value.is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def format_limit(family: str, value: float) -> str:
    """Compact text for a threshold's own limit: ``'300 ms'``, ``'1 %'``, ``'100 req/s'``."""
    dimension = FAMILIES[family][0]
    if dimension == "time":
        return f"{value:,.6g} ms" if value < 1000 else f"{value / 1000:,.6g} s"
    if dimension == "fraction":
        return f"{value * 100:.6g} %"
    if dimension == "throughput":
        return f"{value:,.6g} req/s"
    return f"{value:,.6g}" if not value.is_integer() else f"{int(value):,}"
