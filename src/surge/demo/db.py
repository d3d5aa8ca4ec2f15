"""SQLite storage for the demo shop: schema, deterministic seed data, a query counter.

:class:`Database` wraps one stdlib ``sqlite3`` connection. Every query goes through
:meth:`Database.fetchall` / :meth:`~Database.fetchone` / :meth:`~Database.execute` /
:meth:`~Database.transaction`, which

- count it (:attr:`Database.query_count`, and any hooks added with
  :meth:`Database.add_hook`), so tests and curious engineers can see how many
  queries a request issued; and
- wait :attr:`Database.latency` seconds after it (``await asyncio.sleep``), a
  simulated network round trip, as if the database ran on another host the way a
  production database does. SQLite itself answers in microseconds, which would hide
  the cost of issuing one query per row; the round trip makes it visible.

The seed is deterministic: the same :data:`SEED` always gives the same ~200
products in 8 categories, each with 3 to 8 reviews.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from surge.api.errors import UsageError

SEED = 20240601
DEFAULT_LATENCY = 0.001  # s: one database round trip (a database in a neighbouring zone)
PRODUCTS_PER_CATEGORY = 25

QueryHook = Callable[[str, Sequence[Any]], None]

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    description TEXT    NOT NULL,
    price_cents INTEGER NOT NULL,
    stock       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS products_category ON products(category);
CREATE TABLE IF NOT EXISTS reviews (
    id         INTEGER PRIMARY KEY,
    product_id INTEGER NOT NULL REFERENCES products(id),
    author     TEXT    NOT NULL,
    rating     INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body       TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS reviews_product ON reviews(product_id);
CREATE TABLE IF NOT EXISTS carts (
    id         TEXT PRIMARY KEY,
    status     TEXT NOT NULL DEFAULT 'open',   -- open | paying | checked_out
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cart_items (
    cart_id    TEXT    NOT NULL REFERENCES carts(id),
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity   INTEGER NOT NULL,
    PRIMARY KEY (cart_id, product_id)
);
CREATE TABLE IF NOT EXISTS orders (
    id          TEXT    PRIMARY KEY,
    cart_id     TEXT    NOT NULL UNIQUE REFERENCES carts(id),
    total_cents INTEGER NOT NULL,
    item_count  INTEGER NOT NULL,
    payment_ref TEXT    NOT NULL,
    created_at  REAL    NOT NULL
);
"""


