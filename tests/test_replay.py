"""surge replay and surge model end to end: a real nginx log round trip, HAR replay, drops.

The round trip: `surge run` a known mix against nginx, `surge model` nginx's
access log (the mix and rate come back), `surge replay` the log against the
same nginx (the per-second arrivals come back). nginx logs ``[$msec]`` instead
of ``[$time_local]`` so the log has millisecond times (docs/traffic.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import TESTS, assert_no_traceback, free_port, surge_cli, surge_json
from surge.results.rundir import read_series

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
DATA = TESTS / "data" / "traffic"

NGINX_CONF = """
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format surge '$remote_addr - $remote_user [$msec] "$request" '
                     '$status $body_bytes_sent "$http_referer" "$http_user_agent"';
    access_log {tmp}/access.log surge;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /products/ {{ return 200 "product\\n"; }}
        location = /search {{ return 200 "results\\n"; }}
        location = /cart {{ return 200 "cart\\n"; }}
    }}
}}
"""


@pytest.fixture
def nginx(tmp_path):
    """(base URL, access log path) of an nginx on 127.0.0.1 logging with $msec times."""
    if NGINX is None:
        if os.environ.get("SURGE_REQUIRE_NGINX") == "1":
            pytest.fail("nginx is required (SURGE_REQUIRE_NGINX=1) but not installed")
        pytest.skip("nginx not installed")
    tmp = tmp_path / "nginx"
    tmp.mkdir()
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port))
    proc = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log"),
                             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        import socket

        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    pytest.fail(f"nginx did not start: {err} {(tmp / 'error.log').read_text(errors='replace')}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", tmp / "access.log"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


MIX_SCENARIO = """
from surge import Options, scenario

options = Options(base_url={base!r}, rate={rate}, duration="{duration}s")


@scenario(weight=3)
async def product(client, vu):
    await client.get(f"/products/{{vu.rng.randint(1, 500)}}", name="/products/{{id}}")


@scenario(weight=1)
async def search(client, vu):
    await client.get(f"/search?q=w{{vu.rng.randint(1, 9)}}", name="/search")


@scenario(weight=1)
async def cart(client):
    await client.post("/cart", json={{"product_id": 1}}, name="/cart")
