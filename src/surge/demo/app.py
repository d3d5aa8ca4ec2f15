"""The surge demo shop: a small JSON API with three deliberate performance problems.

It exists to be load-tested (``surge demo serve``, then ``surge run examples/shop.py``),
so it is slow on purpose, in three different, recognisable ways. Each one has a
distinct signature a performance engineer should learn to spot:

1. **N+1 queries** (``GET /products``). The list query fetches one page of
   products, then issues one more query *per product* for its review count and
   average rating, instead of a single ``LEFT JOIN ... GROUP BY``. Every query
   costs a database round trip (simulated, 1 ms by default; see
   :mod:`surge.demo.db`), so latency grows linearly with ``per_page``
   (about ``per_page`` x round trip) while the server's CPU stays low: the
   request is waiting, not working.

2. **CPU-bound work on the event loop** (``GET /products/{id}/recommendations``).
   :func:`compute_similarity_scores` recomputes word-shingle sets for *every*
   product and their Jaccard similarity to the requested one on every call:
   several ms of pure-Python CPU per request, in the event loop thread. Its own
   latency is modest, but it saturates one core and, because it blocks the loop,
   it inflates the latency of *every other* endpoint served by that process
   (look for a CPU-bound process, event-loop lag, and a tail on unrelated
   endpoints that grows with the recommendations traffic).

3. **A slow, variable dependency** (``POST /checkout``). Checkout calls a
   simulated payment gateway whose delay is log-normal: median about 30 ms with
   a heavy tail, so about 1% of checkouts take over 300 ms. The median looks
   fine; p99 and p99.9 do not. Averages hide it; percentiles and histograms show
   it.

``create_app(fixed=True)`` (``surge demo serve --fixed``) removes all three: the list
runs one ``JOIN``/``GROUP BY`` query, recommendations are precomputed once at
startup, and the payment gateway answers in a steady ~5 ms. Responses are the same
in both modes, so the same scenario can measure before and after.

Endpoints (all JSON; errors are ``{"error": message, "status": code}``, never a 500
for bad input):

- ``GET /health``
- ``GET /categories``
- ``GET /products?page=N&per_page=M&category=C``   (page >= 1, 1 <= per_page <= 100)
- ``GET /products/search?q=TEXT&limit=N``
- ``GET /products/{id}``
- ``GET /products/{id}/recommendations``
- ``POST /cart`` ``{"product_id": int, "quantity": int = 1, "cart_id": str (optional)}``
- ``GET /cart/{cart_id}``
- ``POST /checkout`` ``{"cart_id": str}``
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from surge.demo.db import DEFAULT_LATENCY, Database

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
MAX_SEARCH_LIMIT = 100
RECOMMENDATIONS = 5
MAX_QUANTITY = 99
_MAX_SQL_INT = 2**63 - 1

# payment gateway: log-normal, median 30 ms, sigma 1.0 -> P(delay > 300 ms) ~ 1.1%
GATEWAY_MEDIAN_S = 0.030
GATEWAY_SIGMA = 1.0
GATEWAY_MAX_S = 3.0
FIXED_GATEWAY_S = (0.004, 0.006)


class ApiError(Exception):
    """A client error turned into a JSON response by the app's exception handler."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


# -- similarity (problem 2) ----------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")


def _product_text(p: Mapping[str, Any]) -> str:
    return f"{p['name']} {p['category']} {p['description']}"


def shingles(text: str, sizes: Iterable[int] = (1, 2, 3)) -> frozenset[str]:
    """Word shingles (n-grams of the given sizes) of ``text``, lower-cased."""
    words = _WORD.findall(text.lower())
    out: set[str] = set()
    for k in sizes:
        for i in range(len(words) - k + 1):
            out.add(" ".join(words[i : i + k]))
    return frozenset(out)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    inter = len(a & b)
    union = len(a) + len(b) - inter
    return inter / union if union else 0.0


