"""Bad input to the commands that read runs: a store URL with two slashes, an output file
that cannot be written, a run id of ',', a capacity CSV with values out of range or
negative. Each ends in one line naming the input, exit 2, no traceback."""

from __future__ import annotations

import os

import pytest

from conftest import surge_cli
from surge.api.errors import UsageError
from surge.results.store import Store, store_url
from test_bad_runs_dirs import make_run, usage_error_line


@pytest.fixture
def two_runs(tmp_path):
    """A store URL and the ids of two recorded runs."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store.open(url) as store:
        ids = [store.record_run(make_run(tmp_path / f"20261123-10000{i}-s")) for i in range(2)]
    return url, ids


# --------------------------------------------------------------------------- D1 store URL


@pytest.mark.parametrize("url", ["sqlite://relative", "sqlite://user@/x.db", "sqlite://host:5/x.db"])
def test_sqlite_url_with_a_host_is_a_usage_error(url):
    with pytest.raises(UsageError, match="three slashes"):
        store_url(url)
    with pytest.raises(UsageError, match="three slashes"):
        Store.open(url)


def test_sqlite_url_with_two_slashes_on_the_cli(tmp_path):
    msg = usage_error_line(surge_cli("runs", "list", "--store", "sqlite://relative", cwd=tmp_path),
                     "sqlite://relative", "sqlite:///")
    assert "--store" in msg
    usage_error_line(surge_cli("dashboard", "--store", "sqlite://relative", cwd=tmp_path), "sqlite://relative")
    old = os.environ.get("SURGE_STORE")
    os.environ["SURGE_STORE"] = "sqlite://relative"
    try:
        msg = usage_error_line(surge_cli("runs", "list", cwd=tmp_path), "sqlite://relative")
        assert "$SURGE_STORE" in msg
    finally:
        if old is None:
            os.environ.pop("SURGE_STORE", None)
        else:
            os.environ["SURGE_STORE"] = old
    assert not (tmp_path / "relative").exists()


def test_in_memory_sqlite_url_is_still_accepted():
    with Store.open("sqlite://") as store:
        assert store.list_runs() == []


# --------------------------------------------------------------------------- D2 outputs


def test_compare_markdown_that_cannot_be_written(two_runs, tmp_path):
    url, (a, b) = two_runs
    bad = tmp_path / "no" / "such" / "dir" / "x.md"
    res = surge_cli("compare", a, b, "--store", url, "--markdown", bad)
    usage_error_line(res, f"cannot write --markdown {bad}", "No such file or directory")
    assert res.stdout.strip() == ""  # checked before any work


@pytest.mark.parametrize("flag", ["--junit", "--markdown"])
def test_gate_outputs_that_cannot_be_written(two_runs, tmp_path, flag):
    url, (a, b) = two_runs
    afile = tmp_path / "afile"
    afile.write_text("x")
    bad = afile / "x.out"  # under a regular file: not a directory
    res = surge_cli("gate", b, "--baseline", a, "--store", url, flag, bad)
    usage_error_line(res, f"cannot write {flag} {bad}")
    assert res.stdout.strip() == ""


def test_gate_outputs_that_can_be_written(two_runs, tmp_path):
    url, (a, b) = two_runs
    md, xml = tmp_path / "g.md", tmp_path / "g.xml"
    res = surge_cli("gate", b, "--baseline", a, "--store", url, "--markdown", md, "--junit", xml,
                    "--delta", "50%")
    assert res.rc in (0, 4), res
    assert md.read_text() and xml.read_text().startswith("<?xml")


# --------------------------------------------------------------------------- D3 run ids


@pytest.mark.parametrize("args", [
    ("compare", ",", "{b}"),
    ("compare", "{a}", " , "),
    ("gate", ",", "--baseline", "{a}"),
    ("gate", "{b}", "--baseline", ","),
    ("capacity", ","),
    ("compare", "group:", "{b}"),
])
def test_run_spec_naming_no_run(two_runs, args):
    url, (a, b) = two_runs
    res = surge_cli(*[x.format(a=a, b=b) for x in args], "--store", url)
    msg = usage_error_line(res)
    assert "names no" in msg


# --------------------------------------------------------------------------- D6, F5 capacity CSV


@pytest.mark.parametrize(("rows", "says"), [
    ("1,1e308\n2,1e308\n4,1e308\n", "line 2: throughput 1e308 is out of range"),
    ("1,10\n2,-20\n4,-40\n8,5\n", "line 3: throughput -20 cannot be negative"),
    ("-1,10\n-2,20\n-4,40\n", "line 2: load -1 must be > 0"),
    ("1,10\n2,20\n1e300,40\n", "line 4: load 1e300 is out of range"),
])
def test_capacity_csv_values_name_file_line_and_value(tmp_path, rows, says):
    f = tmp_path / "points.csv"
    f.write_text("load,throughput\n" + rows)
    usage_error_line(surge_cli("capacity", f), str(f), says)


def test_capacity_fit_rejects_values_out_of_range():
    from surge.analysis.capacity.usl import fit_usl

    with pytest.raises(UsageError, match="at most"):
        fit_usl([1, 2, 4], [1e308, 1e308, 1e308])


def test_gate_reads_the_thresholds_of_a_run_directory_given_by_path(test_server, tmp_path):
    """`surge gate runs/X` from another directory: the run's failed threshold still fails the gate."""
    runs = tmp_path / "runs"
    for extra in (["-t", "p99<0.001ms"], []):
        surge_cli("hit", test_server + "/", "-n", "30", "-c", "2", "-w", "1", "--out", str(runs), "--no-store",
                  "--quiet", *extra, timeout=60)
    failed, passed = sorted(runs.iterdir(), key=lambda p: p.stat().st_mtime)
    res = surge_cli("gate", str(failed), "--baseline", str(passed), cwd=tmp_path.parent, timeout=60)
    assert res.rc == 3, (res.stdout, res.stderr)
    assert "p99<0.001ms" in res.stdout
