"""Bad input ends in one clear error line naming the input, the documented exit code, no traceback.

Exit codes: 0 ok, 1 run error, 2 usage, 3 threshold failed, 130 interrupted.
"""

from __future__ import annotations

import pytest

from conftest import assert_no_traceback, error_lines, surge_cli, surge_json

OK_SCENARIO = """
async def visit(client):
    await client.get("/")
"""


def one_error_line(stderr: str, *fragments: str) -> str:
    """The single error line of ``stderr``; it must contain every fragment."""
    assert_no_traceback(stderr)
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    line = lines[0]
    for f in fragments:
        assert f in line, (f, line)
    return line


def cli_inprocess(*args: str) -> tuple[int, str]:
    """Run the CLI in this process (for inputs rejected before any worker starts): (exit code, stderr)."""
    from click.testing import CliRunner

    from surge.cli.main import cli

    res = CliRunner().invoke(cli, [str(a) for a in args])
    # anything but a clean sys.exit is an escaped exception: a traceback for the user
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.stderr


# --------------------------------------------------------------------------- scenario files


def test_missing_scenario_file(tmp_path):
    missing = tmp_path / "nope.py"
    res = surge_cli("run", missing, "--no-save", "-w", "1")
    assert res.rc == 2
    one_error_line(res.stderr, str(missing), "not found")


def test_scenario_path_is_a_directory(tmp_path):
    res = surge_cli("run", tmp_path, "--no-save", "-w", "1")
    assert res.rc == 2
    one_error_line(res.stderr, str(tmp_path), "directory")


def test_syntax_error_names_file_and_line(scenario_file):
    path = scenario_file("""
        async def visit(client):
            await client.get("/")

        def broken(:
            pass
    """)
    res = surge_cli("run", path, "--no-save", "-w", "1")
    assert res.rc == 2
    one_error_line(res.stderr, str(path), "syntax error", "line 4")


def test_scenario_defining_no_scenario(scenario_file):
    path = scenario_file("""
        X = 1

        def helper(client):
            return client
    """)
    res = surge_cli("run", path, "--no-save", "-w", "1")
    assert res.rc == 2
    one_error_line(res.stderr, str(path), "defines no scenario")


def test_scenario_raising_at_import(scenario_file):
    path = scenario_file("""
        import os

        TOKEN = os.environ["SURGE_TEST_SURELY_UNSET_VARIABLE"]

        async def visit(client):
            await client.get("/")
    """)
    res = surge_cli("run", path, "--no-save", "-w", "1")
    assert res.rc == 2
    one_error_line(res.stderr, str(path), "KeyError", "line 3")


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("async def visit(client, vu, extra):\n    pass\n", "must take (client) or (client, vu)"),
        ("from surge import scenario\n\n@scenario\ndef visit(client):\n    pass\n", "must be an 'async def'"),
        ("options = 5\n\nasync def visit(client):\n    pass\n", "'options'"),
        ("options = {'vuz': 3}\n\nasync def visit(client):\n    pass\n", "vuz"),
        ("from surge import Options\noptions = Options(duration='soon')\n\nasync def visit(client):\n    pass\n",
         "soon"),
    ],
    ids=["arity", "not-async", "options-type", "options-key", "options-duration"],
)
def test_bad_scenario_definitions(scenario_file, code, fragment):
    path = scenario_file(code)
    rc, err = cli_inprocess("run", path, "--no-save", "-w", "1")
    assert rc == 2
    one_error_line(err, fragment, str(path))


def test_setup_raising(scenario_file, test_server):
    path = scenario_file("""
        def setup():
            raise RuntimeError("no token")

        async def visit(client):
            await client.get("/")
    """)
    rc, err = cli_inprocess("run", path, "--no-save", "-w", "1", "-d", "1s", "--base-url", test_server)
    assert rc == 2
    one_error_line(err, "setup()", "RuntimeError", "no token", str(path))


def test_scenario_raising_during_iterations(scenario_file, test_server):
    path = scenario_file("""
        async def visit(client, vu):
            await client.get("/")
            if vu.iteration % 2:
                raise LookupError("odd iteration")
    """)
    rc, s, err = surge_json("run", path, "--vus", "2", "-d", "1s", "-w", "1", "--base-url", test_server)
    assert rc == 0, err
    assert_no_traceback(err)
    assert s["status"] == "completed"
    assert s["errors"] == 0  # the requests themselves were fine
    it = s["iterations"]
    assert set(it["errors"]) == {"LookupError"}
    assert it["errors"]["LookupError"] == pytest.approx(it["completed"] / 2, abs=2)
    tb = it["first_tracebacks"]["LookupError"]
    assert "odd iteration" in tb and "Traceback" in tb and str(path) in tb