def compute_similarity_scores(
    target: Mapping[str, Any], products: Iterable[Mapping[str, Any]]
) -> list[tuple[float, int]]:
    """DELIBERATE PROBLEM 2: ``(score, product_id)`` of every other product, best first.

    Wasteful on purpose: it rebuilds the shingle set of *every* product on *every*
    call (they never change), then compares them all, in pure Python, on the event
    loop. The fixed mode computes the same scores once, at startup
    (:func:`precompute_recommendations`).
    """
    target_set = shingles(_product_text(target))
    scores = [
        (jaccard(target_set, shingles(_product_text(p))), int(p["id"]))
        for p in products
        if p["id"] != target["id"]
    ]
    scores.sort(key=lambda s: (-s[0], s[1]))
    return scores


def precompute_recommendations(
    products: list[Mapping[str, Any]], k: int = RECOMMENDATIONS
) -> dict[int, list[tuple[float, int]]]:
    """The fixed mode: the top ``k`` of :func:`compute_similarity_scores` for every product.

    Same scores, same order; each shingle set and each pair is computed once.
    """
    ids = [int(p["id"]) for p in products]
    sets = [shingles(_product_text(p)) for p in products]
    scores: dict[int, list[tuple[float, int]]] = {i: [] for i in ids}
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            s = jaccard(sets[a], sets[b])
            scores[ids[a]].append((s, ids[b]))
            scores[ids[b]].append((s, ids[a]))
    return {i: sorted(v, key=lambda s: (-s[0], s[1]))[:k] for i, v in scores.items()}


# -- payment gateway (problem 3) -----------------------------------------------------


class PaymentGateway:
    """A simulated external payment service: ``await charge(...)`` takes a while.

    Slow mode (DELIBERATE PROBLEM 3): log-normal delay, median
    :data:`GATEWAY_MEDIAN_S`, shape :data:`GATEWAY_SIGMA` (about 1% over 300 ms),
    capped at :data:`GATEWAY_MAX_S`. Fixed mode: a steady 4-6 ms.
    """

    def __init__(self, *, fixed: bool, rng: random.Random):
        self.fixed = fixed
        self.rng = rng

    def delay(self) -> float:
        """Draw the next delay in s."""
        if self.fixed:
            return self.rng.uniform(*FIXED_GATEWAY_S)
        return min(self.rng.lognormvariate(math.log(GATEWAY_MEDIAN_S), GATEWAY_SIGMA), GATEWAY_MAX_S)

    async def charge(self, amount_cents: int) -> str:
        """Charge ``amount_cents``; returns a payment reference."""
        await asyncio.sleep(self.delay())
        return f"pay_{secrets.token_hex(6)}"


# -- request parsing -----------------------------------------------------------------


def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name!r} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ApiError(400, f"query parameter {name!r} must be between {lo} and {hi}, got {value}")
    return value


async def _json_object(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body.strip():
        raise ApiError(400, "request body must be a JSON object, got an empty body")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError(400, "request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(data).__name__}")
    return data


def _int_field(data: Mapping[str, Any], name: str, *, lo: int, hi: int, default: int | None = None) -> int:
    if name not in data or data[name] is None:
        if default is not None:
            return default
        raise ApiError(400, f"missing field {name!r}")
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"field {name!r} must be an integer, got {json.dumps(value)[:40]}")
    if not lo <= value <= hi:
        raise ApiError(400, f"field {name!r} must be between {lo} and {hi}, got {value}")
    return value


def _cart_id_field(data: Mapping[str, Any], *, required: bool) -> str | None:
    value = data.get("cart_id")
    if value is None:
        if required:
            raise ApiError(400, "missing field 'cart_id'")
        return None
    if not isinstance(value, str) or not value:
        raise ApiError(400, "field 'cart_id' must be a non-empty string")
    return value


def _price(cents: int) -> float:
    return round(cents / 100, 2)


def _summary(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "category": row["category"],
        "price": _price(row["price_cents"]),
    }


def _rating(avg: float | None) -> float | None:
    return None if avg is None else round(avg, 2)


# -- the shop ------------------------------------------------------------------------


