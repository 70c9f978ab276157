"""A real browser: Debian's Chromium driven by Playwright (no browser download), against a
real `eventgate serve` process, a real worker and a real receiver."""

from __future__ import annotations

import html
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, async_playwright

from tests.helpers import ROOT, api_process, running_worker

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Headless as root, and no calls home: this machine's network is closed.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "test-output" / "screenshots"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Chromium from the system's packages (.ci/run installs it when missing)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def screenshots() -> Path:
    """Where this run's screenshots go (test-output/screenshots, kept for a person to look at)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def live_api(worker_env: str) -> Iterator[str]:
    """A real API process on this test's database; its base URL."""
    with api_process(worker_env) as base:
        yield base


@pytest.fixture
async def worker(worker_env: str) -> AsyncIterator[None]:
    """A real procrastinate worker delivering this test's webhooks."""
    async with running_worker():
        yield


@pytest.fixture
async def embedding_site() -> AsyncIterator[int]:
    """A page that frames whatever `?src=` names, as a customer's app would; its port (open
    it as localhost or 127.0.0.1: two different origins)."""

    async def embed(request: web.Request) -> web.Response:
        src = html.escape(request.query.get("src", ""), quote=True)
        page = f'<!doctype html><title>app</title><iframe id="portal" src="{src}" width="1000" height="700"></iframe>'
        return web.Response(text=page, content_type="text/html")

    site_app = web.Application()
    site_app.router.add_get("/embed", embed)
    runner = web.AppRunner(site_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()
