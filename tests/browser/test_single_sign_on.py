"""Single sign-on as a person does it, in Chromium at 1,280 and 400 px: the console's button,
the provider's own log-in and consent pages (a real OpenID Connect provider on another
site), and back in the console as the invited user, with their role."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.app.console.helpers import make_user
from tests.browser.test_console_users import WIDTHS, shoot
from tests.helpers import free_port, serve_process
from tests.oidc import console_env, oidc_provider


@pytest.mark.parametrize("tag", list(WIDTHS))
async def test_single_sign_on_in_a_real_browser(browser: Browser, database_url, screenshots, tag):
    await make_user(database_url, "grace@example.com", role="viewer")
    port = free_port()
    with (
        oidc_provider(f"http://127.0.0.1:{port}/console/sign-in/oidc/callback") as issuer,
        serve_process(database_url, port, **console_env(issuer)) as (_, base),
    ):
        page = await fresh_page(browser, tag)
        await page.goto(f"{base}/console/")
        await shoot(page, screenshots, f"{tag}-40-sign-in-with-sso")
        await at_the_provider(page, issuer, "grace@example.com")
        await expect(page.locator("h1")).to_contain_text("Overview")
        await expect(page.locator("header")).to_contain_text("grace@example.com")
        await expect(page.locator("nav")).not_to_contain_text("Keys")  # a viewer
        await shoot(page, screenshots, f"{tag}-41-signed-in-with-sso")
        await page.click("text=Sign out")
        await expect(page.locator("h1")).to_contain_text("Sign in")
        await page.context.close()
        # Someone the provider knows but the team never invited is turned away, plainly.
        page = await fresh_page(browser, tag)
        await page.goto(f"{base}/console/sign-in")
        await at_the_provider(page, issuer, "mallory@example.com")
        await expect(page.locator(".error")).to_contain_text("no console account here")
        await shoot(page, screenshots, f"{tag}-42-sso-without-an-account")
        await page.context.close()


async def fresh_page(browser: Browser, tag: str) -> Page:
    """A page in a browser context of its own (no cookies at either site)."""
    context = await browser.new_context(viewport={"width": WIDTHS[tag], "height": 800})
    return await context.new_page()


async def at_the_provider(page: Page, issuer: str, login: str) -> None:
    """From the console's sign-in page: the button, the provider's log-in and consent."""
    await page.click("text=Sign in with Test SSO")
    await expect(page).to_have_url(re.compile(re.escape(f"{issuer}/interaction/")))
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", "whatever the provider asks")
    await page.click("button[type=submit]")
    await page.click("button[type=submit]")  # the provider's consent
