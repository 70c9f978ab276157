"""The receiver the sustained benches deliver to: a process of its own that notes each
arrival's latency from the moment its event's POST was scheduled, and tells them."""

from __future__ import annotations

import aiohttp

RECEIVER = """
import json, sys, time
from aiohttp import web
arrivals = []
async def hook(request):
    body = await request.json()
    arrivals.append(time.time() - body["payload"]["at"])
    return web.Response(status=204)
async def stats(request):
    return web.json_response(arrivals)
async def reset(request):
    arrivals.clear()
    return web.Response(status=204)
app = web.Application()
app.router.add_post("/hook/{n}", hook)
app.router.add_get("/stats", stats)
app.router.add_post("/reset", reset)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


async def arrivals(hook: str, reset: bool = False) -> list[float]:
    """Latencies the receiver saw (and forget them when asked)."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{hook}/stats") as answer:
            found = await answer.json()
        if reset:
            await session.post(f"{hook}/reset")
    return found
