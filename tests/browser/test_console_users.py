"""A team in the console, in Chromium at 1,280 and 400 px: the admin signs in with email and
password, invites a viewer, who joins through the link (once), reads pages and is refused a
write; the admin turns on a second factor and signs in again with a code. Every page is
photographed, and none scrolls sideways at 400 px."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pyotp
import pytest
from playwright.async_api import Browser, Page, expect

from tests.app.console.helpers import PASSWORD, make_user

WIDTHS = {"wide": 1280, "narrow": 400}
SECTIONS = (
    "/events",
    "/endpoints",
    "/deliveries",
    "/event-types",
    "/sources",
    "/schedules",
    "/keys",
    "/jobs",
    "/users",
    "/account",
)


async def shoot(page: Page, screenshots: Path, name: str) -> None:
    """Photograph the whole page, and check it does not scroll sideways."""
    await page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    width = page.viewport_size["width"]
    scroll = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{name}: {scroll} px wide in a {width} px window"


async def sign_in(page: Page, base: str, email: str, code: str = "") -> None:
    await page.goto(f"{base}/console/sign-in")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    if code:
        await page.fill("input[name=code]", code)
    await page.click("form.stacked >> text=Sign in")


async def invite_a_viewer(page: Page, base: str, shots: Path, tag: str) -> str:
    await page.click("nav >> text=Users")
    await page.fill("input[name=email]", "grace@example.com")
    await page.select_option("select[name=role] >> nth=-1", "viewer")
    await page.click("text=Create invitation link")
    link = (await page.locator("#invitation-link").inner_text()).strip()
    await shoot(page, shots, f"{tag}-10-users-invitation")
    return link


async def join(browser: Browser, width: int, link: str, shots: Path, tag: str) -> None:
    context = await browser.new_context(viewport={"width": width, "height": 800})
    page = await context.new_page()
    await page.goto(link)
    await expect(page.locator("h1")).to_contain_text("Join")
    await shoot(page, shots, f"{tag}-11-invitation")
    await page.fill("input[name=password]", PASSWORD)
    await page.fill("input[name=confirm]", PASSWORD + "?")
    await page.click("button:has-text('Join')")
    await expect(page.locator(".error")).to_contain_text("differ")
    await page.fill("input[name=password]", PASSWORD)
    await page.fill("input[name=confirm]", PASSWORD)
    await page.click("button:has-text('Join')")
    await expect(page.locator("h1")).to_contain_text("Overview")
    await expect(page.locator("nav")).not_to_contain_text("Keys")
    await shoot(page, shots, f"{tag}-12-viewer-overview")
    await page.goto(link.rsplit("/console", 1)[0] + "/console/endpoints/new")
    await page.fill("input[name=url]", "https://a.example/h")
    await page.click("form.stacked button[type=submit]")
    await expect(page.locator("main")).to_contain_text("your role lacks")
    await shoot(page, shots, f"{tag}-13-viewer-refused")
    await page.goto(link)  # used: the link is spent
    await expect(page.locator("main")).to_contain_text("used or has expired")
    await context.close()


async def turn_on_totp(page: Page, base: str, shots: Path, tag: str) -> pyotp.TOTP:
    await page.click("nav >> text=Account")
    await page.click("text=Set up a second factor")
    secret = (await page.locator("#totp-secret").inner_text()).strip()
    await shoot(page, shots, f"{tag}-14-totp-setup")
    totp = pyotp.TOTP(secret)
    await page.fill("#second-factor input[name=code]", totp.now())
    await page.click("text=Turn on")
    await expect(page.locator(".notice")).to_contain_text("second factor is on")
    await shoot(page, shots, f"{tag}-15-account")
    return totp


@pytest.mark.parametrize("tag", list(WIDTHS))
async def test_a_team_in_the_console(browser: Browser, live_api, database_url, screenshots, tag):
    email = f"ada-{tag}@example.com"
    await make_user(database_url, email)
    width = WIDTHS[tag]
    context = await browser.new_context(viewport={"width": width, "height": 800})
    page = await context.new_page()
    await sign_in(page, live_api, email)
    await expect(page.locator("h1")).to_contain_text("Overview")
    await shoot(page, screenshots, f"{tag}-09-overview-as-a-person")
    link = await invite_a_viewer(page, live_api, screenshots, tag)
    assert re.fullmatch(rf"{re.escape(live_api)}/console/invitations/\S+", link)
    await join(browser, width, link, screenshots, tag)
    totp = await turn_on_totp(page, live_api, screenshots, tag)
    await page.click("text=Sign out")
    await sign_in(page, live_api, email)
    await expect(page.locator(".error")).to_contain_text("authenticator")
    await shoot(page, screenshots, f"{tag}-16-code-asked")
    await sign_in(page, live_api, email, totp.at(time.time() + 30))
    await expect(page.locator("h1")).to_contain_text("Overview")
    await page.goto(f"{live_api}/console/audit")
    await expect(page.locator("#audit")).to_contain_text(email)
    await shoot(page, screenshots, f"{tag}-17-audit-names-people")
    for section in SECTIONS:  # every section fits the window (tables scroll in their box)
        await page.goto(f"{live_api}/console{section}")
        await shoot(page, screenshots, f"{tag}-18-section{section.replace('/', '-')}")
    await context.close()
