"""Options: durations, stages, model inference and validation of scenario options."""

from __future__ import annotations

import pytest

from surge.api.errors import UsageError
from surge.api.options import MODELS, Options, Stage, parse_duration, parse_stages

# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("1m30s", 90.0),
        ("250ms", 0.25),
        ("2h", 7200.0),
        ("1h2m3s", 3723.0),
        ("1.5s", 1.5),
        ("500us", 0.0005),
        ("10", 10.0),
        ("0.5", 0.5),
        ("0s", 0.0),
        (" 3s ", 3.0),
        ("3S", 3.0),
        ("1m500ms", 60.5),
        (5, 5.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration_good(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "abc", "3x", "s", "1.2.3s", "3s4", "-5s", "--1s", "1 s", "ms", "3sec", "5m-1s"],
)
def test_parse_duration_bad_names_the_input(text):
    with pytest.raises(UsageError) as ei:
        parse_duration(text, what="--duration")
    msg = str(ei.value)
    assert repr(text) in msg
    assert "--duration" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("value", ["-5", -1, -0.5])
def test_parse_duration_negative(value):
    with pytest.raises(UsageError, match="negative"):
        parse_duration(value)


@pytest.mark.parametrize("text", ["nan", "inf", "infinity", "-nan"])
def test_parse_duration_rejects_non_finite(text):
    with pytest.raises(UsageError):
        parse_duration(text)


# --------------------------------------------------------------------------- stages


def test_parse_stages_good():
    assert parse_stages("30s:100,1m:100,10s:0") == (
        Stage(30.0, 100.0), Stage(60.0, 100.0), Stage(10.0, 0.0))
    assert parse_stages(" 1s:5 , 2s:2.5 ") == (Stage(1.0, 5.0), Stage(2.0, 2.5))
    assert parse_stages("1s:5,") == (Stage(1.0, 5.0),)
    assert parse_stages("500ms:0") == (Stage(0.5, 0.0),)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "at least one"),
        (",", "at least one"),
        ("30s", "DURATION:TARGET"),
        ("30s:abc", "must be a number"),
        ("30s:-5", ">= 0"),
        ("xx:5", "stage duration"),
        ("1s:5,2q:3", "stage duration"),
        (":5", "stage duration"),
    ],
)
def test_parse_stages_bad_names_the_input(text, fragment):
    with pytest.raises(UsageError) as ei:
        parse_stages(text)
    msg = str(ei.value)
    assert fragment in msg
    assert repr(text) in msg
    assert "\n" not in msg


# --------------------------------------------------------------------------- model inference


@pytest.mark.parametrize(
    ("kw", "model"),
    [
        ({}, "constant-vus"),
        ({"vus": 10}, "constant-vus"),
        ({"vus": 10, "duration": 30.0}, "constant-vus"),
        ({"stages": (Stage(1, 5),)}, "ramping-vus"),
        ({"vus": 3, "stages": (Stage(1, 5),)}, "ramping-vus"),
        ({"rate": 100.0}, "constant-arrival-rate"),
        ({"rate": 100.0, "vus": 5}, "constant-arrival-rate"),
        ({"rate": 100.0, "stages": (Stage(1, 5),)}, "ramping-arrival-rate"),
        ({"iterations": 10}, "shared-iterations"),
        ({"iterations": 10, "vus": 3}, "shared-iterations"),
        ({"rate": 10.0, "iterations": 10}, "constant-arrival-rate"),
        ({"stages": (Stage(1, 5),), "iterations": 10}, "ramping-vus"),
        ({"model": "per-vu-iterations", "iterations": 4}, "per-vu-iterations"),
        ({"model": "constant-vus", "rate": 10.0}, "constant-vus"),
        ({"model": "ramping-arrival-rate", "stages": (Stage(1, 5),)}, "ramping-arrival-rate"),
    ],
)
def test_resolved_model_table(kw, model):
    assert Options(**kw).resolved_model() == model


