from surge import check


async def hello(client):
    r = await client.get("/")
    check(r, {"status 200": lambda r: r.status == 200})
