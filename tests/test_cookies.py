"""Per-VU cookie jars: the jar's rules, the client storing and sending, and a real run."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import assert_no_traceback, surge_json
from surge.engine.http.client import Client
from surge.engine.http.cookies import CookieJar, set_cookie_values
from surge.engine.http.pool import ConnectionPool

# --------------------------------------------------------------------------- a login server


class _Handler(BaseHTTPRequestHandler):
    """/login?user=X sets sid=X; /me echoes the Cookie header; /logout deletes sid;
    /hop?user=X sets sid=X and redirects to /me; /area/set sets a cookie with the default path."""

    protocol_version = "HTTP/1.1"  # keep-alive, as load tests use

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        user = parse_qs(url.query).get("user", ["?"])[0]
        extra: list[tuple[str, str]] = []
        status, body = 200, b"ok"
        if url.path == "/login":
            extra.append(("Set-Cookie", f"sid={user}; Path=/; HttpOnly"))
        elif url.path == "/me" or url.path.startswith("/area/"):
            body = (self.headers.get("Cookie") or "").encode()
            if url.path == "/area/set":
                extra.append(("Set-Cookie", "zone=a"))  # no Path: defaults to /area
        elif url.path == "/logout":
            extra.append(("Set-Cookie", "sid=; Max-Age=0; Path=/"))
        elif url.path == "/hop":
            status = 302
            extra += [("Set-Cookie", f"sid={user}; Path=/"), ("Location", "/me")]
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def login_server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


class _Sink:
    def key_id(self, scenario, name, method) -> int:
        return 0

    def add(self, *args) -> None:
        pass


def with_clients(base: str, n: int, body, **kw):
    """Run ``body(clients)`` with ``n`` clients (one per VU) sharing one pool, as in a worker."""

    async def main():
        pool = ConnectionPool(connect_timeout=5.0)
        clients = [Client(pool, _Sink(), base_url=base, **kw) for _ in range(n)]
        try:
            return await asyncio.wait_for(body(clients), 20)
        finally:
            pool.close()

    return asyncio.run(main())


# --------------------------------------------------------------------------- the client


def test_each_vu_sees_only_its_own_cookie(login_server):
    async def body(clients):
        a, b = clients
        before = [(await c.get("/me")).text for c in clients]
        await a.get("/login", params={"user": "ann"})
        await b.get("/login", params={"user": "bob"})
        after = [(await c.get("/me")).text for c in clients]
        return before, after

    before, after = with_clients(login_server, 2, body)
    assert before == ["", ""]  # nothing sent before a login
    assert after == ["sid=ann", "sid=bob"]


def test_logout_deletes_and_cookies_false_opts_out(login_server):
    async def body(clients):
        (c,) = clients
        await c.get("/login", params={"user": "ann"})
        skipped = (await c.get("/me", cookies=False)).text
        await c.get("/login", params={"user": "eve"}, cookies=False)  # not stored
        kept = (await c.get("/me")).text
        await c.get("/logout")
        gone = (await c.get("/me")).text
        return skipped, kept, gone, len(c.cookies)

    assert with_clients(login_server, 1, body) == ("", "sid=ann", "", 0)


def test_client_without_cookies_stores_nothing(login_server):
    async def body(clients):
        (c,) = clients
        await c.get("/login", params={"user": "ann"})
        return (await c.get("/me")).text, c._jar

    assert with_clients(login_server, 1, body, cookies=False) == ("", None)


def test_no_jar_until_a_set_cookie(login_server):
    async def body(clients):
        (c,) = clients
        await c.get("/me")
        no_jar = c._jar is None
        await c.get("/login", params={"user": "ann"})
        return no_jar, c._jar is not None

    assert with_clients(login_server, 1, body) == (True, True)


def test_cookie_set_on_a_redirect_is_sent_on_the_next_hop(login_server):
    async def body(clients):
        (c,) = clients
        r = await c.get("/hop", params={"user": "ann"}, follow_redirects=True)
        return r.status, r.text

    assert with_clients(login_server, 1, body) == (200, "sid=ann")


def test_default_path_scopes_the_cookie(login_server):
    async def body(clients):
        (c,) = clients
        await c.get("/area/set")
        return (await c.get("/area/x")).text, (await c.get("/me")).text

    assert with_clients(login_server, 1, body) == ("zone=a", "")


def test_hand_set_cookie_is_sent(login_server):
    async def body(clients):
        (c,) = clients
        c.cookies.set("sid", "manual", "127.0.0.1")
        return (await c.get("/me")).text

    assert with_clients(login_server, 1, body) == "sid=manual"


# --------------------------------------------------------------------------- the jar's rules


def test_host_only_and_domain_cookies():
    jar = CookieJar()
    jar.store("shop.example.com", "/", ["a=1", "b=2; Domain=example.com", "c=3; Domain=other.org"])
    assert jar.header("shop.example.com", "/", False) == "a=1; b=2"
    assert jar.header("api.example.com", "/", False) == "b=2"  # Domain cookies reach subdomains
    assert jar.header("example.org", "/", False) is None
    assert jar.get("c") is None  # a server may not set cookies for another site


def test_path_match_and_order():
    jar = CookieJar()
    jar.store("h", "/", ["root=1; Path=/", "deep=2; Path=/api/v1", "mid=3; Path=/api"])
    assert jar.header("h", "/api/v1/items", False) == "deep=2; mid=3; root=1"  # longer paths first
    assert jar.header("h", "/apix", False) == "root=1"  # /api does not match /apix
    assert jar.header("h", "/api", False) == "mid=3; root=1"


def test_expiry_max_age_and_secure():
    t0 = 2_000_000_000.0  # 2033: after the 2015 date below, before the 2099 one
    jar = CookieJar()
    jar.store("h", "/", ["s=1; Secure", "t=2; Max-Age=10", "old=3; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
                         "late=4; Expires=Wed, 21 Oct 2099 07:28:00 GMT; Max-Age=5"], now=t0)
    assert jar.header("h", "/", False, now=t0 + 1) == "t=2; late=4"
    assert jar.header("h", "/", True, now=t0 + 1) == "s=1; t=2; late=4"
    assert jar.header("h", "/", False, now=t0 + 6) == "t=2"  # Max-Age wins over Expires
    assert jar.header("h", "/", False, now=t0 + 11) is None


def test_replacing_keeps_creation_order_and_malformed_is_ignored():
    jar = CookieJar()
    jar.store("h", "/", ["a=1", "b=2"])
    jar.store("h", "/", ["a=9", "bad cookie value with spaces"])
    assert jar.header("h", "/", False) == "a=9; b=2"
    jar.clear()
    assert jar.header("h", "/", False) is None


def test_set_cookie_values_keeps_repeated_headers_apart():
    raw = [(b"Set-Cookie", b"a=1; Expires=Wed, 21 Oct 2099 07:28:00 GMT"), (b"content-type", b"x"),
           (b"set-cookie", b"b=2")]
    assert set_cookie_values(raw) == ["a=1; Expires=Wed, 21 Oct 2099 07:28:00 GMT", "b=2"]


# --------------------------------------------------------------------------- a real run

LOGIN_SCENARIO = """
from surge import Options, check

