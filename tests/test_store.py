"""The run store (surge.results.store) against SQLite and, when it is installed, PostgreSQL.

PostgreSQL: a throwaway cluster is created in a temporary directory and started
on 127.0.0.1 with a free port (as the ``postgres`` user when the tests run as
root); every test gets a fresh database in it. Without the PostgreSQL server
binaries those tests are skipped, unless ``SURGE_REQUIRE_POSTGRES=1`` (CI), which
makes them fail instead. ``SURGE_TEST_POSTGRES_URL`` points the tests at an
existing server instead (a URL of a role that may CREATE DATABASE).
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, insert, inspect, select

from surge.analysis.generator import assess
from surge.analysis.summary import build_summary
from surge.api.errors import RunError, UsageError
from surge.metrics.aggregate import RunAggregate
from surge.metrics.histogram import Histogram
from surge.metrics.stats import RequestStats, SecondStats
from surge.results import store_schema as S
from surge.results.rundir import RunDirWriter, read_histograms, read_series
from surge.results.store import DEFAULT_URL, METRICS, Store, scenario_key, store_url

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- run directories


def make_run(
    root: Path,
    run_id: str,
    *,
    started: datetime = T0,
    branch: str | None = "main",
    scenario: str = "bench/checkout.py",
    latency_ms: float = 10.0,
    seconds: int = 3,
    names: tuple[str, ...] = ("/a", "/b"),
    status: str = "completed",
    host: str = "box",
    tags: dict[str, str] | None = None,
    thresholds: list[dict] | None = None,
    errors_per_second: int = 0,
    error_method: str = "GET",
    repo: Path | None = None,
) -> Path:
    """A real run directory (RunDirWriter, RunAggregate, build_summary) from made-up seconds."""
    rng = np.random.default_rng(zlib.crc32(f"{run_id}{latency_ms}".encode()))
    path = root / run_id
    repo = repo or root / "repo"  # the scenario's git checkout
    (repo / ".git").mkdir(parents=True, exist_ok=True)
    w = RunDirWriter(path)
    meta = {
        "run_id": run_id, "surge_version": "0.1.0", "started_at": started.isoformat(timespec="milliseconds"),
        "argv": ["surge", "run", scenario], "model": "constant-vus", "options": {"vus": 2},
        "scenario": {"path": str(repo / scenario), "sha256": "ab" * 32, "names": ["s"]}, "hit": None,
        "planned_duration_s": seconds, "workers": 1, "start_ns": zlib.crc32(run_id.encode()),
        "host": {"hostname": host, "platform": "linux", "python": "3.11", "cpus": 2},
        "git": {"commit": "c0ffee" + run_id[-4:], "branch": branch, "dirty": False} if branch else None,
        "thresholds": [],
    }
    if tags:
        meta["tags"] = tags
    w.start(meta)
    agg = RunAggregate()
    for s in range(seconds):
        st = SecondStats(second=s, iterations=20, started=20, vus=2, cpu=[12.5, 7.0], loop_lag_ms=[0.4, 0.2],
                         sched_lag_p99_ms=[0.0, 0.1], checks={"ok": [19, 1]})
        for i, name in enumerate(names):
            rs = RequestStats(count=10 + i, bytes_in=100 * (10 + i))
            vals = (rng.lognormal(np.log(latency_ms * 1e6 * (1 + i)), 0.3, rs.count)).astype(np.int64)
            rs.latency.record_many(vals)
            rs.service.record_many(vals - 1000)
            rs.ttfb.record_many(vals - 5000)
            st.requests[("s", name, "GET", "2xx")] = rs
        if errors_per_second:
            e = RequestStats(count=errors_per_second)
            e.errors["refused"] = errors_per_second
            e.latency.record_many([1_000_000] * errors_per_second)
            e.service.record_many([1_000_000] * errors_per_second)
            st.requests[("s", names[0], error_method, "err")] = e
        w.second(st, agg.add(st))
    summary = build_summary(agg, duration_s=float(seconds), generator=assess(agg.rows, False), status=status,
                            thresholds=thresholds)
    w.finish(summary, agg, {"status": status, "ended_at": (started + timedelta(seconds=seconds)).isoformat(),
                            "duration_s": float(seconds)})
    return path


def same_series(a: list[SecondStats], b: list[SecondStats]) -> bool:
    return [x.to_json() for x in a] == [x.to_json() for x in b]


# --------------------------------------------------------------------------- PostgreSQL


def _require_pg() -> bool:
    return os.environ.get("SURGE_REQUIRE_POSTGRES") == "1"


def _no_pg(reason: str):
    if _require_pg():
        pytest.fail(f"SURGE_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _pg_bindir() -> Path | None:
    cands = []
    found = shutil.which("pg_ctl")
    if found:
        cands.append(Path(found).resolve().parent)

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    cands += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for c in cands:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_admin_url():
    """URL of a PostgreSQL server role that may create databases (a throwaway cluster)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _no_pg("psycopg is not installed (pip install 'psycopg[binary]')")
    given = os.environ.get("SURGE_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    bindir = _pg_bindir()
    if bindir is None:
        _no_pg("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install -y postgresql")
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _no_pg("running as root and there is no 'postgres' user to run the server as")
        prefix = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="surge-pg-"))
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    data, log, port = base / "data", base / "log", _free_port()

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=timeout)

    started = False
    try:
        r = run(str(bindir / "initdb"), "-D", str(data), "-U", "surge", "--auth=trust", "--no-sync",
                "--no-locale", "-E", "UTF8")
        if r.returncode != 0:
            _no_pg(f"initdb failed: {(r.stderr or r.stdout).strip()[-500:]}")
        r = run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30",
                "-o", f"-h 127.0.0.1 -p {port} -k {base} -F", "start")
        if r.returncode != 0:
            tail = log.read_text()[-800:] if log.exists() else r.stderr
            _no_pg(f"the PostgreSQL server did not start: {tail.strip()}")
        started = True
        yield f"postgresql://surge@127.0.0.1:{port}/postgres"
    finally:
        if started:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


