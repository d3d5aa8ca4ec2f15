"""Reading a threshold expression: position, one-line errors, operators, numbers and units.

:class:`_Scanner` holds the text and the position in it, fails with one line
that quotes the expression, names what is wrong and says how to fix it, and
reads the tokens after the metric: the comparison and the limit with its unit
(converted to the canonical unit). :class:`~surge.analysis.thresholds_parse._Parser`
builds the grammar on it.
"""

from __future__ import annotations

import math
import re
from decimal import Context, Decimal
from types import MappingProxyType
from typing import NoReturn

from surge.analysis.thresholds_spec import FAMILIES, OPERATORS, UNITS, _num
from surge.api.errors import UsageError

_TIME_UNITS = tuple(u for u, spec in UNITS.items() if spec.dimension == "time")
_EXAMPLE_VALUE = MappingProxyType(
    {"time": "300ms", "fraction": "1%", "throughput": "100", "count": "1000"}
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
_NUMBER = re.compile(r"(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?")
_UNIT = re.compile(r"%|/?[^\s\d.,;&|<>=!{}()'\"]+")


def _q(text: str) -> str:
    """Quote ``text`` for a one-line message (no Python repr escaping)."""
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")
    if "'" in text and '"' not in text:
        return f'"{text}"'
    return f"'{text}'"


class _Scanner:
    """Position in one expression, its error messages, and its operator and value tokens."""

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

    # -- tokens
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
