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
from surge.analysis.findings import hotspots
from surge.analysis.profile import (
    NATIVE_NOTE,
    diff,
    function_of,
    hotter_cooler,
    is_library,
    launchers,
    native_note,
    outside_app_share,
    shares,
    top_functions,
)
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


# --------------------------------------------------------------------------- application view

# A server as py-spy sees it: launcher frames (the program's main, a CLI command, the
# function that starts uvicorn), the event loop, uvicorn and Starlette, then the
# application's handlers; stdlib leaves (re, json) below application frames.
LAUNCH = ("process 7 (python -m shop);<module> (shop/__main__.py);main (shop/cli.py:3);Command.main (click/core.py);"
          "serve (shop/cli.py:9);run (uvicorn/main.py);Server.run (uvicorn/server.py);Runner.run (asyncio/runners.py)")
WEB = (LAUNCH + ";RequestResponseCycle.run_asgi (uvicorn/protocols/http/httptools_impl.py)"
       ";Router.__call__ (starlette/routing.py);Route.handle (starlette/routing.py)")
SIMILAR = WEB + ";recommend (shop/app.py:10);scores (shop/app.py:20)"
SHINGLES = SIMILAR + ";scores.<locals>.<listcomp> (shop/app.py:21);shingles (shop/app.py:30)"
BASE = {LAUNCH: 25,  # the event loop's C code (uvloop, httptools), charged to Runner.run
        WEB: 5,  # routing
        SHINGLES: 20, SHINGLES + ";findall (re/__init__.py:216)": 5, SIMILAR: 5,
        WEB + ";detail (shop/app.py:40);fetch (shop/db.py:5)": 24,
        WEB + ";detail (shop/app.py:41);dumps (json/__init__.py:231);encode (json/encoder.py:200)": 16}
FIXED = {LAUNCH: 59, WEB: 5, WEB + ";recommend (shop/app.py:12)": 5,  # similarity gone: recommendations cached
         WEB + ";detail (shop/app.py:40);fetch (shop/db.py:5)": 20,
         WEB + ";detail (shop/app.py:41);dumps (json/__init__.py:231);encode (json/encoder.py:200)": 11}


def test_library_frames_are_told_from_the_applications():
    for lib in ("Runner.run (asyncio/runners.py)", "Route.handle (starlette/routing.py:120)", "select (selectors.py)",
                "dumps (json/__init__.py:231)", "_run_module_as_main (<frozen runpy>)",
                "encode (/usr/lib/python3.11/json/encoder.py)",
                "handle (/srv/.venv/lib/python3.12/site-packages/starlette/routing.py)"):
        assert is_library(lib), lib
    for app in ("Shop.recommendations (surge/demo/app.py)", "<module> (surge)", "handler (app.py:12)",
                "handle (/srv/.venv/lib/python3.12/site-packages/shop/app.py)"):
        assert not is_library(app), app
    assert hotspots.is_library is is_library  # surge explain's hot-code finding uses the same rule


def test_launchers_host_the_framework_and_handlers_are_not_launchers():
    assert launchers(BASE) == {"<module> (shop/__main__.py)", "main (shop/cli.py)", "serve (shop/cli.py)"}
    # work hands over to re.sub, which calls back into the application, but work also calls
    # helper itself: it is a handler, not a launcher
    assert launchers({"main (a.py);work (a.py);sub (re/__init__.py);cb (a.py)": 5,
                      "main (a.py);work (a.py);helper (a.py)": 5}) == frozenset()


def test_app_view_charges_library_time_to_the_calling_function():
    app = shares(BASE)
    assert not any(is_library(fn) for fn in app)
    assert "main (shop/cli.py)" not in app and "serve (shop/cli.py)" not in app  # launchers
    assert app["shingles (shop/app.py)"].self_pct == 25.0  # with the re.findall below it
    assert app["detail (shop/app.py)"].self_pct == 16.0  # json.dumps is detail's
    assert app["scores (shop/app.py)"].self_pct == 5.0 and app["scores (shop/app.py)"].total_pct == 30.0  # + listcomp
    assert outside_app_share(BASE) == 30.0  # the event loop and the routing: no application function
    assert [r.function for r in top_functions(BASE, 3)] == [
        "shingles (shop/app.py)", "fetch (shop/db.py)", "detail (shop/app.py)"]
    assert [r.function for r in top_functions(BASE, 2, by="total")] == ["detail (shop/app.py)", "scores (shop/app.py)"]
    every = top_functions(BASE, 2, view="all")  # leaf self time: the event loop leads
    assert [(r.function, r.self_pct) for r in every] == [("Runner.run (asyncio/runners.py)", 25.0),
                                                        ("fetch (shop/db.py)", 24.0)]
    assert native_note(BASE) == NATIVE_NOTE and native_note({"main (a.py);f (a.py)": 1}) is None
    assert native_note({"main (a.py);EpollSelector.select (selectors.py)": 3, "main (a.py);f (a.py)": 1}) == NATIVE_NOTE
    with pytest.raises(ValueError):
        shares(BASE, view="mine")


