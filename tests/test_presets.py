"""Presets (--profile/--target) compiled to Options: pure, plus the CLI's one-line errors."""

from __future__ import annotations

import pytest
from tests.conftest import assert_no_traceback, error_lines, surge_cli

from surge.api.errors import UsageError
from surge.api.presets import PRESETS, Target, compile_preset, parse_target
from surge.engine.models import build_model
from surge.engine.models.schedule import value_at


def test_parse_target():
    assert parse_target("200rps") == Target("rate", 200.0)
    assert parse_target("12.5/s") == Target("rate", 12.5)
    assert parse_target("50vus") == Target("vus", 50.0)
    assert parse_target("1VU") == Target("vus", 1.0)
    for bad in ("200", "0rps", "2.5vus", "lots", "-3rps", ""):
        with pytest.raises(UsageError) as e:
            parse_target(bad)
        assert "\n" not in str(e.value)


def levels(o, times):
    return [value_at(o.stages, t) for t in times]


def test_load_preset_rate():
    o = compile_preset("load", "200rps")
    assert o.resolved_model() == "ramping-arrival-rate"
    assert sum(s.duration for s in o.stages) == pytest.approx(600.0)
    assert levels(o, [0, 30, 60, 300, 540, 570, 600]) == pytest.approx([0, 100, 200, 200, 200, 100, 0])
    build_model(o)  # a valid model


def test_load_preset_vus_is_closed_and_stretched():
    o = compile_preset("load", "50vus", duration=100.0)
    assert o.resolved_model() == "ramping-vus"
    assert sum(s.duration for s in o.stages) == pytest.approx(100.0)
    assert max(s.target for s in o.stages) == 50


def test_stress_steps_above_target():
    o = compile_preset("stress", "100rps")
    peak_times = [s.target for s in o.stages]
    assert max(peak_times) == 200 and 150 in peak_times and peak_times[-1] == 0
    assert levels(o, [1200.0, 1110.0]) == pytest.approx([0.0, 100.0])


def test_spike_jumps():
    o = compile_preset("spike", "10vus", duration=100.0)
    # baseline until 30 s, then at once 5x, back at once at 40 s
    assert levels(o, [29.9, 30.0, 39.9, 40.0, 80.0]) == pytest.approx([10, 50, 50, 10, 10])


def test_soak_default_hour_and_override():
    assert sum(s.duration for s in compile_preset("soak", "10rps").stages) == pytest.approx(3600.0)
    assert sum(s.duration for s in compile_preset("soak", "10rps", 7200.0).stages) == pytest.approx(7200.0)


def test_smoke():
    o = compile_preset("smoke")
    assert (o.resolved_model(), o.vus, o.duration) == ("constant-vus", 1, 30.0)
    assert compile_preset("smoke", "5vus").vus == 2


def test_breakpoint_preset_ramps_rate_and_aborts():
    o = compile_preset("breakpoint", "1000rps", 300.0)
    assert o.abort_on_fail is True
    assert levels(o, [0, 150, 299.99]) == pytest.approx([0, 500, 1000], abs=0.1)
    with pytest.raises(UsageError, match="as a rate"):
        compile_preset("breakpoint", "50vus")


@pytest.mark.parametrize("name", [n for n, p in PRESETS.items() if p.needs_target])
def test_presets_need_a_target(name):
    with pytest.raises(UsageError, match="needs --target"):
        compile_preset(name)


def test_unknown_preset():
    with pytest.raises(UsageError, match="unknown profile"):
        compile_preset("heavy", "1rps")


def test_flags_override_preset(scenario_file, test_server):
    """--stages wins over the preset's; the preset's model stays."""
    from surge.api.options import Options

    merged = compile_preset("load", "100rps").merged(Options(stages="1s:5")).normalised()
    assert merged.stages[0].target == 5 and merged.resolved_model() == "ramping-arrival-rate"


SCEN = """
from surge import scenario

@scenario
async def s(client):
    await client.get("/")
"""


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--profile", "heavy"], "unknown profile"),
        (["--profile", "load"], "needs --target"),
        (["--profile", "load", "--target", "200"], "say what it counts"),
        (["--target", "5rps"], "goes with --profile"),
        (["--profile", "breakpoint", "--target", "50rps"], "give one"),
        (["--profile", "4242", "--py-spy", "99"], "two processes"),
        (["--shape", "wave:period=1s", "--rate", "5"], "unknown shape"),
        (["--arrival", "gamma:cv=-1", "--rate", "5"], "cv"),
        (["--vus", "2", "--shape", "sine:period=10s"], "open model"),
        (["--rate", "5", "--pacing", "1s"], "closed models"),
    ],
)
def test_cli_errors(scenario_file, args, words):
    r = surge_cli("run", scenario_file(SCEN), "-b", "http://127.0.0.1:9", "--no-preflight", *args)
    assert r.rc == 2, r
    lines = error_lines(r.stderr)
    assert len(lines) == 1 and words in lines[0], r.stderr
    assert_no_traceback(r.stderr)


def test_cli_trace_with_missing_column(scenario_file, tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("time,rate\n0,1\n5,2\n")
    r = surge_cli("run", scenario_file(SCEN), "--shape", f"trace:{p}")
    assert r.rc == 2 and "lacks column(s) t_s" in r.stderr
    assert_no_traceback(r.stderr)


def test_cli_preset_run(scenario_file, test_server):
    """A short load preset against the test server: ramp, hold, ramp down (3 s)."""
    from tests.conftest import surge_json

    rc, data, err = surge_json("run", scenario_file(SCEN), "-b", test_server, "--profile", "load",
                               "--target", "40rps", "-d", "3s", "-w", "1")
    assert rc == 0, err
    assert data["model"] == "ramping-arrival-rate"
    # 40/s over 2.4 s held plus two 0.3 s ramps: 108 arrivals expected
    assert 90 <= data["requests"] <= 115


def test_profile_pid_is_py_spy(scenario_file):
    """--profile PID does what --py-spy PID does (issue #6): here, both refuse a PID that is gone."""
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    path = scenario_file(SCEN)
    common = ("run", path, "-b", "http://127.0.0.1:9", "--no-preflight", "-d", "1s", "--no-save", "--no-store")
    a = surge_cli(*common, "--profile", str(gone.pid))
    b = surge_cli(*common, "--py-spy", str(gone.pid))
    assert a.rc == b.rc == 2
    assert error_lines(a.stderr) == error_lines(b.stderr) and f"--py-spy {gone.pid}" in a.stderr
    assert_no_traceback(a.stderr)