"""

MSEC = re.compile(r"\[(\d+\.\d+)\]")


def log_per_second(path: Path) -> list[int]:
    """Requests per second of an nginx $msec log, counted from its first request (independent parser)."""
    times = sorted(float(MSEC.search(line).group(1)) for line in path.read_text().splitlines() if line.strip())
    counts = Counter(int((t - times[0]) // 1) for t in times)
    return [counts[s] for s in range(max(counts) + 1)]


def test_round_trip_run_model_replay_with_nginx(nginx, tmp_path, scenario_file):
    base, access_log = nginx
    rate, duration = 150, 5
    sc = scenario_file(MIX_SCENARIO.format(base=base, rate=rate, duration=duration))
    run = surge_json("run", str(sc), "-w", "1")
    assert run.rc == 0, run
    sent = {(n["method"], n["name"]): n["requests"] for n in run.data["names"]}
    total = sum(sent.values())
    assert total >= rate * duration * 0.95

    log = tmp_path / "access.log"
    shutil.copy(access_log, log)  # the replay below appends to nginx's log
    assert len(log.read_text().splitlines()) == total

    # surge model: the mix and the mean rate of what was sent
    out = tmp_path / "model.py"
    m = surge_cli("model", str(log), "-o", str(out), "-b", base, "--json")
    assert m.rc == 0, m
    assert_no_traceback(m.stderr)
    model = m.data
    assert model["requests"] == total
    shares = {(e["method"], e["template"]): e["share"] for e in model["endpoints"]}
    assert set(shares) == set(sent)
    for key, n in sent.items():
        assert shares[key] == pytest.approx(n / total, rel=0.05), key
    design = {("GET", "/products/{id}"): 0.6, ("GET", "/search"): 0.2, ("POST", "/cart"): 0.2}
    for key, share in design.items():
        assert abs(shares[key] - share) < 0.06, (key, shares[key])
    assert model["mean_rate"] == pytest.approx(rate, rel=0.05)
    stages = model["rate"]["stages"]
    produced = sum(s["duration_s"] for s in stages)
    assert produced == pytest.approx(duration, rel=0.05)
    assert out.exists() and "ramping-arrival-rate" in out.read_text()

    # surge replay: the per-second arrivals of the log, through the engine
    expected = log_per_second(log)
    rep = surge_cli("replay", str(log), "-b", base, "-w", "2", "--json", "--out", str(tmp_path / "runs"))
    assert rep.rc == 0, rep
    assert_no_traceback(rep.stderr)
    s = rep.data
    assert s["model"] == "replay" and s["requests"] == total and s["errors"] == 0
    assert s["iterations"]["dropped"] == 0
    names = {(n["method"], n["name"]): n["requests"] for n in s["names"]}
    assert names == sent  # recorded under the endpoint templates
    started = {st.second: st.started for st in read_series(Path(s["run_dir"]))}
    for sec in range(1, len(expected) - 1):  # the first and last seconds are partial
        assert started.get(sec, 0) == pytest.approx(expected[sec], rel=0.05), (sec, started, expected)
    meta = json.loads((Path(s["run_dir"]) / "meta.json").read_text())
    assert meta["model"] == "replay" and meta["replay"]["requests"] == total


class _Recorder(BaseHTTPRequestHandler):
    """Answers 200 to everything and remembers each request (method, path, headers, body)."""

    seen: list[dict] = []

    def _any(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        type(self).seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                "body": body})
        if self.path.startswith("/slow"):
            time.sleep(0.3)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = do_PUT = do_DELETE = _any

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recording_server():
    """(base URL, list of requests seen) of a small threaded HTTP server on 127.0.0.1."""
    handler = type("Handler", (_Recorder,), {"seen": []})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", handler.seen
    finally:
        srv.shutdown()
        srv.server_close()


def test_har_replay_sends_headers_and_bodies_to_its_own_origin(recording_server, tmp_path):
    base, seen = recording_server
    har = tmp_path / "session.har"
    har.write_text((DATA / "chrome.har").read_text().replace("http://127.0.0.1:8000", base))
    r = surge_cli("replay", str(har), "-w", "1", "--json", "--no-save")
    assert r.rc == 0, r
    assert_no_traceback(r.stderr)
    # 7 entries: upload, websocket, data: skipped; the CDN entry is another origin
    assert "binary body (file upload)" in r.stderr and "websocket" in r.stderr
    assert "1 request(s) skipped: for other origins" in r.stderr
    assert r.data["requests"] == 3
    by_path = {x["path"]: x for x in seen}
    assert set(by_path) == {"/products?page=2", "/cart", "/products/9f8e7d6c5b4a39281706f5e4d3c2b1a0"}
    cart = by_path["/cart"]
    assert cart["method"] == "POST" and cart["body"] == b'{"product_id": 7, "quantity": 1}'
    assert cart["headers"]["X-Request-Id"] == "r-1" and cart["headers"]["Content-Type"] == "application/json"
    assert "Cookie" not in cart["headers"]
    assert by_path["/products?page=2"]["headers"]["Accept"] == "text/html"
    assert {n["name"] for n in r.data["names"]} == {"/products", "/cart", "/products/{id}"}


def _write_log(path: Path, rows: list[tuple[float, str, str]]) -> Path:
    path.write_text("".join(f'10.0.0.1 - - [{t:.3f}] "{m} {p} HTTP/1.1" 200 2 "-" "ua"\n' for t, m, p in rows))
    return path


def test_replay_drops_beyond_max_inflight(recording_server, tmp_path):
    base, seen = recording_server
    t0 = 1_700_000_000.0
    log = _write_log(tmp_path / "burst.log", [(t0 + i * 0.002, "GET", f"/slow/{i}") for i in range(40)])
    r = surge_cli("replay", str(log), "-b", base, "-w", "1", "--max-inflight", "4", "--json", "--no-save")
    assert r.rc == 0, r
    it = r.data["iterations"]
    # 40 arrivals within 80 ms, each answered after 300 ms: 4 in flight, the rest dropped and counted
    assert it["started"] == 4 and it["dropped"] == 36
    assert r.data["requests"] == 4 == len(seen)


def test_replay_speed_limit_and_duration(recording_server, tmp_path):
    base, seen = recording_server
    t0 = 1_700_000_000.0
    log = _write_log(tmp_path / "slow.log", [(t0 + i * 0.1, "GET", f"/items/{i}?x={i}") for i in range(20)])
    r = surge_cli("replay", str(log), "-b", base, "-w", "1", "--speed", "4", "--json", "--out", str(tmp_path / "runs"))
    assert r.rc == 0, r
    meta = json.loads((Path(r.data["run_dir"]) / "meta.json").read_text())
    assert meta["planned_duration_s"] == pytest.approx(1.9 / 4, abs=0.01)  # offsets scaled by --speed
    assert r.data["requests"] == 20 and [n["name"] for n in r.data["names"]] == ["/items/{id}"]
    assert sorted(x["path"] for x in seen) == sorted(f"/items/{i}?x={i}" for i in range(20))  # queries kept
    assert surge_json("replay", str(log), "-b", base, "-w", "1", "--limit", "5").data["requests"] == 5
    assert surge_json("replay", str(log), "-b", base, "-w", "1", "--duration", "0.45s").data["requests"] == 5


def test_replay_errors_are_one_line(tmp_path, refused_url):
    empty = tmp_path / "empty.log"
    empty.write_text("")
    cases = [
        (("replay", str(empty), "-b", "http://127.0.0.1:1"), "is empty"),
        (("replay", str(DATA / "combined.log")), "--base-url"),
        (("replay", str(DATA / "combined.log"), "-b", refused_url), "cannot connect"),
        (("replay", str(tmp_path / "missing.log"), "-b", refused_url), "not found"),
    ]
    for args, text in cases:
        r = surge_cli(*args)
        assert r.rc in (1, 2), (args, r)
        assert text in r.stderr, (args, r.stderr)
        assert_no_traceback(r.stderr)


def test_absolute_form_targets_go_to_the_base_url_and_connect_is_skipped(recording_server, tmp_path):
    """Proxy probes in real logs ("GET http://other.host/x", "CONNECT host:443") never send
    traffic anywhere but --base-url."""
    base, seen = recording_server
    t0 = 1_700_000_000.0
    log = _write_log(tmp_path / "probes.log", [
        (t0, "GET", "/a"), (t0 + 0.01, "GET", f"http://127.0.0.1:{free_port()}/leaked?q=1"),
        (t0 + 0.02, "CONNECT", "www.example.com:443"), (t0 + 0.03, "OPTIONS", "*")])
    r = surge_cli("replay", str(log), "-b", base, "-w", "1", "--json", "--no-save")
    assert r.rc == 0, r
    assert sorted(x["path"] for x in seen) == ["/a", "/leaked?q=1"]
    assert r.data["requests"] == 2 and "2 request(s) skipped" in r.stderr
