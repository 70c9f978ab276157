"""The TypeScript SDK (clients/typescript): built with tsc and tested with Node's test runner
against a live `eventgate serve`, with real deliveries to verify."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import ROOT, api_process, make_key, running_receiver, running_worker, wait_for

PACKAGE = ROOT / "clients" / "typescript"


def npm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run npm in the package; the output is kept for a failure's message."""
    return subprocess.run(
        ["npm", *args], cwd=PACKAGE, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def built_package() -> None:
    """The package installed from its lock file and compiled."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js is not installed (apt-get install nodejs npm)")
    for step in (("ci", "--no-audit", "--no-fund"), ("run", "build")):
        done = npm(*step)
        assert done.returncode == 0, done.stdout + done.stderr


def _tight_tier(database_url: str) -> None:
    env = {**os.environ, "EVENTGATE_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "cli", "rate-limits", "set-tier", "tight", "--burst", "2"]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)


async def _webhook_samples(http_base: str, key: str) -> list[dict]:
    """Real deliveries of one event, signed v1 and v1a, with the secret that verifies each."""
    import httpx

    headers = {"X-API-Key": key}
    async with running_receiver() as receiver, httpx.AsyncClient(base_url=http_base) as http:
        made = []
        for path, scheme in (("hmac", "v1"), ("ed", "v1a")):
            body = {"url": receiver.endpoint_url(path), "event_types": ["ts.signed"]}
            created = await http.post(
                "/v1/endpoints", json={**body, "signature_scheme": scheme}, headers=headers
            )
            made.append(created.json())
        async with running_worker():
            event = {"source": "s", "event_type": "ts.signed", "payload": {"a": 1}}
            await http.post("/v1/events", json=event, headers=headers)
            await wait_for(lambda: len(receiver.received) == 2)
    secrets = {"hmac": made[0]["secret"], "ed": made[1]["endpoint"]["public_key"]}
    return [
        {"raw": r.raw.decode(), "headers": r.headers, "secret": secrets[r.path]}
        for r in receiver.received
    ]


async def test_the_typescript_sdk_passes_its_tests_against_a_live_server(
    built_package, database_url, worker_env, tmp_path
):
    _tight_tier(database_url)
    key = await make_key(database_url)
    tight = await make_key(database_url, rate_limit_tier="tight")
    with api_process(database_url) as base:
        samples = tmp_path / "samples.json"
        samples.write_text(json.dumps(await _webhook_samples(base, key)))
        env = {
            **os.environ,
            "EVENTGATE_URL": base,
            "EVENTGATE_API_KEY": key,
            "EVENTGATE_TIGHT_KEY": tight,
            "EVENTGATE_WEBHOOK_SAMPLES": str(samples),
        }
        run = npm("test", env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# pass 5" in run.stdout, run.stdout
