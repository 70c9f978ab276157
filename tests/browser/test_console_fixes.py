"""Each thing a new user found missing or wrong in the console, walked in Chromium at 1,280
and 400 px as a person signed in with email and password: the deliveries list's endpoint
and type columns and its typed endpoint filter, bulk retry, event status from its deliveries,
payload search, forms that keep what was typed, a retry that says when it really goes out,
sources created and edited, revoked keys hidden, audit entries linking to what they changed,
the portal's event-type catalogue and the favicon. Every page is photographed, and none
scrolls sideways."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest
from playwright.async_api import Browser, Page, expect

from tests.app.console.helpers import make_user
from tests.browser.test_console import seed, until_shown
from tests.browser.test_console_users import WIDTHS, shoot, sign_in
from tests.helpers import make_key, wait_for

TIMEOUT_MS = 20_000
SCHEMA = {
    "type": "object",
    "properties": {"invoice": {"type": "string"}, "amount": {"type": "integer"}},
    "required": ["invoice", "amount"],
}


async def deliveries_list(page: Page, base: str, receiver, shots: Path, tag: str) -> None:
    """Endpoint and event type columns; the endpoint filter takes a typed piece of its URL."""
    await page.goto(f"{base}/console/deliveries")
    rows = page.locator("#deliveries")
    await expect(rows).to_contain_text("invoice.paid")
    await expect(rows).to_contain_text(receiver.endpoint_url("cust-1"))
    await expect(rows).to_contain_text(receiver.endpoint_url("cust-2"))
    await page.fill("input[name=endpoint]", "cust-2")
    await page.click("form.filters button[type=submit]")
    await expect(rows).to_contain_text(receiver.endpoint_url("cust-2"))
    await expect(rows).not_to_contain_text(receiver.endpoint_url("cust-1"))
    await shoot(page, shots, f"{tag}-20-deliveries-filtered-by-endpoint")


async def bulk_retry(page: Page, base: str, shots: Path, tag: str) -> None:
    """The dead letters of a filtered list, sent again in one click (confirmed)."""
    await page.goto(f"{base}/console/deliveries?status=dead")
    await shoot(page, shots, f"{tag}-21-dead-letters")
    await page.click("form.bulk button")
    await expect(page.locator(".notice")).to_contain_text("Queued again")
    await page.goto(f"{base}/console/deliveries?status=succeeded&endpoint=cust-1")
    await until_shown(page, "#deliveries .badge.succeeded")
    await shoot(page, shots, f"{tag}-22-bulk-retried")


async def event_status_and_search(page: Page, base: str, shots: Path, tag: str) -> None:
    """An event's status is its deliveries'; a payload value finds its event."""
    await page.goto(f"{base}/console/events")
    await until_shown(page, "#events .badge.succeeded")
    await expect(page.locator("#events tbody")).not_to_contain_text("delivering")
    await page.fill("input[name=path]", "customer.id")
    await page.fill("input[name=value]", "42")
    await page.click("form.filters button[type=submit]")
    await expect(page.locator("#events tbody tr")).to_have_count(1)
    await expect(page.locator("#events")).to_contain_text("order.placed")
    await shoot(page, shots, f"{tag}-23-events-found-by-payload")


async def forms_keep_their_input(page: Page, base: str, shots: Path, tag: str) -> None:
    """A refused form comes back as typed, the error in plain words at its field."""
    await page.goto(f"{base}/console/endpoints/new")
    await page.fill("input[name=url]", "ftp://files.example.com/drop")
    await page.fill("input[name=description]", "kept as typed")
    await page.click("form.stacked button[type=submit]")
    await expect(page.locator("#error-url")).to_contain_text("full URL")
    await expect(page.locator("#error-url")).not_to_contain_text("regex")
    await expect(page.locator("input[name=description]")).to_have_value("kept as typed")
    await shoot(page, shots, f"{tag}-24-endpoint-form-refused")
    await page.goto(f"{base}/console/event-types/new")
    await page.fill("input[name=name]", "broken.schema")
    await page.fill("textarea[name=schema]", '{"type": "object",')
    await page.click("form.stacked button[type=submit]")
    await expect(page.locator("#error-schema")).to_contain_text("not valid JSON; look near line 1")
    await expect(page.locator("textarea[name=schema]")).to_have_value('{"type": "object",')
    await expect(page.locator("input[name=name]")).to_have_value("broken.schema")
    await shoot(page, shots, f"{tag}-25-event-type-form-refused")


async def retry_behind_an_open_circuit(
    page: Page, base: str, database_url: str, endpoint_id: str, shots: Path, tag: str
) -> None:
    """Retrying toward an endpoint whose circuit is open says it waits for the probe."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE endpoints SET circuit_open_until = now() + interval '10 minutes',"
            " consecutive_failures = 5 WHERE id = %s",
            (endpoint_id,),
        )
    await page.goto(f"{base}/console/deliveries?status=dead")
    await page.locator("#deliveries a[href*='/deliveries/']").first.click()
    await page.click("text=Retry now")
    await expect(page.locator(".notice")).to_contain_text("circuit is open")
    await expect(page.locator("#next-try")).to_contain_text("next probe")
    await expect(page.locator("#next-try")).to_contain_text("after 5 failures")
    await shoot(page, shots, f"{tag}-26-retry-behind-open-circuit")


