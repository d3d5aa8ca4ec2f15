"""Shoppers on the surge demo shop: browse, search, look at recommendations, buy.

Start the shop, then run this file against it::

    surge demo serve                  # terminal 1 (add --fixed for the fixed version)
    surge run examples/shop.py        # terminal 2

Each virtual user (VU) runs one of the scenarios below per iteration, picked at
random in proportion to ``weight``, pausing between steps like a person reading a
page ("think time"). ``name=`` groups URLs into one report row, so
``/products/17`` and ``/products/42`` both count as ``/products/{id}``.

docs/demo.md explains what to look for in the results.
"""

from surge import Options, check, scenario, sleep, uniform

options = Options(
    base_url="http://127.0.0.1:8000",
    vus=20,
    duration="20s",
    thresholds=(
        "p95<500ms",  # across all requests
        "error_rate<1%",
    ),
)

CATEGORIES = (
    "beauty", "books", "clothing", "electronics", "garden", "kitchen", "sports", "toys",
)
SEARCH_TERMS = (
    "wool", "coffee", "bluetooth", "garden", "puzzle", "organic", "steel", "yoga",
    "charger", "kettle", "rain", "glass", "kite", "warm", "recycled",
)


def remember(vu, product_id):
    """Keep the last few products this VU looked at; the buyer scenario buys from them."""
    seen = vu.state.setdefault("seen", [])
    seen.append(product_id)
    del seen[:-10]


@scenario(weight=5)
async def browse(client, vu):
    """List a page of products (sometimes one category), then open one of them."""
    params = {"page": vu.rng.randint(1, 5)}
    if vu.rng.random() < 0.3:
        params = {"category": vu.rng.choice(CATEGORIES), "page": 1}
    r = await client.get("/products", params=params, name="/products")
    check(r, {
        "list: status 200": lambda r: r.status == 200,
        "list: has products": lambda r: len(r.json()["products"]) > 0,
    })
    if r.status != 200:
        return
    products = r.json()["products"]
    await sleep(uniform(0.2, 0.8), vu.rng)  # reading the list

    product = vu.rng.choice(products)
    r = await client.get(f"/products/{product['id']}", name="/products/{id}")
    check(r, {"detail: status 200": lambda r: r.status == 200})
    remember(vu, product["id"])
    await sleep(uniform(0.3, 1.0), vu.rng)  # reading the reviews


@scenario(weight=2)
async def search(client, vu):
    """Search for a word, then open the first hit."""
    term = vu.rng.choice(SEARCH_TERMS)
    r = await client.get("/products/search", params={"q": term}, name="/products/search")
    check(r, {"search: status 200": lambda r: r.status == 200})
    if r.status != 200:
        return
    hits = r.json()["products"]
    await sleep(uniform(0.2, 0.6), vu.rng)
    if hits:
        r = await client.get(f"/products/{hits[0]['id']}", name="/products/{id}")
        check(r, {"detail: status 200": lambda r: r.status == 200})
        remember(vu, hits[0]["id"])
        await sleep(uniform(0.2, 0.6), vu.rng)


@scenario(weight=2)
async def recommendations(client, vu):
    """Open a product and its "you may also like" list, then follow one suggestion."""
    product_id = vu.rng.randint(1, 200)
    r = await client.get(f"/products/{product_id}", name="/products/{id}")
    check(r, {"detail: status 200": lambda r: r.status == 200})
    await sleep(uniform(0.1, 0.4), vu.rng)

    r = await client.get(
        f"/products/{product_id}/recommendations", name="/products/{id}/recommendations"
    )
    check(r, {
        "recommendations: status 200": lambda r: r.status == 200,
        "recommendations: 5 items": lambda r: len(r.json()["recommendations"]) == 5,
    })
    if r.status != 200:
        return
    await sleep(uniform(0.2, 0.6), vu.rng)
    suggestion = vu.rng.choice(r.json()["recommendations"])
    r = await client.get(f"/products/{suggestion['id']}", name="/products/{id}")
    check(r, {"detail: status 200": lambda r: r.status == 200})
    remember(vu, suggestion["id"])


@scenario(weight=2)
async def buyer(client, vu):
    """Put 1-3 products in a new cart (preferably ones seen before), review it, check out."""
    seen = vu.state.get("seen") or [vu.rng.randint(1, 200)]
    cart_id = None
    for _ in range(vu.rng.randint(1, 3)):
        body = {"product_id": vu.rng.choice(seen), "quantity": vu.rng.randint(1, 2)}
        if cart_id is not None:
            body["cart_id"] = cart_id  # add to the same cart
        r = await client.post("/cart", json=body, name="/cart")
        if not check(r, {"add to cart: 2xx": lambda r: r.status in (200, 201)}):
            return
        cart_id = r.json()["cart_id"]
        await sleep(uniform(0.2, 0.6), vu.rng)

    r = await client.get(f"/cart/{cart_id}", name="/cart/{id}")
    check(r, {"cart: status 200": lambda r: r.status == 200})
    await sleep(uniform(0.3, 1.0), vu.rng)  # typing in the card number

    r = await client.post("/checkout", json={"cart_id": cart_id}, name="/checkout")
    check(r, {
        "checkout: status 201": lambda r: r.status == 201,
        "checkout: paid": lambda r: r.json()["status"] == "paid",
    })
    if r.status == 201:
        vu.state["orders"] = vu.state.get("orders", 0) + 1
