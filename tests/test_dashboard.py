"""surge dashboard: pages over the run store, the live feed, the server, the CLI.

Pages are exercised in-process with Starlette's TestClient against a SQLite store
filled with run directories built from made-up seconds (``stored_run``); the live
stream and the commands run a real uvicorn on 127.0.0.1 with a free port.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import threading
import urllib.request
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from conftest import SURGE, assert_no_traceback
from surge.analysis.generator import assess
from surge.analysis.summary import build_summary
from surge.metrics.aggregate import RunAggregate
from surge.metrics.stats import RequestStats, SecondStats
from surge.results.rundir import RunDirWriter
from surge.results.store import Store
from surge.web.app import create_app
from surge.web.live import CLOSED, LiveFeed, LiveHub
from surge.web.server import DashboardServer, bind, url_of

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
SCENARIO = """
    from surge import scenario

    @scenario
    async def get(client):
        await client.get("/")
"""
LOOPBACK = "http://127.0.0.1"


# --------------------------------------------------------------------------- stored runs


def stored_run(store: Store, root: Path, run_id: str, *, started: datetime = T0, latency_ms: float = 10.0,
               names: tuple[str, ...] = ("/a", "/b"), scenario: str = "bench/checkout.py",
               branch: str | None = "main", tags: dict[str, str] | None = None, seconds: int = 3,
               requests_per_second: int = 10, error_kind: str | None = None, check: str = "ok",
               iteration_error: str | None = None, warning: str | None = None, finished: bool = True) -> str:
    """Record in ``store`` a run directory made with the real writers from made-up seconds.

    ``finished=False`` leaves the run as a crash leaves it (no summary, last line cut)."""
    rng = np.random.default_rng(zlib.crc32(run_id.encode()))
    path = root / run_id
    repo = root / "repo"
    (repo / ".git").mkdir(parents=True, exist_ok=True)
    w = RunDirWriter(path)
    meta = {
        "run_id": run_id, "surge_version": "0.1.0", "started_at": started.isoformat(timespec="milliseconds"),
        "argv": ["surge", "run", scenario], "model": "constant-vus", "options": {"vus": 2},
        "scenario": {"path": str(repo / scenario), "sha256": "ab" * 32, "names": ["s"]}, "hit": None,
        "planned_duration_s": seconds, "workers": 1, "start_ns": 1,
        "host": {"hostname": "box", "platform": "linux", "python": "3.11", "cpus": 2},
        "git": {"commit": "c0ffee" + run_id[-4:], "branch": branch, "dirty": False} if branch else None,
        "thresholds": [],
    }
    w.start(meta)
    agg = RunAggregate()
    for s in range(seconds):
        st = SecondStats(second=s, iterations=requests_per_second, started=requests_per_second, vus=2,
                         cpu=[10.0], loop_lag_ms=[0.2], sched_lag_p99_ms=[0.1], checks={check: [9, 1]})
        if iteration_error:
            st.iteration_errors[iteration_error] += 1
        for i, name in enumerate(names):
            rs = RequestStats(count=requests_per_second, bytes_in=100 * requests_per_second)
            vals = rng.lognormal(np.log(latency_ms * 1e6 * (1 + i)), 0.2, rs.count).astype(np.int64)
            rs.latency.record_many(vals)
            rs.service.record_many(vals - 1000)
            rs.ttfb.record_many(vals - 5000)
            st.requests[("s", name, "GET", "2xx")] = rs
            if error_kind:
                e = RequestStats(count=2)
                e.errors[error_kind] = 2
                e.latency.record_many([1_000_000] * 2)
                e.service.record_many([1_000_000] * 2)
                st.requests[("s", name, "GET", "err")] = e
        w.second(st, agg.add(st))
    if finished:
        summary = build_summary(agg, duration_s=float(seconds), generator=assess(agg.rows, False),
                                status="completed", warnings=[warning] if warning else [],
                                iteration_tracebacks={iteration_error: f"Traceback: {iteration_error}"}
                                if iteration_error else None)
        w.finish(summary, agg, {"status": "completed", "ended_at": (started + timedelta(seconds=seconds)).isoformat(),
                                "duration_s": float(seconds)})
    else:
        w.finish({}, agg, {})  # closes the files; then undo what a crash never wrote
        for f in ("summary.json", "histograms.json"):
            (path / f).unlink(missing_ok=True)
        m = json.loads((path / "meta.json").read_text())
        m["status"] = "running"
        (path / "meta.json").write_text(json.dumps(m))
        with open(path / "series.jsonl", "a") as f:
            f.write('{"second": 99, "requests": [{"trunc')
    return store.record_run(path, tags=tags)


@pytest.fixture
def store(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'dash.db'}")
    yield s
    s.close()


@pytest.fixture
def history(store, tmp_path):
    """Twelve runs of one scenario on main, p95 tripled from the seventh on (run 20261101-160000-shop);
    two other runs beside them."""
    ids = []
    for i in range(12):
        ids.append(stored_run(store, tmp_path, f"20261101-{10 + i}0000-shop", started=T0 + timedelta(hours=i),
                              latency_ms=10.0 if i < 6 else 30.0, tags={"env": "staging" if i % 2 else "prod"}))
    ids.append(stored_run(store, tmp_path, "20261102-090000-search", started=T0 + timedelta(days=1),
                          scenario="bench/search.py", branch="feature", names=("/search",)))
    ids.append(stored_run(store, tmp_path, "20261105-090000-shop", started=T0 + timedelta(days=4),
                          branch="feature"))
    return ids


@pytest.fixture
def client(store):
    return TestClient(create_app(store), base_url=LOOPBACK)


def run_ids_in(html: str) -> list[str]:
    return re.findall(r'href="/runs/([^"]+)"', html)


# --------------------------------------------------------------------------- pages


def test_runs_list_shows_runs_newest_first_and_filters_them(client, history):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    listed = run_ids_in(r.text)
    assert listed[0] == "20261105-090000-shop" and len(listed) == 14
    assert run_ids_in(client.get("/?scenario=search").text) == ["20261102-090000-search"]
    assert set(run_ids_in(client.get("/?branch=feature").text)) == {"20261102-090000-search",
                                                                     "20261105-090000-shop"}
    staging = run_ids_in(client.get("/?tag=env%3Dstaging").text)
    assert len(staging) == 6 and all(int(i[9:11]) % 2 for i in staging)
    ranged = run_ids_in(client.get("/?since=2026-11-02&until=2026-11-02").text)
    assert ranged == ["20261102-090000-search"]  # a bare 'to' date includes that whole day
    assert len(run_ids_in(client.get("/?limit=3").text)) == 3
    assert "No runs match" in client.get("/?branch=nope").text


def test_api_runs_is_the_list_as_json(client, history):
    r = client.get("/api/runs?branch=feature")
    assert r.status_code == 200
    data = r.json()
    assert [d["id"] for d in data] == ["20261105-090000-shop", "20261102-090000-search"]
    assert data[0]["started_at"].startswith("2026-11-05T12:00:00") and data[0]["p95"] > 0
    assert client.get("/api/runs?since=yesterday").status_code == 400


def test_run_detail_has_the_report_sections_and_charts(client, history):
    r = client.get("/runs/20261101-100000-shop")
    assert r.status_code == 200
    for section in ('id="verdict"', 'id="key-numbers"', 'id="timeseries"', 'id="requests"'):
        assert section in r.text
    assert r.text.count('class="surge-chart') >= 2
    assert '<script src="/assets/plotly.min.js">' in r.text
    # a unique prefix and 'latest' resolve like the CLI's run ids
    assert 'data-run-id="20261102-090000-search"' in client.get("/runs/20261102").text
    assert 'data-run-id="20261105-090000-shop"' in client.get("/runs/latest").text


def test_unknown_and_ambiguous_run_ids_are_404_pages(client, history):
    r = client.get("/runs/nope")
    assert r.status_code == 404 and "no run" in r.text and "Traceback" not in r.text
    r = client.get("/runs/2026")
    assert r.status_code == 404 and "ambiguous" in r.text


def test_compare_two_runs(client, history):
    form = client.get("/compare")
    assert form.status_code == 200 and form.text.count("<option") >= 14
    r = client.get("/compare?a=20261101-100000-shop&b=20261101-210000-shop")
    assert r.status_code == 200
    assert 'id="comparison"' in r.text and 'data-run-id="20261101-210000-shop"' in r.text
    assert "REGRESSED" in r.text  # p95 tripled
    same = client.get("/compare?a=20261101-100000-shop&b=20261101-100000-shop")
    assert same.status_code == 200 and "same run" in same.text
    assert client.get("/compare?a=20261101-100000-shop&b=nope").status_code == 404
    assert "Pick a baseline" in client.get("/compare?a=20261101-100000-shop").text


def test_trend_marks_the_change_point(client, history):
    r = client.get("/trend?metric=p95&scenario=checkout&branch=main")
    assert r.status_code == 200
    figs = [json.loads(_unescape(m)) for m in re.findall(r'id="trend-\d+" data-figure="([^"]*)"', r.text)]
    assert figs, "no trend chart"
    total = figs[0]
    assert len(total["data"][0]["x"]) == 12
    assert total["layout"]["shapes"], "no change point marked"
    assert "20261101-160000-shop" in r.text  # the first run of the new level, in the change table
    assert "compare with the run before" in r.text
    # one chart per request name as well, and one name on its own
    assert len(figs) == 3
    one = client.get("/trend?metric=p99&name=/b&scenario=checkout")
    assert one.status_code == 200 and len(re.findall(r'id="trend-\d+" data-figure="', one.text)) == 1
    for metric in ("p50", "rps", "error_rate"):
        assert client.get(f"/trend?metric={metric}").status_code == 200
    assert client.get("/trend?metric=nope").status_code == 400


def _unescape(attr: str) -> str:
    import html

    return html.unescape(attr)


def test_plotly_asset_is_cached_and_nothing_else_is_served_from_disk(client):
    r = client.get("/assets/plotly.min.js", headers={"accept-encoding": "identity"})
    assert r.status_code == 200 and "plotly" in r.text[:2000].lower()
    assert r.headers["cache-control"].startswith("public, max-age=")
    etag = r.headers["etag"]
    assert client.get("/assets/plotly.min.js", headers={"if-none-match": etag}).status_code == 304
    gz = client.get("/assets/plotly.min.js", headers={"accept-encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip" and gz.text == r.text  # decoded by the client
    for path in ("/assets/", "/assets/../pyproject.toml", "/assets/%2e%2e/pyproject.toml", "/runs/",
                 "/runs/..%2f..%2fetc%2fpasswd", "/static/x", "/pyproject.toml"):
        resp = client.get(path)
        assert resp.status_code == 404, path
        assert "[project]" not in resp.text and "root:" not in resp.text


def test_a_run_directory_named_in_the_url_is_never_read(client, history, tmp_path):
    # the run directories exist on disk (tmp_path/<id>): the path must not be taken as a ref
    r = client.get("/runs/" + str(tmp_path / "20261101-100000-shop").replace("/", "%2F"))
    assert r.status_code == 404


# --------------------------------------------------------------------------- bad input


def test_empty_store(client):
    r = client.get("/")
    assert r.status_code == 200 and "No runs recorded yet" in r.text
    assert client.get("/trend").status_code == 200 and "No recorded runs match" in client.get("/trend").text
    assert client.get("/compare").status_code == 200
    assert client.get("/runs/latest").status_code == 404
    assert client.get("/api/runs").json() == []
    assert client.get("/live").status_code == 404  # no live run in `surge dashboard`


def test_a_run_that_never_sent_a_request(client, store, tmp_path):
    rid = stored_run(store, tmp_path, "20261101-120000-none", names=())
    r = client.get(f"/runs/{rid}")
    assert r.status_code == 200 and f'data-run-id="{rid}"' in r.text
    assert rid in client.get("/").text
    assert client.get("/trend?metric=p95").status_code == 200


def test_run_with_zero_requests_and_truncated_run(client, store, tmp_path):
    zero = stored_run(store, tmp_path, "20261101-120000-zero", requests_per_second=0)
    cut = stored_run(store, tmp_path, "20261101-130000-cut", finished=False)
    for rid in (zero, cut):
        r = client.get(f"/runs/{rid}")
        assert r.status_code == 200, r.text[-2000:]
        assert f'data-run-id="{rid}"' in r.text
    assert "incomplete" in client.get("/").text
    assert client.get(f"/compare?a={zero}&b={cut}").status_code == 200


def test_malformed_filters_are_400_pages(client, history):
    for q in ("since=11/01/2026", "until=x", "limit=many", "tag=novalue"):
        r = client.get("/?" + q)
        assert r.status_code == 400 and "Traceback" not in r.text, q
    assert client.get("/trend?since=soon").status_code == 400


def test_only_get_is_allowed(client):
    r = client.post("/")
    assert r.status_code == 405 and "only reads" in r.text


def test_unreadable_store_is_a_503_page(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database" * 100)
    c = TestClient(create_app(f"sqlite:///{bad}"), base_url=LOOPBACK)
    r = c.get("/")
    assert r.status_code == 503 and "Traceback" not in r.text
    assert c.get("/api/runs").status_code == 503


# --------------------------------------------------------------------------- live feed


def _row(t: int, requests: int = 10) -> dict:
    return {"t": t, "requests": requests, "errors": 1, "started": 5, "dropped": 0, "target_rate": 0.0, "vus": 3,
            "p50": 1.0, "p95": 2.0, "p99": 3.0, "service_p50": 0.5, "service_p95": 1.5, "service_p99": 2.5,
            "extra": "not sent"}


def test_hub_delivers_in_order_from_another_thread_and_snapshots_late_subscribers():
    hub = LiveHub()
    feed = LiveFeed(hub, "shop.py")
    feed.start({"run_id": "r1", "planned_duration_s": 10, "model": "constant-vus"})
    feed.second(None, _row(0))

    async def consume() -> list[str]:
        snapshot, q = hub.subscribe()
        got = [snapshot]

        def engine() -> None:  # the engine's thread
            for t in range(1, 4):
                feed.second(None, _row(t))
            feed.finish({"requests": 40, "errors": 4, "latency": {"p95": 2.0}}, None, {"status": "completed"})
            hub.close()

        th = threading.Thread(target=engine)
        th.start()
        while True:
            item = await asyncio.wait_for(q.get(), 5)
            if item is CLOSED:
                break
            got.append(item)
        th.join(5)
        return got

    events = asyncio.run(consume())
    kinds = [e.split("\n", 1)[0] for e in events]
    assert kinds == ["event: snapshot"] + ["event: second"] * 3 + ["event: finish", "event: bye"]
    snap = json.loads(events[0].split("data: ", 1)[1])
    assert snap["run"]["title"] == "shop.py" and [r["t"] for r in snap["rows"]] == [0]
    assert "extra" not in snap["rows"][0]
    assert [json.loads(e.split("data: ", 1)[1])["t"] for e in events[1:4]] == [1, 2, 3]
    assert json.loads(events[4].split("data: ", 1)[1])["status"] == "completed"
    assert hub.subscribers == 0


def test_a_subscriber_that_falls_too_far_behind_is_closed(monkeypatch):
    import surge.web.live as live

    monkeypatch.setattr(live, "MAX_QUEUE", 3)
    hub = LiveHub()

    async def stalled() -> list:
        _, q = hub.subscribe()
        for t in range(10):
            hub.add(_row(t))
        await asyncio.sleep(0.05)  # let the loop run the queued puts
        return [q.get_nowait() for _ in range(q.qsize())]

    items = asyncio.run(stalled())
    assert items[-1] is CLOSED and len(items) <= 3


def _read_events(url: str, want: int, timeout: float = 10.0) -> list[tuple[str, dict]]:
    """The first ``want`` SSE events of ``url`` (bounded by a socket timeout)."""
    out: list[tuple[str, dict]] = []
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        event = None
        for raw in resp:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event:
                out.append((event, json.loads(line[6:])))
                if len(out) >= want:
                    break
    return out


def test_sse_stream_over_a_real_server():
    hub = LiveHub()
    feed = LiveFeed(hub, "t.py")
    app = create_app("sqlite:///:memory:", hub=hub)
    sock = bind("127.0.0.1", 0)
    server = DashboardServer(app, sock, on_stop=app.state.close, loop="asyncio")
    server.start_background()
    try:
        base = url_of(sock, "127.0.0.1")
        feed.start({"run_id": "r", "planned_duration_s": 5})
        feed.second(None, _row(0))
        got: list = []
        reader = threading.Thread(target=lambda: got.extend(_read_events(base + "/api/live/stream", 3)))
        reader.start()
        for _ in range(200):  # until the reader has subscribed (bounded: 200 x 10 ms)
            if hub.subscribers:
                break
            threading.Event().wait(0.01)
        feed.second(None, _row(1))
        feed.second(None, _row(2))
        reader.join(10)
        assert [e for e, _ in got] == ["snapshot", "second", "second"]
        assert [d["t"] for _, d in got[1:]] == [1, 2]
        page = urllib.request.urlopen(base + "/live", timeout=5).read().decode()
        assert 'id="live-throughput"' in page and "/assets/surge-live.js" in page
        js = urllib.request.urlopen(base + "/assets/surge-live.js", timeout=5).read().decode()
        assert "extendTraces" in js and "EventSource" in js
    finally:
        server.stop()
    assert not server.running


def test_port_in_use_is_a_usage_error():
    from surge.api.errors import UsageError

    sock = bind("127.0.0.1", 0)
    try:
        with pytest.raises(UsageError, match="cannot listen"):
            bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()


# --------------------------------------------------------------------------- commands


def _url_from(proc: subprocess.Popen, pattern: str, timeout: float = 20.0) -> str:
    """Read the process's stderr until a line matches ``pattern``; return group 1."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    seen = []
    try:
        for _ in range(200):  # bounded: lines and waits
            if not sel.select(timeout):
                break
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            m = re.search(pattern, line)
            if m:
                return m.group(1)
    finally:
        sel.close()
    raise AssertionError(f"no line matching {pattern!r} in: {''.join(seen)}")


