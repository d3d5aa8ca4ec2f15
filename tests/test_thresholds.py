"""Threshold expressions: parsing, canonical units, errors, evaluation, formatting."""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surge.analysis import thresholds as thr
from surge.analysis.thresholds import (
    METRICS,
    OPERATORS,
    TAGS,
    UNITS,
    Threshold,
    ThresholdResult,
    evaluate,
    format_value,
    parse_threshold,
    parse_thresholds,
)
from surge.api.errors import UsageError

# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize(
    ("text", "metric", "family", "percentile"),
    [
        ("p50<1", "p50", "latency", 50.0),
        ("p90<1", "p90", "latency", 90.0),
        ("p95<1", "p95", "latency", 95.0),
        ("p99<1", "p99", "latency", 99.0),
        ("p99.9<1", "p99.9", "latency", 99.9),
        ("p99.99<1", "p99.99", "latency", 99.99),
        ("p75<1", "p75", "latency", 75.0),
        ("p100<1", "p100", "latency", 100.0),
        ("p0.5<1", "p0.5", "latency", 0.5),
        ("p99.90<1", "p99.9", "latency", 99.9),
        ("p095<1", "p95", "latency", 95.0),
        ("p(95)<1", "p95", "latency", 95.0),
        ("p( 99.9 )<1", "p99.9", "latency", 99.9),
        ("P(95)<1", "p95", "latency", 95.0),
        ("avg<1", "avg", "latency", None),
        ("mean<1", "avg", "latency", None),
        ("min<1", "min", "latency", None),
        ("max<1", "max", "latency", None),
        ("med<1", "p50", "latency", 50.0),
        ("latency.p95<1", "p95", "latency", 95.0),
        ("latency.avg<1", "avg", "latency", None),
        ("service.p95<1", "service.p95", "service", 95.0),
        ("service.p(99.9)<1", "service.p99.9", "service", 99.9),
        ("service.mean<1", "service.avg", "service", None),
        ("service.med<1", "service.p50", "service", 50.0),
        ("ttfb.p50<1", "ttfb.p50", "ttfb", 50.0),
        ("ttfb.max<1", "ttfb.max", "ttfb", None),
        ("ttfb.p(99)<1", "ttfb.p99", "ttfb", 99.0),
        ("error_rate<1%", "error_rate", "rate", None),
        ("checks>99%", "checks", "rate", None),
        ("iteration_error_rate<1%", "iteration_error_rate", "rate", None),
        ("rps>10", "rps", "throughput", None),
        ("requests>10", "requests", "count", None),
        ("iterations>10", "iterations", "count", None),
        ("dropped_iterations<1", "dropped_iterations", "count", None),
    ],
)
def test_metric_forms(text: str, metric: str, family: str, percentile: float | None) -> None:
    th = parse_threshold(text)
    assert th.metric == metric
    assert th.family == family
    assert th.percentile == percentile
    assert th.source == text
    assert th.is_time == (family in ("latency", "service", "ttfb"))


def test_stat_strips_family_prefix() -> None:
    assert parse_threshold("service.p95<1").stat == "p95"
    assert parse_threshold("p99.9<1").stat == "p99.9"
    assert parse_threshold("ttfb.avg<1").stat == "avg"
    assert parse_threshold("error_rate<1%").stat is None


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("p95<300ms", 300.0),
        ("p95<300", 300.0),
        ("p95<1s", 1000.0),
        ("p95<1.5s", 1500.0),
        ("p95<0.1s", 100.0),
        ("p95<2m", 120_000.0),
        ("p95<250us", 0.25),
        ("p95<1us", 0.001),
        ("p95<.5s", 500.0),
        ("p95<1e3", 1000.0),
        ("p95<0", 0.0),
        ("p95<+3ms", 3.0),
        ("p95 < 300 ms", 300.0),
        ("error_rate<1%", 0.01),
        ("error_rate<0.01", 0.01),
        ("error_rate<7%", 0.07),
        ("error_rate<0.5 %", 0.005),
        ("error_rate<100%", 1.0),
        ("error_rate<=0", 0.0),
        ("checks>99%", 0.99),
        ("checks>99.9%", 0.999),
        ("checks>0.99", 0.99),
        ("iteration_error_rate<1", 1.0),
        ("rps>100", 100.0),
        ("rps>100/s", 100.0),
        ("rps>100 /s", 100.0),
        ("rps>12.5 req/s", 12.5),
        ("requests>=1000", 1000.0),
        ("iterations>5", 5.0),
        ("dropped_iterations<=0", 0.0),
    ],
)
def test_canonical_values(text: str, value: float) -> None:
    assert parse_threshold(text).value == value


