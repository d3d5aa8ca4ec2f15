"""Correlation on the surge demo shop: a session per VU, test data from a file.

Start the shop, then run this file against it::

    surge demo serve                        # terminal 1
    surge run examples/login_flow.py        # terminal 2

The demo shop has no login, so its cart plays the part of a session: each VU
opens one cart the first time it runs (its "login"), keeps the cart id in
``vu.state`` and sends it with every later request, exactly as it would keep a
login token. After a few items it checks out, forgets the cart, and the next
iteration opens a new one ("logs in again").

With a real login the pattern is the same; see docs/data.md:

- a cookie session needs nothing: each VU has its own cookie jar, so the
  ``Set-Cookie`` of ``POST /login`` is sent on that VU's later requests;
- a token: ``vu.state["token"] = extract.json(r, "$.token", required=True)`` and
  ``client.headers["Authorization"] = f"Bearer {vu.state['token']}"``.

Search terms come from ``data/search_terms.csv`` (next to this file), in a
fresh random order per pass (``shuffle``); ``extract`` pulls the values the
next request needs out of each response.
"""

from surge import Feeder, Options, check, extract, scenario, sleep, uniform

options = Options(
    base_url="http://127.0.0.1:8000",
    vus=10,
    duration="20s",
    thresholds=("p95<500ms", "error_rate<1%"),
)

# Read once per worker process when the file is imported; a missing file or a
# missing "term" column stops `surge run` before any load is sent.
terms = Feeder.csv("data/search_terms.csv", strategy="shuffle", columns=["term"])

ITEMS_PER_ORDER = 3


async def open_session(client, vu) -> bool:
    """Once per VU (and again after each checkout): open a cart, remember its id."""
    r = await client.post("/cart", json={"product_id": vu.rng.randint(1, 200)}, name="/cart")
    if not check(r, {"open cart: 201": lambda r: r.status == 201}):
        return False
    vu.state["cart_id"] = extract.json(r, "$.cart_id", required=True)
    vu.state["items"] = 1
    return True


@scenario
async def shop(client, vu):
    """Search for a term from the file, add the first hit to this VU's cart; check out every few items."""
    if "cart_id" not in vu.state and not await open_session(client, vu):
        return
    cart_id = vu.state["cart_id"]

    term = terms.next()["term"]
    r = await client.get("/products/search", params={"q": term}, name="/products/search")
    check(r, {"search: 200": lambda r: r.status == 200})
    product_id = extract.json(r, "$.products[0].id")  # None when nothing matched
    await sleep(uniform(0.2, 0.6), vu.rng)
    if product_id is None:
        return

    r = await client.post("/cart", json={"cart_id": cart_id, "product_id": product_id}, name="/cart")
    check(r, {"add to cart: 200": lambda r: r.status == 200})
    vu.state["items"] += 1
    await sleep(uniform(0.2, 0.6), vu.rng)

    if vu.state["items"] >= ITEMS_PER_ORDER:
        r = await client.post("/checkout", json={"cart_id": cart_id}, name="/checkout")
        check(r, {"checkout: paid": lambda r: extract.json(r, "$.status") == "paid"})
        del vu.state["cart_id"]  # the next iteration opens a new session