def _popen(*args: str) -> subprocess.Popen:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "160"}
    return subprocess.Popen([*SURGE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=env, start_new_session=True)


def _finish(proc: subprocess.Popen, sig: int | None = None, timeout: float = 60.0) -> tuple[int, str, str]:
    if sig is not None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"surge did not stop; stderr: {err[-2000:]}")
    return proc.returncode, out, err


def test_surge_dashboard_serves_the_store_and_stops_on_ctrl_c(store, history):
    proc = _popen("dashboard", "--port", "0", "--store", store.url)
    try:
        base = _url_from(proc, r"on (http://127\.0\.0\.1:\d+)/")
        page = urllib.request.urlopen(base + "/", timeout=10).read().decode()
        assert "20261105-090000-shop" in page
    finally:
        rc, _, err = _finish(proc, signal.SIGINT)
    assert rc == 0, err
    assert_no_traceback(err)


def test_surge_run_dashboard_streams_the_run_and_stops_after_it(test_server, scenario_file, tmp_path):
    path = scenario_file(SCENARIO)
    proc = _popen("run", str(path), "-b", test_server, "--vus", "2", "-d", "4s", "--dashboard", "--dashboard-port", "0",
                  "--out", str(tmp_path / "runs"), "--json", "--workers", "1")
    try:
        base = _url_from(proc, r"live dashboard: (http://127\.0\.0\.1:\d+)/live")
        events = _read_events(base + "/api/live/stream", 4, timeout=30)
    finally:
        rc, out, err = _finish(proc)
    assert rc == 0, err
    assert_no_traceback(err)
    kinds = [e for e, _ in events]
    assert kinds[0] == "snapshot"
    seconds = [d for e, d in events if e == "second"]
    assert seconds and all(d["requests"] > 0 for d in seconds)
    assert json.loads(out)["status"] == "completed"  # stdout stays the JSON summary
    with pytest.raises(OSError):  # and the dashboard stopped with the run
        urllib.request.urlopen(base + "/", timeout=2)