_db_counter = itertools.count(1)


@pytest.fixture
def pg_url(pg_admin_url):
    """A fresh, empty database on the test server; dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(pg_admin_url)
    name = f"surge_t{os.getpid()}_{next(_db_counter)}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    yield admin.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- store fixtures


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """A URL of an empty store: a SQLite file, and a PostgreSQL database."""
    if request.param == "sqlite":
        (tmp_path / "store").mkdir()
        return f"sqlite:///{tmp_path / 'store' / 'surge.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(url):
    s = Store.open(url)
    yield s
    s.close()


@pytest.fixture(scope="session")
def real_run_dir(tmp_path_factory, test_server):
    """A run directory made by `surge run` for 2 s against the test server."""
    from conftest import surge_cli

    out = tmp_path_factory.mktemp("real-runs")
    r = surge_cli("run", ROOT / "bench" / "scenario_hello.py", "--base-url", test_server, "-d", "2s",
                  "--vus", "2", "--workers", "1", "--out", out, "--no-store", "-q")
    assert r.rc == 0, r
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


# --------------------------------------------------------------------------- round trip


def test_real_run_round_trip(store, real_run_dir):
    meta = json.loads((real_run_dir / "meta.json").read_text())
    summary = json.loads((real_run_dir / "summary.json").read_text())
    run_id = store.record_run(real_run_dir, tags={"env": "ci", "team": "perf"})
    assert run_id == meta["run_id"]
    r = store.get_run(run_id)
    assert r.scenario == "bench/scenario_hello.py"  # relative to the git checkout
    assert r.status == meta["status"] and r.model == meta["model"]
    assert r.started_at == datetime.fromisoformat(meta["started_at"])
    assert r.duration_s == pytest.approx(meta["duration_s"])
    assert (r.requests, r.errors, r.rps) == (summary["requests"], summary["errors"], summary["rps"])
    assert (r.p50, r.p95, r.p99) == (summary["p50"], summary["p95"], summary["p99"])
    assert r.tags == {"env": "ci", "team": "perf"} and r.environment == "ci"
    if meta["git"]:
        assert (r.commit, r.dirty) == (meta["git"]["commit"], meta["git"]["dirty"])
    assert r.names == [n["name"] for n in summary["names"]]
    assert r.run_dir == str(real_run_dir.resolve())
    assert same_series(store.series(run_id), read_series(real_run_dir))
    assert {k: v.to_json() for k, v in store.histograms(run_id).items()} == \
        {k: v.to_json() for k, v in read_histograms(real_run_dir).items()}
    total, *names = store.name_stats(run_id)
    assert total.total and total.requests == summary["requests"] and total.latency == summary["latency"]
    for ns, sn in zip(names, summary["names"], strict=True):
        assert (ns.name, ns.method, ns.requests, ns.rps) == (sn["name"], sn["method"], sn["requests"], sn["rps"])
        assert ns.service == sn["service"]
    m, s = store.documents(run_id)
    assert m == meta and s == summary


def test_synthetic_round_trip_keeps_errors_checks_and_generator_figures(store, tmp_path):
    d = make_run(tmp_path, "20261101-120000-x", errors_per_second=3, seconds=4)
    store.record_run(d)
    got = store.series("20261101-120000-x")
    assert len(got) == 4 and same_series(got, read_series(d))
    assert got[0].checks == {"ok": [19, 1]} and got[0].cpu == [12.5, 7.0]
    assert got[0].requests[("s", "/a", "GET", "err")].errors == {"refused": 3}
    r = store.get_run("latest")
    assert r.errors == 12 and r.error_rate > 0


def test_recording_twice_is_idempotent_and_adds_tags(store, tmp_path):
    d = make_run(tmp_path, "20261101-120000-x")
    assert store.record_run(d) == "20261101-120000-x"
    assert store.record_run(d, tags={"env": "prod"}) == "20261101-120000-x"
    runs = store.list_runs()
    assert len(runs) == 1 and runs[0].tags == {"env": "prod"} and runs[0].environment == "prod"
    assert store.import_dir(tmp_path) == []  # nothing new


def test_changed_run_dir_is_updated_in_place_and_keeps_its_baseline(store, tmp_path):
    d = make_run(tmp_path, "20261101-120000-x", status="running")
    (d / "summary.json").unlink()  # as if imported while still running
    store.record_run(d, tags={"keep": "1"})
    assert store.get_run("20261101-120000-x").status == "incomplete"
    store.set_baseline("20261101-120000-x", "main")
    shutil.rmtree(d)
    d = make_run(tmp_path, "20261101-120000-x", seconds=5)
    store.record_run(d)
    r = store.get_run("20261101-120000-x")
    assert r.status == "completed" and r.duration_s == 5 and r.tags == {"keep": "1"}
    assert len(store.series(r.id)) == 5 and len(store.list_runs()) == 1
    assert store.get_baseline("main").id == r.id


def test_another_run_with_the_same_id_gets_a_suffix(store, tmp_path):
    a = make_run(tmp_path / "a", "20261101-120000-x", host="ci-1")
    b = make_run(tmp_path / "b", "20261101-120000-x", host="ci-2")
    assert store.record_run(a) == "20261101-120000-x"
    assert store.record_run(b) == "20261101-120000-x-2"
    assert store.record_run(b) == "20261101-120000-x-2"  # and that is idempotent too
    assert len(store.list_runs()) == 2


def test_run_dir_that_died_is_rebuilt_from_its_series(store, tmp_path):
    d = make_run(tmp_path, "20261101-120000-x", seconds=3)
    meta = json.loads((d / "meta.json").read_text())
    meta["status"] = "running"
    (d / "meta.json").write_text(json.dumps(meta))
    (d / "summary.json").unlink()
    (d / "histograms.json").unlink()
    with open(d / "series.jsonl", "a") as f:
        f.write('{"second": 3, "requests": [{"trunc')  # the last second, cut by the crash
    store.record_run(d)
    r = store.get_run("latest")
    assert r.status == "incomplete" and r.requests == 3 * (10 + 11) and r.p95 is not None
    assert len(store.series(r.id)) == 3


# --------------------------------------------------------------------------- listing and ids


@pytest.fixture
def five_runs(store, tmp_path):
    specs = [  # id, hours after T0, branch, scenario, p ms, tags
        ("20261101-120000-a", 0, "main", "bench/checkout.py", 10, {"env": "staging"}),
        ("20261101-130000-b", 1, "main", "bench/search.py", 20, {}),
        ("20261101-140000-c", 2, "feature", "bench/checkout.py", 30, {"env": "prod"}),
        ("20261101-150000-d", 3, "main", "bench/checkout.py", 40, {"env": "staging"}),
        ("20261101-160000-e", 4, None, "bench/checkout.py", 50, {}),
    ]
    for rid, h, br, sc, p, tags in specs:
        store.record_run(make_run(tmp_path, rid, started=T0 + timedelta(hours=h), branch=br, scenario=sc,
                                  latency_ms=p), tags=tags)
    return store


def ids(recs) -> list[str]:
    return [r.id[-1] for r in recs]


def test_list_filters(five_runs):
    s = five_runs
    assert ids(s.list_runs()) == ["e", "d", "c", "b", "a"]
    assert ids(s.list_runs(limit=2)) == ["e", "d"]
    assert ids(s.list_runs(branch="main")) == ["d", "b", "a"]
    assert ids(s.list_runs(scenario="bench/search.py")) == ["b"]
    assert ids(s.list_runs(scenario="checkout.py")) == ["e", "d", "c", "a"]
    assert ids(s.list_runs(scenario="check")) == ["e", "d", "c", "a"]
    assert ids(s.list_runs(tag=("env", "staging"))) == ["d", "a"]
    assert ids(s.list_runs(since=T0 + timedelta(hours=3))) == ["e", "d"]
    assert ids(s.list_runs(since=(T0 + timedelta(hours=3)).replace(tzinfo=None))) == ["e", "d"]  # naive = UTC
    assert ids(s.list_runs(branch="main", scenario="checkout.py", tag=("env", "staging"))) == ["d", "a"]
    assert s.list_runs(branch="nope") == []
    e = s.get_run("20261101-160000-e")
    assert e.branch is None and e.names == ["/a", "/b"] and e.p95 > s.get_run("20261101-120000-a").p95


def test_ids_prefixes_latest_ambiguous_unknown(five_runs):
    s = five_runs
    assert s.get_run("latest").id == "20261101-160000-e"
    assert s.get_run("20261101-13").id == "20261101-130000-b"
    assert s.get_run("20261101-130000-b").id == "20261101-130000-b"
    with pytest.raises(UsageError, match=r"ambiguous: it matches .*20261101-1[0-9]0000"):
        s.get_run("20261101")
    with pytest.raises(UsageError, match=r"no run 'zzz' in run store .*surge runs list"):
        s.get_run("zzz")
    with pytest.raises(UsageError, match="no run '2026110_'"):  # LIKE wildcards are escaped
        s.get_run("2026110_")
    with pytest.raises(UsageError, match="no run"):
        s.delete_run("nope")
    with pytest.raises(UsageError, match="no run"):
        s.series("nope")


def test_latest_on_an_empty_store(store):
    with pytest.raises(UsageError, match="no runs yet"):
        store.get_run("latest")
    assert store.list_runs() == [] and store.get_baseline("main") is None


def test_tags_and_labels(five_runs):
    s = five_runs
    s.tag_run("20261101-16", {"env": "prod", "branch": "release-1"})
    r = s.get_run("20261101-16")
    assert r.environment == "prod" and r.branch == "release-1" and r.tags == {"env": "prod", "branch": "release-1"}
    s.tag_run(r.id, {"note": "after fix"}, remove=["env", "branch", "missing"])
    r = s.get_run(r.id)
    assert r.tags == {"note": "after fix"} and r.environment is None and r.branch is None
    s.tag_run("20261101-15", {"branch": "other"})
    assert ids(s.list_runs(branch="main")) == ["b", "a"]
    s.tag_run("20261101-15", {}, remove=["branch"])
    assert ids(s.list_runs(branch="main")) == ["d", "b", "a"]  # git's branch is back
    with pytest.raises(UsageError, match="tag key"):
        s.tag_run(r.id, {"bad key": "x"})


def test_baselines(five_runs):
    s = five_runs
    assert s.get_baseline("main") is None
    s.set_baseline("20261101-12", "main")
    s.set_baseline("20261101-13", "main")  # another scenario: both are kept
    assert s.get_baseline("main", scenario="checkout.py").id == "20261101-120000-a"
    assert s.get_baseline("main", scenario="bench/search.py").id == "20261101-130000-b"
    assert s.get_baseline("main").id == "20261101-130000-b"  # the latest set
    s.set_baseline("20261101-15", "main")  # replaces a, same scenario
    assert s.get_baseline("main", scenario="bench/checkout.py").id == "20261101-150000-d"
    assert [(b, sc, r.id[-1]) for b, sc, r in s.baselines()] == [
        ("main", "bench/checkout.py", "d"), ("main", "bench/search.py", "b")]
    with pytest.raises(UsageError):
        s.set_baseline("20261101-12", " ")


def test_delete(five_runs):
    s = five_runs
    s.set_baseline("20261101-15", "main")
    s.delete_run("20261101-15")
    assert ids(s.list_runs()) == ["e", "c", "b", "a"]
    assert s.get_baseline("main") is None
    with pytest.raises(UsageError):
        s.series("20261101-150000-d")
    s.delete_run("latest")
    assert ids(s.list_runs()) == ["c", "b", "a"]


def test_last_runs(five_runs, tmp_path):
    s = five_runs
    s.record_run(make_run(tmp_path, "20261101-170000-f", started=T0 + timedelta(hours=5), status="failed"))
    assert ids(s.last_runs(branch="main", scenario="bench/checkout.py", n=5)) == ["d", "a"]  # failed f left out
    assert ids(s.last_runs(branch="main", scenario=None, n=5, statuses=None)) == ["f", "d", "b", "a"]
    assert ids(s.last_runs(branch="main", scenario=None, n=2, before="20261101-15")) == ["b", "a"]
    assert ids(s.last_runs(branch="main", scenario="checkout.py", n=5, before="20261101-12")) == []


def test_metric_history(five_runs, tmp_path):
    s = five_runs
    # recorded out of time order: history is in time order all the same
    s.record_run(make_run(tmp_path, "20261031-090000-z", started=T0 - timedelta(days=1), latency_ms=5))
    hist = s.metric_history(name=None, metric="p95", branch="main", since=None, scenario="checkout.py")
    assert ids(r for r, _ in hist) == ["z", "a", "d"]
    vals = [v for _, v in hist]
    assert vals == sorted(vals) and vals[1] == s.get_run("20261101-12").p95
    by_name = s.metric_history(name="/b", metric="service.p99", branch=None, since=None, scenario=None)
    assert ids(r for r, _ in by_name) == ["z", "a", "b", "c", "d", "e"]
    assert s.metric_history(name="GET /a", metric="rps", branch="main", since=T0, scenario=None)[0][1] == 10.0
    assert s.metric_history(name="/nope", metric="p95", branch=None, since=None, scenario=None) == []
    with pytest.raises(UsageError, match="unknown metric 'p42'"):
        s.metric_history(name=None, metric="p42", branch=None, since=None, scenario=None)
    assert {"p95", "p99.9", "service.p50", "error_rate", "rps"} <= set(METRICS)


def test_metric_history_merges_a_name_with_several_methods(store, tmp_path):
    d = make_run(tmp_path, "20261101-120000-x", names=("/a",), errors_per_second=2, error_method="POST")
    store.record_run(d)
    assert [(n["method"], n["name"]) for n in json.loads((d / "summary.json").read_text())["names"]] == [
        ("GET", "/a"), ("POST", "/a")]
    merged = RequestStats()
    for k, v in read_histograms(d).items():
        if k[1] == "/a":
            merged.merge(v)
    ((_, p99),) = store.metric_history(name="/a", metric="p99", branch=None, since=None, scenario=None)
    assert p99 == round(merged.latency.percentile(99) / 1e6, 3)
    ((_, n),) = store.metric_history(name="/a", metric="requests", branch=None, since=None, scenario=None)
    assert n == merged.count == 3 * 12
    ((_, n),) = store.metric_history(name="POST /a", metric="requests", branch=None, since=None, scenario=None)
    assert n == 6


# --------------------------------------------------------------------------- import


def test_import_dir_of_dirs_skips_bad_ones_with_reasons(store, tmp_path):
    root = tmp_path / "runs"
    for i in range(3):
        make_run(root, f"20261101-12000{i}-ok", started=T0 + timedelta(minutes=i), repo=tmp_path / "repo")
    bad = root / "20261101-130000-corrupt"
    bad.mkdir()
    (bad / "meta.json").write_text("{not json")
    (root / "empty").mkdir()
    (root / "20261101-140000-nosummary").mkdir()
    (root / "20261101-140000-nosummary" / "meta.json").write_text(json.dumps(
        {"run_id": "x", "started_at": T0.isoformat(), "status": "running"}))
    (root / "notes.txt").write_text("not a run")
    skipped: list[tuple[str, str]] = []
    got = store.import_dir(root, tags={"imported": "yes"}, on_skip=lambda p, why: skipped.append((p.name, why)))
    assert sorted(got) == [f"20261101-12000{i}-ok" for i in range(3)]
    reasons = dict(skipped)
    assert reasons.keys() == {"20261101-130000-corrupt", "empty", "20261101-140000-nosummary"}
    assert "meta.json is not valid JSON" in reasons["20261101-130000-corrupt"]
    assert "no meta.json" in reasons["empty"]
    assert "nothing to record" in reasons["20261101-140000-nosummary"]
    assert all(r.tags == {"imported": "yes"} for r in store.list_runs())
    again: list[str] = []
    assert store.import_dir(root, on_skip=lambda p, why: again.append(why)) == []
    assert sum("already in the store" in w for w in again) == 3
    # a single run directory works too; record_run says what is wrong with a bad one
    assert store.import_dir(root / "20261101-120000-ok") == []
    with pytest.raises(UsageError, match="corrupt cannot be recorded: meta.json is not valid JSON"):
        store.record_run(bad)
    with pytest.raises(UsageError, match="is not a directory"):
        store.import_dir(root / "notes.txt")
    with pytest.raises(UsageError, match="holds no run directories"):
        store.import_dir(root / "empty")


# --------------------------------------------------------------------------- schema


def _v1_store(url: str) -> None:
    """A store as surge with schema version 1 left it, holding one run."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        S.schema_version.create(conn)
        S.MIGRATIONS[0][2](conn)
        conn.execute(insert(S.schema_version).values(version=1, description="v1", applied_at=S.utcnow()))
        conn.execute(insert(S.runs).values(
            run_id="20261001-000000-old", fingerprint="f" * 64, content_hash="c" * 64, scenario="old.py",
            status="completed", started_at=datetime(2026, 10, 1), recorded_at=datetime(2026, 10, 1),
            branch="main"))
    engine.dispose()


