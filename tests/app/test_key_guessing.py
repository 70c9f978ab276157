"""Guessing a key's secret (its prefix is public) never locks out the holder of the right one:
not while the guesses flood in, not when its cache entry expires, not in a fresh process."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.helpers import api_process, auth, make_key

GUESSER = {"X-Forwarded-For": "203.0.113.66"}
HOLDER = {"X-Forwarded-For": "198.51.100.7"}
BEHIND_PROXY = {
    "EVENTGATE_TRUSTED_PROXIES": "127.0.0.1/32",
    "EVENTGATE_KEY_CACHE_TTL_SECONDS": "0.3",
    # Refusals still wait, but briefly: the limits are what is tested, not the delay.
    "EVENTGATE_AUTH_FAILURE_DELAY_SECONDS": "0.05",
}


def _guesses(key: str, count: int) -> list[str]:
    prefix = key.split("_")[1]
    return [f"eg_{prefix}_{'g' * 40}{n:03d}" for n in range(count)]


async def _flood(
    http: httpx.AsyncClient, guesses: list[str], headers: dict, seconds: float
) -> list[int]:
    """About 50 wrong secrets a second for `seconds`, from the guesser's address."""
    codes: list[int] = []

    async def one(guess: str) -> None:
        answer = await http.get("/v1/inbox", headers={**headers, **auth(guess)})
        codes.append(answer.status_code)

    tasks = []
    deadline = time.monotonic() + seconds
    for guess in guesses:
        if time.monotonic() > deadline:
            break
        tasks.append(asyncio.create_task(one(guess)))
        await asyncio.sleep(0.02)
    await asyncio.gather(*tasks)
    return codes


async def test_wrong_secrets_for_a_prefix_never_refuse_the_right_one(database_url):
    key = await make_key(database_url)
    with api_process(database_url, **BEHIND_PROXY) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            assert (await http.get("/v1/inbox", headers={**HOLDER, **auth(key)})).status_code == 200
            for headers in (GUESSER, {}):  # from another address, and from the holder's own
                # 25 (over twice the limit of 10): one minute window fills even when the
                # guesses straddle a minute boundary.
                guessed = [
                    (await http.get("/v1/inbox", headers={**headers, **auth(g)})).status_code
                    for g in _guesses(key, 25)
                ]
                assert 429 in guessed
                assert set(guessed) <= {401, 429}
                for _ in range(3):  # past the cache's life: verified again, never refused
                    await asyncio.sleep(0.35)
                    right = await http.get("/v1/inbox", headers={**headers, **auth(key)})
                    assert right.status_code == 200, right.text

            holder_codes: list[int] = []

            async def holder() -> None:
                for _ in range(10):
                    answer = await http.get("/v1/inbox", headers={**HOLDER, **auth(key)})
                    holder_codes.append(answer.status_code)
                    await asyncio.sleep(0.2)

            flood, _ = await asyncio.gather(
                _flood(http, _guesses(key, 200), GUESSER, 2.5), holder()
            )
            assert set(flood) <= {401, 429}
            assert 429 in flood
            assert holder_codes == [200] * 10


async def test_a_fresh_process_serves_the_holder_during_a_flood(database_url):
    key = await make_key(database_url)
    with api_process(database_url, **BEHIND_PROXY) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            flooding = asyncio.create_task(_flood(http, _guesses(key, 200), GUESSER, 3.0))
            await asyncio.sleep(0.5)  # the guesses are already failing when the holder comes
            first = await http.get("/v1/inbox", headers={**HOLDER, **auth(key)})
            flood = await flooding
    assert first.status_code == 200, first.text
    assert set(flood) <= {401, 429}
