"""py-spy profiling under load, `surge profile show/diff`, profile analysis and the flame graph."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import plotly.graph_objects as go
import pytest

from conftest import TESTS, assert_no_traceback, error_lines, free_port, surge_cli
from surge.analysis.profile import diff, function_of, shares, top_functions
from surge.report.flame import flame_figure
from surge.report.sut_figures import sut_figures
from surge.results.sut_files import parse_collapsed
from surge.sut.pyspy import Profiler, find_py_spy, raw_to_collapsed

BUSY = TESTS / "sut_busy_server.py"
HOT = "surge_test_burn_cpu_xyzzy"
SCEN = """
from surge import scenario

@scenario
async def burn(client):
    await client.get("/burn")
"""


def _profile_dir(tmp_path: Path, name: str, stacks: dict[str, int]) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "profile.collapsed").write_text("".join(f"{s} {n}\n" for s, n in stacks.items()))
    return d


# --------------------------------------------------------------------------- end to end


@pytest.mark.skipif(find_py_spy() is None, reason="py-spy is not installed")
def test_py_spy_finds_the_hot_function_under_load(scenario_file, tmp_path):
    port = free_port()
    out = tmp_path / "runs"
    r = surge_cli("run", scenario_file(SCEN), "--vus", "2", "-d", "3s", "-w", "1", "-b", f"http://127.0.0.1:{port}",
                  "--launch", f"{sys.executable} {BUSY} --port {port} --burn-ms 3", "--py-spy", "launched",
                  "--out", out, "--json")
    assert r.rc == 0, r
    assert_no_traceback(r.stderr)
    run_dir = next(out.iterdir())
    ptrace = [w for w in r.data["warnings"] if "ptrace" in w]
    if ptrace:  # this machine does not let py-spy attach: the message must say how to allow it
        assert "kernel.yama.ptrace_scope=0" in ptrace[0] and "SYS_PTRACE" in ptrace[0]
        assert not (run_dir / "profile.collapsed").exists()
        pytest.skip(f"py-spy may not attach here; the message was checked: {ptrace[0]}")
    assert (run_dir / "profile.collapsed").is_file(), r.data["warnings"]
    shown = surge_cli("profile", "show", run_dir, "--top", "5", "--json")
    assert shown.rc == 0, shown
    names = [f["function"] for f in shown.data["functions"]]
    assert any(HOT in n for n in names), names
    assert shown.data["samples"] > 10
    table = surge_cli("profile", "show", run_dir, "--top", "5")
    assert table.rc == 0 and HOT in table.stdout
    by_id = surge_cli("profile", "show", r.data["stored_as"], "--top", "5", "--json")  # via the run store
    assert by_id.rc == 0 and by_id.data["functions"] == shown.data["functions"], by_id
    shutil.rmtree(run_dir)
    gone = surge_cli("profile", "show", r.data["stored_as"])
    assert gone.rc == 2 and "no longer exists" in error_lines(gone.stderr)[0], gone


def test_profile_diff_ranks_what_got_hotter(tmp_path):
    a = _profile_dir(tmp_path, "a", {"main (app.py:1);handler (app.py:5);parse (app.py:9)": 50,
                                     "main (app.py:1);handler (app.py:5);render (app.py:20)": 30,
                                     "main (app.py:1);db (app.py:30)": 20})
    b = _profile_dir(tmp_path, "b", {"main (app.py:2);handler (app.py:6);parse (app.py:10)": 20,
                                     "main (app.py:2);handler (app.py:6);render (app.py:21)": 30,
                                     "main (app.py:2);db (app.py:31)": 40,
                                     "main (app.py:2);handler (app.py:6);cache (app.py:40)": 10})
    r = surge_cli("profile", "diff", a, b, "--json")
    assert r.rc == 0, r
    assert_no_traceback(r.stderr)
    hotter = [(h["function"], h["total_pp"]) for h in r.data["hotter"]]
    # shares of B's 100 samples: db 20 -> 40 %, cache 0 -> 10 %; line shifts do not matter
    assert hotter == [("db (app.py)", 20.0), ("cache (app.py)", 10.0)]
    cooler = [(c["function"], c["total_pp"], c["self_pp"]) for c in r.data["cooler"]]
    assert cooler == [("parse (app.py)", -30.0, -30.0), ("handler (app.py)", -20.0, 0.0)]
    text = surge_cli("profile", "diff", a, b, "--top", "1")
    assert text.rc == 0 and "db (app.py)" in text.stdout and "+20.0" in text.stdout


def test_profile_show_errors_are_one_line(tmp_path):
    empty = tmp_path / "norun"
    empty.mkdir()
    r = surge_cli("profile", "show", empty)
    assert r.rc == 2 and "no profile.collapsed" in error_lines(r.stderr)[0] and "--py-spy" in r.stderr, r
    r = surge_cli("profile", "show", "no-such-run-id-3k9")
    assert r.rc == 2 and "no-such-run-id-3k9" in error_lines(r.stderr)[0], r
    assert_no_traceback(r.stderr)


# --------------------------------------------------------------------------- the profiler's failures


def _fake_py_spy(tmp_path: Path, message: str, rc: int) -> str:
    exe = tmp_path / "fake-py-spy"
    exe.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit {rc}\n")
    exe.chmod(0o755)
    return str(exe)


def test_ptrace_refusal_is_a_warning_that_says_how_to_allow_it(tmp_path):
    exe = _fake_py_spy(tmp_path, "Error: Permission Denied: Try running again with elevated permissions", 1)
    p = Profiler(pid=1, run_dir=tmp_path, duration_s=1.0, exe=exe)
    p.start()
    assert p.wait(10.0)
    why = p.finish()
    assert why is not None
    assert "sudo sysctl kernel.yama.ptrace_scope=0" in why and "--cap-add SYS_PTRACE" in why and "root" in why
    assert not (tmp_path / "profile.collapsed").exists()


def test_missing_py_spy_and_other_failures_are_warnings(tmp_path):
    p = Profiler(pid=1, run_dir=tmp_path, duration_s=1.0, exe=None)
    p.exe = None  # as when neither the virtualenv nor PATH has it
    p.start()
    assert "pip install py-spy" in p.finish()
    p = Profiler(pid=1, run_dir=tmp_path, duration_s=1.0, exe=_fake_py_spy(tmp_path, "Error: no such process", 1))
    p.start()
    assert p.wait(10.0)
    assert "no such process" in p.finish()
    p = Profiler(pid=1, run_dir=tmp_path, duration_s=5.0, exe=_fake_py_spy(tmp_path, "x", 0))
    assert "before the profiling window" in p.finish()  # never started: the run was too short


def test_raw_output_with_a_multiline_command_line():
    raw = ('process 42:"python -c import x; x.run()\nrun()";<module> (<string>:2);run (x.py:3) 7\n'
           "main (a.py:1);f (a.py:2) 3\n"
           "garbage line\n")
    text = raw_to_collapsed(raw)
    assert parse_collapsed(text) == {"process 42 (python -c import);<module> (<string>:2);run (x.py:3)": 7,
                                     "main (a.py:1);f (a.py:2)": 3}


# --------------------------------------------------------------------------- analysis and figures


def test_shares_self_and_total():
    stacks = {"process 1 (python app.py);main (a.py:1);f (a.py:2);f (a.py:2);g (a.py:3)": 6,
              "process 1 (python app.py);main (a.py:1);f (a.py:9)": 4}
    s = shares(stacks)
    assert "process 1 (python app.py)" not in s  # not a function
    assert s["f (a.py)"].total_pct == 100.0  # recursion counted once per sample
    assert s["f (a.py)"].self_pct == 40.0 and s["g (a.py)"].self_pct == 60.0
    assert [r.function for r in top_functions(stacks, 2)] == ["g (a.py)", "f (a.py)"]
    assert [r.function for r in top_functions(stacks, 1, by="total")] == ["f (a.py)"]
    assert function_of("h (pkg/m.py:120)") == "h (pkg/m.py)"
    assert diff({}, {}) == [] and shares({}) == {}


def test_flame_figure_is_valid_and_pruned():
    stacks = {"main (a.py);hot (a.py)": 9_000, "main (a.py);warm (a.py)": 990}
    stacks.update({f"main (a.py);rare_{i} (a.py)": 1 for i in range(10)})  # 0.01 % each
    fig = flame_figure(stacks)
    go.Figure(fig)  # plotly accepts it
    tr = fig["data"][0]
    assert tr["type"] == "icicle" and tr["tiling"]["flip"] == "y"
    assert not any("rare_" in lbl for lbl in tr["labels"])
    assert tr["values"][0] == 10_000 and "hot (a.py)" in tr["labels"]
    by_id = dict(zip(tr["ids"], tr["values"], strict=True))
    for i, parent in zip(tr["ids"], tr["parents"], strict=True):
        if parent:
            assert by_id[parent] >= by_id[i]  # branchvalues=total holds
    big = {";".join(f"f{d}_{w} (m.py)" for d in range(30)) + f";leaf{w} (m.py)": 1 for w in range(5000)}
    assert len(flame_figure(big)["data"][0]["ids"]) <= 1  # every path is under 0.5 %: only the root


def test_sut_figures_share_the_seconds_axis():
    samples = [{"t": float(t), "dt": 1.0,
                "procs": {"app": {"alive": True, "cpu_pct": 50.0, "rss_mb": 80.0, "threads": 4, "fds": 9}},
                "sys": {"cpu_pct": 30.0, "per_core": [20.0, 40.0], "mem_used_pct": 10.0,
                        "net_rx_bps": 1e6, "net_tx_bps": 2e6}} for t in range(1, 5)]
    figs = sut_figures(samples)
    assert len(figs) == 5
    for f in figs:
        go.Figure(f)
    assert figs[0]["data"][0]["x"] == [0.0, 1.0, 2.0, 3.0]  # sample t=k is drawn at series second k-1
    assert figs[3]["data"][1]["y"] == [40.0] * 4  # core 1
    assert figs[4]["data"][1]["y"] == [2.0] * 4  # MB/s sent
    assert sut_figures([]) == []
    assert json.dumps(figs)  # plain data, embeddable in the report


def test_py_spy_binary_is_found_beside_the_interpreter():
    exe = find_py_spy()
    if exe is None:
        pytest.skip("py-spy is not installed")
    assert subprocess.run([exe, "--version"], capture_output=True, timeout=30).returncode == 0
