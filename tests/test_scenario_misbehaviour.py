"""Scenario files and servers that misbehave in ways QA found: each is a typed error or a usage error.

- ``sys.exit()`` / ``KeyboardInterrupt`` inside a scenario: an iteration error, not a dead worker;
- ``sys.exit(3)`` at import: a usage error (exit 2), not exit 3 ("threshold failed") in silence;
- a binary scenario file: one line saying it is not Python source;
- a body cut short, a status outside 100-599, a body delimited by close: as `surge hit` types them.
"""

from __future__ import annotations

import pytest

from conftest import assert_no_traceback, surge_cli, surge_json
from test_cli_errors import one_error_line


@pytest.mark.parametrize("stmt", ["sys.exit(5)", "raise SystemExit(1)", "raise KeyboardInterrupt",
                                  "raise BaseException(\"x\")"])  # the last killed the VU silently
def test_exit_inside_a_scenario_is_an_iteration_error(test_server, scenario_file, stmt):
    scen = scenario_file(f"""
        import sys

        async def visit(client):
            await client.get("/")
            {stmt}
    """)
    rc, s, err = surge_json("run", scen, "-b", test_server, "-i", "4", "-u", "2", "-w", "1")
    assert_no_traceback(err)
    assert "died" not in err, err
    assert s["iterations"]["completed"] == 4
    assert sum(s["iterations"]["errors"].values()) == 4, s["iterations"]
    assert s["requests"] == 4


def test_sys_exit_at_import_is_a_usage_error(test_server, scenario_file):
    scen = scenario_file("""
        import sys
        sys.exit(3)

        async def visit(client):
            await client.get("/")
    """)
    rc, s, err = surge_json("run", scen, "-b", test_server, "-d", "1s")
    assert rc == 2, err
    one_error_line(err, "sys.exit(3)", str(scen.name))


def test_binary_scenario_file(test_server, tmp_path):
    scen = tmp_path / "junk.py"
    scen.write_bytes(b"\x00\xff\x00garbage")
    rc, s, err = surge_json("run", scen, "-b", test_server, "-d", "1s")
    assert rc == 2, err
    one_error_line(err, "not Python source")


@pytest.mark.parametrize(("path", "kind"), [("/short", "reset"), ("/status/999", "protocol")])
def test_broken_responses_in_a_scenario(test_server, scenario_file, path, kind):
    scen = scenario_file(f"""
        from surge import check

        async def visit(client):
            r = await client.get("{path}")
            check(r, {{"no status": lambda r: r.status == 0}})
    """)
    rc, s, err = surge_json("run", scen, "-b", test_server, "-i", "4", "-u", "2", "-w", "1")
    assert_no_traceback(err)
    assert s["errors_by_type"] == {kind: 4}
    assert [(c["name"], c["passes"], c["fails"]) for c in s["checks"]] == [("no status", 4, 0)]


def test_body_delimited_by_close_in_a_scenario(test_server, scenario_file):
    scen = scenario_file("""
        from surge import check

        async def visit(client):
            r = await client.get("/http10")
            check(r, {"whole body": lambda r: r.status == 200 and r.text == "until close"})
    """)
    rc, s, err = surge_json("run", scen, "-b", test_server, "-i", "4", "-u", "2", "-w", "1")
    assert rc == 0, err
    assert s["errors"] == 0, s["errors_by_type"]
    assert [(c["name"], c["passes"], c["fails"]) for c in s["checks"]] == [("whole body", 4, 0)]


@pytest.mark.parametrize(("call", "error", "words"), [
    ('client.get("/", timeout=-1)', "ValueError", "timeout=-1"),
    ('client.post("/echo", data=5)', "TypeError", "data= must be"),
    ('client.get("/", headers={6: "a"})', "TypeError", "header name 6"),
    ('client.get("/", headers=[("a", "b")])', "TypeError", "headers= must be a dict"),
])
def test_wrong_client_arguments_say_what_is_wrong(test_server, scenario_file, call, error, words):
    scen = scenario_file(f"""
        async def visit(client):
            await {call}
    """)
    rc, s, err = surge_json("run", scen, "-b", test_server, "-i", "2", "-u", "1", "-w", "1")
    assert_no_traceback(err)
    assert s["requests"] == 0  # nothing malformed went on the wire
    assert s["iterations"]["errors"] == {error: 2}
    assert words in s["iterations"]["first_tracebacks"][error]


@pytest.mark.parametrize(("deco", "words"), [
    ('@scenario(weight=float("nan"))', "finite number > 0"),
    ('@scenario(weight="a")', "must be a number"),
    ('@scenario(name="")', "non-empty str"),
])
def test_bad_scenario_marks_are_usage_errors(test_server, scenario_file, deco, words):
    scen = scenario_file(f"""
        from surge import scenario

        {deco}
        async def visit(client):
            await client.get("/")
    """)
    rc, s, err = surge_json("run", scen, "-b", test_server, "-d", "1s")
    assert rc == 2, err
    one_error_line(err, words)


def test_two_scenarios_with_one_name(test_server, scenario_file):
    scen = scenario_file("""
        from surge import scenario

        @scenario(name="shop")
        async def a(client):
            await client.get("/")

        @scenario(name="shop")
        async def b(client):
            await client.get("/")
    """)
    rc, s, err = surge_json("run", scen, "-b", test_server, "-d", "1s")
    assert rc == 2, err
    one_error_line(err, "'shop' is used twice")


def test_a_scenario_that_kills_its_worker_is_a_run_error(test_server, scenario_file):
    # QA: os._exit() in a scenario (or a loop blocked for good) gave 0 requests and exit 0.
    scen = scenario_file("""
        import os

        async def visit(client):
            os._exit(0)
    """)
    res = surge_cli("run", scen, "-b", test_server, "-d", "2s", "-u", "1", "-w", "1", "--no-save", timeout=60)
    assert res.rc == 1, res.stderr
    assert_no_traceback(res.stderr)
    assert "no request completed" in res.stderr and "died" in res.stderr, res.stderr


def test_workers_killed_with_nothing_recorded_is_a_run_error():
    from surge.cli import exitcodes
    from surge.cli.common import exit_code

    s = {"requests": 0, "errors": 0, "status": "completed", "thresholds": [], "iterations": {"interrupted": 0},
         "workers_lost": ["workers did not stop in time and were killed"]}
    assert exit_code(s, None) == exitcodes.RUN_ERROR
    assert exit_code({**s, "workers_lost": []}, None) == exitcodes.OK
