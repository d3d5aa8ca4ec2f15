"""The bundled demo shop: every endpoint in both modes, bad input, the deliberate problems."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from surge.api.errors import UsageError
from surge.api.response import Response
from surge.cli.demo_cmd import demo, is_loopback
from surge.demo.app import (
    FIXED_GATEWAY_S,
    PaymentGateway,
    compute_similarity_scores,
    create_app,
    precompute_recommendations,
)
from surge.demo.db import Database

ROOT = Path(__file__).resolve().parents[1]
MODES = [False, True]


@pytest.fixture(scope="module")
def clients():
    """One TestClient per mode (False: deliberate problems, True: fixed), no DB latency."""
    with contextlib.ExitStack() as stack:
        yield {
            fixed: stack.enter_context(TestClient(create_app(fixed=fixed, db_latency=0.0)))
            for fixed in MODES
        }


@pytest.fixture(params=MODES, ids=["problems", "fixed"])
def client(request, clients):
    return clients[request.param]


def assert_error(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == status and isinstance(body["error"], str) and body["error"]
    return body


# -- read endpoints ---------------------------------------------------------------------


def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_categories(client):
    cats = client.get("/categories").json()["categories"]
    assert len(cats) == 8
    assert sum(c["product_count"] for c in cats) == 200


def test_product_list_pages(client):
    body = client.get("/products").json()
    assert (body["page"], body["per_page"], body["total"]) == (1, 20, 200)
    assert [p["id"] for p in body["products"]] == list(range(1, 21))
    first = body["products"][0]
    assert set(first) == {"id", "name", "category", "price", "review_count", "avg_rating"}
    assert 3 <= first["review_count"] <= 8 and 1 <= first["avg_rating"] <= 5

    body = client.get("/products", params={"page": 3, "per_page": 7}).json()
    assert [p["id"] for p in body["products"]] == list(range(15, 22))
    assert client.get("/products", params={"page": 99}).json()["products"] == []


def test_product_list_category(client):
    body = client.get("/products", params={"category": "books", "per_page": 100}).json()
    assert body["total"] == 25 and len(body["products"]) == 25
    assert {p["category"] for p in body["products"]} == {"books"}
    body = client.get("/products", params={"category": "nope"}).json()
    assert body["total"] == 0 and body["products"] == []


@pytest.mark.parametrize(
    "params", [{"page": 0}, {"page": "abc"}, {"per_page": 0}, {"per_page": 101}, {"per_page": "1.5"}]
)
def test_product_list_bad_params(client, params):
    assert_error(client.get("/products", params=params), 400)


def test_search(client):
    body = client.get("/products/search", params={"q": "Wool"}).json()
    assert body["query"] == "Wool" and body["count"] == len(body["products"]) > 0
    for p in body["products"]:
        detail = client.get(f"/products/{p['id']}").json()
        assert "wool" in (detail["name"] + detail["description"]).lower()
    assert client.get("/products/search", params={"q": "e", "limit": 3}).json()["count"] == 3
    # LIKE wildcards are matched literally
    assert client.get("/products/search", params={"q": "%"}).json()["count"] == 0
    assert client.get("/products/search", params={"q": "zzzqqq"}).json()["products"] == []


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "   "}, {"q": "x" * 101}, {"q": "a", "limit": 0}])
def test_search_bad_params(client, params):
    assert_error(client.get("/products/search", params=params), 400)


def test_product_detail(client):
    p = client.get("/products/42").json()
    assert p["id"] == 42 and p["name"] and p["description"] and p["price"] > 0
    assert p["review_count"] == len(p["reviews"]) >= 3
    assert p["avg_rating"] == round(sum(r["rating"] for r in p["reviews"]) / len(p["reviews"]), 2)
    assert set(p["reviews"][0]) == {"id", "author", "rating", "body"}
    listed = client.get("/products", params={"page": 3, "per_page": 20}).json()["products"][1]
    assert listed["id"] == 42
    assert (listed["review_count"], listed["avg_rating"]) == (p["review_count"], p["avg_rating"])


@pytest.mark.parametrize("path", ["/products/0", "/products/201", "/products/99999999999999999999999"])
def test_product_unknown_id(client, path):
    assert_error(client.get(path), 404)
    assert_error(client.get(path + "/recommendations"), 404)


def test_unknown_route_and_method_are_json(client):
    assert_error(client.get("/products/abc"), 404)
    assert_error(client.get("/nope"), 404)
    assert_error(client.delete("/health"), 405)
    assert_error(client.get("/checkout"), 405)


def test_recommendations(client):
    body = client.get("/products/7/recommendations").json()
    recs = body["recommendations"]
    assert body["product_id"] == 7 and len(recs) == 5
    assert 7 not in {r["id"] for r in recs}
    assert [r["score"] for r in recs] == sorted((r["score"] for r in recs), reverse=True)
    assert all(0 < r["score"] <= 1 for r in recs)
    assert set(recs[0]) == {"id", "name", "category", "price", "score"}


@pytest.mark.parametrize(
    "path",
    [
        "/categories",
        "/products?page=2&per_page=50",
        "/products?category=toys",
        "/products/search?q=steel",
        "/products/1",
        "/products/1/recommendations",
        "/products/137/recommendations",
        "/products/200/recommendations",
    ],
)
def test_both_modes_answer_the_same(clients, path):
    a, b = clients[False].get(path), clients[True].get(path)
    assert a.status_code == b.status_code == 200
    assert a.json() == b.json()


def test_precomputed_recommendations_match_the_slow_function():
    db = Database(latency=0)
    try:
        rows = [dict(r) for r in db.conn.execute("SELECT * FROM products ORDER BY id")]
    finally:
        db.close()
    cached = precompute_recommendations(rows)
    for target in rows[::37]:
        assert cached[target["id"]] == compute_similarity_scores(target, rows)[:5]


# -- cart and checkout --------------------------------------------------------------------


def test_cart_create_extend_get(client):
    r = client.post("/cart", json={"product_id": 3, "quantity": 2})
    assert r.status_code == 201
    cart = r.json()
    cart_id = cart["cart_id"]
    assert cart["status"] == "open" and cart["item_count"] == 2
    assert cart["items"][0]["product_id"] == 3 and cart["items"][0]["quantity"] == 2

    r = client.post("/cart", json={"product_id": 3, "cart_id": cart_id})  # quantity defaults to 1
    assert r.status_code == 200 and r.json()["items"][0]["quantity"] == 3
    r = client.post("/cart", json={"product_id": 10, "quantity": 1, "cart_id": cart_id})
    cart = r.json()
    assert [i["product_id"] for i in cart["items"]] == [3, 10] and cart["item_count"] == 4
    assert cart["total"] == round(sum(i["line_total"] for i in cart["items"]), 2)
    assert client.get(f"/cart/{cart_id}").json() == cart
    assert_error(client.get("/cart/unknown"), 404)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{bad json", 400),
        (b"", 400),
        (b"[1, 2]", 400),
        (b'"text"', 400),
        (b"\xff\xfe", 400),
        (b"[" * 100_000, 400),
        (json.dumps({}).encode(), 400),
        (json.dumps({"quantity": 1}).encode(), 400),
        (json.dumps({"product_id": "3"}).encode(), 400),
        (json.dumps({"product_id": 3.5}).encode(), 400),
        (json.dumps({"product_id": True}).encode(), 400),
        (json.dumps({"product_id": 3, "quantity": 0}).encode(), 400),
        (json.dumps({"product_id": 3, "quantity": 1000}).encode(), 400),
        (json.dumps({"product_id": 3, "cart_id": 12}).encode(), 400),
        (json.dumps({"product_id": 10**30}).encode(), 400),
        (json.dumps({"product_id": 9999}).encode(), 404),
        (json.dumps({"product_id": 3, "cart_id": "nope"}).encode(), 404),
    ],
)
def test_cart_bad_input(client, body, status):
    r = client.post("/cart", content=body, headers={"content-type": "application/json"})
    assert_error(r, status)


def test_checkout(client):
    cart_id = client.post("/cart", json={"product_id": 5, "quantity": 2}).json()["cart_id"]
    total = client.get(f"/cart/{cart_id}").json()["total"]
    r = client.post("/checkout", json={"cart_id": cart_id})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["order_id"].startswith("ord_") and order["cart_id"] == cart_id
    assert (order["status"], order["item_count"], order["total"]) == ("paid", 2, total)
    assert client.get(f"/cart/{cart_id}").json()["status"] == "checked_out"
    # a cart is paid once, and cannot change afterwards
    assert_error(client.post("/checkout", json={"cart_id": cart_id}), 409)
    assert_error(client.post("/cart", json={"product_id": 1, "cart_id": cart_id}), 409)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"", 400),
        (b"null", 400),
        (json.dumps({}).encode(), 400),
        (json.dumps({"cart_id": None}).encode(), 400),
        (json.dumps({"cart_id": 17}).encode(), 400),
        (json.dumps({"cart_id": ""}).encode(), 400),
        (json.dumps({"cart_id": "no-such-cart"}).encode(), 404),
    ],
)
def test_checkout_bad_input(client, body, status):
    assert_error(client.post("/checkout", content=body), status)


def test_checkout_empty_cart_is_400_and_leaves_cart_open(client):
    db = client.app.state.db
    db.conn.execute("INSERT INTO carts (id, status, created_at) VALUES ('empty-cart', 'open', 0)")
    assert_error(client.post("/checkout", json={"cart_id": "empty-cart"}), 400)
    assert client.get("/cart/empty-cart").json()["status"] == "open"


# -- the deliberate problems ----------------------------------------------------------------


def _queries(client, path: str) -> int:
    db = client.app.state.db
    before = db.query_count
    assert client.get(path).status_code == 200
    return db.query_count - before


def test_n_plus_one_in_problem_mode_only(clients):
    slow, fixed = clients[False], clients[True]
    for per_page in (1, 20, 100):
        # one count, one page, then one query per product
        assert _queries(slow, f"/products?per_page={per_page}") == per_page + 2
        assert _queries(fixed, f"/products?per_page={per_page}") == 2
    seen: list[str] = []
    remove = slow.app.state.db.add_hook(lambda sql, params: seen.append(sql))
    try:
        slow.get("/products?per_page=5")
    finally:
        remove()
    assert sum("FROM reviews WHERE product_id" in s for s in seen) == 5


def test_recommendations_query_nothing_in_fixed_mode(clients):
    assert _queries(clients[True], "/products/3/recommendations") == 0
    assert _queries(clients[False], "/products/3/recommendations") == 2


def test_db_latency_makes_n_plus_one_visible():
    with TestClient(create_app(db_latency=0.005)) as c:
        t0 = time.perf_counter()
        assert c.get("/products?per_page=10").status_code == 200
        assert time.perf_counter() - t0 >= 12 * 0.005  # 12 queries, one round trip each


def test_payment_gateway_delays():
    slow = PaymentGateway(fixed=False, rng=random.Random(1))
    delays = sorted(slow.delay() for _ in range(20_000))
    assert 0.027 < delays[len(delays) // 2] < 0.033  # median ~30 ms
    assert 0.005 < sum(d > 0.3 for d in delays) / len(delays) < 0.02  # ~1% over 300 ms
    fixed = PaymentGateway(fixed=True, rng=random.Random(1))
    lo, hi = FIXED_GATEWAY_S
    assert all(lo <= fixed.delay() <= hi for _ in range(1000))


# -- database file --------------------------------------------------------------------------


def test_db_path_is_seeded_once_and_reused(tmp_path):
    path = tmp_path / "shop.sqlite3"
    with TestClient(create_app(db_path=path, db_latency=0)) as c:
        cart_id = c.post("/cart", json={"product_id": 1}).json()["cart_id"]
    assert path.exists()
    with TestClient(create_app(db_path=path, db_latency=0, fixed=True)) as c:
        assert c.get("/products").json()["total"] == 200
        assert c.get(f"/cart/{cart_id}").status_code == 200


def test_temporary_db_is_removed_at_shutdown():
    app = create_app(db_latency=0)
    path = app.state.db.path
    with TestClient(app):
        assert path.exists()
    assert not path.parent.exists()


def test_unusable_db_path_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="--db"):
        create_app(db_path=tmp_path / "missing-dir" / "shop.sqlite3")
    bad = tmp_path / "not-a-db.sqlite3"
    bad.write_text("hello, I am not SQLite" * 100)
    with pytest.raises(UsageError, match="--db"):
        create_app(db_path=bad)


# -- the example scenario runs against the demo ----------------------------------------------


class _AdapterClient:
    """The scenario-facing client methods, over httpx2's in-process ASGI transport."""

    def __init__(self, app):
        self.http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://demo")
        self.names: list[str] = []

    async def request(self, method, url, *, params=None, json=None, name=None, **_):
        r = await self.http.request(method, url, params=params, json=json)
        self.names.append(name or url)
        return Response(r.status_code, dict(r.headers), r.content, str(r.url), method, 0.0)

    async def get(self, url, **kw):
        return await self.request("GET", url, **kw)

    async def post(self, url, **kw):
        return await self.request("POST", url, **kw)