def test_unit_of_canonical_value() -> None:
    assert parse_threshold("p95<1s").unit == "ms"
    assert parse_threshold("error_rate<1%").unit == "fraction"
    assert parse_threshold("rps>1").unit == "req/s"
    assert parse_threshold("requests>1").unit == "count"


# --------------------------------------------------------------------------- operators


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_every_operator(op: str) -> None:
    assert parse_threshold(f"p95{op}300ms").op == op
    assert parse_threshold(f"  p95 {op}  300 ms  ").op == op
    assert parse_threshold(f"error_rate{op}1%").op == op


def test_operators_constant_covers_grammar() -> None:
    assert set(OPERATORS) == {"<", "<=", ">", ">=", "==", "!="}


# --------------------------------------------------------------------------- tags


def test_tags_with_quoted_values_containing_braces() -> None:
    th = parse_threshold('p99{name:"/products/{id}"}<800ms')
    assert th.tags == (("name", "/products/{id}"),)
    assert th.metric == "p99"
    assert th.value == 800.0


def test_tags_single_quotes_whitespace_and_sorting() -> None:
    th = parse_threshold("p95 { status : 5xx , name : '/cart' , scenario:browse } < 300")
    assert th.tags == (("name", "/cart"), ("scenario", "browse"), ("status", "5xx"))


def test_tag_bare_value_with_slash_and_method_uppercased() -> None:
    th = parse_threshold("p95{name:/api/v1/items,method:post}<1s")
    assert th.tags == (("method", "POST"), ("name", "/api/v1/items"))


def test_tag_quoted_escapes_and_spaces() -> None:
    th = parse_threshold(r"""p95{name:"say \"hi\"",scenario:'a b'}<1""")
    assert dict(th.tags) == {"name": 'say "hi"', "scenario": "a b"}
    th = parse_threshold('p95{name:"it\'s"}<1')
    assert th.tags == (("name", "it's"),)


def test_tags_on_other_metrics() -> None:
    assert parse_threshold("error_rate{name:login}<1%").tags == (("name", "login"),)
    assert parse_threshold("checks{name:'status 200'}>99%").tags == (("name", "status 200"),)
    assert parse_threshold("rps{scenario:checkout}>10").tags == (("scenario", "checkout"),)
    assert parse_threshold("service.p95{status:2XX}<1").tags == (("status", "2xx"),)
    assert parse_threshold("error_rate{status:err}<1%").tags == (("status", "err"),)


def test_tags_are_part_of_identity() -> None:
    a = parse_threshold("p95{name:a}<1")
    b = parse_threshold("p95{name:b}<1")
    assert a.key != b.key


# --------------------------------------------------------------------------- errors


