"""How a run ends: SIGTERM stops it like Ctrl-C, and a run in which nothing was answered fails.

QA found both: `timeout 2 surge run ...` left a run directory with meta.json
alone (no summary, nothing in the store), and a run whose every request was
still waiting at the stop reported "0 requests, 0 errors" and exited 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from conftest import SURGE, assert_no_traceback, surge_cli, surge_json


def _sigterm_run(scen, test_server, out, *args, wait) -> dict:
    """Start `surge run SCEN ARGS`, SIGTERM it once ``wait()`` returns, and check that it exits
    130 cleanly with its run kept; returns the run's summary.json."""
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen([*SURGE, "run", str(scen), "-b", test_server, *args, "-w", "1",
                             "--out", str(out), "--no-store", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    wait()
    proc.send_signal(signal.SIGTERM)  # to the CLI process only, as `timeout` does
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 130, err
    assert_no_traceback(err)
    [run_dir] = [p for p in out.iterdir() if p.is_dir()]
    return json.loads((run_dir / "summary.json").read_text())


def test_sigterm_stops_gracefully_and_keeps_the_run(test_server, scenario_file, tmp_path):
    scen = scenario_file("""
        async def visit(client):
            await client.get("/")
    """)
    summary = _sigterm_run(scen, test_server, tmp_path / "runs", "--rate", "20", "-d", "20s",
                           wait=lambda: time.sleep(3.0))  # started, some seconds recorded
    assert summary["status"] == "interrupted"
    assert summary["requests"] > 0


def test_run_with_nothing_answered_fails(test_server, scenario_file):
    scen = scenario_file("""
        async def visit(client):
            await client.get("/hang")
    """)
    res = surge_cli("run", scen, "-b", test_server, "-u", "2", "-d", "0.5s", "-w", "1", "--timeout", "30s",
                    "--read-timeout", "30s", "--no-save", "--graceful-stop", "0.5s")
    assert res.rc == 1, res.stderr
    assert_no_traceback(res.stderr)
    assert "no request completed" in res.stderr and "2 still waiting" in res.stderr, res.stderr


def test_hit_with_nothing_answered_fails(test_server):
    rc, s, err = surge_json("hit", test_server + "/hang", "-d", "0.5s", "-c", "2", "-w", "1", "--timeout", "30s",
                            "--read-timeout", "30s")
    assert rc == 1, err
    assert s["requests"] == 0 and s["iterations"]["interrupted"] == 2


def test_a_teardown_that_never_returns_is_abandoned_and_the_run_kept(test_server, scenario_file, tmp_path):
    # QA: `async def teardown(): await asyncio.sleep(3600)` hung the run for ever after the load.
    scen = scenario_file("""
        import asyncio
        options = {"teardown_timeout": "1s"}

        async def teardown(data):
            await asyncio.sleep(3600)

        async def visit(client):
            await client.get("/")
    """)
    out = tmp_path / "runs"
    t0 = time.monotonic()
    res = surge_cli("run", scen, "-b", test_server, "-i", "5", "-u", "1", "-w", "1", "--out", out, "--no-store",
                    "--quiet", timeout=60)
    assert res.rc == 0, res.stderr
    assert time.monotonic() - t0 < 30
    [run_dir] = [p for p in out.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["requests"] == 5
    assert any("teardown() did not return within 1 s" in w for w in summary["warnings"]), summary["warnings"]


def test_a_setup_that_never_returns_is_a_usage_error(test_server, scenario_file):
    scen = scenario_file("""
        import time
        options = {"setup_timeout": "1s"}

        def setup():
            time.sleep(3600)  # blocking: cannot be cancelled, only abandoned

        async def visit(client):
            await client.get("/")
    """)
    res = surge_cli("run", scen, "-b", test_server, "-i", "1", "-w", "1", "--no-save", timeout=60)
    assert res.rc == 2, res.stderr
    assert_no_traceback(res.stderr)
    assert "did not return within 1 s" in res.stderr and "setup_timeout" in res.stderr, res.stderr


def test_sigterm_during_teardown_keeps_the_run(test_server, scenario_file, tmp_path):
    scen = scenario_file("""
        import asyncio
        async def teardown(data):
            await asyncio.sleep(3600)

        async def visit(client):
            await client.get("/")
    """)
    out = tmp_path / "runs"

    def in_teardown() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list(out.glob("*/series.jsonl")):
            time.sleep(0.1)
        time.sleep(2.0)  # the 3 requests are done long before: it sits in teardown()

    summary = _sigterm_run(scen, test_server, out, "-i", "3", "-u", "1", wait=in_teardown)
    assert summary["requests"] == 3 and summary["status"] == "interrupted"
    assert any("teardown() was interrupted" in w for w in summary["warnings"]), summary["warnings"]