class Database:
    """One SQLite connection with counted, round-trip-delayed queries.

    Args:
        path: database file; created and seeded when it has no products yet, reused
            otherwise. None: a fresh file in a temporary directory, removed by
            :meth:`close` (or at interpreter exit).
        latency: simulated round trip in s awaited after every query (0 for none).

    Use it from one event loop; each query runs synchronously, so a single
    statement (or :meth:`transaction`) is atomic with respect to other requests.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, latency: float = DEFAULT_LATENCY):
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        if path is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="surge-demo-")
            path = Path(self._tmpdir.name) / "shop.sqlite3"
        self.path = Path(path)
        self.latency = float(latency)
        self.query_count = 0
        self._hooks: list[QueryHook] = []
        try:
            self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            self._cleanup_tmpdir()
            raise UsageError(
                f"cannot open demo database {str(self.path)!r}: {exc}; pass a writable file path with --db"
            ) from None
        self.conn.row_factory = sqlite3.Row
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.executescript(SCHEMA)
            if self.conn.execute("SELECT COUNT(*) FROM products").fetchone()[0] == 0:
                seed(self.conn)
        except sqlite3.Error as exc:
            self.close()
            raise UsageError(
                f"cannot use {str(self.path)!r} as the demo database ({exc}): "
                "pass a new file path with --db, or leave --db out for a temporary one"
            ) from None

    # -- counting ------------------------------------------------------------------

    def add_hook(self, hook: QueryHook) -> Callable[[], None]:
        """Call ``hook(sql, params)`` for every query from now on; returns a remover."""
        self._hooks.append(hook)
        return lambda: self._hooks.remove(hook)

    def _run(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        self.query_count += 1
        for hook in self._hooks:
            hook(sql, params)
        return self.conn.execute(sql, params)

    async def _round_trip(self) -> None:
        if self.latency > 0:
            await asyncio.sleep(self.latency)

    # -- queries -------------------------------------------------------------------

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        rows = self._run(sql, params).fetchall()
        await self._round_trip()
        return rows

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        row = self._run(sql, params).fetchone()
        await self._round_trip()
        return row

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement; returns the number of rows it changed."""
        n = self._run(sql, params).rowcount
        await self._round_trip()
        return n

    async def transaction(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> None:
        """Run write statements atomically, in one round trip (think: a stored procedure)."""
        stmts = list(statements)
        self.query_count += len(stmts)
        for sql, params in stmts:
            for hook in self._hooks:
                hook(sql, params)
        with self.conn:
            self.conn.execute("BEGIN")
            for sql, params in stmts:
                self.conn.execute(sql, params)
        await self._round_trip()

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass
        self._cleanup_tmpdir()

    def _cleanup_tmpdir(self) -> None:
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None


# -- seed data ---------------------------------------------------------------------

_ADJECTIVES = (
    "Compact", "Classic", "Deluxe", "Everyday", "Premium", "Rugged",
    "Smart", "Ultralight", "Vintage", "Eco", "Pro", "Essential",
)

# category -> (nouns, price range in whole currency units, descriptive phrases)
_CATALOG: dict[str, tuple[tuple[str, ...], tuple[int, int], tuple[str, ...]]] = {
    "electronics": (
        ("Headphones", "Speaker", "Power Bank", "Webcam", "Keyboard", "Mouse", "Charger", "Monitor Arm"),
        (15, 250),
        (
            "delivers crisp sound with deep bass",
            "charges over USB-C in under two hours",
            "pairs over Bluetooth in seconds",
            "runs all day on a single charge",
            "plugs into any laptop without drivers",
            "has a low-latency wireless connection",
            "ships with a braided cable and a travel pouch",
            "keeps your desk tidy and your setup ergonomic",
        ),
    ),
    "books": (
        ("Novel", "Cookbook", "Field Guide", "Atlas", "Biography", "Poetry Collection", "Workbook", "Anthology"),
        (8, 45),
        (
            "is printed on acid-free paper with a sewn binding",
            "collects stories from award-winning authors",
            "is illustrated with full-colour photographs",
            "makes a thoughtful gift for curious readers",
            "includes an index and a reading guide",
            "is written in a warm and witty voice",
            "has been translated into twenty languages",
            "rewards slow reading on a quiet evening",
        ),
    ),
    "kitchen": (
        ("Chef Knife", "Cutting Board", "Frying Pan", "Kettle", "Mixing Bowl", "Coffee Grinder", "Teapot", "Spatula"),
        (10, 180),
        (
            "is dishwasher safe and easy to clean",
            "heats evenly on gas and induction hobs",
            "holds a razor sharp edge for years",
            "is made from food-safe stainless steel",
            "brews a rich cup of coffee in minutes",
            "has a non-slip handle that stays cool",
            "stacks neatly to save cupboard space",
            "turns weeknight cooking into a pleasure",
        ),
    ),
    "garden": (
        ("Trowel", "Watering Can", "Pruning Shears", "Planter", "Hose Reel", "Bird Feeder", "Seed Kit", "Kneeler"),
        (6, 120),
        (
            "is weatherproof and rust resistant",
            "helps seedlings thrive from spring to autumn",
            "has an ergonomic grip for long afternoons outdoors",
            "is made from recycled plastic and steel",
            "attracts songbirds to the garden all year",
            "folds flat for winter storage in the shed",
            "keeps raised beds and borders neat",
            "waters hanging baskets without a splash",
        ),
    ),
    "toys": (
        ("Building Set", "Puzzle", "Plush Bear", "Kite", "Board Game", "Race Car", "Train Set", "Craft Kit"),
        (5, 90),
        (
            "sparks imagination in children of all ages",
            "is made from non-toxic, child-safe materials",
            "brings the whole family together for game night",
            "has hundreds of colourful pieces to build with",
            "teaches problem solving through play",
            "survives rough play in the garden",
            "comes with clear step by step instructions",
            "fits in a backpack for holidays and trips",
        ),
    ),
    "sports": (
        ("Yoga Mat", "Water Bottle", "Dumbbell Set", "Running Belt", "Jump Rope", "Tennis Racket", "Bike Light", "Foam Roller"),
        (7, 200),
        (
            "supports your training from warm-up to cool-down",
            "is sweat resistant and easy to wipe clean",
            "keeps drinks cold for twenty four hours",
            "gives extra grip on wet and slippery surfaces",
            "is trusted by coaches and weekend athletes",
            "packs small for the gym bag or the trail",
            "helps you recover faster after long runs",
            "is visible from far away on night rides",
        ),
    ),
    "clothing": (
        ("Rain Jacket", "Wool Sweater", "T-Shirt", "Hiking Socks", "Beanie", "Chinos", "Hoodie", "Scarf"),
        (12, 160),
        (
            "is cut from soft organic cotton",
            "keeps you warm without the bulk",
            "is breathable, windproof and water repellent",
            "has a relaxed fit that layers easily",
            "is machine washable and keeps its shape",
            "is knitted from merino wool that never itches",
            "comes in a range of earthy colours",
            "is stitched to last for many seasons",
        ),
    ),
    "beauty": (
        ("Face Cream", "Shampoo", "Lip Balm", "Sunscreen", "Hand Soap", "Body Oil", "Hair Brush", "Face Mask"),
        (4, 70),
        (
            "is gentle on sensitive skin",
            "is made with natural plant extracts",
            "leaves hair soft, shiny and easy to style",
            "protects against sun and wind all day",
            "is free from parabens and artificial fragrance",
            "absorbs quickly without a greasy feel",
            "is dermatologist tested and cruelty free",
            "comes in a refillable glass bottle",
        ),
    ),
}

_GENERIC_PHRASES = (
    "Designed in small batches and backed by a two year warranty.",
    "Our customers keep coming back for this one.",
    "Free returns within thirty days, no questions asked.",
    "A best seller in our shop for three seasons running.",
    "Packed in plastic-free, recyclable packaging.",
    "Great value for everyday use.",
)

_AUTHORS = (
    "Alex", "Sam", "Priya", "Jordan", "Mei", "Lucas", "Amara", "Noah", "Sofia", "Kenji",
    "Fatima", "Oliver", "Ines", "Tariq", "Hannah", "Mateo", "Zoe", "Ravi", "Elena", "Kwame",
)

_REVIEWS = {
    5: ("Absolutely love it, exceeded my expectations.", "Five stars, would buy again.",
        "Perfect gift, arrived quickly.", "Best purchase I made this year."),
    4: ("Very good quality for the price.", "Does what it says, minor quibbles only.",
        "Solid and well made, recommended."),
    3: ("It is fine, nothing special.", "Decent, but the colour is not as pictured.",
        "Average quality, took a while to arrive."),
    2: ("Disappointed, it feels cheap.", "Stopped working properly after a month."),
    1: ("Arrived broken and support was slow.", "Would not recommend."),
}


def seed(conn: sqlite3.Connection, *, seed_value: int = SEED) -> None:
    """Fill empty product and review tables with the deterministic demo catalogue."""
    rng = random.Random(seed_value)
    products: list[tuple[Any, ...]] = []
    reviews: list[tuple[Any, ...]] = []
    pid = 0
    for category, (nouns, (lo, hi), phrases) in _CATALOG.items():
        names = [f"{a} {n}" for a in _ADJECTIVES for n in nouns]
        for name in sorted(rng.sample(names, PRODUCTS_PER_CATEGORY)):
            pid += 1
            chosen = rng.sample(phrases, 3)
            description = (
                f"The {name} {chosen[0]}. It {chosen[1]} and {chosen[2]}. "
                f"{rng.choice(_GENERIC_PHRASES)}"
            )
            price_cents = rng.randint(lo, hi) * 100 + rng.choice((0, 49, 99))
            products.append((pid, name, category, description, price_cents, rng.randint(0, 500)))
            quality = rng.uniform(2.5, 5.0)
            for _ in range(rng.randint(3, 8)):
                rating = max(1, min(5, round(rng.gauss(quality, 0.9))))
                author = f"{rng.choice(_AUTHORS)} {rng.choice('ABCDEFGHJKLMNPRSTW')}."
                reviews.append((pid, author, rating, rng.choice(_REVIEWS[rating])))
    with conn:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO products (id, name, category, description, price_cents, stock) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            products,
        )
        conn.executemany(
            "INSERT INTO reviews (product_id, author, rating, body) VALUES (?, ?, ?, ?)", reviews
        )