def test_old_schema_is_migrated(url, tmp_path):
    _v1_store(url)
    with Store.open(url) as s:
        assert s.schema_version() == S.LATEST_VERSION == 2
        r = s.get_run("20261001")
        assert r.scenario == "old.py" and r.requests == 0 and r.p95 is None
        assert s.documents(r.id) == ({}, None)
        s.record_run(make_run(tmp_path, "20261101-120000-new"))
        assert ids(s.list_runs(branch="main")) == ["w", "d"]


def test_migrations_build_the_declared_schema(store, url):
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    insp = inspect(engine)
    for t in S.metadata.sorted_tables:
        cols = {c["name"] for c in insp.get_columns(t.name)}
        assert cols == {c.name for c in t.columns}, t.name
        declared = {ix.name for ix in t.indexes}
        assert declared <= {ix["name"] for ix in insp.get_indexes(t.name)}, t.name
    with engine.connect() as conn:
        versions = conn.execute(select(S.schema_version.c.version).order_by(S.schema_version.c.version)).scalars()
        assert list(versions) == [v for v, _, _ in S.MIGRATIONS]
    engine.dispose()
    Store.open(url).close()  # opening again changes nothing


def test_newer_schema_is_refused(url):
    Store.open(url).close()
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(insert(S.schema_version).values(version=99, description="future", applied_at=S.utcnow()))
    engine.dispose()
    with pytest.raises(RunError, match=r"schema version 99, newer than this surge understands \(2\); upgrade surge"):
        Store.open(url)