def test_diff_ranks_by_app_self_share_so_the_vanished_code_leads():
    hotter, cooler = hotter_cooler(diff(BASE, FIXED))
    assert [(r.function, round(r.self_pp, 1)) for r in cooler[:2]] == [("shingles (shop/app.py)", -25.0),
                                                                       ("scores (shop/app.py)", -5.0)]
    assert [r.function for r in hotter] == ["recommend (shop/app.py)"]
    # every frame, ranked by total share: the framework frames hide the application's
    _, cooler_all = hotter_cooler(diff(BASE, FIXED, view="all", by="total"), by="total", n=3)
    assert all(is_library(r.function) for r in cooler_all), cooler_all
    assert [r.function for r in cooler_all][0] == "RequestResponseCycle.run_asgi (uvicorn/protocols/http/httptools_impl.py)"


def test_profile_show_lists_application_code_unless_all(tmp_path):
    base = _profile_dir(tmp_path, "base", BASE)
    r = surge_cli("profile", "show", base, "--top", "3")
    assert r.rc == 0, r
    assert_no_traceback(r.stderr)
    assert "self = in the function or in library code it called" in r.stdout.splitlines()[0]
    assert r.stdout.index("shingles (shop/app.py)") < r.stdout.index("fetch (shop/db.py)")
    assert "Runner.run" not in r.stdout and "starlette" not in r.stdout and "main (shop/cli.py)" not in r.stdout
    assert "30.0 % of samples ran outside application functions" in r.stdout
    assert "--native" not in r.stdout
    r = surge_cli("profile", "show", base, "--top", "3", "--all")
    assert r.rc == 0, r
    assert r.stdout.index("Runner.run (asyncio/runners.py)") < r.stdout.index("fetch (shop/db.py)")
    assert "note: time in C code (the event loop" in r.stdout and "use --native with py-spy" in r.stdout
    j = surge_cli("profile", "show", base, "--top", "2", "--json")
    assert j.rc == 0 and j.data["view"] == "app" and j.data["by"] == "self" and j.data["outside_app_pct"] == 30.0, j
    assert [(f["function"], f["self_pct"], f["total_pct"]) for f in j.data["functions"]] == [
        ("shingles (shop/app.py)", 25.0, 25.0), ("fetch (shop/db.py)", 24.0, 24.0)]
    j = surge_cli("profile", "show", base, "--top", "1", "--all", "--by", "total", "--json")
    assert j.rc == 0 and j.data["view"] == "all" and j.data["note"] == NATIVE_NOTE, j
    assert j.data["functions"][0]["function"] == "Runner.run (asyncio/runners.py)"  # 100 % total, most self


def test_profile_diff_leads_with_the_application_code_that_vanished(tmp_path):
    base, fixed = _profile_dir(tmp_path, "base", BASE), _profile_dir(tmp_path, "fixed", FIXED)
    r = surge_cli("profile", "diff", base, fixed, "--top", "2")
    assert r.rc == 0, r
    assert_no_traceback(r.stderr)
    assert "self = in the function or in library code it called" in r.stdout
    cooler = r.stdout[r.stdout.index("cooler in B"):]
    assert cooler.index("shingles (shop/app.py)") < cooler.index("scores (shop/app.py)")
    assert "-25.0" in cooler and "starlette" not in r.stdout and "uvicorn" not in r.stdout
    j = surge_cli("profile", "diff", base, fixed, "--all", "--by", "total", "--top", "3", "--json")
    assert j.rc == 0 and j.data["view"] == "all" and j.data["by"] == "total" and j.data["note"] == NATIVE_NOTE, j
    assert not any("shop/" in c["function"] for c in j.data["cooler"])  # the framework frames fill the table
    j = surge_cli("profile", "diff", base, fixed, "--json")
    assert j.rc == 0 and j.data["view"] == "app", j
    assert (j.data["outside_app_pct_a"], j.data["outside_app_pct_b"]) == (30.0, 64.0)
    assert [(c["function"], c["self_pp"], c["total_pp"]) for c in j.data["cooler"][:2]] == [
        ("shingles (shop/app.py)", -25.0, -25.0), ("scores (shop/app.py)", -5.0, -30.0)]


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