def test_relative_url_without_base_url_stops_the_run(scenario_file):
    path = scenario_file("""
        async def visit(client):
            await client.get("/products")
    """)
    res = surge_json("run", path, "--vus", "2", "-d", "3s", "-w", "1", "--no-preflight")
    assert res.rc == 2, res
    one_error_line(res.stderr, "'/products'", "--base-url")
    assert res.data is not None and res.data["duration_s"] < 2  # stopped, not run to the end


# --------------------------------------------------------------------------- flags




# The list, through the real command line (subprocess).
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--stages", "1s:5,xx"], ["--stages", "xx"]),
        (["-t", "p95<<3"], ["invalid threshold", "p95<<3"]),
        (["--rate", "-5"], ["--rate", "-5"]),
        (["--base-url", "ftp://127.0.0.1:1/"], ["malformed", "ftp://127.0.0.1:1/"]),
        (["--base-url", "http://surge-test-no-such-host.invalid/"], ["cannot resolve host",
                                                                     "surge-test-no-such-host.invalid"]),
    ],
    ids=["stages", "threshold", "negative-rate", "malformed-url", "unknown-host"],
)
def test_bad_run_input_exit_2(scenario_file, test_server, args, fragments):
    path = scenario_file(OK_SCENARIO)
    base = [] if "--base-url" in args else ["--base-url", test_server]
    res = surge_cli("run", path, "-d", "1s", "-w", "1", "--no-save", *base, *args)
    assert res.rc == 2, res
    assert res.stdout == ""
    one_error_line(res.stderr, *fragments)


# More bad flags, in process (fast): each is rejected before any worker starts.
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--stages", "1s:-5"], ["--stages", "-5"]),
        (["--stages", "1q:5"], ["--stages", "1q:5"]),
        (["--stages", ""], ["--stages"]),
        pytest.param(["-d", "3x"], ["--duration", "3x"]),
        (["-d", "3x"], ["--duration", "use a number with a unit"]),
        (["--rate", "0"], ["--rate"]),
        (["--rate", "abc"], ["--rate", "abc"]),
        (["--vus", "-1"], ["--vus", "-1"]),
        (["--iterations", "0"], ["--iterations", "0"]),
        (["--model", "warp"], ["--model", "warp"]),
        (["--arrival", "bursty"], ["--arrival", "bursty"]),
        pytest.param(["--timeout", "never"], ["--timeout", "never"]),
        (["--timeout", "never"], ["--timeout", "use a number with a unit"]),
        (["-t", "p95<300parsecs"], ["invalid threshold", "parsecs"]),
        (["-t", "latency_p95 < 3ms"], ["invalid threshold", "latency_p95"]),
        (["--base-url", "http://"], ["malformed", "http://"]),
        (["--base-url", "http://127.0.0.1:99999/"], ["malformed", "99999"]),
        (["--model", "ramping-vus"], ["ramping-vus needs --stages"]),
        (["--model", "ramping-arrival-rate"], ["--stages"]),
        (["--model", "per-vu-iterations"], ["--iterations"]),
        (["--model", "constant-arrival-rate"], ["--rate"]),
        (["-H", "NoColon"], ["NoColon"]),
    ],
)
def test_more_bad_run_flags_exit_2(scenario_file, test_server, args, fragments):
    path = scenario_file(OK_SCENARIO)
    base = [] if "--base-url" in args else ["--base-url", test_server]
    rc, err = cli_inprocess("run", path, "-d", "1s", "-w", "1", "--no-save", *base, *args)
    assert rc == 2, err
    one_error_line(err, *fragments)


def test_nan_duration_is_a_usage_error(scenario_file, test_server):
    path = scenario_file(OK_SCENARIO)
    res = surge_cli("run", path, "-d", "nan", "-w", "1", "--no-save", "--base-url", test_server)
    assert res.rc == 2, res
    one_error_line(res.stderr, "nan")