def test_example_scenario_runs_against_the_demo(monkeypatch):
    spec = importlib.util.spec_from_file_location("shop_example", ROOT / "examples" / "shop.py")
    assert spec and spec.loader
    shop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shop)

    async def no_think(*args, **kwargs):
        return None

    monkeypatch.setattr(shop, "sleep", no_think)
    results: dict[str, bool] = {}
    monkeypatch.setattr(shop, "check", lambda subject, checks: _record(results, subject, checks))

    from surge.api.scenario import VU

    app = create_app(fixed=True, db_latency=0)

    async def main():
        client = _AdapterClient(app)
        vu = VU(id=1, rng=random.Random(3))
        try:
            for fn in (shop.browse, shop.search, shop.recommendations, shop.buyer, shop.buyer):
                await fn(client, vu)
                vu.iteration += 1
        finally:
            await client.http.aclose()
        return client.names, vu

    try:
        names, vu = asyncio.run(main())
    finally:
        app.state.db.close()
    assert results and all(results.values()), results
    assert {"/products", "/products/{id}", "/products/search", "/cart", "/checkout"} <= set(names)
    assert vu.state["orders"] == 2


def _record(results, subject, checks):
    if isinstance(checks, str):
        results[checks] = bool(subject)
        return bool(subject)
    ok = True
    for name, pred in checks.items():
        try:
            passed = bool(pred(subject))
        except Exception:
            passed = False
        results[name] = results.get(name, True) and passed
        ok &= passed
    return ok


# -- the CLI and the real server ---------------------------------------------------------------


def test_is_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("127.0.0.2")
    assert is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")
    assert not is_loopback("example.com")


def test_serve_port_in_use_is_a_one_line_error_exit_2():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(demo, ["serve", "--port", str(port)])
    assert result.exit_code == 2
    assert f"port {port}" in result.output and "--port" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_serve_help():
    result = CliRunner().invoke(demo, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in ("--host", "--port", "--fixed", "--db"):
        assert flag in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("via", ["serve()", "cli"])
def test_serve_in_subprocess_answers_health(tmp_path, via):
    port = _free_port()
    if via == "cli":
        code = "from surge.cli.demo_cmd import demo; demo()"
        args = ["serve", "--port", str(port), "--db", str(tmp_path / "s.db")]
    else:
        code = f"from surge.demo.server import serve; serve(port={port}, fixed=True)"
        args = []
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        body = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    body = json.loads(r.read())
                    assert r.status == 200
                break
            except OSError:
                time.sleep(0.05)
        assert body == {"status": "ok"}, proc.stdout.read().decode() if proc.poll() is not None else ""
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        proc.stdout.close()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal
    assert proc.returncode in (0, -signal.SIGTERM)
