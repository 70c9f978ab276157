"""A flood of wrong keys at the console's sign-in holds no database connection while keys are
hashed or refusals wait out their delay: API clients of the same process are still served,
and nobody gets a 503."""

from __future__ import annotations

import asyncio
import re

import httpx

from tests.helpers import api_process, auth, make_key

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def test_a_sign_in_flood_never_drains_the_pool(database_url):
    key = await make_key(database_url)
    prefix = key.split("_")[1]
    env = {"EVENTGATE_POOL_MAX_SIZE": "4", "EVENTGATE_AUTH_FAILURE_DELAY_SECONDS": "0.5"}
    with api_process(database_url, **env) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            form = await http.get("/console/sign-in")
            token = CSRF.search(form.text).group(1)
            guesses = [
                f"eg_{prefix}_{'w' * 40}{n:03d}" if n % 2 else f"eg_{n:016x}_{'z' * 43}"
                for n in range(100)
            ]

            async def sign_in(guess: str) -> int:
                answer = await http.post(
                    "/console/sign-in", data={"csrf_token": token, "key": guess}
                )
                return answer.status_code

            async def api_calls() -> list[int]:
                codes = []
                for _ in range(20):
                    answer = await http.get("/v1/inbox", headers=auth(key))
                    codes.append(answer.status_code)
                return codes

            flood = asyncio.gather(*(sign_in(g) for g in guesses))
            served = await api_calls()
            refused = await flood
    assert served == [200] * 20
    assert set(refused) <= {401, 429}, sorted(set(refused))