class Shop:
    """Request handlers over one :class:`Database`; ``fixed`` picks the efficient paths."""

    def __init__(self, db: Database, *, fixed: bool, seed: int = 0):
        self.db = db
        self.fixed = fixed
        self.gateway = PaymentGateway(fixed=fixed, rng=random.Random(seed))
        self.recommendation_cache: dict[int, list[tuple[float, int]]] | None = None
        self.catalog: dict[int, dict[str, Any]] = {}
        if fixed:
            rows = [dict(r) for r in db.conn.execute("SELECT * FROM products ORDER BY id")]
            self.catalog = {r["id"]: r for r in rows}
            self.recommendation_cache = precompute_recommendations(rows)

    # GET /health
    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    # GET /categories
    async def categories(self, request: Request) -> JSONResponse:
        rows = await self.db.fetchall(
            "SELECT category, COUNT(*) AS n FROM products GROUP BY category ORDER BY category"
        )
        return JSONResponse(
            {"categories": [{"name": r["category"], "product_count": r["n"]} for r in rows]}
        )

    # GET /products
    async def list_products(self, request: Request) -> JSONResponse:
        page = _int_param(request, "page", 1, 1, 1_000_000)
        per_page = _int_param(request, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
        category = request.query_params.get("category") or None
        args: list[Any] = [category] if category else []
        where = "WHERE category = ?" if category else ""
        total_row = await self.db.fetchone(f"SELECT COUNT(*) FROM products {where}", args)
        total = total_row[0] if total_row else 0
        offset = (page - 1) * per_page
        if self.fixed:
            rows = await self.db.fetchall(
                "SELECT p.id, p.name, p.category, p.price_cents, "
                "COUNT(r.id) AS review_count, AVG(r.rating) AS avg_rating "
                "FROM products p LEFT JOIN reviews r ON r.product_id = p.id "
                f"{'WHERE p.category = ?' if category else ''} "
                "GROUP BY p.id ORDER BY p.id LIMIT ? OFFSET ?",
                [*args, per_page, offset],
            )
            items = [
                {**_summary(r), "review_count": r["review_count"], "avg_rating": _rating(r["avg_rating"])}
                for r in rows
            ]
        else:
            rows = await self.db.fetchall(
                f"SELECT id, name, category, price_cents FROM products {where} "
                "ORDER BY id LIMIT ? OFFSET ?",
                [*args, per_page, offset],
            )
            items = []
            for r in rows:
                # DELIBERATE PROBLEM 1: one more query (and round trip) per product.
                stats = await self.db.fetchone(
                    "SELECT COUNT(*) AS n, AVG(rating) AS avg FROM reviews WHERE product_id = ?",
                    [r["id"]],
                )
                assert stats is not None
                items.append(
                    {**_summary(r), "review_count": stats["n"], "avg_rating": _rating(stats["avg"])}
                )
        return JSONResponse(
            {"page": page, "per_page": per_page, "total": total, "products": items}
        )

    # GET /products/search
    async def search(self, request: Request) -> JSONResponse:
        q = (request.query_params.get("q") or "").strip()
        if not q:
            raise ApiError(400, "query parameter 'q' is required, e.g. /products/search?q=wool")
        if len(q) > 100:
            raise ApiError(400, "query parameter 'q' must be at most 100 characters")
        limit = _int_param(request, "limit", 20, 1, MAX_SEARCH_LIMIT)
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = await self.db.fetchall(
            "SELECT id, name, category, price_cents FROM products "
            "WHERE name LIKE ? ESCAPE '\\' OR description LIKE ? ESCAPE '\\' "
            "ORDER BY id LIMIT ?",
            [pattern, pattern, limit],
        )
        return JSONResponse(
            {"query": q, "count": len(rows), "products": [_summary(r) for r in rows]}
        )

    async def _product_row(self, request: Request) -> dict[str, Any]:
        pid = request.path_params["product_id"]
        if not 1 <= pid <= _MAX_SQL_INT:
            raise ApiError(404, f"no product with id {pid}")
        row = await self.db.fetchone("SELECT * FROM products WHERE id = ?", [pid])
        if row is None:
            raise ApiError(404, f"no product with id {pid}")
        return dict(row)

    # GET /products/{id}
    async def product_detail(self, request: Request) -> JSONResponse:
        p = await self._product_row(request)
        reviews = await self.db.fetchall(
            "SELECT id, author, rating, body FROM reviews WHERE product_id = ? ORDER BY id",
            [p["id"]],
        )
        ratings = [r["rating"] for r in reviews]
        return JSONResponse(
            {
                **_summary(p),
                "description": p["description"],
                "stock": p["stock"],
                "review_count": len(ratings),
                "avg_rating": _rating(sum(ratings) / len(ratings)) if ratings else None,
                "reviews": [dict(r) for r in reviews],
            }
        )

    # GET /products/{id}/recommendations
    async def recommendations(self, request: Request) -> JSONResponse:
        if self.recommendation_cache is not None:
            pid = request.path_params["product_id"]
            top = self.recommendation_cache.get(pid)
            if top is None:
                raise ApiError(404, f"no product with id {pid}")
            catalog = self.catalog
        else:
            target = await self._product_row(request)
            rows = [dict(r) for r in await self.db.fetchall("SELECT * FROM products ORDER BY id")]
            # DELIBERATE PROBLEM 2: recomputed from scratch, on the event loop, every call.
            top = compute_similarity_scores(target, rows)[:RECOMMENDATIONS]
            pid = target["id"]
            catalog = {r["id"]: r for r in rows}
        return JSONResponse(
            {
                "product_id": pid,
                "recommendations": [
                    {**_summary(catalog[other]), "score": round(score, 4)} for score, other in top
                ],
            }
        )

    # POST /cart
    async def add_to_cart(self, request: Request) -> JSONResponse:
        data = await _json_object(request)
        product_id = _int_field(data, "product_id", lo=1, hi=_MAX_SQL_INT)
        quantity = _int_field(data, "quantity", lo=1, hi=MAX_QUANTITY, default=1)
        cart_id = _cart_id_field(data, required=False)
        product = await self.db.fetchone("SELECT id FROM products WHERE id = ?", [product_id])
        if product is None:
            raise ApiError(404, f"no product with id {product_id}")
        created = cart_id is None
        if cart_id is None:
            cart_id = secrets.token_hex(8)
            await self.db.execute(
                "INSERT INTO carts (id, status, created_at) VALUES (?, 'open', ?)",
                [cart_id, time.time()],
            )
        else:
            await self._open_cart(cart_id)
        await self.db.execute(
            "INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (?, ?, ?) "
            "ON CONFLICT (cart_id, product_id) DO UPDATE SET "
            f"quantity = MIN(quantity + excluded.quantity, {MAX_QUANTITY})",
            [cart_id, product_id, quantity],
        )
        cart = await self._cart_json(cart_id)
        return JSONResponse(cart, status_code=201 if created else 200)

    async def _open_cart(self, cart_id: str) -> None:
        row = await self.db.fetchone("SELECT status FROM carts WHERE id = ?", [cart_id])
        if row is None:
            raise ApiError(404, f"no cart with id {cart_id!r}")
        if row["status"] == "paying":
            raise ApiError(409, f"cart {cart_id!r} is being checked out; wait for the checkout to finish")
        if row["status"] != "open":
            raise ApiError(409, f"cart {cart_id!r} is already checked out; start a new cart")

    async def _cart_json(self, cart_id: str) -> dict[str, Any]:
        cart = await self.db.fetchone("SELECT id, status FROM carts WHERE id = ?", [cart_id])
        if cart is None:
            raise ApiError(404, f"no cart with id {cart_id!r}")
        rows = await self.db.fetchall(
            "SELECT i.product_id, p.name, p.price_cents, i.quantity FROM cart_items i "
            "JOIN products p ON p.id = i.product_id WHERE i.cart_id = ? ORDER BY i.product_id",
            [cart_id],
        )
        items = [
            {
                "product_id": r["product_id"],
                "name": r["name"],
                "unit_price": _price(r["price_cents"]),
                "quantity": r["quantity"],
                "line_total": _price(r["price_cents"] * r["quantity"]),
            }
            for r in rows
        ]
        return {
            "cart_id": cart_id,
            "status": cart["status"],
            "items": items,
            "item_count": sum(r["quantity"] for r in rows),
            "total": _price(sum(r["price_cents"] * r["quantity"] for r in rows)),
        }

    # GET /cart/{cart_id}
    async def get_cart(self, request: Request) -> JSONResponse:
        return JSONResponse(await self._cart_json(request.path_params["cart_id"]))

    # POST /checkout
    async def checkout(self, request: Request) -> JSONResponse:
        data = await _json_object(request)
        cart_id = _cart_id_field(data, required=True)
        assert cart_id is not None
        # Claim the cart so that concurrent checkouts of it cannot both pay.
        claimed = await self.db.execute(
            "UPDATE carts SET status = 'paying' WHERE id = ? AND status = 'open'", [cart_id]
        )
        if not claimed:
            await self._open_cart(cart_id)  # raises 404 or 409
            raise ApiError(409, f"cart {cart_id!r} cannot be checked out now; try again")
        try:
            totals = await self.db.fetchone(
                "SELECT COALESCE(SUM(p.price_cents * i.quantity), 0) AS total, "
                "COALESCE(SUM(i.quantity), 0) AS n FROM cart_items i "
                "JOIN products p ON p.id = i.product_id WHERE i.cart_id = ?",
                [cart_id],
            )
            assert totals is not None
            if totals["n"] == 0:
                raise ApiError(400, f"cart {cart_id!r} is empty; add a product with POST /cart first")
            payment_ref = await self.gateway.charge(totals["total"])
        except BaseException:
            await self.db.execute("UPDATE carts SET status = 'open' WHERE id = ?", [cart_id])
            raise
        order_id = f"ord_{secrets.token_hex(8)}"
        await self.db.transaction(
            [
                (
                    "INSERT INTO orders (id, cart_id, total_cents, item_count, payment_ref, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [order_id, cart_id, totals["total"], totals["n"], payment_ref, time.time()],
                ),
                ("UPDATE carts SET status = 'checked_out' WHERE id = ?", [cart_id]),
            ]
        )
        return JSONResponse(
            {
                "order_id": order_id,
                "cart_id": cart_id,
                "status": "paid",
                "item_count": totals["n"],
                "total": _price(totals["total"]),
            },
            status_code=201,
        )


# -- app factory ---------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _error(exc.status, exc.message)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = {404: f"no route for {request.url.path}", 405: f"method {request.method} not allowed"}
    return JSONResponse(
        {"error": message.get(exc.status_code, exc.detail), "status": exc.status_code},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    return _error(500, "internal server error")


def create_app(
    fixed: bool = False,
    db_path: str | os.PathLike[str] | None = None,
    *,
    db_latency: float = DEFAULT_LATENCY,
    seed: int = 0,
) -> Starlette:
    """Build the demo shop ASGI app.

    Args:
        fixed: False (default) keeps the three deliberate problems; True removes them.
        db_path: SQLite file to use (created and seeded when new); None: a temporary
            file, deleted at shutdown.
        db_latency: simulated database round trip in s, awaited after every query.
        seed: seed of the payment gateway's delay generator.

    The database is opened (and seeded) here, so the app answers at once, also under a
    TestClient without lifespan; it is closed at lifespan shutdown. ``app.state.db``
    is the :class:`~surge.demo.db.Database` (its ``query_count`` counts queries) and
    ``app.state.shop`` the handlers.
    """
    db = Database(db_path, latency=db_latency)
    try:
        shop = Shop(db, fixed=fixed, seed=seed)
    except BaseException:
        db.close()
        raise

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            db.close()

    routes = [
        Route("/health", shop.health, methods=["GET"]),
        Route("/categories", shop.categories, methods=["GET"]),
        Route("/products", shop.list_products, methods=["GET"]),
        Route("/products/search", shop.search, methods=["GET"]),
        Route("/products/{product_id:int}", shop.product_detail, methods=["GET"]),
        Route("/products/{product_id:int}/recommendations", shop.recommendations, methods=["GET"]),
        Route("/cart", shop.add_to_cart, methods=["POST"]),
        Route("/cart/{cart_id}", shop.get_cart, methods=["GET"]),
        Route("/checkout", shop.checkout, methods=["POST"]),
    ]
    handlers: dict[Any, Callable[..., Any]] = {
        ApiError: _api_error,
        HTTPException: _http_error,
        Exception: _server_error,
    }
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.state.db = db
    app.state.shop = shop
    app.state.fixed = fixed
    return app