BAD = [
    "",
    "   ",
    "p95",
    "p95 ",
    "p95<",
    "p95<<3ms",
    "p95 300ms",
    "p95=300",
    "p95=<3",
    "p95=>3",
    "p95<>3",
    "p95!3",
    "p95 =! 3",
    "<300ms",
    "300ms",
    "p96x<3",
    "eror_rate<1%",
    "p<3",
    "p0<3",
    "p101<3",
    "p100.1<3",
    "p95.<3",
    "p(95<3",
    "p()<3",
    "p(x)<3",
    "p(-1)<3",
    "avg(3)<3",
    "foo.p95<3",
    "service.error_rate<1%",
    "latency.rps>3",
    "service.<3",
    "error_rate<3ms",
    "error_rate<3s",
    "p95<5%",
    "p95<5/s",
    "rps<3ms",
    "rps<5%",
    "requests<5%",
    "requests<5ms",
    "checks>99ms",
    "p95<3sec",
    "p95<3h",
    "p95<3ns",
    "p95<3MS",
    "p95<3xyz",
    "p95<-3",
    "p95<-3ms",
    "p95<3..5ms",
    "p95<abc",
    "p95<1e999",
    "error_rate<5",
    "error_rate<150%",
    "checks>101%",
    "p95<300ms,p99<500ms",
    "p95<300ms && p99<1s",
    "p95<300ms foo",
    "p95<300ms ms",
    "p95<3ms)",
    "p95{}<3",
    "p95{<3",
    "p95{name:x,}<3",
    "p95{nme:x}<3",
    "p95{name=x}<3",
    "p95{name x}<3",
    "p95{name:}<3",
    "p95{name:''}<3",
    'p95{name:"x}<3',
    "p95{name:'x}<3",
    "p95{name:x<3",
    "p95{name:x",
    "p95{name:/p/{id}}<3",
    "p95{name:a status:2xx}<3",
    "p95{status:200}<3",
    "p95{status:ok}<3",
    "iterations{scenario:x}>3",
    "checks{scenario:x}>99%",
    "p95{name:a,name:b}<3",
    "p95{1:a}<3",
    "iterations{name:x}>3",
    "dropped_iterations{status:500}<1",
    "checks{method:GET}>99%",
    "p95<300ms\nfoo",
    "p95\t<\t",
    "checks>",
    "error_rate(1)<1%",
]


@pytest.mark.parametrize("text", BAD)
def test_malformed_raises_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_threshold(text)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("invalid threshold ")
    shown = text.replace("\n", "\\n").replace("\t", " ")
    assert shown in msg
    assert " — " in msg  # what is wrong — how to fix it
    for noise in ("Traceback", "<class", "Error(", "\\'", "None", "re.Match"):
        assert noise not in msg


def test_error_message_example_from_spec() -> None:
    with pytest.raises(UsageError) as info:
        parse_threshold("p95<<3ms")
    assert str(info.value) == (
        "invalid threshold 'p95<<3ms': expected a number after '<' — e.g. 'p95<300ms'"
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("eror_rate<1%", "did you mean 'error_rate'?"),
        ("p95{nme:x}<3", "did you mean 'name'?"),
        ("p95=<3", "did you mean '<='?"),
        ("p95<3sec", "'3s'"),
        ("p95<5%", "us, ms, s, m"),
        ("error_rate<3ms", "'1%'"),
        ("error_rate<5", "'5%'"),
        ("p101<3", "at most 100"),
        ("p95{name:/p/{id}}<3", 'name:"/products/{id}"'),
        ("iterations{name:x}>3", "no tags"),
        ("checks{method:GET}>99%", "filtered by name"),
        ("p95{status:404}<3", "status:4xx"),
        ("p95<300ms,p99<500ms", "--threshold"),
        ("p95<-3", "negative"),
        ("checks>", "'checks>99%'"),
    ],
)
def test_error_messages_say_how_to_fix(text: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_threshold(text)
    assert fragment in str(info.value)


def test_message_uses_double_quotes_when_text_has_single_quotes() -> None:
    text = "p95{name:'x'}<<3"
    with pytest.raises(UsageError) as info:
        parse_threshold(text)
    assert f'"{text}"' in str(info.value)


def test_non_string_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="invalid threshold '300'"):
        parse_threshold(300)  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="p95<>=!.%(){}:,'\" msu/_abcdeilnorqtv0123", max_size=30))