def test_a_database_that_is_not_a_store_is_refused(tmp_path):
    import sqlite3

    db = tmp_path / "other.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(RunError, match=r"is a database but not a surge run store \(it has tables users"):
        Store.open(f"sqlite:///{db}")


def test_histogram_blobs_round_trip_and_are_compact():
    rng = np.random.default_rng(1)
    h = Histogram()
    h.record_many(rng.lognormal(np.log(20e6), 0.5, 5000).astype(np.int64))
    big = Histogram()
    big.counts[7] = 2**40  # needs 8-byte counts
    big.count, big.sum_ns, big.min_ns, big.max_ns = 2**40, 7 * 2**40, 7, 7
    for hs in ([h, Histogram(), big], [Histogram()], []):
        assert [x.encode() for x in S.unpack_hists(S.pack_hists(hs))] == [x.encode() for x in hs]
    assert len(S.pack_hists([h])) < len(h.encode()) / 2
    with pytest.raises(ValueError, match="corrupt histogram blob"):
        S.unpack_hists(b"\x01garbage")


# --------------------------------------------------------------------------- bad stores


def test_corrupt_sqlite_file_is_a_clear_run_error(tmp_path):
    db = tmp_path / "surge.db"
    db.write_bytes(b"this is not a database, just some bytes" * 200)
    with pytest.raises(RunError) as ei:
        Store.open(f"sqlite:///{db}")
    msg = str(ei.value)
    assert str(db) in msg and "is corrupt" in msg and "move the file aside" in msg and "\n" not in msg
    assert db.read_bytes().startswith(b"this is not")  # left as it was


def test_store_corrupted_inside_is_a_clear_run_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'surge.db'}"
    with Store.open(url) as s:
        for i in range(3):
            s.record_run(make_run(tmp_path, f"20261101-12000{i}-x", seconds=20))
    raw = bytearray((tmp_path / "surge.db").read_bytes())
    raw[4096:] = np.random.default_rng(0).integers(0, 256, len(raw) - 4096, dtype=np.uint8).tobytes()
    (tmp_path / "surge.db").write_bytes(bytes(raw))  # the header survives, the pages do not
    with pytest.raises(RunError, match=r"surge.db is corrupt \(database disk image is malformed\)"):
        with Store.open(url) as s:
            s.series(s.get_run("latest").id)


