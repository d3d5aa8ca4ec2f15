"""Values no test plan means are usage errors at once (QA: each used to run, hang or crash and exit 0).

Every case here exits 2 with one line before any load is generated.
"""

from __future__ import annotations

import os

import pytest

from conftest import assert_no_traceback, surge_cli
from test_cli_errors import cli_inprocess


def _usage_error(*args: str, words: str) -> None:
    # In this process: each is refused before any worker starts (and a process per case
    # would cost ~1 s of interpreter start-up each).
    rc, stderr = cli_inprocess(*args, "--no-save")
    assert rc == 2, (rc, stderr)
    assert_no_traceback(stderr)
    assert words in stderr, stderr


@pytest.mark.parametrize(("args", "words"), [
    (["-d", "1e100"], "longer than 31 days"),
    (["-d", "99999999999h"], "longer than 31 days"),
    (["-d", "0"], "must be > 0"),
    (["-c", "100000000", "-d", "1s"], "1<=x<=1000000"),
    (["--rate", "1e12", "-d", "1s"], "0<x<=10000000"),
    (["-H", "X: a\r\nInjected: 1", "-d", "1s"], "line break"),
    (["-H", "Bad Name: 1", "-d", "1s"], "spaces or separators"),
    (["-m", "GE T", "-n", "1"], "not an HTTP method"),
    (["-m", "", "-n", "1"], "not an HTTP method"),
])
def test_hit_bounds(test_server, args, words):
    _usage_error("hit", test_server + "/", "--no-preflight", *args, words=words)


@pytest.mark.parametrize(("url", "words"), [
    ("http://127.0.0.1:0/", "port 0"),
    ("http://127.0.0.1:9/a b", "percent-encoded"),
])
def test_hit_bad_urls(url, words):
    _usage_error("hit", url, "--no-preflight", "-n", "1", words=words)


@pytest.mark.parametrize(("args", "words"), [
    (["-u", "0", "-d", "1s"], "--vus 0 runs nothing"),
    (["-d", "0s"], "duration must be > 0"),
    (["--stages", "0s:0"], "the stages last 0 s"),
    (["--stages", "1s:1e12"], "above 10,000,000"),
    (["--rate", "1e12", "-d", "1s"], "above 10,000,000 per second"),
    (["-u", "100000000", "-d", "1s"], "1,000,000 VUs"),
    (["--max-duration", "0", "-i", "5"], "--max-duration must be > 0"),
])
def test_run_bounds(test_server, scenario_file, args, words):
    scen = scenario_file("""
        async def visit(client):
            await client.get("/")
    """)
    _usage_error("run", scen, "-b", test_server, "--no-preflight", *args, words=words)


