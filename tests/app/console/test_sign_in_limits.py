"""Guessing a person's password never locks them out: a flood of wrong passwords from many
addresses fills the account's shared limit, and the browser they signed in from before still
signs in; one address alone is held to its own limit. Against a real server behind a proxy."""

from __future__ import annotations

import httpx

from tests.app.console.helpers import PASSWORD, make_user, sign_in_as
from tests.helpers import api_process, early_in_a_minute

OWNER = {"X-Forwarded-For": "198.51.100.7"}
BEHIND_PROXY = {
    "EVENTGATE_TRUSTED_PROXIES": "127.0.0.1/32",
    "EVENTGATE_SIGN_IN_PER_ACCOUNT_PER_HOUR": "5",
    "EVENTGATE_SIGN_IN_PER_ADDRESS_PER_MINUTE": "8",
    "EVENTGATE_AUTH_FAILURE_DELAY_SECONDS": "0.05",  # the limits are tested, not the delay
}


def browser(base: str) -> httpx.AsyncClient:
    """A browser of its own: its own cookies, redirects seen as they come."""
    return httpx.AsyncClient(base_url=base, timeout=30, follow_redirects=False)


async def test_a_flood_of_guesses_fills_the_accounts_limit_but_not_the_owners_browser(
    database_url,
):
    await make_user(database_url, "ada@example.com")
    with api_process(database_url, **BEHIND_PROXY) as base:
        async with browser(base) as owner:
            first = await sign_in_as(owner, "ada@example.com", **OWNER)
            assert first.status_code == 303, first.text
            assert "eventgate_device" in owner.cookies
            guesses = []
            for n in range(12):  # each from an address of its own
                async with browser(base) as guesser:
                    wrong = await sign_in_as(
                        guesser,
                        "ada@example.com",
                        f"guess number {n:04d}",
                        **{"X-Forwarded-For": f"203.0.113.{n + 1}"},
                    )
                    guesses.append(wrong.status_code)
            assert guesses[:4] == [401] * 4
            assert guesses[-1] == 429
            assert "Retry-After" in wrong.headers
            async with browser(base) as stranger:  # the right password, a browser never used
                elsewhere = await sign_in_as(
                    stranger, "ada@example.com", **{"X-Forwarded-For": "192.0.2.9"}
                )
                assert elsewhere.status_code == 429
            again = await sign_in_as(owner, "ada@example.com", **OWNER)
            assert again.status_code == 303, again.text
            assert (await owner.get("/console/", headers=OWNER)).status_code == 200


async def test_one_address_is_held_to_its_own_limit(database_url):
    await make_user(database_url, "ada@example.com")
    await make_user(database_url, "bob@example.com")
    guesser_address = {"X-Forwarded-For": "203.0.113.50"}
    with api_process(database_url, **BEHIND_PROXY) as base:
        await early_in_a_minute()
        async with browser(base) as guesser:
            codes = [
                (
                    await sign_in_as(
                        guesser, f"user{n}@example.com", "nope nope nope", **guesser_address
                    )
                ).status_code
                for n in range(10)
            ]
        assert codes[:8] == [401] * 8
        assert codes[8:] == [429, 429]
        async with browser(base) as bob:
            signed_in = await sign_in_as(bob, "bob@example.com", PASSWORD, **OWNER)
            assert signed_in.status_code == 303