def test_a_writer_that_waits_too_long_gives_up_cleanly(tmp_path, monkeypatch):
    import sqlite3

    import surge.results.store as store_mod

    db = tmp_path / "surge.db"
    Store.open(f"sqlite:///{db}").close()
    monkeypatch.setattr(store_mod, "SQLITE_BUSY_TIMEOUT_S", 0.3)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with Store.open(f"sqlite:///{db}") as s:
            with pytest.raises(RunError, match=r"is locked by another process \(waited 0 s\).*nothing was written"):
                s.record_run(make_run(tmp_path, "20261101-120000-x"))
            assert s.list_runs() == []  # readers are not blocked (WAL)
    finally:
        other.execute("ROLLBACK")
        other.close()
    with Store.open(f"sqlite:///{db}") as s:
        assert s.record_run(tmp_path / "20261101-120000-x") == "20261101-120000-x"


def test_unreachable_postgresql_is_a_fast_clear_run_error():
    pytest.importorskip("psycopg")
    port = _free_port()
    t0 = time.monotonic()
    with pytest.raises(RunError) as ei:
        Store.open(f"postgresql://surge:secret@127.0.0.1:{port}/surge")
    msg = str(ei.value)
    assert time.monotonic() - t0 < 10
    assert msg.startswith(f"cannot reach run store postgresql://surge:***@127.0.0.1:{port}/surge")
    assert "secret" not in msg and "check the server is up" in msg and "\n" not in msg


