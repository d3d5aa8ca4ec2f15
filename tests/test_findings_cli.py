"""`surge explain` on real runs: findings recomputed from the run directory and the store."""

from __future__ import annotations

import json

from conftest import assert_no_traceback, surge_cli


def test_explain_reports_the_failing_endpoint(test_server, scenario_file, tmp_path):
    path = scenario_file(f'''
from surge import scenario

@scenario(weight=1)
async def ok(client):
    await client.get("{test_server}/delay/2", name="/ok")

@scenario(weight=1)
async def broken(client):
    await client.get("{test_server}/status/503", name="/broken")
''')
    r = surge_cli("run", str(path), "--vus", "4", "-d", "3s", "--workers", "1", "--quiet",
                  "--out", str(tmp_path / "runs"))
    assert r.rc == 0, r.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    by_dir = surge_cli("explain", str(run_dir), "--json")
    assert by_dir.rc == 0, by_dir.stderr
    findings = json.loads(by_dir.stdout)["findings"]
    errs = [f for f in findings if f["kind"] == "errors"]
    assert errs and errs[0]["subject"] == "GET /broken"
    assert "http_5xx" in errs[0]["detail"] or any("http_5xx" in e for e in errs[0]["evidence"])
    by_id = surge_cli("explain", "latest")
    assert by_id.rc == 0, by_id.stderr
    assert "GET /broken" in by_id.stdout


def test_explain_unknown_run_is_one_line(tmp_path):
    r = surge_cli("explain", "no-such-run")
    assert r.rc == 2
    assert_no_traceback(r.stderr)
    assert "no-such-run" in r.stderr