@pytest.mark.parametrize(
    ("url", "args", "fragments"),
    [
        ("notaurl", [], ["malformed URL", "notaurl"]),
        ("ftp://127.0.0.1/", [], ["malformed URL", "ftp://127.0.0.1/"]),
        ("http://:80/", [], ["malformed URL", "no host"]),
        ("http://surge-test-no-such-host.invalid/", [], ["cannot resolve host", "surge-test-no-such-host.invalid"]),
        ("{srv}/", ["--json-body", "{nope"], ["--json-body"]),
        ("{srv}/", ["--body", "@/nonexistent/surge/body"], ["/nonexistent/surge/body"]),
        ("{srv}/", ["--body", "a", "--json-body", "{}"], ["--body", "--json-body"]),
        ("{srv}/", ["-c", "0"], ["-c", "0"]),
        ("{srv}/", ["-H", ": v"], ["-H"]),
    ],
)
def test_bad_hit_input_exit_2(test_server, url, args, fragments):
    rc, err = cli_inprocess("hit", url.format(srv=test_server), "-d", "1s", "-w", "1", "--no-save", *args)
    assert rc == 2, err
    one_error_line(err, *fragments)


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        ("notaurl", ["malformed URL", "notaurl"]),
        ("http://surge-test-no-such-host.invalid/", ["cannot resolve host", "surge-test-no-such-host.invalid"]),
    ],
    ids=["malformed-url", "unknown-host"],
)
def test_bad_hit_url_exit_2_subprocess(url, fragments):
    res = surge_cli("hit", url, "-d", "1s", "-w", "1", "--no-save")
    assert res.rc == 2, res
    one_error_line(res.stderr, *fragments)


def test_refused_port_exit_1(refused_url, scenario_file):
    res = surge_cli("hit", refused_url + "/", "-d", "1s", "-w", "1", "--no-save")
    assert res.rc == 1
    port = refused_url.rsplit(":", 1)[1]
    one_error_line(res.stderr, "connection refused", port, "--no-preflight")

    path = scenario_file(OK_SCENARIO)
    res = surge_cli("run", path, "-d", "1s", "-w", "1", "--no-save", "--base-url", refused_url)
    assert res.rc == 1
    one_error_line(res.stderr, "connection refused", port, "--base-url")


def test_refused_port_without_preflight_hit_exit_1(refused_url):
    rc, s, err = surge_json("hit", refused_url + "/", "-d", "1s", "-w", "1", "-c", "2", "--no-preflight")
    assert rc == 1
    assert_no_traceback(err)
    assert s["requests"] > 0
    assert s["errors_by_type"] == {"refused": s["requests"]}
    assert s["duration_s"] < 4


# --------------------------------------------------------------------------- thresholds


def test_threshold_failing_exit_3(scenario_file, test_server):
    path = scenario_file("""
        async def visit(client):
            await client.get("/delay/20")
    """)
    rc, s, err = surge_json("run", path, "--vus", "2", "--iterations", "20", "-w", "1",
                            "--base-url", test_server, "-t", "p50<5ms", "-t", "error_rate<1%")
    assert rc == 3, err
    assert_no_traceback(err)
    ths = {t["threshold"]: t for t in s["thresholds"]}
    assert ths["p50<5ms"]["passed"] is False
    assert ths["p50<5ms"]["observed"] >= 20
    assert ths["error_rate<1%"]["passed"] is True
    assert s["status"] == "completed"


def test_threshold_passing_exit_0(test_server):
    rc, s, err = surge_json("hit", test_server + "/", "-c", "2", "-n", "50", "-w", "1",
                            "-t", "p99<5s", "-t", "error_rate<1%")
    assert rc == 0, err
    assert s["requests"] == 50
    assert all(t["passed"] for t in s["thresholds"])


def test_thresholds_from_scenario_options(scenario_file, test_server):
    path = scenario_file("""
        from surge import Options

        options = Options(thresholds=("p50<1ms",))

        async def visit(client):
            await client.get("/delay/20")
    """)
    rc, s, err = surge_json("run", path, "--vus", "1", "--iterations", "5", "-w", "1",
                            "--base-url", test_server)
    assert rc == 3, err
    assert [t["threshold"] for t in s["thresholds"]] == ["p50<1ms"]


def test_abort_on_fail_stops_early(scenario_file, test_server):
    path = scenario_file("""
        async def visit(client):
            await client.get("/delay/20")
    """)
    planned = 30
    rc, s, err = surge_json("run", path, "--vus", "2", "-d", f"{planned}s", "-w", "1",
                            "--base-url", test_server, "-t", "p95<1ms", "--abort-on-fail", timeout=40)
    assert rc == 3, err
    assert_no_traceback(err)
    assert s["status"] == "aborted"
    # thresholds are judged from 5 s on; the run must stop soon after, far before 30 s
    assert s["duration_s"] < 10, s["duration_s"]
    assert any("aborted" in w and "p95<1ms" in w for w in s["warnings"]), s["warnings"]
    assert s["thresholds"][0]["passed"] is False