@pytest.mark.parametrize("bad, match", [
    ("mysql://u@h/db", "unsupported database 'mysql'"),
    ("sqlite://:nope", "not a database URL"),
])
def test_bad_urls_are_usage_errors(bad, match):
    with pytest.raises(UsageError, match=match):
        Store.open(bad)


def test_sqlite_path_that_is_a_directory(tmp_path):
    with pytest.raises(RunError, match="is a directory"):
        Store.open(f"sqlite:///{tmp_path}")


def test_store_url_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SURGE_STORE", raising=False)
    assert store_url(None) == DEFAULT_URL and (tmp_path / ".surge").is_dir()
    monkeypatch.setenv("SURGE_STORE", "postgresql://u:pw@db.example/perf")
    assert store_url(None) == "postgresql://u:pw@db.example/perf"
    assert store_url("sqlite:///x/y.db") == "sqlite:///x/y.db" and (tmp_path / "x").is_dir()
    assert store_url("plain/path.db") == "sqlite:///plain/path.db"
    monkeypatch.setenv("SURGE_STORE", "oracle://x")
    with pytest.raises(UsageError, match=r"\$SURGE_STORE .*unsupported database"):
        store_url(None)
    with Store.open(store_url("rel/surge.db")) as s:
        assert s.list_runs() == []
    assert (tmp_path / "rel" / "surge.db").exists()


