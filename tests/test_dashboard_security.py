"""The dashboard's defences: escaping of everything a run or a URL carries, the token, the Host check.

Escaping is proved on the served bytes: runs are stored with ``<script>`` and
``<img onerror>`` payloads in every user-controlled field (request names,
scenario, branch, tags, error kinds, check names, iteration errors and their
tracebacks, warnings, run ids), and no page contains a payload verbatim. The
browser tests (test_browser.py) also load such pages in Chromium and check that
nothing ran.
"""

from __future__ import annotations

import re
import urllib.parse
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from surge.results.store import Store
from surge.web.app import create_app
from surge.web.auth import COOKIE, is_loopback, token_matches
from test_dashboard import LOOPBACK, T0, _finish, _popen, _url_from, stored_run

SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=1">'
PAYLOADS = (SCRIPT, IMG)
TOKEN = "s3cret-token-for-tests"


def hostile_runs(store, root) -> list[str]:
    """Runs whose every user-controlled text is a payload (and enough of them for a trend)."""
    ids = []
    for i in range(6):
        p = PAYLOADS[i % 2]
        ids.append(stored_run(
            store, root, f"20261101-1{i}0000-x{'<b>' if i == 5 else ''}", started=T0 + timedelta(hours=i),
            names=(f"/a{SCRIPT}", f"/b{IMG}"), scenario=f"bench/{p}.py", branch=f"main{p}",
            tags={"env": p, "note": SCRIPT}, error_kind=f"refused{p}", check=f"status is 200{p}",
            iteration_error=f"ValueError{p}", warning=f"careful{p}", latency_ms=10.0 * (1 + i // 3)))
    return ids


@pytest.fixture
def store(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'sec.db'}")
    yield s
    s.close()


@pytest.fixture
def client(store):
    return TestClient(create_app(store), base_url=LOOPBACK)


@pytest.fixture
def hostile(store, tmp_path):
    return hostile_runs(store, tmp_path)


def assert_inert(body: str, where: str) -> None:
    for p in PAYLOADS:
        assert p not in body, f"{where}: payload served verbatim"
    # no element or attribute from a payload, in any spelling that survived
    assert not re.search(r"<script>window\.__xss", body), where
    assert not re.search(r"<img[^>]*onerror", body, re.I), where


def pages_of(ids: list[str]) -> list[str]:
    q = urllib.parse.quote
    first, last = ids[0], ids[-1]
    return [
        "/", f"/?scenario={q(SCRIPT)}", f"/?branch={q(IMG)}", f"/?tag=env%3D{q(SCRIPT)}",
        f"/runs/{q(first, safe='')}", f"/runs/{q(last, safe='')}",
        f"/compare?a={q(first)}&b={q(last)}", f"/compare?a={q(SCRIPT)}&b={q(IMG)}", f"/compare?a={q(first)}",
        "/trend", f"/trend?name={q('/a' + SCRIPT)}", f"/trend?metric=error_rate&scenario={q(IMG)}",
        f"/trend?metric={q(SCRIPT)}", f"/runs/{q(SCRIPT, safe='')}", f"/{q(SCRIPT)}", f"/nothing/{q(IMG)}",
        f"/?since={q(SCRIPT)}", f"/?limit={q(IMG)}",
    ]


def test_every_page_escapes_every_payload(client, hostile):
    statuses = {}
    for path in pages_of(hostile):
        r = client.get(path)
        statuses[path] = r.status_code
        assert r.status_code < 500, (path, r.text[-1500:])
        assert_inert(r.text, path)
    # the pages did show the runs (escaped), so the test looked at real content
    listing = client.get("/").text
    assert "bench/&lt;script&gt;window.__xss=1&lt;/script&gt;.py" in listing
    detail = client.get("/runs/" + urllib.parse.quote(hostile[0], safe="")).text
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in detail
    assert statuses[f"/runs/{urllib.parse.quote(SCRIPT, safe='')}"] == 404


def test_api_runs_returns_the_text_as_data(client, hostile):
    data = client.get("/api/runs").json()
    assert any(SCRIPT in r["scenario"] or IMG in r["scenario"] for r in data)  # JSON, served as JSON
    assert client.get("/api/runs").headers["content-type"].startswith("application/json")


def test_pages_carry_a_content_security_policy(client):
    r = client.get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in csp and "'unsafe-inline'" not in csp.split("style-src")[0]
    assert "frame-ancestors 'none'" in csp and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"


# --------------------------------------------------------------------------- token


@pytest.fixture
def guarded(store):
    return TestClient(create_app(store, token=TOKEN), base_url="http://10.0.0.5:8089", follow_redirects=False)


def test_without_the_token_nothing_is_served(guarded):
    for path in ("/", "/runs/latest", "/api/runs", "/assets/plotly.min.js", "/trend", "/nope"):
        r = guarded.get(path)
        assert r.status_code == 401, path
        assert "token" in r.text and TOKEN not in r.text
    assert guarded.get("/", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get("/?token=wrong").status_code == 401
    assert guarded.get("/", cookies={COOKIE: "wrong"}).status_code == 401


def test_query_token_becomes_a_strict_httponly_cookie(guarded):
    r = guarded.get(f"/trend?metric=p99&token={TOKEN}")
    assert r.status_code == 303
    assert r.headers["location"] == "/trend?metric=p99"  # the token leaves the address bar
    cookie = r.headers["set-cookie"]
    assert f"{COOKIE}={TOKEN}" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert guarded.get("/trend?metric=p99", cookies={COOKIE: TOKEN}).status_code == 200


def test_bearer_token(guarded):
    r = guarded.get("/api/runs", headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.json() == []


def test_token_comparison():
    assert token_matches(TOKEN, TOKEN)
    assert not token_matches(None, TOKEN) and not token_matches("", TOKEN)
    assert not token_matches(TOKEN[:-1], TOKEN) and not token_matches(TOKEN + "x", TOKEN)
    assert not token_matches("é" * 5, TOKEN)


def test_redirect_never_leaves_the_site(guarded):
    r = guarded.get(f"//evil.example/?token={TOKEN}")
    assert r.status_code == 303 and r.headers["location"] == "/"


# --------------------------------------------------------------------------- loopback without token


def test_loopback_only_answers_to_loopback_host_names(store):
    app = create_app(store)
    for base in ("http://127.0.0.1:8089", "http://localhost:8089", "http://[::1]:8089"):
        assert TestClient(app, base_url=base).get("/").status_code == 200, base
    for base in ("http://evil.example:8089", "http://10.0.0.5:8089", "http://127.0.0.1.evil.example"):
        r = TestClient(app, base_url=base).get("/")
        assert r.status_code == 403, base


def test_is_loopback():
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2", "a.localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.5", "example.com", "", "::"))


def test_token_rules_of_the_command():
    from surge.api.errors import UsageError
    from surge.cli.dashboard_cmd import resolve_token

    assert resolve_token("127.0.0.1", None) is None
    generated = resolve_token("0.0.0.0", None)
    assert generated and len(generated) >= 24
    assert resolve_token("0.0.0.0", "my-own-token") == "my-own-token"
    with pytest.raises(UsageError):
        resolve_token("0.0.0.0", "short")
    with pytest.raises(UsageError):
        resolve_token("0.0.0.0", "has; a cookie=breaker")


def test_dashboard_on_all_interfaces_prints_a_url_with_a_token(store):
    proc = _popen("dashboard", "--host", "0.0.0.0", "--port", "0", "--store", store.url)
    try:
        token = _url_from(proc, r"on http://0\.0\.0\.0:\d+/\?token=([A-Za-z0-9_-]+)")
    finally:
        _finish(proc, 2)
    assert len(token) >= 24
