"""Logs: JSON lines from every part (Eventgate's own, uvicorn's, procrastinate's), one per
request and per failed delivery attempt, and no key or secret in any of them."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time

import httpx

from core import logs
from tests.helpers import (
    ROOT,
    add_endpoint,
    attempts_recorded,
    auth,
    event_body,
    free_port,
    make_key,
    running_worker,
    wait_for,
)


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@contextlib.contextmanager
def json_logs(*redact: str):
    """Structured JSON logging to stderr for one test, then the test run's own again."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("json", "info", redact)
    try:
        yield
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        logs.reset()


def test_the_redactor_scrubs_keys_secrets_and_named_fields():
    redactor = logs.Redactor(["card_number"])
    key = "eg_0123456789abcdef_SECRETPART-xyz"
    line = redactor(
        None,
        "info",
        {
            "event": f"refused {key}",
            "headers": {"Authorization": f"Bearer {key}", "x-api-key": key, "accept": "*/*"},
            "payload": {"card_number": "4242", "items": [{"card_number": "1"}, "whsec_abc+/="]},
            "note": "signed with whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        },
    )
    text = json.dumps(line)
    for secret in ("SECRETPART", "4242", "MfKQ9r8", "abc+/="):
        assert secret not in text
    assert line["event"] == "refused eg_0123456789abcdef_[redacted]"
    assert line["headers"]["accept"] == "*/*"
    assert line["payload"]["items"][0] == {"card_number": "[redacted]"}


async def test_requests_and_failed_attempts_are_logged_as_json(
    client, database_url, receiver, worker_env, capfd
):
    key = await make_key(database_url)
    with json_logs():
        endpoint = await add_endpoint(client, key, receiver, "failing")
        receiver.scripts["failing"] = [500]
        await client.post("/v1/events", json=event_body(), headers=auth(key))
        async with running_worker():
            await wait_for(
                lambda: attempts_recorded(database_url), what="the failed attempt recorded"
            )
    lines = _lines(capfd.readouterr().err)
    requests = [line for line in lines if line["event"] == "request"]
    request = next(line for line in requests if line["route"] == "/v1/events")
    assert (request["method"], request["status"]) == ("POST", 201)
    assert request["key_prefix"] in key
    assert {"latency_ms", "request_id", "timestamp", "level"} <= set(request)
    failed = next(line for line in lines if line["event"] == "delivery attempt failed")
    assert (failed["endpoint_id"], failed["status_code"]) == (endpoint["id"], 500)
    assert key not in json.dumps(lines)


def test_a_served_api_logs_json_and_never_a_key_or_a_secret(database_url):
    port = free_port()
    env = {**os.environ, "EVENTGATE_DATABASE_URL": database_url, "EVENTGATE_LOG_FORMAT": "json"}
    env["EVENTGATE_AUTH_FAILURE_DELAY_SECONDS"] = "0"
    env["EVENTGATE_ALLOW_PRIVATE_DESTINATIONS"] = "true"
    command = [sys.executable, "-m", "cli", "serve", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("w+") as captured:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stderr=captured)
        try:
            key, secret = _session(base, database_url)
        finally:
            process.terminate()
            process.wait(timeout=30)
        captured.seek(0)
        text = captured.read()
    lines = _lines(text)  # every line is JSON, uvicorn's included
    assert any(line.get("logger", "").startswith("uvicorn") for line in lines)
    assert not any(line.get("logger") == "uvicorn.access" for line in lines)  # paths, tokens
    routes = {(line["route"], line["status"]) for line in lines if line["event"] == "request"}
    assert {("/v1/endpoints", 201), ("/v1/keys", 401)} <= routes
    assert key not in text
    assert key.split("_", 2)[2] not in text  # the secret part (it may itself hold "_")
    assert secret not in text
    assert secret.removeprefix("whsec_") not in text


def _session(base: str, database_url: str) -> tuple[str, str]:
    import asyncio

    key = asyncio.run(make_key(database_url))
    with httpx.Client(base_url=base) as http:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if http.get("/health/ready").status_code == 200:
                    break
            time.sleep(0.1)
        created = http.post(
            "/v1/endpoints",
            json={"url": "http://127.0.0.1:9/hook"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert created.status_code == 201, created.text
        endpoint_id = created.json()["endpoint"]["id"]
        http.get(f"/v1/endpoints/{endpoint_id}/secret", headers=auth(key))
        http.get("/v1/keys", headers=auth(key + "x"))
        http.get("/v1/keys", headers=auth("eg_0000000000000000_nope"))
    return key, created.json()["secret"]