options = Options(cookies={cookies})

async def visit(client, vu):
    if "in" not in vu.state:
        r = await client.get("/me", name="/me")
        check(r.text == "", "no cookie before login")
        await client.get("/login", params={{"user": f"vu{{vu.id}}"}}, name="/login")
        vu.state["in"] = True
    r = await client.get("/me", name="/me")
    check(r.text == f"sid=vu{{vu.id}}", "own cookie")
"""


@pytest.mark.parametrize("cookies", [True, False])
def test_real_run_two_workers_each_vu_its_own_cookie(login_server, scenario_file, cookies):
    path = scenario_file(LOGIN_SCENARIO.format(cookies=cookies))
    rc, s, err = surge_json("run", path, "--model", "per-vu-iterations", "--vus", "4", "--iterations", "3",
                            "-w", "2", "--base-url", login_server)
    assert rc == 0, err
    assert_no_traceback(err)
    checks = {c["name"]: (c["passes"], c["fails"]) for c in s["checks"]}
    assert checks["no cookie before login"] == (4, 0)
    assert checks["own cookie"] == ((12, 0) if cookies else (0, 12))


def test_real_world_set_cookie_values_are_kept_as_browsers_do():
    from surge.engine.http.cookies import CookieJar, parse_set_cookie

    jar = CookieJar()
    jar.store("shop.test", "/login", [
        "sid=abc; Path=/; SameSite=Lax; Partitioned; HttpOnly",
        "pref=a b; Path=/",
        'blob={"a":1}; Path=/',
        "prio=x; Priority=High; Path=/",
        "huge=1; Max-Age=" + "9" * 400 + "; Path=/",
        "bad-age=1; Max-Age=soon; Path=/",
        "noequals; Path=/",
    ])
    assert jar.get("sid") == "abc" and jar.get("pref") == "a b" and jar.get("blob") == '{"a":1}'
    assert jar.get("Priority") is None and jar.get("prio") == "x"
    assert jar.get("huge") == "1" and jar.get("bad-age") == "1"  # a bad Max-Age is ignored, not fatal
    assert len(jar) == 6
    assert parse_set_cookie('q="quoted"; Secure') == ("q", "quoted", {"secure": ""})
    assert parse_set_cookie("=nameless") is None