def test_fuzz_never_crashes_with_other_errors(text: str) -> None:
    try:
        th = parse_threshold(text)
    except UsageError as exc:
        msg = str(exc)
        assert "\n" not in msg and msg.startswith("invalid threshold ")
    else:
        assert th.op in OPERATORS
        assert math.isfinite(th.value) and th.value >= 0
        assert parse_threshold(th.expression()).key == th.key


# --------------------------------------------------------------------------- parse_thresholds


def test_parse_thresholds_keeps_order_and_drops_exact_duplicates() -> None:
    ths = parse_thresholds(["p95<300ms", "error_rate<1%", "p95 < 0.3s", "p(95)<300"])
    assert [t.metric for t in ths] == ["p95", "error_rate"]
    assert ths[0].source == "p95<300ms"
    assert isinstance(ths, tuple)


def test_parse_thresholds_accepts_generator_and_single_string() -> None:
    assert len(parse_thresholds(t for t in ("p95<1", "p99<2"))) == 2
    assert parse_thresholds("p95<1")[0].metric == "p95"
    assert parse_thresholds([]) == ()


def test_parse_thresholds_raises_on_first_bad() -> None:
    with pytest.raises(UsageError, match="'p95<<3'"):
        parse_thresholds(["p95<1", "p95<<3", "nope"])


# --------------------------------------------------------------------------- evaluation


def _const(value: float | None):
    return lambda th: value


def test_boundary_strict_and_inclusive() -> None:
    strict, inclusive = parse_thresholds(["p95<300ms", "p95<=300ms"])
    results = evaluate([strict, inclusive], _const(300.0))
    assert [r.passed for r in results] == [False, True]
    assert [r.observed for r in results] == [300.0, 300.0]


@pytest.mark.parametrize(
    ("op", "observed", "passed"),
    [
        ("<", 299.9, True), ("<", 300.0, False),
        ("<=", 300.0, True), ("<=", 300.1, False),
        (">", 300.1, True), (">", 300.0, False),
        (">=", 300.0, True), (">=", 299.9, False),
        ("==", 300.0, True), ("==", 300.1, False),
        ("!=", 300.1, True), ("!=", 300.0, False),
    ],
)  # fmt: skip
def test_operator_semantics(op: str, observed: float, passed: bool) -> None:
    [result] = evaluate([parse_threshold(f"p95{op}300")], _const(observed))
    assert result.passed is passed


def test_no_data_fails() -> None:
    th = parse_threshold("p95{name:/typo}<300ms")
    [result] = evaluate([th], _const(None))
    assert result.observed is None
    assert result.passed is False
    assert result.observed_text() == "no data"
    assert "no matching requests" in result.describe()
    # even a threshold every value would satisfy fails without data
    [result] = evaluate([parse_threshold("p95>=0")], _const(None))
    assert result.passed is False


def test_nan_counts_as_no_data() -> None:
    [result] = evaluate([parse_threshold("error_rate<1%")], _const(float("nan")))
    assert result.observed is None and not result.passed


def test_lookup_gets_each_threshold_and_units_are_canonical() -> None:
    ths = parse_thresholds(["p95<1s", "error_rate<1%", "checks>99%", "rps>=100", "requests>10"])
    observed = {"p95": 999.0, "error_rate": 0.0099, "checks": 0.995, "rps": 100, "requests": 10}
    seen: list[Threshold] = []

    def lookup(th: Threshold) -> float | None:
        seen.append(th)
        return observed[th.metric]

    results = evaluate(ths, lookup)
    assert seen == list(ths)
    assert [r.passed for r in results] == [True, True, True, True, False]
    assert all(isinstance(r, ThresholdResult) for r in results)
    assert isinstance(results[3].observed, float)