async def sources_made_and_edited(page: Page, base: str, shots: Path, tag: str) -> None:
    """A source is created and edited in the console; its secret is never shown back."""
    await page.goto(f"{base}/console/sources/new")
    await page.fill("input[name=name]", f"shop-{tag}")
    await page.fill("input[name=secret]", "a-secret-typed-once")
    await page.check("input[name=rule][value=event_type]")
    await page.fill("input[name=rule_value]", "shop.order")
    await page.click("form.stacked button[type=submit]")
    await expect(page.locator("h1")).to_contain_text(f"shop-{tag}")
    await shoot(page, shots, f"{tag}-27-source-created")
    await page.click("main >> text=Edit")
    await page.fill("input[name=keep_headers]", "X-Shop-Topic")
    await page.click("form.stacked button[type=submit]")
    await expect(page.locator("main")).to_contain_text("x-shop-topic")
    assert "a-secret-typed-once" not in await page.content()
    await shoot(page, shots, f"{tag}-28-source-edited")


async def revoked_keys_and_audit_links(
    page: Page, base: str, api: httpx.AsyncClient, shots: Path, tag: str
) -> None:
    """A revoked key leaves the list unless asked for; audit entries link to their resource."""
    made = await api.post("/v1/keys", json={"name": "old ci", "scopes": ["events:write"]})
    assert made.status_code == 201, made.text
    assert (await api.delete(f"/v1/keys/{made.json()['id']}")).status_code == 200
    await page.goto(f"{base}/console/keys")
    await expect(page.locator("main")).not_to_contain_text("old ci")
    await page.click("text=show them")
    await expect(page.locator("main")).to_contain_text("old ci")
    await shoot(page, shots, f"{tag}-29-revoked-keys-shown")
    await page.goto(f"{base}/console/audit")
    await page.locator("#audit a[href*='/console/sources/']").first.click()
    await expect(page.locator("h1")).to_contain_text(f"shop-{tag}")
    await shoot(page, shots, f"{tag}-30-audit-link-followed")


async def portal_catalogue(page: Page, api: httpx.AsyncClient, shots: Path, tag: str) -> None:
    """A customer's portal lists the event types with each one's schema and an example."""
    body = {"name": "invoice.issued", "description": "An invoice was issued", "schema": SCHEMA}
    assert (await api.post("/v1/event-types", json=body)).status_code == 201
    body = {"channel": "cust-1", "allowed_origin": "https://app.example.com"}
    made = await api.post("/v1/portal-links", json=body)
    assert made.status_code == 201, made.text
    await page.goto(made.json()["url"])
    await page.click("nav >> text=Event types")
    card = page.locator("#type-invoice\\.issued")
    await expect(card).to_contain_text("An invoice was issued")
    await expect(card.locator("pre.example")).to_contain_text('"amount"')
    await shoot(page, shots, f"{tag}-31-portal-catalogue")


async def favicon(page: Page, base: str) -> None:
    """Every page names an icon, and it is served."""
    await page.goto(f"{base}/console/")
    href = await page.locator("link[rel=icon]").get_attribute("href")
    assert href
    icon = await page.request.get(f"{base}{href}")
    assert icon.status == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")


async def send(api: httpx.AsyncClient, channel: str, event_type: str, payload: dict) -> None:
    """One event to one customer's endpoint."""
    body = {"source": "shop", "event_type": event_type, "payload": payload, "channels": [channel]}
    assert (await api.post("/v1/events", json=body)).status_code == 201


@pytest.mark.parametrize("tag", list(WIDTHS))
async def test_each_fixed_item_in_a_real_browser(
    browser: Browser, live_api, worker, receiver, screenshots, database_url, tag
):
    key = await make_key(database_url)
    await make_user(database_url, f"ada-{tag}@example.com")
    async with httpx.AsyncClient(base_url=live_api, headers={"X-API-Key": key}) as api:
        ids = await seed(api, receiver)  # cust-1's first delivery died
        await send(api, "cust-2", "order.placed", {"customer": {"id": 42}})
        context = await browser.new_context(viewport={"width": WIDTHS[tag], "height": 800})
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        await sign_in(page, live_api, f"ada-{tag}@example.com")
        await deliveries_list(page, live_api, receiver, screenshots, tag)
        await bulk_retry(page, live_api, screenshots, tag)
        await event_status_and_search(page, live_api, screenshots, tag)
        await forms_keep_their_input(page, live_api, screenshots, tag)
        receiver.scripts["cust-1"] = [500, 500, 500]
        await send(api, "cust-1", "invoice.paid", {"n": 2})
        await wait_for(lambda: dead_letter(api, ids["cust-1"]), what="a second dead letter")
        await retry_behind_an_open_circuit(
            page, live_api, database_url, ids["cust-1"], screenshots, tag
        )
        await sources_made_and_edited(page, live_api, screenshots, tag)
        await revoked_keys_and_audit_links(page, live_api, api, screenshots, tag)
        await favicon(page, live_api)
        await portal_catalogue(page, api, screenshots, tag)
        await context.close()


async def dead_letter(api: httpx.AsyncClient, endpoint_id: str) -> bool:
    """Whether the endpoint has a dead delivery."""
    found = await api.get(f"/v1/deliveries?endpoint_id={endpoint_id}&status=dead")
    return bool(found.json()["deliveries"])
