"""The README's Clients examples run verbatim against a live `eventgate serve` (only the
addresses are the test's): the Python and TypeScript snippets, and the `eventgate listen`
command line."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys

import httpx
import psycopg

from tests.clients.test_typescript_sdk import PACKAGE, built_package
from tests.helpers import ROOT, api_process, auth, make_key, running_receiver, wait_for

README = (ROOT / "README.md").read_text()
README_ADDRESS = "http://127.0.0.1:8080"
__all__ = ["built_package"]  # the fixture, used here too


def client_example(language: str) -> str:
    """The README's marked example in this language."""
    found = re.search(rf"<!-- client-example: {language} -->\n```\w+\n(.*?)```", README, re.S)
    assert found, language
    return found.group(1)


def _streams(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM event_streams").fetchone()[0]


async def _run_while_an_event_comes(command: list[str], database_url: str, base: str, key: str):
    """Run an example that follows the stream; once its stream is open, ingest the event it
    waits for. Returns its exit code and output."""
    env = {**os.environ, "EVENTGATE_URL": base, "EVENTGATE_API_KEY": key}
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=PACKAGE,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    await wait_for(lambda: _streams(database_url) == 1, what="the example's stream")
    async with httpx.AsyncClient(base_url=base) as http:
        event = {"source": "shop", "event_type": "order.paid", "payload": {"order": 43}}
        assert (await http.post("/v1/events", json=event, headers=auth(key))).status_code == 201
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode, output.decode()


async def test_the_python_example_runs_verbatim(database_url):
    key = await make_key(database_url)
    with api_process(database_url) as base:
        command = [sys.executable, "-c", client_example("python")]
        code, output = await _run_while_an_event_comes(command, database_url, base, key)
    assert code == 0, output
    assert "{'order': 42}" in output
    assert "live: {'order': 43}" in output


async def test_the_typescript_example_runs_verbatim(built_package, database_url):
    key = await make_key(database_url)
    script = PACKAGE / "readme-example.test-run.mjs"  # inside the package: it imports itself
    script.write_text(client_example("typescript"))
    try:
        with api_process(database_url) as base:
            command = ["node", str(script)]
            code, output = await _run_while_an_event_comes(command, database_url, base, key)
    finally:
        script.unlink()
    assert code == 0, output
    assert "{ order: 42 }" in output
    assert "live: { order: 43 }" in output


async def test_the_listen_command_line_runs_verbatim(database_url):
    key = await make_key(database_url)
    line = re.search(r"<!-- listen-example -->\n```sh\n(.*?)\n```", README, re.S).group(1)
    async with running_receiver() as receiver:
        with api_process(database_url) as base:
            given = line.replace(README_ADDRESS, base).replace(
                "http://localhost:3000/hook", receiver.endpoint_url("hook")
            )
            argv = shlex.split(given)
            assert argv[:2] == ["eventgate", "listen"]
            process = subprocess.Popen(
                [sys.executable, "-m", "cli", *argv[1:]],
                cwd=ROOT,
                env={**os.environ, "EVENTGATE_API_KEY": key},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            secret = process.stdout.readline() and process.stdout.readline().split()[2]
            receiver.secrets["hook"] = [secret]
            await wait_for(lambda: _streams(database_url) == 1)
            async with httpx.AsyncClient(base_url=base) as http:
                for event_type in ("order.refunded", "order.paid"):
                    body = {"source": "shop", "event_type": event_type, "payload": {}}
                    await http.post("/v1/events", json=body, headers=auth(key))
            await wait_for(lambda: len(receiver.received) == 1)
            process.send_signal(signal.SIGINT)
            output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    assert receiver.received[0].body["event_type"] == "order.paid"
    assert receiver.received[0].verified