def test_lookup_sees_tags() -> None:
    ths = parse_thresholds(['p95{name:"/a"}<100', 'p95{name:"/b"}<100'])
    data = {(("name", "/a"),): 50.0, (("name", "/b"),): 150.0}
    results = evaluate(ths, lambda th: data.get(th.tags))
    assert [r.passed for r in results] == [True, False]


def test_holds_and_fails_early() -> None:
    th = parse_threshold("p95<300")
    assert th.holds(200) and not th.holds(300) and not th.holds(None)
    assert th.fails_early(301) and not th.fails_early(200)
    assert not th.fails_early(None)  # no data yet is not an early failure
    at_least = parse_threshold("requests>1000")
    assert not at_least.final_when_failed
    assert not at_least.fails_early(5)  # may still get there
    at_most = parse_threshold("dropped_iterations<10")
    assert at_most.final_when_failed and at_most.fails_early(10)


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("family", "value", "text"),
    [
        ("latency", 312.4, "312.4 ms"),
        ("latency", 1234.56, "1,234.6 ms"),
        ("latency", 12.345, "12.35 ms"),
        ("latency", 0.4123, "0.412 ms"),
        ("latency", 0.0, "0.00 ms"),
        ("service", 12_345.0, "12.35 s"),
        ("ttfb", 5.0, "5.00 ms"),
        ("rate", 0.0052, "0.52 %"),
        ("rate", 0.0, "0.00 %"),
        ("rate", 1.0, "100.00 %"),
        ("rate", 0.0000123, "0.0012 %"),
        ("throughput", 1204.3, "1,204 req/s"),
        ("throughput", 12.34, "12.3 req/s"),
        ("throughput", 1.234, "1.23 req/s"),
        ("count", 1204.0, "1,204"),
        ("count", 2.5, "2.50"),
        ("latency", None, "no data"),
        ("latency", math.inf, "inf ms"),
    ],
)
def test_format_value(family: str, value: float | None, text: str) -> None:
    assert format_value(family, value) == text


def test_format_value_unknown_family() -> None:
    with pytest.raises(ValueError):
        format_value("bogus", 1.0)


def test_observed_text_uses_threshold_family() -> None:
    [r1, r2, r3] = evaluate(
        parse_thresholds(["p95<1s", "error_rate<1%", "rps>1"]),
        lambda th: {"p95": 312.4, "error_rate": 0.0052, "rps": 1204.0}[th.metric],
    )
    assert (r1.observed_text(), r2.observed_text(), r3.observed_text()) == (
        "312.4 ms", "0.52 %", "1,204 req/s",
    )  # fmt: skip
    assert r1.describe() == "pass p95<1s: observed 312.4 ms"


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("p95<300ms", "95th percentile latency must be below 300 ms"),
        ("p99.9<=1s", "99.9th percentile latency must be at most 1 s"),
        ("med<5", "Median latency must be below 5 ms"),
        ("service.avg<5", "Average service time must be below 5 ms"),
        ("ttfb.p(91)>=2", "91st percentile time to first byte must be at least 2 ms"),
        ("error_rate<1%", "Error rate must be below 1 %"),
        ("checks>99%", "Share of checks passed must be above 99 %"),
        ("rps>=100", "Throughput must be at least 100 req/s"),
        ("requests==1000", "Requests must be exactly 1,000"),
        ("iterations!=0", "Iterations must not be 0"),
        (
            'p99{name:"/p/{id}",status:2xx}<800',
            "99th percentile latency must be below 800 ms (name=/p/{id}, status=2xx)",
        ),
    ],
)
def test_describe(text: str, description: str) -> None:
    assert parse_threshold(text).describe().lower() == description.lower()


def test_str_is_the_source() -> None:
    assert str(parse_threshold("  p95 < 300ms ")) == "p95 < 300ms"


# --------------------------------------------------------------------------- module hygiene


