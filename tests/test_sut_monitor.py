"""SUT monitoring: --launch, --monitor PID|NAME, sut.jsonl, the sut summary block, failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conftest import SURGE, TESTS, assert_no_traceback, error_lines, free_port, surge_cli
from surge.results.sut_files import read_prometheus, read_sut
from surge.sut.procs import Tracked, find_by_name
from surge.sut.spec import MonitorSpec, parse_queries, steady_window
from surge.sut.summary import sut_summary

BUSY = TESTS / "sut_busy_server.py"
SCEN = """
from surge import scenario

@scenario
async def get(client):
    await client.get("/")
"""


def _run_dir(out: Path) -> Path:
    dirs = [d for d in out.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _start_surge(*args: object) -> subprocess.Popen:
    """surge in the background (its own session), for tests that act while it runs."""
    return subprocess.Popen([*SURGE, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _first_sample(out: Path, timeout: float = 20.0) -> list[dict]:
    """The samples of the run being written under ``out``, once there is one (bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dirs = [d for d in out.glob("*") if d.is_dir()]
        samples = read_sut(dirs[0]) if dirs else []
        if samples:
            return samples
        time.sleep(0.1)
    return []


def _reap(surge: subprocess.Popen, *others: subprocess.Popen) -> None:
    """Kill what is left: surge's whole session (workers included), then the other processes."""
    if surge.poll() is None:
        os.killpg(surge.pid, signal.SIGKILL)
        surge.communicate()
    for p in others:
        if p.poll() is None:
            p.kill()
            p.wait()


# --------------------------------------------------------------------------- end to end


def test_launch_samples_the_server_and_stops_it(scenario_file, tmp_path):
    port = free_port()
    out = tmp_path / "runs"
    r = surge_cli("run", scenario_file(SCEN), "--vus", "2", "-d", "3s", "-w", "1", "-b", f"http://127.0.0.1:{port}",
                  "--launch", f"{sys.executable} {BUSY} --port {port}", "--out", out, "--json", "--no-store")
    assert r.rc == 0, r
    assert_no_traceback(r.stderr)
    assert r.data["requests"] > 0
    samples = read_sut(_run_dir(out))
    assert len(samples) >= 2
    recs = [s["procs"]["launched"] for s in samples]
    assert all(rec["alive"] for rec in recs)
    assert all(5.0 < rec["rss_mb"] < 1000.0 for rec in recs)  # a Python process, not zero, not absurd
    assert max(rec["cpu_pct"] for rec in recs) > 0.0  # it served requests that burn CPU
    assert all(rec["threads"] >= 1 and rec["fds"] >= 3 for rec in recs)
    assert samples[0]["t"] == pytest.approx(1.0, abs=0.3)  # on the run's seconds axis
    assert all(b["t"] > a["t"] for a, b in zip(samples, samples[1:], strict=False))
    sysrec = samples[0]["sys"]
    assert 0.0 <= sysrec["cpu_pct"] <= 100.0 and len(sysrec["per_core"]) == psutil.cpu_count()
    assert sysrec["net_rx_bps"] > 0  # the load went over loopback
    block = r.data["sut"]["procs"]["launched"]
    assert block["samples"] == len(samples)
    assert block["rss_mb_max"] == pytest.approx(max(rec["rss_mb"] for rec in recs), abs=0.1)
    assert _gone(recs[0]["pid"]), "the launched server must be stopped after the run"


def test_missing_pid_is_a_usage_error_before_the_load(scenario_file, test_server):
    pid = 2**22 + 4321  # above Linux's largest pid_max: no such process
    assert not psutil.pid_exists(pid)
    r = surge_cli("run", scenario_file(SCEN), "--vus", "1", "-d", "5s", "-b", test_server, "--monitor", str(pid),
                  "--no-save")
    assert r.rc == 2, r
    assert_no_traceback(r.stderr)
    errs = error_lines(r.stderr)
    assert len(errs) == 1 and str(pid) in errs[0] and "no process" in errs[0]


def test_process_killed_mid_run_is_recorded_and_the_run_goes_on(scenario_file, test_server, tmp_path):
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    out = tmp_path / "runs"
    proc = _start_surge("run", scenario_file(SCEN), "--vus", "1", "-d", "3s", "-w", "1", "-b", test_server,
                        "--monitor", str(victim.pid), "--out", out, "--json", "--no-store")
    try:
        assert _first_sample(out), "no sample within 20 s"
        victim.kill()  # mid-run: after the first sample
        victim.wait()
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        _reap(proc, victim)
    assert proc.returncode == 0, stderr
    data = json.loads(stdout)
    assert data["status"] == "completed" and data["requests"] > 0
    warns = [w for w in data["warnings"] if f"monitored process {victim.pid}" in w]
    assert len(warns) == 1 and "exited at" in warns[0], data["warnings"]
    samples = read_sut(_run_dir(out))
    label = next(iter(samples[0]["procs"]))
    states = [s["procs"][label]["alive"] for s in samples]
    assert states[0] is True and states[-1] is False
    dead = next(s["procs"][label] for s in samples if not s["procs"][label]["alive"])
    assert dead["cpu_pct"] is None and dead["rss_mb"] is None  # no figures rather than zeros


def test_monitor_by_name_finds_the_process_not_surge_itself(scenario_file, test_server, tmp_path):
    marker = f"surge-sut-marker-{os.getpid()}"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    try:
        deadline = time.monotonic() + 10.0
        roots = find_by_name(marker)
        while not roots and time.monotonic() < deadline:  # until the child has exec'd
            time.sleep(0.05)
            roots = find_by_name(marker)
        assert [p.pid for p in roots] == [proc.pid]
        out = tmp_path / "runs"
        r = surge_cli("run", scenario_file(SCEN), "--vus", "1", "-d", "2s", "-w", "1", "-b", test_server,
                      "--monitor", marker, "--out", out, "--json", "--no-store")
        assert r.rc == 0, r
        samples = read_sut(_run_dir(out))
        assert samples and all(s["procs"][marker]["pid"] == proc.pid for s in samples)
        assert r.data["sut"]["procs"][marker]["pid"] == proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_unknown_name_and_failing_launch_are_usage_errors(scenario_file, test_server):
    r = surge_cli("run", scenario_file(SCEN), "-d", "5s", "-b", test_server, "--monitor", "no-such-proc-xq7", "--no-save")
    assert r.rc == 2 and "no-such-proc-xq7" in error_lines(r.stderr)[0], r
    port = free_port()
    cmd = f"{sys.executable} -c 'import sys; print(\"boom\"); sys.exit(3)'"
    r = surge_cli("run", scenario_file(SCEN), "-d", "5s", "-b", f"http://127.0.0.1:{port}", "--launch", cmd,
                  "--no-save")
    assert r.rc == 2, r
    assert_no_traceback(r.stderr)
    msg = error_lines(r.stderr)[0]
    assert "exited with code 3 before listening" in msg and "boom" in msg


def test_ctrl_c_still_stops_the_launched_server(scenario_file, tmp_path):
    port = free_port()
    out = tmp_path / "runs"
    proc = _start_surge("run", scenario_file(SCEN), "--vus", "1", "-d", "20s", "-w", "1", "-b",
                        f"http://127.0.0.1:{port}", "--launch", f"{sys.executable} {BUSY} --port {port}",
                        "--out", out, "--json", "--no-store")
    try:
        samples = _first_sample(out)
        assert samples, "no sample within 20 s"
        os.kill(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        _reap(proc)
    assert proc.returncode == 130, stderr
    assert json.loads(stdout)["status"] == "interrupted"
    assert _gone(samples[0]["procs"]["launched"]["pid"])


# --------------------------------------------------------------------------- units


def test_tracked_counts_children(tmp_path):
    code = ("import subprocess, sys, time\n"
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
            "print('ok', flush=True); time.sleep(30)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "ok"
        tr = Tracked("p", [psutil.Process(parent.pid)])
        tr.sample(1.0)
        rec = tr.sample(1.0)
        assert rec["procs"] == 2 and rec["alive"] is True
        assert rec["threads"] >= 2 and rec["rss_mb"] > 5.0
    finally:
        for c in psutil.Process(parent.pid).children(recursive=True):
            c.kill()
        parent.kill()
        parent.wait()


def test_sut_summary_is_pure_and_estimates_growth():
    samples = [{"t": float(t), "procs": {"app": {"pid": 7, "alive": True, "procs": 1, "cpu_pct": 10.0 + t % 3,
                                                  "rss_mb": 100.0 + 0.01 * t}}} for t in range(1, 61)]
    samples.append({"t": 61.0, "procs": {"app": {"pid": 7, "alive": False, "procs": 0, "cpu_pct": None,
                                                  "rss_mb": None}}})
    s = sut_summary(samples)["procs"]["app"]
    assert s["samples"] == 60 and s["pid"] == 7
    assert s["cpu_pct_max"] == 12.0
    assert s["cpu_pct_mean"] == pytest.approx(11.0, abs=0.05)
    assert s["rss_mb_max"] == pytest.approx(100.6, abs=0.05)
    assert s["rss_mb_growth_mb_per_h"] == pytest.approx(36.0, abs=0.1)  # 0.01 MB/s
    short = sut_summary(samples[:5])["procs"]["app"]
    assert short["rss_mb_growth_mb_per_h"] is None  # 4 s say nothing about a leak
    assert sut_summary([]) == {"procs": {}}


def test_readers_tolerate_truncation_and_absence(tmp_path):
    assert read_sut(tmp_path) == [] and read_prometheus(tmp_path) is None
    (tmp_path / "sut.jsonl").write_text('{"t":1.0,"procs":{}}\n{"t":2.0,"procs":{}}\n{"t":3.0,"pro')
    assert [s["t"] for s in read_sut(tmp_path)] == [1.0, 2.0]
    (tmp_path / "prometheus.json").write_text("{not json")
    assert read_prometheus(tmp_path) is None


def test_steady_window_rule():
    assert steady_window(100.0) == (10.0, 95.0)
    assert steady_window(100.0, first_stage_s=30.0) == (30.0, 95.0)
    assert steady_window(3.0) == (0.3, 2.5)
    start, end = steady_window(1.0)
    assert end - start >= 1.0 and start >= 0.0


def test_spec_validation():
    from surge.api.errors import UsageError

    with pytest.raises(UsageError, match="launched"):
        MonitorSpec(py_spy="launched")
    with pytest.raises(UsageError, match="PID"):
        MonitorSpec(py_spy="uvicorn")
    with pytest.raises(UsageError, match="--query"):
        MonitorSpec(prometheus_url="http://127.0.0.1:9090")
    with pytest.raises(UsageError, match="NAME=PROMQL"):
        parse_queries(["just_a_query"])
    assert parse_queries(["a=up", "b = rate(x[1m])"]) == (("a", "up"), ("b", "rate(x[1m])"))
