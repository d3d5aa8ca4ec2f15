"""Damaged run directories: report, explain, capacity, compare and runs import say in one
line which file is bad (exit 2), and never report a damaged run as fine; a last line of
series.jsonl cut short by a crash stays readable."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_no_traceback, surge_cli
from surge.analysis.generator import assess
from surge.analysis.summary import build_summary
from surge.api.errors import UsageError
from surge.metrics.aggregate import RunAggregate
from surge.metrics.stats import RequestStats, SecondStats
from surge.results.rundata import read_run_dir
from surge.results.rundir import CorruptRunFile, RunDirWriter, read_series, read_series_checked
from test_cli_errors import one_error_line

BINARY = bytes(range(128, 256)) * 3


def make_run(path: Path, seconds: int = 8, vus: int = 4) -> Path:
    """A small finished run directory written by the real writer (no load generated)."""
    rng = np.random.default_rng(0)
    w = RunDirWriter(path)
    w.start({"run_id": path.name, "started_at": "2026-11-23T10:00:00+00:00", "model": "constant-vus",
             "planned_duration_s": float(seconds), "workers": 1})
    agg = RunAggregate()
    for s in range(seconds):
        st = SecondStats(second=s, vus=vus, started=20, iterations=20, cpu=[10.0])
        rs = RequestStats(count=20, errors=Counter())
        lat = (rng.lognormal(np.log(10), 0.2, 20) * 1e6).astype(np.int64)
        for h in (rs.latency, rs.service, rs.ttfb):
            h.record_many(lat)
        st.requests[("s", "/a", "GET", "2xx")] = rs
        w.second(st, agg.add(st))
    w.finish(build_summary(agg, duration_s=float(seconds), generator=assess(agg.rows, False), status="completed"),
             agg, {"status": "completed", "duration_s": float(seconds)})
    return path


def usage_error_line(res, *names: str) -> str:
    """Exit 2, no traceback, exactly one error line, naming each of ``names``."""
    assert res.rc == 2, res
    return one_error_line(res.stderr, *names)


# --------------------------------------------------------------------------- series.jsonl


@pytest.mark.parametrize("bad", ["[1]", "1", "null", "{}", '"text"', '{"second": 1, "requests": 5}'])
def test_series_line_that_is_not_a_second_names_file_and_line(tmp_path, bad):
    d = make_run(tmp_path / "r")
    lines = (d / "series.jsonl").read_text().splitlines()
    lines.insert(2, bad)
    (d / "series.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(CorruptRunFile, match=r"series\.jsonl line 3"):
        read_series(d)
    with pytest.raises(UsageError, match=r"series\.jsonl line 3"):
        read_run_dir(d)


def test_series_of_json_scalars_on_every_command(tmp_path):
    d = make_run(tmp_path / "r")
    ok = make_run(tmp_path / "ok")
    (d / "series.jsonl").write_text("[1]\n[2]\n")
    for args in (("report", d, "-o", tmp_path / "o.html"), ("explain", d), ("capacity", d), ("compare", d, ok)):
        msg = usage_error_line(surge_cli(*args), "series.jsonl line 1")
        assert str(d) in msg
    assert not (tmp_path / "o.html").exists()
    imp = surge_cli("runs", "import", d, "--store", f"sqlite:///{tmp_path / 's.db'}")
    assert_no_traceback(imp.stderr)
    assert "series.jsonl line 1" in imp.stderr and "imported 0 run(s)" in imp.stderr


def test_binary_series_on_capacity_and_report(tmp_path):
    d = make_run(tmp_path / "r")
    (d / "series.jsonl").write_bytes(BINARY + b"\n" + BINARY)
    usage_error_line(surge_cli("capacity", d), "series.jsonl line 1", "not text")
    usage_error_line(surge_cli("explain", d), "series.jsonl")


def test_a_last_line_cut_short_is_still_skipped(tmp_path):
    d = make_run(tmp_path / "r")
    with open(d / "series.jsonl", "a") as f:
        f.write('{"second": 8, "requests": [{"scen')  # the crash cut the last second
    series, truncated = read_series_checked(d)
    assert len(series) == 8 and truncated
    run = read_run_dir(d)
    assert any("1 line(s) of series.jsonl" in n for n in run.notes)
    res = surge_cli("report", d, "-o", tmp_path / "o.html")
    assert res.rc == 0, res
    assert (tmp_path / "o.html").is_file()
    # zeros left by the file system after the last write count as cut short too
    (d / "series.jsonl").write_bytes((d / "series.jsonl").read_bytes().rsplit(b"\n", 1)[0] + b"\n\0\0\0\0")
    assert len(read_series(d)) == 8


def test_an_unterminated_binary_last_line_is_damage_not_a_crash(tmp_path):
    d = make_run(tmp_path / "r")
    with open(d / "series.jsonl", "ab") as f:
        f.write(BINARY)
    with pytest.raises(CorruptRunFile, match=r"series\.jsonl line 9 is not text"):
        read_series(d)


# --------------------------------------------------------------------------- other files


@pytest.mark.parametrize(("name", "content", "says"), [
    ("meta.json", b"", "meta.json is empty"),
    ("meta.json", BINARY, "meta.json is not text"),
    ("meta.json", b"[1,2,3]", "meta.json is not a JSON object"),
    ("meta.json", b'{"run_id": ', "meta.json is not valid JSON"),
    ("summary.json", b'{"a":\n', "summary.json is not valid JSON"),
    ("summary.json", b"null", "summary.json is not a JSON object"),
    ("profile.collapsed", BINARY + b"\n" + BINARY, "profile.collapsed is not text"),
    ("sut.jsonl", BINARY + b"\n", "sut.jsonl is not text"),
])
def test_damaged_file_fails_report_and_explain(tmp_path, name, content, says):
    d = make_run(tmp_path / "r")
    (d / name).write_bytes(content)
    out = tmp_path / "o.html"
    usage_error_line(surge_cli("report", d, "-o", out), says, str(d / name))
    assert not out.exists()
    usage_error_line(surge_cli("explain", d), says)


def test_only_meta_json_is_no_run(tmp_path):
    d = make_run(tmp_path / "r")
    for f in ("series.jsonl", "summary.json", "histograms.json"):
        (d / f).unlink()
    usage_error_line(surge_cli("report", d, "-o", tmp_path / "o.html"), str(d), "no measurements")
    usage_error_line(surge_cli("explain", d), "no measurements")


def test_damaged_meta_on_compare_and_capacity(tmp_path):
    d = make_run(tmp_path / "r")
    ok = make_run(tmp_path / "ok")
    (d / "meta.json").write_text("[1, 2, 3]")
    usage_error_line(surge_cli("compare", ok, d), "meta.json is not a JSON object")
    usage_error_line(surge_cli("capacity", d), "meta.json is not a JSON object")


def test_missing_optional_files_are_fine(tmp_path):
    d = make_run(tmp_path / "r")
    (d / "histograms.json").unlink()
    (d / "profile.collapsed").write_text("")  # py-spy saw nothing
    res = surge_cli("explain", d)
    assert res.rc == 0, res
    run = read_run_dir(d)
    assert run.summary is not None and len(run.series) == 8
    assert json.loads((d / "meta.json").read_text())["run_id"] == "r"