def test_tables_are_immutable() -> None:
    for table in (thr.UNITS, thr.METRICS, thr.FAMILIES, thr.LATENCY_FAMILIES, thr.STAT_ALIASES):
        assert isinstance(table, MappingProxyType)
        with pytest.raises(TypeError):
            table["x"] = None  # type: ignore[index]
    assert isinstance(TAGS, tuple) and isinstance(OPERATORS, tuple)
    assert set(METRICS) >= {"error_rate", "checks", "rps", "requests", "iterations"}
    assert {u for u, spec in UNITS.items() if spec.dimension == "time"} == {"us", "ms", "s", "m"}


def test_threshold_is_frozen() -> None:
    th = parse_threshold("p95<1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        th.value = 2.0  # type: ignore[misc]


# --------------------------------------------------------------------------- properties


def _decimal_text(n: int, places: int) -> str:
    return format(Decimal(n).scaleb(-places), "f")


_numbers = st.builds(_decimal_text, st.integers(0, 10**7), st.integers(0, 3))
_time_metric = st.sampled_from(
    ["p50", "p95", "p99", "p99.9", "p(95)", "avg", "mean", "min", "max", "med",
     "service.p95", "ttfb.p50", "latency.p99", "service.avg", "ttfb.max"]
)  # fmt: skip
_tag_value = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=12
)


@st.composite
def _tags(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    keys = draw(st.lists(st.sampled_from(["name", "scenario", "method"]), unique=True, max_size=3))
    if not keys:
        return "", {}
    values = {k: draw(_tag_value) for k in keys}
    if "method" in values:
        values["method"] = values["method"].upper()
    parts = []
    for k, v in values.items():
        quote = draw(st.sampled_from(["'", '"']))
        escaped = v.replace("\\", "\\\\").replace(quote, "\\" + quote)
        parts.append(f"{k} : {quote}{escaped}{quote}")
    return "{" + " , ".join(parts) + "}", values


@settings(max_examples=300, deadline=None)
@given(
    _time_metric,
    _tags(),
    st.sampled_from(OPERATORS),
    _numbers,
    st.sampled_from([("", 1), ("us", Decimal("0.001")), ("ms", 1), ("s", 1000), ("m", 60000)]),
    st.sampled_from(["", " "]),
)
def test_property_time_thresholds(metric, tags, op, number, unit, space) -> None:
    tag_text, tag_values = tags
    symbol, factor = unit
    text = f"{metric}{space}{tag_text}{space}{op}{space}{number}{space if symbol else ''}{symbol}"
    th = parse_threshold(text)
    assert th.value == float(Decimal(number) * factor)
    assert dict(th.tags) == tag_values
    assert th.op == op
    again = parse_threshold(th.expression())
    assert again.key == th.key
    assert again.family == th.family and again.percentile == th.percentile


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["error_rate", "checks", "iteration_error_rate"]),
    st.sampled_from(OPERATORS),
    st.integers(0, 100_000),
    st.booleans(),
)
def test_property_rates(metric, op, n, as_percent) -> None:
    # n / 1000 is a percentage in [0, 100]
    pct = Decimal(n).scaleb(-3)
    text = f"{metric}{op}{pct}%" if as_percent else f"{metric}{op}{pct / 100}"
    th = parse_threshold(text)
    assert th.value == float(pct / 100)
    assert 0.0 <= th.value <= 1.0
    assert parse_threshold(th.expression()).key == th.key


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["rps", "requests", "iterations", "dropped_iterations"]),
    st.sampled_from(OPERATORS),
    _numbers,
)
def test_property_counts_and_throughput(metric, op, number) -> None:
    suffix = "/s" if metric == "rps" else ""
    th = parse_threshold(f"{metric} {op} {number}{suffix}")
    assert th.value == float(Decimal(number))
    assert parse_threshold(th.expression()).key == th.key


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=1e12, allow_nan=False), st.sampled_from(OPERATORS))
def test_property_expression_round_trips_any_float(value: float, op: str) -> None:
    th = Threshold(source="x", metric="p95", tags=(), op=op, value=value)
    assert parse_threshold(th.expression()).value == value
