"""The console and the portal as a person uses them, in Chromium: sign in, see an endpoint,
send a test event and watch its delivery arrive, retry a dead letter, open a customer's
portal (framed by its app) where another customer's endpoints are absent and refused, and
sign out. Every page is photographed into test-output/screenshots."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx
from playwright.async_api import Browser, Page, expect

from tests.app.console.test_charts import roll_up
from tests.helpers import make_key, wait_for

TIMEOUT_MS = 20_000
SECTIONS = ("Events", "Event types", "Sources", "Keys", "Audit log")


async def shoot(page: Page, screenshots: Path, name: str) -> None:
    """Photograph the whole page."""
    await page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


async def until_shown(page: Page, selector: str) -> None:
    """Reload until the selector matches (the page shows the state when it was rendered)."""
    for _ in range(100):
        if await page.locator(selector).count():
            return
        await page.wait_for_timeout(200)
        await page.reload()
    await expect(page.locator(selector).first).to_be_visible()


async def seed(api: httpx.AsyncClient, receiver) -> dict[str, str]:
    """Two customers' endpoints on the receiver and, for the first, a delivery that died."""
    ids = {}
    for name in ("cust-1", "cust-2"):
        body = {"url": receiver.endpoint_url(name), "channels": [name]}
        created = await api.post("/v1/endpoints", json=body)
        assert created.status_code == 201, created.text
        receiver.secrets[name] = [created.json()["secret"]]
        ids[name] = created.json()["endpoint"]["id"]
    receiver.scripts["cust-1"] = [500, 500, 500]  # every try of the first event fails
    event = {"source": "billing", "event_type": "invoice.paid", "payload": {"n": 1}}
    assert (await api.post("/v1/events", json={**event, "channels": ["cust-1"]})).is_success

    async def died() -> bool:
        found = await api.get(f"/v1/deliveries?endpoint_id={ids['cust-1']}&status=dead")
        return bool(found.json()["deliveries"])

    await wait_for(died, what="the first delivery to die")
    return ids


async def sign_in(page: Page, base: str, key: str, screenshots: Path) -> None:
    await page.goto(f"{base}/console/")
    await expect(page).to_have_url(f"{base}/console/sign-in")
    await shoot(page, screenshots, "01-sign-in")
    await page.fill("input[name=key]", key)
    await page.click("text=Sign in with the key")
    await expect(page.locator("h1")).to_contain_text("Overview")
    await shoot(page, screenshots, "02-overview")


async def send_a_test_event(page: Page, base: str, ids: dict, receiver, shots: Path) -> None:
    await page.click("nav >> text=Endpoints")
    await expect(page.locator("#endpoints")).to_contain_text(receiver.endpoint_url("cust-1"))
    await shoot(page, shots, "03-endpoints")
    await page.click(f"a[href='/console/endpoints/{ids['cust-1']}']")
    await page.click("text=Send test event")
    await expect(page.locator(".notice")).to_contain_text("test event")
    await until_shown(page, "#deliveries .badge.succeeded")
    assert receiver.at("cust-1")[-1].verified
    await shoot(page, shots, "04-endpoint")


async def retry_the_dead_letter(page: Page, base: str, shots: Path) -> None:
    await page.goto(f"{base}/console/deliveries?status=dead")
    await shoot(page, shots, "05-dead-letters")
    await page.locator("#deliveries a").first.click()
    await expect(page.locator("#attempts")).to_contain_text("answer 500")
    await page.locator("#attempts details summary").first.click()  # the try's headers
    await expect(page.locator("#headers-1")).to_contain_text("webhook-signature")
    await expect(page.locator("#headers-1")).to_contain_text("content-type")
    await shoot(page, shots, "06-delivery")
    await page.click("text=Retry now")
    await expect(page.locator(".notice")).to_contain_text("due again")
    await until_shown(page, "#delivery-status .succeeded")


async def add_an_authenticated_endpoint(page: Page, base: str, receiver, shots: Path) -> None:
    """The form: a refused config comes back with the error at its field and the rest kept;
    then a bearer-authenticated endpoint, its token never shown."""
    await page.goto(f"{base}/console/endpoints/new")
    await page.fill("input[name=url]", receiver.endpoint_url("authed"))
    await page.fill("input[name=description]", "partner with a token")
    await page.fill("textarea[name=config]", '{"headers": {"Host": "x"}}')
    await page.click("form.stacked button[type=submit]")
    await expect(page.locator("#error-config")).to_contain_text("Host")
    await expect(page.locator("input[name=description]")).to_have_value("partner with a token")
    await shoot(page, shots, "06b-endpoint-form-refused")
    token = '{"auth": {"type": "bearer", "token": "tok-in-the-browser"}}'
    await page.fill("textarea[name=config]", token)
    await page.click("form.stacked button[type=submit]")
    await expect(page.locator("#endpoint-kind")).to_have_text("http")
    await expect(page.locator("dl.fields")).to_contain_text("bearer")
    assert "tok-in-the-browser" not in await page.content()
    await shoot(page, shots, "06c-endpoint-with-auth")


