"""The scenario HTTP client against a misbehaving server: typed errors, no tracebacks, on time.

Each failure mode of tests/servers.py must show up under its own error type in
``errors_by_type``; responses that are fine (gzip, chunked, redirects, echo)
must reach the scenario intact, asserted through checks in the scenario.
"""

from __future__ import annotations

import pytest

from conftest import assert_no_traceback, surge_json

PLANNED = 1.0  # s: every error run below is `-d 1s`


def one_path_scenario(path: str, timeout: str = "") -> str:
    extra = f", timeout={timeout}" if timeout else ""
    return f"""
        async def visit(client):
            await client.get("{path}", name="{path}"{extra})
    """


@pytest.mark.parametrize(
    ("path", "kind", "status_class", "extra"),
    [
        ("/reset", "reset", "err", []),
        ("/garbage", "protocol", "err", []),
        ("/hang", "timeout", "err", ["--timeout", "1s"]),
        ("/status/503", "http_5xx", "5xx", []),
        ("/status/404", "http_4xx", "4xx", []),
    ],
    ids=["reset", "garbage", "hang", "503", "404"],
)
def test_failure_is_typed_and_run_ends_on_time(test_server, scenario_file, path, kind, status_class, extra):
    scen = scenario_file(one_path_scenario(path))
    res = surge_json("run", scen, "--vus", "2", "-d", "1s", "-w", "1", "--base-url", test_server, *extra)
    rc, s, err = res
    assert s is not None, err
    assert_no_traceback(err)
    # every request failed and there are no thresholds: exit code 1, summary still printed
    assert rc == 1, err
    assert s["requests"] > 0
    assert s["errors"] == s["requests"]
    assert s["errors_by_type"] == {kind: s["requests"]}
    (row,) = s["names"]
    assert row["name"] == path
    assert row["errors_by_type"] == {kind: s["requests"]}
    assert row["status"] == {status_class: s["requests"]}
    assert s["status"] == "completed"
    assert s["duration_s"] < PLANNED + 3
    assert res.wall < PLANNED + 10
    # the iteration itself did not raise: errors are in the responses
    assert s["iterations"]["errors"] == {}


def test_hang_with_per_request_timeout(test_server, scenario_file):
    scen = scenario_file(one_path_scenario("/hang", timeout="0.3"))
    rc, s, err = surge_json("run", scen, "--vus", "1", "-d", "1s", "-w", "1", "--base-url", test_server)
    assert rc == 1, err
    assert_no_traceback(err)
    assert s["errors_by_type"] == {"timeout": s["requests"]}
    # 0.3 s each (timeouts are enforced by a 100 ms sweeper: 0.3-0.4 s) in a 1 s run,
    # the one in flight at the end included
    assert 2 <= s["requests"] <= 4
    assert 295 <= s["service"]["p50"] <= 420
    assert s["duration_s"] < PLANNED + 3


def test_refused_port_without_preflight(refused_url, scenario_file):
    scen = scenario_file(one_path_scenario("/"))
    rc, s, err = surge_json("run", scen, "--vus", "2", "-d", "1s", "-w", "1", "--base-url", refused_url,
                            "--no-preflight")
    assert s is not None, err
    assert_no_traceback(err)
    assert rc == 1
    assert s["requests"] > 0
    assert s["errors_by_type"] == {"refused": s["requests"]}
    assert s["duration_s"] < PLANNED + 3


def test_refused_port_is_caught_by_preflight(refused_url, scenario_file):
    scen = scenario_file(one_path_scenario("/"))
    rc, s, err = surge_json("run", scen, "--vus", "2", "-d", "1s", "-w", "1", "--base-url", refused_url)
    assert rc == 1
    assert s is None
    assert_no_traceback(err)
    assert "connection refused" in err and refused_url.rsplit(":", 1)[1] in err


# --------------------------------------------------------------------------- responses that are fine

GOOD = """
from surge import check


async def visit(client):
    r = await client.get("/gzip", name="gzip")
    check(r, {
        "gzip: status 200": lambda r: r.status == 200,
        "gzip: json decoded": lambda r: r.json() == {"zipped": True},
        "gzip: header kept": lambda r: r.headers.get("content-encoding") == "gzip",
    })

    r = await client.get("/chunked", name="chunked")
    check(r, {"chunked: body joined": lambda r: r.status == 200 and r.text == "hello world"})

    r = await client.get("/redirect", name="redirect")
    check(r, {"redirect: not followed": lambda r: r.status == 302 and r.headers.get("location") == "/"})

    r = await client.get("/redirect", name="redirect followed", follow_redirects=True)
    check(r, {"redirect: followed": lambda r: r.status == 200 and r.text == "ok"})

    r = await client.get("/close", name="close")
    check(r, {"close: body": lambda r: r.status == 200 and r.text == "bye"})

    r = await client.get("/echo", name="echo headers", headers={"X-Test": "yes"})
    check(r, {
        "echo: header": lambda r: r.json()["headers"]["x-test"] == "yes",
        "echo: global header": lambda r: r.json()["headers"]["x-global"] == "g",
        "echo: user agent": lambda r: r.json()["headers"]["user-agent"] == "surge",
        "echo: host": lambda r: r.json()["headers"]["host"] == client.base_url.split("//", 1)[1],
        "echo: get": lambda r: r.json()["method"] == "GET" and r.json()["body"] == "",
    })

    r = await client.get("/echo", name="echo params", params={"a": "1", "b": "x y", "c": ["p", "q"]})
    check(r, {"echo: params": lambda r: r.json()["url"] == "/echo?a=1&b=x+y&c=p&c=q"})

    r = await client.get("/echo?z=0", name="echo params", params={"a": "1"})
    check(r, {"echo: params appended": lambda r: r.json()["url"] == "/echo?z=0&a=1"})

    r = await client.post("/echo", name="echo json", json={"k": [1, 2], "s": "\u00e9"})
    check(r, {
        "echo: json method": lambda r: r.json()["method"] == "POST",
        "echo: json body": lambda r: __import__("json").loads(r.json()["body"].encode("latin-1"))
        == {"k": [1, 2], "s": "\u00e9"},
        "echo: json type": lambda r: r.json()["headers"]["content-type"] == "application/json",
    })

    r = await client.post("/echo", name="echo form", data={"a": "1", "b": "two words"})
    check(r, {
        "echo: form body": lambda r: r.json()["body"] == "a=1&b=two+words",
        "echo: form type": lambda r: r.json()["headers"]["content-type"]
        == "application/x-www-form-urlencoded",
        "echo: form length": lambda r: r.json()["headers"]["content-length"] == "15",
    })

    r = await client.put("/echo", name="echo put", content=b"raw")
    check(r, {"echo: put raw": lambda r: r.json()["method"] == "PUT" and r.json()["body"] == "raw"})
"""