def test_scenario_key(tmp_path):
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    assert scenario_key(str(tmp_path / "repo" / "bench" / "a.py")) == "bench/a.py"
    assert scenario_key("/nowhere/else/b.py") == "b.py"
    assert scenario_key(None, {"method": "GET", "url": "http://127.0.0.1:1/"}) == "hit GET http://127.0.0.1:1/"


# --------------------------------------------------------------------------- concurrency


def _writer(url: str, dirs: list[str], shared: str, go) -> None:
    go.wait(30)  # both processes open the store at the same moment
    store = Store.open(url)  # the first open races with the other process's migration
    try:
        for d in dirs:
            store.record_run(Path(d))
            store.record_run(Path(shared))  # both write the same run too: stored once
    finally:
        store.close()


def test_two_processes_write_to_one_store_at_once(url, tmp_path):
    groups = [[str(make_run(tmp_path / f"p{p}", f"20261101-12{p}{i:03d}-w", seconds=10,
                             started=T0 + timedelta(minutes=10 * p + i))) for i in range(5)] for p in range(2)]
    shared = str(make_run(tmp_path / "shared", "20261101-130000-shared", seconds=10))
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(url, g, shared, go)) for g in groups]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with Store.open(url) as s:
        runs = s.list_runs(limit=100)
        assert len(runs) == 11
        for d in [*groups[0], *groups[1], shared]:
            assert same_series(s.series(Path(d).name), read_series(Path(d)))