async def open_the_portal(
    page: Page, api: httpx.AsyncClient, ids: dict, receiver, site_port: int, shots: Path
) -> None:
    allowed = f"http://localhost:{site_port}"
    created = await api.post(
        "/v1/portal-links", json={"channel": "cust-1", "allowed_origin": allowed}
    )
    assert created.status_code == 201, created.text
    url = created.json()["url"]
    # Framed by the allowed origin: the customer's endpoint, and not the other customer's.
    await page.goto(f"{allowed}/embed?src={quote(url)}")
    portal = page.frame_locator("#portal")
    await expect(portal.locator("#endpoints")).to_contain_text(receiver.endpoint_url("cust-1"))
    await expect(portal.locator("#endpoints")).not_to_contain_text(receiver.endpoint_url("cust-2"))
    await shoot(page, shots, "12-portal-embedded")
    # Another origin cannot frame it.
    await page.goto(f"http://127.0.0.1:{site_port}/embed?src={quote(url)}")
    await page.wait_for_timeout(1000)
    assert await page.frame_locator("#portal").locator("#endpoints").count() == 0
    # Opened directly: its endpoint and attempts; the other customer's pages refuse.
    await page.goto(url)
    await page.click(f"a[href$='/endpoints/{ids['cust-1']}']")
    await expect(page.locator("#deliveries")).to_contain_text("succeeded")
    await shoot(page, shots, "13-portal-endpoint")
    response = await page.goto(f"{url.rstrip('/')}/endpoints/{ids['cust-2']}")
    assert response is not None
    assert response.status == 404
    await expect(page.locator(".error")).to_contain_text("no such endpoint")
    await shoot(page, shots, "14-portal-refuses")


async def look_at_the_charts(page: Page, base: str, database_url: str, ids: dict, shots: Path):
    """The tries so far, rolled up as the task does, in the overview's and the endpoint's
    charts (the dead letter's three failures, the retry's and the test event's successes)."""
    await roll_up(database_url)
    await page.goto(f"{base}/console/")
    await expect(page.locator("#delivery-charts")).to_contain_text("failed")
    await expect(page.locator("#chart-tries rect.bad").first).to_be_attached()
    await shoot(page, shots, "06c-overview-charts")
    await page.goto(f"{base}/console/endpoints/{ids['cust-1']}?view=hour")
    await expect(page.locator("#delivery-charts h2")).to_have_text("Deliveries per hour")
    await shoot(page, shots, "06d-endpoint-charts")


async def test_console_and_portal_in_a_real_browser(
    browser: Browser, live_api, worker, receiver, embedding_site, screenshots, database_url
):
    key = await make_key(database_url)
    async with httpx.AsyncClient(base_url=live_api, headers={"X-API-Key": key}) as api:
        ids = await seed(api, receiver)
        context = await browser.new_context(viewport={"width": 1366, "height": 800})
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        await sign_in(page, live_api, key, screenshots)
        await send_a_test_event(page, live_api, ids, receiver, screenshots)
        await retry_the_dead_letter(page, live_api, screenshots)
        await add_an_authenticated_endpoint(page, live_api, receiver, screenshots)
        await look_at_the_charts(page, live_api, database_url, ids, screenshots)
        for number, section in enumerate(SECTIONS, start=7):
            await page.click(f"nav >> text={section}")
            await expect(page.locator("nav a.active")).to_have_text(section)
            await shoot(page, screenshots, f"{number:02d}-{section.lower().replace(' ', '-')}")
        await expect(page.locator("#audit")).to_contain_text("console.signed_in")
        # Signing out ends the session: the console sends the browser back to sign in.
        await page.click("text=Sign out")
        await expect(page).to_have_url(f"{live_api}/console/sign-in")
        await page.goto(f"{live_api}/console/endpoints")
        await expect(page).to_have_url(f"{live_api}/console/sign-in")
        await open_the_portal(page, api, ids, receiver, embedding_site, screenshots)
        await context.close()
