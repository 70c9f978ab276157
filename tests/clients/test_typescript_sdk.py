"""The TypeScript SDK (clients/typescript): built with tsc and tested with Node's test runner
against a real `eventgate dev`, with real deliveries of its worker to verify."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.cli.test_cli import free_port, start_dev, stop
from tests.helpers import ROOT, running_receiver, wait_for

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


@pytest.fixture
def dev(tmp_path) -> Iterator[tuple[str, str, str]]:
    """A real `eventgate dev` (embedded Postgres, API and worker): URL, admin key, database."""
    port = free_port()
    process, lines = start_dev(tmp_path / "dev", port)
    values = dict(line.split("=", 1) for line in lines if line.startswith("EVENTGATE_API_KEY="))
    database = next(line.split(" ", 1)[1] for line in lines if line.startswith("Database: "))
    try:
        yield f"http://127.0.0.1:{port}", values["EVENTGATE_API_KEY"], database
    finally:
        stop(process)


def _tight_key(base: str, key: str, database_url: str) -> str:
    """A key whose tier allows two requests a second."""
    env = {**os.environ, "EVENTGATE_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "cli", "rate-limits", "set-tier", "tight", "--burst", "2"]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    body = {"name": "tight", "scopes": ["events:write", "events:read"], "rate_limit_tier": "tight"}
    created = httpx.post(f"{base}/v1/keys", json=body, headers={"X-API-Key": key})
    assert created.status_code == 201, created.text
    return created.json()["key"]


async def _webhook_samples(base: str, key: str) -> list[dict]:
    """Real deliveries of one event by dev's worker, signed v1 and v1a, with the secret that
    verifies each."""
    headers = {"X-API-Key": key}
    async with running_receiver() as receiver, httpx.AsyncClient(base_url=base) as http:
        made = []
        for path, scheme in (("hmac", "v1"), ("ed", "v1a")):
            body = {"url": receiver.endpoint_url(path), "event_types": ["ts.signed"]}
            created = await http.post(
                "/v1/endpoints", json={**body, "signature_scheme": scheme}, headers=headers
            )
            assert created.status_code == 201, created.text
            made.append(created.json())
        event = {"source": "s", "event_type": "ts.signed", "payload": {"a": 1}}
        await http.post("/v1/events", json=event, headers=headers)
        await wait_for(lambda: len(receiver.received) == 2)
    secrets = {"hmac": made[0]["secret"], "ed": made[1]["endpoint"]["public_key"]}
    return [
        {"raw": r.raw.decode(), "headers": r.headers, "secret": secrets[r.path]}
        for r in receiver.received
    ]


async def test_the_typescript_sdk_passes_its_tests_against_eventgate_dev(
    built_package, dev, tmp_path
):
    base, key, database_url = dev
    samples = tmp_path / "samples.json"
    samples.write_text(json.dumps(await _webhook_samples(base, key)))
    env = {
        **os.environ,
        "EVENTGATE_URL": base,
        "EVENTGATE_API_KEY": key,
        "EVENTGATE_TIGHT_KEY": _tight_key(base, key, database_url),
        "EVENTGATE_WEBHOOK_SAMPLES": str(samples),
    }
    run = npm("test", env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# pass 5" in run.stdout, run.stdout