def test_a_run_with_zero_requests_is_recorded(store, tmp_path):
    # every iteration raised before sending: no request keys, no per-name stats
    path = make_run(tmp_path, "20261123-000000-empty", names=())
    rid = store.record_run(path)
    assert store.get_run(rid).id == rid
    stats = store.name_stats(rid)
    assert [(n.total, n.requests) for n in stats] == [(True, 0)]  # only the run's total row
    assert len(store.series(rid)) == 3


def test_a_store_on_read_only_media_is_read_and_refuses_writes_in_one_line(tmp_path, monkeypatch):
    """SQLite cannot create the WAL's side files on read-only media (a mounted CI artifact):
    such a store is opened immutable, so listing and comparing work and a write is a RunError."""
    import surge.results.store as store_mod

    db = tmp_path / "s.db"
    s = Store.open(str(db))
    s.record_run(make_run(tmp_path, "20261101-120000-x"))
    s.close()
    # Root ignores permission bits, so the read-only check itself is stood in for here.
    monkeypatch.setattr(store_mod, "_read_only", lambda path: True)
    ro = Store.open(str(db))
    try:
        assert [r.id for r in ro.list_runs()] == ["20261101-120000-x"]
        assert len(ro.series("20261101-120000-x")) == 3
        with pytest.raises(RunError, match="readonly|read-only|cannot write"):
            ro.record_run(make_run(tmp_path, "20261101-130000-y"))
    finally:
        ro.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_read_only_check_sees_permissions(tmp_path):
    from surge.results.store import _read_only

    db = tmp_path / "s.db"
    db.write_bytes(b"")
    assert not _read_only(db)
    db.chmod(0o444)
    assert _read_only(db)