ITERATIONS = 6


@pytest.fixture(scope="module")
def good_run(test_server, tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good.py"
    path.write_text(GOOD)
    res = surge_json("run", path, "--vus", "2", "--iterations", str(ITERATIONS), "-w", "1",
                     "--base-url", test_server, "-H", "X-Global: g", "--max-duration", "10s")
    return res


def test_good_responses_run_cleanly(good_run):
    rc, s, err = good_run
    assert rc == 0, err
    assert_no_traceback(err)
    assert s["status"] == "completed"
    assert s["errors"] == 0, s["errors_by_type"]
    assert s["iterations"]["completed"] == ITERATIONS
    assert s["iterations"]["errors"] == {}, s["iterations"]["first_tracebacks"]


def test_every_check_passed(good_run):
    _, s, _ = good_run
    checks = {c["name"]: c for c in s["checks"]}
    assert len(checks) == 21
    failed = {n: c for n, c in checks.items() if c["fails"] or c["passes"] != ITERATIONS}
    assert not failed


@pytest.mark.parametrize(
    ("name", "per_iteration", "status"),
    [
        ("gzip", 1, {"2xx"}),
        ("chunked", 1, {"2xx"}),
        ("redirect", 1, {"3xx"}),
        ("redirect followed", 2, {"2xx", "3xx"}),  # each hop is recorded
        ("close", 1, {"2xx"}),
        ("echo params", 2, {"2xx"}),
    ],
)
def test_requests_are_recorded_per_name(good_run, name, per_iteration, status):
    _, s, _ = good_run
    rows = {r["name"]: r for r in s["names"]}
    row = rows[name]
    assert row["requests"] == per_iteration * ITERATIONS
    assert set(row["status"]) == status
    assert row["errors"] == 0


def test_gzip_bytes_in_are_wire_bytes(good_run):
    _, s, _ = good_run
    row = {r["name"]: r for r in s["names"]}["gzip"]
    # 16 bytes of JSON compress to more than 16 bytes of gzip: what was counted is the wire body
    assert row["bytes_in"] > 0


def test_follow_redirects_flag(test_server, scenario_file):
    scen = scenario_file("""
        from surge import check

        async def visit(client):
            r = await client.get("/redirect", name="r")
            check(r, {"followed": lambda r: r.status == 200 and r.text == "ok"})
            r = await client.get("/redirect", name="off", follow_redirects=False)
            check(r, {"override off": lambda r: r.status == 302})
    """)
    rc, s, err = surge_json("run", scen, "--vus", "1", "--iterations", "3", "-w", "1",
                            "--base-url", test_server, "--follow-redirects")
    assert rc == 0, err
    assert_no_traceback(err)
    checks = {c["name"]: (c["passes"], c["fails"]) for c in s["checks"]}
    assert checks == {"followed": (3, 0), "override off": (3, 0)}
    rows = {r["name"]: r for r in s["names"]}
    assert rows["r"]["status"] == {"2xx": 3, "3xx": 3}
    assert rows["off"]["status"] == {"3xx": 3}


def test_status_errors_visible_to_scenario(test_server, scenario_file):
    scen = scenario_file("""
        from surge import HTTPStatusError, check

        async def visit(client):
            r = await client.get("/status/503")
            check(r, {"5xx": lambda r: r.status == 503 and not r.ok and r.error.label == "http_5xx"})
            r = await client.get("/reset")
            check(r, {"reset": lambda r: r.status == 0 and r.error.label == "reset"})
            try:
                r.raise_for_status()
            except HTTPStatusError:
                check(True, "raise_for_status raised")
    """)
    rc, s, err = surge_json("run", scen, "--vus", "1", "--iterations", "3", "-w", "1",
                            "--base-url", test_server)
    assert rc == 1, err  # every request failed
    assert_no_traceback(err)
    checks = {c["name"]: (c["passes"], c["fails"]) for c in s["checks"]}
    assert checks == {"5xx": (3, 0), "reset": (3, 0), "raise_for_status raised": (3, 0)}
    assert s["errors_by_type"] == {"http_5xx": 3, "reset": 3}