def test_dashboard_keep_serves_after_the_run_until_ctrl_c(test_server, scenario_file, tmp_path):
    path = scenario_file(SCENARIO)
    proc = _popen("run", str(path), "-b", test_server, "--vus", "1", "-d", "1s", "--workers", "1", "--dashboard",
                  "--dashboard-port", "0", "--dashboard-keep", "--out", str(tmp_path / "runs"), "--quiet")
    try:
        base = _url_from(proc, r"dashboard still on (http://127\.0\.0\.1:\d+)/ ")
        events = _read_events(base + "/api/live/stream", 1)
        snap = events[0][1]
        assert snap["finish"]["status"] == "completed" and snap["rows"]  # the finished run stays on /live
        listing = urllib.request.urlopen(base + "/", timeout=10).read().decode()
        assert snap["run"]["run_id"] in listing  # and it is in the store's list
    finally:
        rc, _, err = _finish(proc, signal.SIGINT)
    assert rc == 0, err
    assert_no_traceback(err)


def test_dashboard_keep_needs_dashboard(scenario_file, test_server):
    path = scenario_file(SCENARIO)
    proc = _popen("run", str(path), "-b", test_server, "-d", "1s", "--dashboard-keep", "--no-save")
    rc, _, err = _finish(proc)
    assert rc == 2 and "--dashboard-keep goes with --dashboard" in err


def test_dashboard_with_repeat_is_refused_in_one_line(tmp_path):
    from conftest import assert_no_traceback, surge_cli

    r = surge_cli("run", "examples/shop.py", "--dashboard", "--repeat", "2", "-d", "1s", "--no-preflight",
                  cwd=str(Path(__file__).resolve().parent.parent))
    assert r.rc == 2 and "--dashboard follows one run" in r.stderr
    assert_no_traceback(r.stderr)
