"""An endpoint's transformation in the console, in Chromium: code that does not load is
refused with its line and what was typed stays; a test run shows what would be sent; a saved
version reshapes the next real delivery; at 400 px nothing scrolls sideways. Photographed
into test-output/screenshots."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.browser.test_console import TIMEOUT_MS, shoot
from tests.helpers import make_key, running_receiver, wait_for

BROKEN = "function handler(webhook) {\n  return webhook +;\n}"
GOOD = """function handler(webhook) {
  webhook.payload = { text: "Invoice " + webhook.payload.payload.invoice };
  return webhook;
}"""


async def editor_of(
    browser: Browser, live_api: str, key: str, owner: str
) -> tuple[BrowserContext, Page]:
    """Sign in with the key and open the transformation editor of `owner` (its console path)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await page.goto(f"{live_api}/console/sign-in")
    await page.fill("input[name=key]", key)
    await page.click("text=Sign in with the key")
    await page.goto(f"{live_api}/console/{owner}")
    await page.click("#transformation-link")
    return context, page


async def test_the_editor_refuses_tests_saves_and_the_next_delivery_is_reshaped(
    browser: Browser, live_api, worker, screenshots, database_url
):
    key = await make_key(database_url)
    async with (
        running_receiver() as receiver,
        httpx.AsyncClient(base_url=live_api, headers={"X-API-Key": key}) as api,
    ):
        created = await api.post("/v1/endpoints", json={"url": receiver.endpoint_url("chat")})
        endpoint = created.json()["endpoint"]
        receiver.secrets["chat"] = [created.json()["secret"]]

        context, page = await editor_of(browser, live_api, key, f"endpoints/{endpoint['id']}")

        await page.fill("#code", BROKEN)
        await page.click("#save")
        await expect(page.locator("#transformation-error")).to_contain_text("line 2")
        await expect(page.locator("#code")).to_have_value(BROKEN)  # what was typed stays
        await shoot(page, screenshots, "30-transformation-refused")

        await page.fill("#code", GOOD)
        await page.fill("#payload", '{"invoice": "in_7"}')
        await page.click("#test")
        await expect(page.locator("#transformation-result")).to_contain_text(
            '"text": "Invoice in_7"'
        )
        await expect(page.locator("#code")).to_have_value(GOOD)
        await shoot(page, screenshots, "31-transformation-tested")

        await page.click("#save")
        await expect(page.locator(".notice")).to_contain_text("Saved")
        await expect(page.locator("#versions")).to_contain_text("function handler(webhook) {")
        await shoot(page, screenshots, "32-transformation-saved")

        event = {"source": "billing", "event_type": "invoice.paid", "payload": {"invoice": "in_9"}}
        assert (await api.post("/v1/events", json=event)).status_code == 201
        await wait_for(lambda: receiver.at("chat"), timeout=20)
        [arrived] = receiver.at("chat")
        assert arrived.body == {"text": "Invoice in_9"}
        assert arrived.verified

        await page.set_viewport_size({"width": 400, "height": 800})
        await page.reload()
        width = await page.evaluate("document.documentElement.scrollWidth")
        await shoot(page, screenshots, "33-transformation-400px")
        assert width <= 400
        await context.close()


RENAME = """function handler(webhook) {
  webhook.event_type = "shop." + webhook.payload.type;
  return webhook;
}"""


async def test_a_sources_editor_tests_and_saves_and_the_trigger_uses_it(
    browser: Browser, live_api, screenshots, database_url
):
    key = await make_key(database_url)
    async with httpx.AsyncClient(base_url=live_api, headers={"X-API-Key": key}) as api:
        body = {"name": "shop", "verification": {"scheme": "none"}, "event_type": "shop.event"}
        source = (await api.post("/v1/sources", json=body)).json()["source"]
        context, page = await editor_of(browser, live_api, key, f"sources/{source['id']}")
        await page.fill("#code", RENAME)
        await page.fill("#payload", '{"type": "order.created"}')
        await page.click("#test")
        result = page.locator("#transformation-result")
        await expect(result).to_contain_text("Would store")
        await expect(result).to_contain_text('"event_type": "shop.order.created"')
        await page.click("#save")
        await expect(page.locator(".notice")).to_contain_text("Saved")
        await shoot(page, screenshots, "34-source-transformation")
        await context.close()
        answer = await api.post(source["trigger_path"], json={"type": "order.paid"})
        assert answer.status_code == 202, answer.text
        stored = await api.get(f"/v1/events/{answer.json()['event_id']}")
        assert stored.json()["event_type"] == "shop.order.paid"
