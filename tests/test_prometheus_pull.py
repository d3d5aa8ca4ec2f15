"""--prometheus/--query: range queries over the run window against a fake Prometheus, and failures."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import assert_no_traceback, free_port, surge_cli
from surge.results.sut_files import read_prometheus
from surge.sut.prometheus import pull, query_range

SCEN = """
from surge import scenario

@scenario
async def get(client):
    await client.get("/")
"""


class FakePrometheus:
    """A tiny Prometheus HTTP API: a matrix with one point per step of the asked window.

    A query containing ``bad(`` gets Prometheus's 400 bad_data answer; ``absent`` an empty result.
    """

    def __init__(self) -> None:
        self.asked: list[dict[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                u = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                fake.asked.append({"path": u.path, **q})
                if u.path != "/api/v1/query_range":
                    return self._send(404, {"status": "error", "errorType": "not_found", "error": "no"})
                if "bad(" in q["query"]:
                    return self._send(400, {"status": "error", "errorType": "bad_data",
                                            "error": "parse error: unexpected '('"})
                start, end, step = float(q["start"]), float(q["end"]), float(q["step"])
                n = int((end - start) // step) + 1
                values = [[start + i * step, str(i)] for i in range(n)]
                result = [] if "absent" in q["query"] else [{"metric": {"job": "app"}, "values": values}]
                self._send(200, {"status": "success", "data": {"resultType": "matrix", "result": result}})

            def _send(self, code: int, doc: dict) -> None:
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prom():
    fake = FakePrometheus()
    yield fake
    fake.close()


def test_pull_stores_each_query_over_the_window(prom):
    queries = (("rps", "rate(http_requests_total[5s])"), ("bad", "bad(x"), ("gone", "absent"))
    doc, warnings = pull(prom.url, queries, 1000.0, 1010.0, 1000.0)
    assert doc["start"] == 1000.0 and doc["end"] == 1010.0 and doc["step"] == 1.0
    rps = doc["queries"]["rps"]
    assert rps["error"] is None and len(rps["result"][0]["values"]) == 11
    assert rps["result"][0]["values"][0][0] == 1000.0
    assert "bad_data" in doc["queries"]["bad"]["error"] and doc["queries"]["bad"]["result"] == []
    assert doc["queries"]["gone"]["error"] == "no data for the run window"
    assert len(warnings) == 2 and any("'bad'" in w and "HTTP 400" in w for w in warnings)
    asked = prom.asked[0]
    assert asked["path"] == "/api/v1/query_range" and asked["step"] == "1"
    assert asked["query"] == "rate(http_requests_total[5s])"


def test_unreachable_server_is_one_warning():
    url = f"http://127.0.0.1:{free_port()}"
    result, err = query_range(url, "up", 0.0, 1.0, timeout=2.0)
    assert result is None and err.startswith("unreachable")
    doc, warnings = pull(url, (("a", "up"), ("b", "up")), 0.0, 1.0, 0.0)
    assert len(warnings) == 1 and "unreachable" in warnings[0]  # the second query is not retried
    assert doc["queries"]["b"]["error"].startswith("skipped")


def test_run_pulls_prometheus_into_the_run_directory(prom, scenario_file, test_server, tmp_path):
    out = tmp_path / "runs"
    r = surge_cli("run", scenario_file(SCEN), "--vus", "1", "-d", "2s", "-w", "1", "-b", test_server,
                  "--prometheus", prom.url, "--query", "up=up{job='app'}", "--out", out, "--json", "--no-store")
    assert r.rc == 0, r
    assert_no_traceback(r.stderr)
    assert not [w for w in r.data["warnings"] if "prometheus" in w]
    doc = read_prometheus(next(out.iterdir()))
    assert doc is not None and doc["queries"]["up"]["error"] is None
    window = doc["end"] - doc["start"]
    assert 1.5 <= window <= 30.0  # the run's window, not an hour of history
    assert abs(doc["run_start_unix"] - doc["start"]) < 1e-6
    values = doc["queries"]["up"]["result"][0]["values"]
    assert values[0][0] == pytest.approx(doc["start"], abs=1e-3)
    meta = json.loads((next(out.iterdir()) / "meta.json").read_text())
    assert meta["status"] == "completed"


def test_run_with_unreachable_prometheus_keeps_the_run(scenario_file, test_server, tmp_path):
    out = tmp_path / "runs"
    url = f"http://127.0.0.1:{free_port()}"
    r = surge_cli("run", scenario_file(SCEN), "--vus", "1", "-d", "1s", "-w", "1", "-b", test_server,
                  "--prometheus", url, "--query", "up=up", "--out", out, "--json", "--no-store")
    assert r.rc == 0, r
    assert r.data["requests"] > 0 and r.data["status"] == "completed"
    warns = [w for w in r.data["warnings"] if "prometheus" in w]
    assert len(warns) == 1 and "unreachable" in warns[0] and url in warns[0]
    run_dir = next(out.iterdir())
    assert (run_dir / "summary.json").is_file()
    assert read_prometheus(run_dir)["queries"]["up"]["error"].startswith("unreachable")


def test_prometheus_flags_are_checked_before_the_run(scenario_file, test_server):
    r = surge_cli("run", scenario_file(SCEN), "-d", "1s", "-b", test_server, "--prometheus", "http://127.0.0.1:9",
                  "--no-save")
    assert r.rc == 2 and "--query" in r.stderr, r
    r = surge_cli("run", scenario_file(SCEN), "-d", "1s", "-b", test_server, "--prometheus", "localhost:9090",
                  "--query", "a=up", "--no-save")
    assert r.rc == 2 and "http(s) URL" in r.stderr, r
    assert_no_traceback(r.stderr)