def test_every_model_name_is_accepted():
    for m in MODELS:
        assert Options(model=m).normalised().resolved_model() == m


# --------------------------------------------------------------------------- from_mapping


def test_from_mapping_parses_units_and_stages():
    o = Options.from_mapping(
        {"vus": 5, "duration": "1m30s", "stages": "10s:5,10s:0", "thresholds": "p95<300ms",
         "graceful_stop": "250ms"},
        source="options in x.py",
    )
    assert o.duration == 90.0
    assert o.stages == (Stage(10.0, 5.0), Stage(10.0, 0.0))
    assert o.thresholds == ("p95<300ms",)
    assert o.graceful_stop == 0.25


def test_from_mapping_accepts_stage_lists():
    o = Options.from_mapping({"stages": [("1s", 5), {"duration": "2s", "target": 0}]})
    assert o.stages == (Stage(1.0, 5.0), Stage(2.0, 0.0))


def test_from_mapping_unknown_keys_are_listed():
    with pytest.raises(UsageError) as ei:
        Options.from_mapping({"vus": 1, "durration": "1s", "ratee": 3}, source="options in s.py")
    msg = str(ei.value)
    assert "durration" in msg and "ratee" in msg
    assert "options in s.py" in msg
    assert "duration" in msg  # the allowed keys are named
    assert "extra" not in msg.split("allowed are", 1)[1]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"model": "constant-users"}, "unknown model"),
        ({"arrival": "burst"}, "unknown arrival"),
        ({"vus": -1}, "invalid vus"),
        ({"vus": 1.5}, "invalid vus"),
        ({"iterations": "ten"}, "invalid iterations"),
        ({"rate": 0}, "invalid rate"),
        ({"rate": -3}, "invalid rate"),
        ({"rate": float("nan")}, "invalid rate"),
        ({"duration": "soon"}, "duration in options in s.py"),
        ({"stages": [("1s",)]}, "invalid stages"),
        ({"stages": "1s"}, "DURATION:TARGET"),
    ],
)
def test_from_mapping_bad_values(data, fragment):
    with pytest.raises(UsageError) as ei:
        Options.from_mapping(data, source="options in s.py")
    assert fragment in str(ei.value)


def test_infinite_rate_is_rejected():
    with pytest.raises(UsageError):
        Options(rate=float("inf")).normalised()


def test_merged_cli_overrides_file():
    file = Options(vus=5, duration=10.0, thresholds=("p95<1s",))
    cli = Options(vus=7)
    m = file.merged(cli)
    assert m.vus == 7 and m.duration == 10.0 and m.thresholds == ("p95<1s",)
    assert file.merged(Options()) == file


@pytest.mark.parametrize(("data", "words"), [
    ({"base_url": 5}, "invalid base_url 5"),                  # was an AttributeError from urllib
    ({5: 1}, "unknown key(s) 5"),                             # was a TypeError joining the names
    ({"rate": "fast"}, "invalid rate 'fast'"),                # was a TypeError in math.isfinite
    ({"rate": "5"}, "invalid rate '5'"),
    ({"rate": True}, "invalid rate True"),
    ({"thresholds": None}, "invalid thresholds None"),        # was a TypeError iterating None
    ({"thresholds": [5]}, "invalid thresholds [5]"),
    ({"abort_on_fail": "no"}, "invalid abort_on_fail 'no'"),  # a non-empty string was taken as True
    ({"vus": True}, "invalid vus True"),                      # ran 1 VU
    ({"duration": True}, "invalid duration in options True"),  # ran 1 s
    ({"setup_timeout": "x"}, "invalid setup_timeout"),
])
def test_options_of_the_wrong_type_are_usage_errors(data, words):
    with pytest.raises(UsageError) as err:
        Options.from_mapping(data)
    assert words in str(err.value), str(err.value)


def test_hook_timeouts_are_durations():
    o = Options.from_mapping({"setup_timeout": "2m", "teardown_timeout": 5})
    assert (o.setup_timeout, o.teardown_timeout) == (120.0, 5.0)
