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
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal
from types import MappingProxyType
from typing import NamedTuple, NoReturn

from surge.api.errors import UsageError

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

# --------------------------------------------------------------------------- tables


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

_TIME_UNITS = tuple(u for u, spec in UNITS.items() if spec.dimension == "time")
_EXAMPLE_VALUE = MappingProxyType(
    {"time": "300ms", "fraction": "1%", "throughput": "100", "count": "1000"}
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
_UNIT_HINTS = MappingProxyType(
    {
        "sec": "s", "secs": "s", "second": "s", "seconds": "s",
        "msec": "ms", "msecs": "ms", "millis": "ms",
        "min": "m", "mins": "m", "minute": "m", "minutes": "m",
        "µs": "us", "μs": "us", "usec": "us",
        "rps": "/s", "r/s": "/s", "reqs/s": "/s", "req/sec": "/s",
    }
)  # fmt: skip

_WS = re.compile(r"\s*")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_NUMBER = re.compile(r"(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?")
_UNIT = re.compile(r"%|/?[^\s\d.,;&|<>=!{}()'\"]+")
_TAG_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_VALUE = re.compile(r"[^\s,{}'\"]+")
_PCT = re.compile(r"p(\d+(?:\.\d+)?)")


def _metric_candidates() -> tuple[str, ...]:
    stats = ("p50", "p90", "p95", "p99", "p99.9", "avg", "mean", "min", "max", "med")
    prefixed = tuple(f"{fam}.{s}" for fam in LATENCY_FAMILIES for s in stats)
    return stats + prefixed + tuple(METRICS)


# --------------------------------------------------------------------------- helpers


def _q(text: str) -> str:
    """Quote ``text`` for a one-line message (no Python repr escaping)."""
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")
    if "'" in text and '"' not in text:
        return f'"{text}"'
    return f"'{text}'"


def _num(value: float) -> str:
    """Shortest text that parses back to exactly ``value`` (``300``, ``0.5``, ``1e-05``)."""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


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


def _format_limit(family: str, value: float) -> str:
    """Compact text for a threshold's own limit: ``'300 ms'``, ``'1 %'``, ``'100 req/s'``."""
    dimension = FAMILIES[family][0]
    if dimension == "time":
        return f"{value:,.6g} ms" if value < 1000 else f"{value / 1000:,.6g} s"
    if dimension == "fraction":
        return f"{value * 100:.6g} %"
    if dimension == "throughput":
        return f"{value:,.6g} req/s"
    return f"{value:,.6g}" if not value.is_integer() else f"{int(value):,}"


# --------------------------------------------------------------------------- model


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
        text = f"{subject} {verb} {_format_limit(family, self.value)}"
        if self.tags:
            text += " (" + ", ".join(f"{k}={v}" for k, v in self.tags) + ")"
        return text[0].upper() + text[1:]

    def __str__(self) -> str:
        return self.source.strip()


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


# --------------------------------------------------------------------------- parser


class _Parser:
    """Recursive-descent parser for one expression; all state is per call."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.metric_text = ""

    # -- plumbing
    def fail(self, what: str, fix: str) -> NoReturn:
        raise UsageError(f"invalid threshold {_q(self.text)}: {what} — {fix}")

    def ws(self) -> None:
        m = _WS.match(self.text, self.pos)
        assert m is not None
        self.pos = m.end()

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def rest(self) -> str:
        return self.text[self.pos :].strip()

    def example(self, dimension: str, op: str = "<") -> str:
        if self.metric_text == "checks":
            value = "99%"
            op = ">" if op == "<" else op
        else:
            value = _EXAMPLE_VALUE[dimension]
        return _q(f"{self.metric_text or 'p95'}{op}{value}")

    # -- grammar
    def parse(self) -> Threshold:
        self.ws()
        if self.pos == len(self.text):
            self.fail("empty expression", "write METRIC OP VALUE, e.g. 'p95<300ms'")
        metric, family = self.parse_metric()
        dimension = FAMILIES[family][0]
        self.ws()
        tags: tuple[tuple[str, str], ...] = ()
        if self.peek() == "{":
            tags = self.parse_tags(metric)
            self.ws()
        op = self.parse_op(dimension)
        self.ws()
        value = self.parse_value(metric, family, op)
        self.ws()
        if self.pos != len(self.text):
            extra = self.rest()
            if extra[0] in ",;&|" or extra.lower().startswith(("and ", "or ")):
                fix = "give each threshold separately, e.g. --threshold 'p95<300ms' --threshold 'error_rate<1%'"
            else:
                fix = f"a threshold is METRIC OP VALUE [UNIT], e.g. {self.example(dimension)}"
            self.fail(f"unexpected {_q(extra)} after the value", fix)
        return Threshold(self.text, metric, tags, op, value)

    def parse_metric(self) -> tuple[str, str]:
        start = self.pos
        m = _IDENT.match(self.text, self.pos)
        if m is None:
            found = self.rest()
            op = re.match(r"[<>=!]+", found)
            if op is not None:
                self.fail(
                    f"missing metric before {_q(op.group())}",
                    "start with a metric, e.g. 'p95<300ms'",
                )
            self.fail(
                f"expected a metric name, found {_q(found)}",
                "start with a metric such as p95, avg, error_rate or rps, e.g. 'p95<300ms'",
            )
        ident = m.group()
        self.pos = m.end()
        after_ident = self.pos
        self.ws()
        low = ident.lower()
        if self.peek() == "(":
            if low != "p" and not low.endswith(".p"):
                self.fail(
                    f"unexpected '(' after {_q(ident)}",
                    "only percentiles use parentheses, e.g. 'p(95)<300ms'",
                )
            self.pos += 1
            self.ws()
            n = _NUMBER.match(self.text, self.pos)
            if n is None or not re.fullmatch(r"\d+(?:\.\d+)?", n.group()):
                self.fail(
                    f"expected a percentile inside {_q(ident + '(')}",
                    "write e.g. 'p(95)<300ms' or 'p(99.9)<1s'",
                )
            self.pos = n.end()
            self.ws()
            if self.peek() != ")":
                self.fail(
                    f"expected ')' to close {_q(ident + '(' + n.group())}",
                    f"write {_q(ident + '(' + n.group() + ')')}, e.g. 'p(95)<300ms'",
                )
            self.pos += 1
            low = low + n.group()
        else:
            self.pos = after_ident
        self.metric_text = self.text[start : self.pos].strip()
        return self.resolve_metric(low)

    def resolve_metric(self, name: str) -> tuple[str, str]:
        shown = _q(self.metric_text)
        if name in METRICS:
            return name, METRICS[name].family
        head, dot, rest = name.partition(".")
        family = "latency"
        stat_text = name
        if dot and not _PCT.fullmatch(head):
            if head not in LATENCY_FAMILIES:
                if head in METRICS or rest in METRICS:
                    self.fail(
                        f"unknown metric {shown}",
                        f"metric families ({', '.join(LATENCY_FAMILIES)}) prefix latency statistics only, e.g. 'service.p95<200ms'",
                    )
                self.fail(
                    f"unknown metric family {_q(head)} in {shown}",
                    f"use {', '.join(f'{f}.' for f in LATENCY_FAMILIES)} before a statistic, e.g. 'service.p95<200ms'",
                )
            family, stat_text = head, rest
            if rest in METRICS:
                self.fail(
                    f"{_q(head + '.')} does not apply to {_q(rest)}",
                    f"family prefixes go on latency statistics only; write {_q(rest)} without it",
                )
        stat = self._stat(stat_text)
        if stat is None:
            hint = difflib.get_close_matches(name, _metric_candidates(), n=1, cutoff=0.6)
            did_you_mean = f"did you mean {_q(hint[0])}? " if hint else ""
            self.fail(
                f"unknown metric {shown}",
                f"{did_you_mean}use p95, p99.9, p(95), avg, mean, min, max, med (optionally "
                f"prefixed latency., service. or ttfb.), or {', '.join(METRICS)}",
            )
        if family == "latency":
            return stat, family
        return f"{family}.{stat}", family

    def _stat(self, text: str) -> str | None:
        if text in STAT_ALIASES:
            return STAT_ALIASES[text]
        m = _PCT.fullmatch(text)
        if m is None:
            return None
        p = float(m.group(1))
        if not 0 < p <= 100:
            self.fail(
                f"percentile {m.group(1)} in {_q(self.metric_text)} is out of range",
                "use a percentile above 0 and at most 100, e.g. 'p99<500ms' or 'p99.9<1s'",
            )
        return f"p{_num(p)}"

    def parse_tags(self, metric: str) -> tuple[tuple[str, str], ...]:
        allowed = METRICS[metric].tags if metric in METRICS else TAGS
        dimension = FAMILIES[METRICS[metric].family if metric in METRICS else "latency"][0]
        op, limit = (">", "99%") if metric == "checks" else ("<", _EXAMPLE_VALUE[dimension])
        if not allowed:
            self.fail(
                f"{metric} takes no tags",
                f"remove the braces, e.g. {_q(f'{self.metric_text}{op}{limit}')}",
            )
        sample_tag = '{name:"status is 200"}' if metric == "checks" else '{name:"/products/{id}"}'
        example = "e.g. " + _q(f"{self.metric_text}{sample_tag}{op}{limit}")
        open_at = self.pos
        self.pos += 1  # '{'
        tags: dict[str, str] = {}
        while True:
            self.ws()
            if self.pos == len(self.text):
                self.fail("unclosed '{'", f"close the tag list with '}}', {example}")
            if self.peek() == "}":
                if not tags:
                    self.fail("empty tag list '{}'", f"remove the braces or add a tag, {example}")
                self.fail("expected a tag after ','", f"remove the trailing comma, {example}")
            km = _TAG_KEY.match(self.text, self.pos)
            if km is None:
                self.fail(
                    f"expected a tag name, found {_q(self.rest())}",
                    f"tags are {', '.join(TAGS)}; {example}",
                )
            key = km.group().lower()
            self.pos = km.end()
            if key not in TAGS:
                hint = difflib.get_close_matches(key, TAGS, n=1)
                dym = f"did you mean {_q(hint[0])}? " if hint else ""
                self.fail(f"unknown tag {_q(km.group())}", f"{dym}use {', '.join(TAGS)}")
            if key not in allowed:
                self.fail(
                    f"tag {_q(key)} does not apply to {_q(metric)}",
                    f"{metric} can be filtered by {' or '.join(allowed)}",
                )
            if key in tags:
                self.fail(f"tag {_q(key)} is given twice", "give each tag once")
            self.ws()
            if self.peek() != ":":
                found = self.peek()
                if found == "=":
                    self.fail(
                        f"'=' after tag {_q(key)}", f"write {key}:VALUE with a colon, {example}"
                    )
                self.fail(f"expected ':' after tag {_q(key)}", f"write {key}:VALUE, {example}")
            self.pos += 1
            self.ws()
            value = self.parse_tag_value(key, example)
            if key == "method":
                value = value.upper()
            elif key == "status":
                value = self.status_class(value)
            tags[key] = value
            self.ws()
            ch = self.peek()
            if ch == ",":
                self.pos += 1
                continue
            if ch == "}":
                self.pos += 1
                break
            if ch == "":
                self.fail(
                    f"unclosed {_q(self.text[open_at:].strip())}",
                    f"close the tag list with '}}', {example}",
                )
            if ch == "{":
                self.fail(
                    f"unexpected '{{' in the value of tag {_q(key)}",
                    'quote values that contain braces, e.g. name:"/products/{id}"',
                )
            self.fail(
                f"expected ',' or '}}' after {key}:{value}, found {_q(self.rest())}",
                f"separate tags with commas and quote values with spaces, {example}",
            )
        return tuple(sorted(tags.items()))

    def status_class(self, value: str) -> str:
        low = value.lower()
        if low in STATUS_VALUES:
            return low
        if re.fullmatch(r"[1-5]\d\d", value):
            self.fail(
                f"status {_q(value)} is an exact code, but statuses are grouped by class",
                f"write status:{value[0]}xx (or status:err for requests that got no response)",
            )
        self.fail(
            f"unknown status {_q(value)}",
            f"use one of {', '.join(STATUS_VALUES)} (err = no response), e.g. 'p95{{status:2xx}}<300ms'",
        )

    def parse_tag_value(self, key: str, example: str) -> str:
        quote = self.peek()
        if quote in ("'", '"'):
            start = self.pos
            self.pos += 1
            out: list[str] = []
            while self.pos < len(self.text):
                ch = self.text[self.pos]
                if (
                    ch == "\\"
                    and self.pos + 1 < len(self.text)
                    and self.text[self.pos + 1] in "\\'\""
                ):
                    out.append(self.text[self.pos + 1])
                    self.pos += 2
                    continue
                if ch == quote:
                    self.pos += 1
                    value = "".join(out)
                    if not value:
                        self.fail(f"empty value for tag {_q(key)}", f"give a value, {example}")
                    return value
                out.append(ch)
                self.pos += 1
            self.fail(
                f"unterminated quote {_q(self.text[start:].strip())} in the value of tag {_q(key)}",
                f"close it with a matching {_q(quote)}, {example}",
            )
        m = _BARE_VALUE.match(self.text, self.pos)
        if m is None:
            self.fail(f"missing value for tag {_q(key)}", f"write {key}:VALUE, {example}")
        self.pos = m.end()
        return m.group()

    def parse_op(self, dimension: str) -> str:
        two = self.peek(2)
        mistakes = {"=<": "<=", "=>": ">=", "<>": "!=", "=!": "!="}
        if two in mistakes:
            right = mistakes[two]
            self.fail(
                f"unknown operator {_q(two)}",
                f"did you mean {_q(right)}? e.g. {self.example(dimension, right)}",
            )
        for op in OPERATORS:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return op
        ch = self.peek()
        if ch == "=":
            self.fail(
                "'=' is not a comparison",
                f"use '==' for equality or one of < <= > >= !=, e.g. {self.example(dimension)}",
            )
        if ch == "!":
            self.fail(
                "'!' must be followed by '='",
                f"use '!=' for 'not equal', e.g. {self.example(dimension, '!=')}",
            )
        if self.pos == len(self.text):
            self.fail(
                f"missing comparison after {_q(self.metric_text)}",
                f"add an operator and a value, e.g. {self.example(dimension)}",
            )
        self.fail(
            f"expected an operator (<, <=, >, >=, ==, !=) after {_q(self.text[: self.pos].strip())}, found {_q(self.rest())}",
            f"e.g. {self.example(dimension)}",
        )

    def parse_value(self, metric: str, family: str, op: str) -> float:
        dimension = FAMILIES[family][0]
        if self.peek() == "-":
            self.fail(
                "negative limit", f"limits are zero or more, e.g. {self.example(dimension, op)}"
            )
        if self.peek() == "+":
            self.pos += 1
        m = _NUMBER.match(self.text, self.pos)
        if m is None:
            self.fail(f"expected a number after {_q(op)}", f"e.g. {self.example(dimension, op)}")
        number = Decimal(m.group())
        self.pos = m.end()
        self.ws()
        unit = None
        um = _UNIT.match(self.text, self.pos)
        if um is not None:
            unit = um.group()
            self.pos = um.end()
        factor = self.unit_factor(metric, dimension, unit, m.group(), op)
        scaled = Context(prec=60).multiply(number, factor)
        value = float(scaled)
        if not math.isfinite(value):
            self.fail(f"limit {_q(m.group())} is too large", f"e.g. {self.example(dimension, op)}")
        if dimension == "fraction" and value > 1:
            written = m.group() + (unit or "")
            if unit == "%":
                self.fail(
                    f"{_q(written)} is more than 100 %",
                    f"{metric} is a share between 0 % and 100 %, e.g. {self.example(dimension, op)}",
                )
            pct = _num(float(number))
            self.fail(
                f"{metric} is a fraction between 0 and 1, but got {_q(m.group())}",
                f"write {_q(pct + '%')} for a percentage or a fraction such as {_q('0.01')}",
            )
        return value

    def unit_factor(
        self, metric: str, dimension: str, unit: str | None, number: str, op: str
    ) -> Decimal:
        if unit is None:
            return Decimal(1)
        spec = UNITS.get(unit)
        example = self.example(dimension, op)
        if spec is not None and spec.dimension == dimension:
            return spec.factor
        accepted = {
            "time": f"use {', '.join(_TIME_UNITS)} (a bare number means ms)",
            "fraction": "write a percentage such as '1%' or a fraction such as '0.01'",
            "throughput": "write requests per second as a bare number or with '/s'",
            "count": "write a bare number",
        }[dimension]
        what = {
            "time": "a duration",
            "fraction": "a fraction",
            "throughput": "requests per second",
            "count": "a count",
        }[dimension]
        if spec is not None:
            self.fail(
                f"unit {_q(unit)} ({spec.label}) does not fit {_q(self.metric_text)}, which is {what}",
                f"{accepted}, e.g. {example}",
            )
        suggestion = _UNIT_HINTS.get(unit) or _UNIT_HINTS.get(unit.lower())
        if suggestion is not None and UNITS[suggestion].dimension == dimension:
            self.fail(
                f"unknown unit {_q(unit)}",
                f"write {_q(number + suggestion)}; {accepted}",
            )
        if unit in ("h", "hr", "hours") and dimension == "time":
            self.fail(
                f"unknown unit {_q(unit)}", f"write hours as minutes (e.g. '60m'); {accepted}"
            )
        if unit == "ns" and dimension == "time":
            self.fail(
                f"unknown unit {_q(unit)}",
                f"write nanoseconds as us or ms (1000ns = 1us); {accepted}",
            )
        self.fail(f"unknown unit {_q(unit)} after {_q(number)}", f"{accepted}, e.g. {example}")


# --------------------------------------------------------------------------- entry points


def parse_threshold(text: str) -> Threshold:
    """Parse one expression such as ``"p95<300ms"`` into a :class:`Threshold`.

    Values are converted to canonical units: ms for time metrics (a bare number
    means ms), a fraction for rates (``1%`` == ``0.01``), requests/s for ``rps``.
    Raises :class:`~surge.api.errors.UsageError` with a one-line message on any error.
    """
    if not isinstance(text, str):
        raise UsageError(
            f"invalid threshold {_q(str(text))} ({type(text).__name__}): "
            'a threshold is text — write it as a string, e.g. "p95<300ms"'
        )
    return _Parser(text).parse()


def parse_thresholds(texts: Iterable[str] | str) -> tuple[Threshold, ...]:
    """Parse several expressions, in order, dropping exact duplicates.

    Two expressions are duplicates when they have the same :attr:`Threshold.key`
    (``p95<0.3s`` and ``p95 < 300`` are); the first spelling is kept. A single
    string counts as one expression. Raises ``UsageError`` on the first bad one.
    """
    if isinstance(texts, str):
        texts = (texts,)
    out: list[Threshold] = []
    seen: set[tuple[str, tuple[tuple[str, str], ...], str, float]] = set()
    for text in texts:
        th = parse_threshold(text)
        if th.key not in seen:
            seen.add(th.key)
            out.append(th)
    return tuple(out)
