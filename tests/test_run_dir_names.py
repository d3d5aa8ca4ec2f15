"""Run directories get a name of their own, even when runs start in the same second."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from conftest import SURGE
from surge.results import rundir
from surge.results.rundir import drop_if_empty, reserve_run_dir


def test_two_runs_in_one_second_get_two_directories(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir, "new_run_id", lambda label: "20261123-120000-" + label)
    a = reserve_run_dir(tmp_path / "runs", "hit")
    b = reserve_run_dir(tmp_path / "runs", "hit")
    assert (a.name, b.name) == ("20261123-120000-hit", "20261123-120000-hit-2")
    assert a.is_dir() and b.is_dir()


def test_a_name_another_process_just_took_is_skipped(tmp_path, monkeypatch):
    # The race that crashed: the name was free when chosen, taken by another run before mkdir.
    monkeypatch.setattr(rundir, "new_run_id", lambda label: "20261123-120000-" + label)
    (tmp_path / "20261123-120000-hit").mkdir()
    (tmp_path / "20261123-120000-hit-2").mkdir()
    assert reserve_run_dir(tmp_path, "hit").name == "20261123-120000-hit-3"


def test_an_unused_reservation_is_removed_but_a_written_one_is_kept(tmp_path):
    empty = reserve_run_dir(tmp_path, "x")
    drop_if_empty(empty)
    assert not empty.exists()
    used = reserve_run_dir(tmp_path, "y")
    (used / "meta.json").write_text("{}")
    drop_if_empty(used)
    assert used.exists()


def test_concurrent_runs_into_one_out_directory_all_land(test_server, tmp_path):
    out = tmp_path / "runs"
    env = {**os.environ, "NO_COLOR": "1"}
    procs = [subprocess.Popen([*SURGE, "hit", test_server + "/", "-n", "20", "-c", "2", "-w", "1", "-q",
                               "--out", str(out), "--no-store"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                              start_new_session=True) for _ in range(4)]
    deadline = time.monotonic() + 90
    errs = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            _, err = p.communicate()
        errs.append((p.returncode, err))
    assert all(rc == 0 for rc, _ in errs), errs
    dirs = sorted(d.name for d in out.iterdir())
    assert len(dirs) == 4, dirs
    assert all((out / d / "summary.json").is_file() for d in dirs)
