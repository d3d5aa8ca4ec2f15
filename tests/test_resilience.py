"""Nothing measured is lost: Ctrl-C, a dying worker, a killed coordinator."""

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

ROOT = Path(__file__).resolve().parent.parent
SURGE = [sys.executable, "-c", "from surge.cli.main import main; main()"]


@pytest.fixture(scope="module")
def server():
    p = subprocess.Popen([sys.executable, str(ROOT / "tests" / "servers.py"), "--port", "0"],
                         stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{line.split()[1]}"
    finally:
        p.kill()
        p.wait(timeout=5)


def _scenario(tmp_path: Path, body: str) -> Path:
    f = tmp_path / "scen.py"
    f.write_text(body)
    return f


def _run_dir(out: Path) -> Path:
    dirs = [d for d in out.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_ctrl_c_stops_gracefully_and_keeps_the_summary(server, tmp_path):
    scen = _scenario(tmp_path, "from surge import sleep\n\nasync def a(client):\n"
                               "    await client.get('/delay/5')\n    await sleep(0.01)\n")
    out = tmp_path / "runs"
    p = subprocess.Popen([*SURGE, "run", str(scen), "--base-url", server, "--vus", "4", "-d", "30s", "-w", "2",
                          "--out", str(out), "-q"], stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    rc = p.wait(timeout=15)
    stopped_in = time.monotonic() - t0
    err = p.stderr.read()
    assert rc == 130, err
    assert stopped_in < 6, stopped_in
    assert "Traceback" not in err
    rd = _run_dir(out)
    summary = json.loads((rd / "summary.json").read_text())
    meta = json.loads((rd / "meta.json").read_text())
    assert summary["status"] == "interrupted" and meta["status"] == "interrupted"
    assert summary["requests"] > 50
    assert summary["duration_s"] < 10


def test_a_worker_that_dies_is_reported_and_its_data_kept(server, tmp_path):
    # VU 1 lives in worker 0 (ids interleave over workers); it kills its process mid-run.
    scen = _scenario(tmp_path, "import os\nfrom surge import sleep\n\nasync def a(client, vu):\n"
                               "    await client.get('/')\n    await sleep(0.01)\n"
                               "    if vu.id == 1 and vu.iteration == 60:\n        os._exit(7)\n")
    out = tmp_path / "runs"
    r = subprocess.run([*SURGE, "run", str(scen), "--base-url", server, "--vus", "2", "-d", "3s", "-w", "2",
                        "--out", str(out), "--json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert any("worker 0 died" in w and "exit code 7" in w for w in s["warnings"]), s["warnings"]
    # Worker 0's requests before its death are still counted, with worker 1's whole run.
    per_vu_rate = s["requests"] / s["duration_s"]
    assert s["requests"] > 100 and per_vu_rate > 0
    assert (_run_dir(out) / "summary.json").exists()


def test_killed_coordinator_leaves_series_and_no_orphans(server, tmp_path):
    scen = _scenario(tmp_path, "async def a(client):\n    await client.get('/delay/2')\n")
    out = tmp_path / "runs"
    p = subprocess.Popen([*SURGE, "run", str(scen), "--base-url", server, "--vus", "2", "-d", "30s", "-w", "2",
                          "--out", str(out), "-q"], start_new_session=True)
    time.sleep(3.5)
    children = psutil.Process(p.pid).children(recursive=True)
    assert children, "workers should be running"
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=5)
    gone, alive = psutil.wait_procs(children, timeout=10)
    alive = [c for c in alive if c.status() != psutil.STATUS_ZOMBIE]  # exited, not yet reaped
    for c in alive:
        c.kill()
    assert not alive, "workers must stop when their coordinator disappears"
    rd = _run_dir(out)
    lines = (rd / "series.jsonl").read_text().splitlines()
    assert len(lines) >= 2  # written every second: at most the last second is lost
    assert json.loads(lines[0])["requests"]
    assert json.loads((rd / "meta.json").read_text())["status"] == "running"
