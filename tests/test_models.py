"""Every workload model end to end through `surge run --json`, plus scenario features.

Runs are short (1-2 s) against tests/servers.py; per-second facts are read from
the run directory's series.jsonl.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import assert_no_traceback, surge_json
from surge.results.rundir import read_histograms, read_series

SIMPLE = """
async def visit(client):
    await client.get("/")
"""


def run_dir_of(s: dict) -> Path:
    assert s["run_dir"], "the run was not saved"
    return Path(s["run_dir"])


def rows_of(s: dict) -> list[dict]:
    with open(run_dir_of(s) / "series.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["row"] for line in f]


def ok_run(*args: str, **kw):
    rc, s, err = surge_json(*args, **kw)
    assert rc == 0, err
    assert_no_traceback(err)
    assert s["status"] == "completed"
    assert s["errors"] == 0, s["errors_by_type"]
    return s


# --------------------------------------------------------------------------- closed models


def test_constant_vus(test_server, scenario_file):
    path = scenario_file("""
        from surge import check

        async def visit(client, vu):
            check(True, f"vu {vu.id}")
            await client.get("/")
    """)
    s = ok_run("run", path, "--vus", "3", "-d", "1s", "-w", "1", "--base-url", test_server)
    assert s["model"] == "constant-vus"
    assert s["iterations"]["completed"] > 0
    assert s["requests"] == s["iterations"]["completed"]
    vus = {c["name"]: c["passes"] for c in s["checks"]}
    assert set(vus) == {"vu 1", "vu 2", "vu 3"}
    assert all(n > 0 for n in vus.values())
    assert s["duration_s"] < 4


@pytest.fixture(scope="module")
def two_second_run(test_server, tmp_path_factory):
    """A 2 s constant-vus run on 2 workers, saved to a run directory (shared by several tests)."""
    tmp = tmp_path_factory.mktemp("rundir")
    path = tmp / "simple.py"
    path.write_text(SIMPLE)
    res = surge_json("run", path, "--vus", "2", "-d", "2s", "-w", "2", "--base-url", test_server,
                     "--out", tmp / "runs")
    return path, tmp / "runs", res


def test_constant_vus_series_reports_vus_every_scheduled_second(two_second_run):
    _, _, (rc, s, err) = two_second_run
    assert rc == 0, err
    rows = rows_of(s)
    assert [r["vus"] for r in rows[:2]] == [2, 2]


def test_ramping_vus(test_server, scenario_file):
    # VU ids 1..4 exist only if the ramp reached 4 VUs
    path = scenario_file("""
        from surge import check

        async def visit(client, vu):
            check(True, f"vu {vu.id}")
            await client.get("/delay/10")
    """)
    s = ok_run("run", path, "--stages", "0.5s:4,0.5s:0", "-w", "1", "--base-url", test_server)
    assert s["model"] == "ramping-vus"
    assert s["iterations"]["completed"] > 0
    assert {c["name"] for c in s["checks"]} == {"vu 1", "vu 2", "vu 3", "vu 4"}
    assert s["duration_s"] < 1 + 3


def test_per_vu_iterations_exact(test_server, scenario_file):
    path = scenario_file(SIMPLE)
    for workers in ("1", "2"):
        s = ok_run("run", path, "--model", "per-vu-iterations", "--vus", "3", "--iterations", "4",
                   "-w", workers, "--base-url", test_server)
        assert s["model"] == "per-vu-iterations"
        assert s["iterations"]["completed"] == 12, workers
        assert s["requests"] == 12


def test_shared_iterations_exact(test_server, scenario_file):
    path = scenario_file(SIMPLE)
    for workers in ("1", "2"):
        s = ok_run("run", path, "--vus", "3", "--iterations", "10", "-w", workers, "--base-url", test_server)
        assert s["model"] == "shared-iterations"
        assert s["iterations"]["completed"] == 10, workers
        assert s["requests"] == 10


@pytest.mark.parametrize("model", ["per-vu-iterations", "shared-iterations"])
def test_iteration_models_with_fewer_vus_than_workers(test_server, scenario_file, model):
    path = scenario_file(SIMPLE)
    rc, s, err = surge_json("run", path, "--model", model, "--vus", "1", "--iterations", "4", "-w", "2",
                            "--max-duration", "1s", "--base-url", test_server, timeout=30)
    assert rc == 0, err
    assert s["iterations"]["completed"] == 4
    assert s["duration_s"] < 0.8, "the run waited for --max-duration instead of ending"


# --------------------------------------------------------------------------- open models


def test_constant_arrival_rate(test_server, scenario_file, tmp_path):
    path = scenario_file(SIMPLE)
    s = ok_run("run", path, "--rate", "50", "-d", "1s", "-w", "1", "--base-url", test_server,
               "--out", tmp_path / "runs")
    assert s["model"] == "constant-arrival-rate"
    assert s["open_model"] is True
    assert s["iterations"]["started"] == 50
    assert s["requests"] == pytest.approx(50, abs=1)
    assert s["iterations"]["dropped"] == 0
    rows = rows_of(s)
    assert rows[0]["target_rate"] == pytest.approx(50)


def test_ramping_arrival_rate(test_server, scenario_file, tmp_path):
    path = scenario_file(SIMPLE)
    s = ok_run("run", path, "--model", "ramping-arrival-rate", "--stages", "2s:200", "-w", "1",
               "--base-url", test_server, "--out", tmp_path / "runs")
    assert s["model"] == "ramping-arrival-rate"
    rows = rows_of(s)
    # rate 0 -> 200/s over 2 s: 50 arrivals in the first second, 150 in the second
    assert rows[0]["started"] == pytest.approx(50, abs=2)
    assert rows[1]["started"] == pytest.approx(150, abs=2)
    assert rows[0]["started"] < rows[1]["started"]
    assert s["iterations"]["started"] == pytest.approx(200, abs=2)
    assert rows[0]["target_rate"] < rows[1]["target_rate"]


def test_max_vus_exceeded_drops_iterations(test_server, scenario_file):
    path = scenario_file("""
        async def visit(client):
            await client.get("/delay/200")
    """)
    rc, s, err = surge_json("run", path, "--rate", "100", "-d", "1s", "--vus", "1", "--max-vus", "2",
                            "-w", "1", "--base-url", test_server, "--graceful-stop", "1s")
    assert rc == 0, err
    assert_no_traceback(err)
    it = s["iterations"]
    assert it["dropped"] > 50, it
    # 2 VUs, 200 ms per iteration: about 10 iterations in 1 s (+ the ones in flight at the end)
    assert s["requests"] <= 14
    assert it["started"] + it["dropped"] == pytest.approx(100, abs=1)


def test_max_vus_caps_default_preallocation(test_server, scenario_file):
    path = scenario_file("""
        from surge import check

        async def visit(client, vu):
            check(True, f"vu {vu.id}")
            await client.get("/delay/200")
    """)
    rc, s, err = surge_json("run", path, "--rate", "100", "-d", "0.5s", "--max-vus", "2", "-w", "1",
                            "--base-url", test_server, "--graceful-stop", "1s")
    assert rc == 0, err
    vus = {c["name"] for c in s["checks"]}
    assert len(vus) <= 2, sorted(vus)


# --------------------------------------------------------------------------- scenario features


def test_weights_split_iterations(test_server, scenario_file):
    path = scenario_file("""
        from surge import scenario

        @scenario(weight=3)
        async def heavy(client):
            await client.get("/", name="heavy")

        @scenario(weight=1)
        async def light(client):
            await client.get("/", name="light")
    """)
    s = ok_run("run", path, "--vus", "4", "--iterations", "800", "-w", "2", "--base-url", test_server)
    counts = {r["scenario"]: r["requests"] for r in s["names"]}
    assert counts["heavy"] + counts["light"] == 800
    assert 2.3 <= counts["heavy"] / counts["light"] <= 3.9, counts
    assert {r["scenario"]: r["name"] for r in s["names"]} == {"heavy": "heavy", "light": "light"}


def test_vu_state_persists_across_iterations(test_server, scenario_file):
    path = scenario_file("""
        from surge import check

        async def visit(client, vu):
            vu.state["n"] = vu.state.get("n", 0) + 1
            check(vu.state["n"] == vu.iteration + 1, "state persists")
            check(True, f"count {vu.state['n']}")
            await client.get("/")
    """)
    s = ok_run("run", path, "--model", "per-vu-iterations", "--vus", "3", "--iterations", "4", "-w", "2",
               "--base-url", test_server)
    checks = {c["name"]: (c["passes"], c["fails"]) for c in s["checks"]}
    assert checks == {
        "state persists": (12, 0),
        "count 1": (3, 0), "count 2": (3, 0), "count 3": (3, 0), "count 4": (3, 0),
    }


def test_vu_ids_are_unique_across_workers(test_server, scenario_file):
    path = scenario_file("""
        from surge import check

        async def visit(client, vu):
            check(True, f"vu {vu.id}")
            await client.get("/")
    """)
    s = ok_run("run", path, "--model", "per-vu-iterations", "--vus", "4", "--iterations", "2", "-w", "2",
               "--base-url", test_server)
    checks = {c["name"]: c["passes"] for c in s["checks"]}
    assert checks == {"vu 1": 2, "vu 2": 2, "vu 3": 2, "vu 4": 2}


def test_setup_data_reaches_vus_and_teardown_runs(test_server, scenario_file, tmp_path):
    marker = tmp_path / "teardown.json"
    path = scenario_file(f"""
        import json
        from surge import check

        async def setup():
            return {{"token": "t-123", "items": [1, 2, 3]}}

        async def visit(client, vu):
            check(vu.setup_data == {{"token": "t-123", "items": [1, 2, 3]}}, "setup data")
            await client.get("/", headers={{"Authorization": vu.setup_data["token"]}})

        def teardown(data):
            with open({str(marker)!r}, "w") as f:
                json.dump({{"data": data}}, f)
    """)
    s = ok_run("run", path, "--vus", "2", "--iterations", "6", "-w", "2", "--base-url", test_server)
    assert {c["name"]: (c["passes"], c["fails"]) for c in s["checks"]} == {"setup data": (6, 0)}
    assert json.loads(marker.read_text()) == {"data": {"token": "t-123", "items": [1, 2, 3]}}


def test_teardown_error_is_a_warning(test_server, scenario_file):
    path = scenario_file("""
        async def visit(client):
            await client.get("/")

        def teardown():
            raise OSError("disk full")
    """)
    s = ok_run("run", path, "--vus", "1", "--iterations", "2", "-w", "1", "--base-url", test_server)
    assert any("teardown()" in w and "disk full" in w for w in s["warnings"]), s["warnings"]


def test_options_from_scenario_file(test_server, scenario_file):
    path = scenario_file(f"""
        from surge import Options

        options = Options(base_url={test_server!r}, vus=2, iterations=5)

        async def visit(client):
            await client.get("/")
    """)
    s = ok_run("run", path, "-w", "1")
    assert s["model"] == "shared-iterations"
    assert s["iterations"]["completed"] == 5


# --------------------------------------------------------------------------- run directory


def test_run_directory(two_second_run):
    path, out, (rc, s, err) = two_second_run
    assert rc == 0, err
    assert_no_traceback(err)
    d = run_dir_of(s)
    assert d.parent == out
    for f in ("meta.json", "series.jsonl", "summary.json", "histograms.json"):
        assert (d / f).is_file(), f
    assert not list(d.glob("*.tmp"))

    meta = json.loads((d / "meta.json").read_text())
    assert meta["status"] == "completed"
    assert meta["run_id"] == d.name
    assert meta["model"] == "constant-vus"
    assert meta["scenario"]["path"] == str(path.resolve())
    assert meta["planned_duration_s"] == 2.0
    assert meta["duration_s"] == pytest.approx(s["duration_s"], abs=0.01)

    summary = json.loads((d / "summary.json").read_text())
    assert summary["requests"] == s["requests"]
    assert summary["p99"] == s["p99"]

    # one line per second of the run, seconds 0, 1, 2, ... in order
    lines = (d / "series.jsonl").read_text().splitlines()
    seconds = [json.loads(x)["second"] for x in lines]
    assert seconds == list(range(len(lines)))
    assert len(lines) - 1 <= s["duration_s"] < len(lines) + 0.5
    assert 2 <= len(lines) <= 3
    series = read_series(d)
    assert sum(st.totals().count for st in series) == s["requests"]

    assert all(r["cpu_max"] is not None for r in rows_of(s)[:2])  # self-metrics for each scheduled second

    hists = read_histograms(d)
    assert sum(v.count for v in hists.values()) == s["requests"]
    lat = next(iter(hists.values())).latency
    assert lat.count > 0 and lat.percentile(50) > 0


def test_no_save_writes_nothing(test_server, scenario_file, tmp_path):
    path = scenario_file(SIMPLE)
    rc, s, err = surge_json("run", path, "--vus", "1", "--iterations", "2", "-w", "1", "--base-url", test_server,
                            "--no-save", cwd=tmp_path)
    assert rc == 0, err
    assert s["run_dir"] is None
    assert not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------- Python API


def test_execute_api_feeds_outputs(test_server, scenario_file):
    from surge.api.options import Options
    from surge.engine.coordinator import RunSpec, execute

    path = scenario_file(SIMPLE)

    class Collect:
        def __init__(self) -> None:
            self.meta, self.rows = None, []

        def start(self, meta):
            self.meta = meta

        def second(self, st, row):
            self.rows.append(row)

        def finish(self, summary, agg, meta_update):  # pragma: no cover - the caller finishes
            pass

    out = Collect()
    spec = RunSpec(options=Options(vus=2, iterations=20, base_url=test_server), workers=1,
                   scenario_path=str(path))
    outcome = execute(spec, [out], meta={"label": "api"})
    assert outcome.status == "completed"
    assert out.meta["label"] == "api" and out.meta["start_ns"] > 0
    assert [r["t"] for r in out.rows] == list(range(len(out.rows)))
    assert outcome.agg.iterations == 20
    assert outcome.agg.totals().count == sum(r["requests"] for r in out.rows)