def test_trace_with_an_absurd_rate(test_server, scenario_file, tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("t_s,rate\n0,10\n1,1e12\n")
    scen = scenario_file("""
        async def visit(client):
            await client.get("/")
    """)
    _usage_error("run", scen, "-b", test_server, "--no-preflight", "--shape", f"trace:{trace}", words="line 3")


@pytest.mark.parametrize("speed", ["nan", "inf", "1e-300", "0"])
def test_replay_speed_bounds(test_server, tmp_path, speed):
    log = tmp_path / "a.log"
    log.write_text('127.0.0.1 - - [23/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 2 "-" "x"\n')
    _usage_error("replay", log, "-b", test_server, "--speed", speed, words="--speed")


def test_preflight_never_echoes_a_password():
    from conftest import free_port

    res = surge_cli("hit", f"http://user:s3cret@127.0.0.1:{free_port()}/", "-n", "1", "--no-save", timeout=60)
    assert res.rc == 1
    assert "s3cret" not in res.stderr and "***@" in res.stderr, res.stderr


def test_dropped_hint_names_the_flag_of_the_command(test_server):
    res = surge_cli("hit", test_server + "/delay/50", "-c", "1", "--rate", "100", "-d", "1s", "-w", "1",
                    "--no-save", timeout=60)
    assert "dropped" in res.stdout, res.stdout
    assert "raise -c" in res.stdout and "--max-vus" not in res.stdout, res.stdout


def test_demo_run_checks_the_scenario_before_starting_the_service(tmp_path):
    res = surge_cli("demo", "run", str(tmp_path / "missing.py"), timeout=60)
    assert res.rc == 2, res.stderr
    assert "not found" in res.stderr and "demo service up" not in res.stderr, res.stderr
    assert res.wall < 15


def test_breakpoint_time_budget_shorter_than_a_step():
    from conftest import free_port

    res = surge_cli("breakpoint", f"http://127.0.0.1:{free_port()}/", "--time-budget", "0", timeout=60)
    assert res.rc == 2, res.stderr
    assert "--time-budget" in res.stderr


@pytest.mark.parametrize(("args", "words"), [
    (["--store", "foo://bar"], "unsupported database"),
    (["--store", "sqlite://relative"], "three slashes"),
    (["--out", "/proc/surge-cannot-be-here"], "cannot create --out"),
])
def test_where_the_run_goes_is_checked_before_the_load(test_server, args, words):
    res = surge_cli("hit", test_server + "/", "-n", "5", "-w", "1", *args, timeout=60)
    assert res.rc == 2, res.stderr
    assert_no_traceback(res.stderr)
    assert words in res.stderr and "requests" not in res.stdout, (res.stdout, res.stderr)


@pytest.mark.parametrize(("args", "flag"), [
    (["hit", "http://127.0.0.1:9/", "--no-preflight", "--rate", "nan", "-d", "1s"], "--rate"),
    (["run", "x.py", "--rate", "inf"], "--rate"),
    (["breakpoint", "http://127.0.0.1:9/", "--start", "nan"], "--start"),
    (["breakpoint", "http://127.0.0.1:9/", "--max", "inf"], "--max"),
    (["breakpoint", "http://127.0.0.1:9/", "--tolerance", "nan"], "--tolerance"),
    (["compare", "a", "b", "--alpha", "nan"], "--alpha"),  # was a ValueError traceback
    (["capacity", "x", "--target-rate", "inf"], "--target-rate"),
    (["capacity", "x", "--slo-percentile", "nan"], "--slo-percentile"),
    (["demo", "serve", "--db-latency-ms", "nan"], "--db-latency-ms"),
])
def test_numbers_must_be_finite(args, flag):
    # click's FloatRange lets nan through (every comparison with it is False) and, without
    # a maximum, inf: cli/params.FiniteRange refuses both, naming the flag.
    rc, stderr = cli_inprocess(*args)
    assert rc == 2, (rc, stderr)
    assert_no_traceback(stderr)
    assert flag in stderr and "not a finite number" in stderr, stderr


def test_a_trace_longer_than_a_month_is_refused(test_server, tmp_path):
    # QA: rows 0 and 1e9 s bypassed the 31-day bound that -d has, and ran until killed.
    trace = tmp_path / "long.csv"
    trace.write_text("t_s,rate\n0,10\n1e9,10\n")
    _usage_error("hit", test_server + "/", "--no-preflight", "--shape", f"trace:{trace}", words="longer than 31 days")


def test_a_trace_with_a_byte_order_mark_reads(tmp_path):
    from surge.api.shapes import read_trace

    trace = tmp_path / "excel.csv"
    trace.write_bytes("\ufeff".encode() + b"t_s,rate\r\n0,10\r\n5,20\r\n")
    assert read_trace(trace) == ((0.0, 10.0), (5.0, 20.0))


def test_replay_of_a_log_spanning_decades_names_the_log_and_the_way_out(test_server, tmp_path):
    # QA: "invalid duration in command line 2366755200.001" though no duration was given.
    log = tmp_path / "fut.log"
    log.write_text('127.0.0.1 - - [10/Oct/2024:13:55:00 +0000] "GET / HTTP/1.1" 200 12 "-" "curl"\n'
                   '127.0.0.1 - - [10/Oct/2099:13:55:00 +0000] "GET /x HTTP/1.1" 200 12 "-" "curl"\n')
    _usage_error("replay", log, "-b", test_server, words="spans 27,393 days of traffic")


def test_replay_of_zero_seconds_is_refused_like_run_and_hit(test_server, tmp_path):
    log = tmp_path / "a.log"
    log.write_text('127.0.0.1 - - [23/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 2 "-" "x"\n')
    _usage_error("replay", log, "-b", test_server, "-d", "0", words="--duration must be > 0")


def test_dashboard_port_without_dashboard_is_refused(test_server, scenario_file):
    scen = scenario_file("""
        async def visit(client):
            await client.get("/")
    """)
    _usage_error("run", scen, "-b", test_server, "--no-preflight", "--dashboard-port", "9999", "-d", "1s",
                 words="--dashboard-port goes with --dashboard")


def test_model_checks_its_base_url_and_that_the_log_is_a_file(tmp_path):
    log = tmp_path / "a.log"
    log.write_text('127.0.0.1 - - [23/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 2 "-" "x"\n')
    rc, stderr = cli_inprocess("model", str(log), "-b", "notaurl")
    assert rc == 2 and "malformed --base-url 'notaurl'" in stderr, stderr
    fifo = tmp_path / "pipe"  # like /dev/null: exists, not a regular file (it said "not found")
    os.mkfifo(fifo)
    rc, stderr = cli_inprocess("model", str(fifo))
    assert rc == 2 and "is not a regular file" in stderr, stderr
