"""Parsing threshold expressions (no ``eval``) into :class:`Threshold` objects.

A recursive-descent parser for the grammar in :mod:`surge.analysis.thresholds`:
the metric (with aliases, families and percentiles), the tag list, then the
operator and value that :class:`~surge.analysis.thresholds_lex._Scanner` reads.
Every error is a one-line :class:`~surge.api.errors.UsageError`. Part of
:mod:`surge.analysis.thresholds`; import from there.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from surge.analysis.thresholds_lex import _EXAMPLE_VALUE, _NUMBER, _q, _Scanner
from surge.analysis.thresholds_model import Threshold
from surge.analysis.thresholds_spec import (
    _PCT,
    FAMILIES,
    LATENCY_FAMILIES,
    METRICS,
    STAT_ALIASES,
    STATUS_VALUES,
    TAGS,
    _num,
)
from surge.api.errors import UsageError

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_TAG_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_VALUE = re.compile(r"[^\s,{}'\"]+")


def _metric_candidates() -> tuple[str, ...]:
    stats = ("p50", "p90", "p95", "p99", "p99.9", "avg", "mean", "min", "max", "med")
    prefixed = tuple(f"{fam}.{s}" for fam in LATENCY_FAMILIES for s in stats)
    return stats + prefixed + tuple(METRICS)


class _Parser(_Scanner):
    """Recursive-descent parser for one expression; all state is per call."""

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
