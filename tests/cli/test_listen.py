"""`eventgate listen` as a developer runs it: a subprocess following a live server, forwarding
to a local receiver that verifies signatures, surviving the server's restart, stopped by
Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import httpx
import psycopg

from tests.helpers import (
    ROOT,
    add_endpoint,
    auth,
    free_port,
    make_key,
    running_receiver,
    running_worker,
    serve_process,
    wait_for,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _listen(base: str, key: str, forward_to: str, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "cli", "listen", "--url", base, "--forward-to", forward_to]
    return subprocess.Popen(
        [*command, *extra],
        cwd=ROOT,
        env={**os.environ, "EVENTGATE_API_KEY": key},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _open_streams(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM event_streams").fetchone()[0]


async def _post(http: httpx.AsyncClient, key: str, event_type: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        body = {"source": "shop", "event_type": event_type, "payload": {"n": i}}
        response = await http.post("/v1/events", json=body, headers=auth(key))
        assert response.status_code == 201, response.text
        ids.append(response.json()["event_id"])
    return ids


async def test_listen_forwards_signed_like_a_delivery_resumes_and_stops_on_ctrl_c(
    database_url, worker_env
):
    key = await make_key(database_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with running_receiver() as receiver, httpx.AsyncClient(base_url=base) as http:
        receiver.secrets["local"] = [SECRET]
        with serve_process(database_url, port) as (api, _):
            await add_endpoint(http, key, receiver, "real", event_types=["order.paid"])
            listen = _listen(
                base,
                key,
                receiver.endpoint_url("local"),
                "--secret",
                SECRET,
                "--types",
                "order.paid",
                "order.shipped",
            )
            await wait_for(lambda: _open_streams(database_url) == 1, what="listen's stream")
            async with running_worker():
                first = await _post(http, key, "order.paid", 3)
                await _post(http, key, "order.refunded", 1)  # not asked for
                await wait_for(
                    lambda: len(receiver.at("local")) == 3 and len(receiver.at("real")) == 3
                )
            api.kill()
            api.wait()
        # Events stored while listen was reconnecting come once each, in order.
        with serve_process(database_url, port):
            second = await _post(http, key, "order.shipped", 2)
            await wait_for(lambda: len(receiver.at("local")) == 5, timeout=30)
            await asyncio.sleep(0.5)
            listen.send_signal(signal.SIGINT)
            output, _ = listen.communicate(timeout=20)
    local = receiver.at("local")
    assert [r.body["id"] for r in local] == first + second
    assert all(r.verified for r in local), "the receiver's own verification must pass"
    # The bytes a real delivery of the same event carried, signed the same way.
    real = {r.body["id"]: r.raw for r in receiver.at("real")}
    assert all(real[r.body["id"]] == r.raw for r in local[:3])
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= set(local[0].headers)
    assert listen.returncode == 0, output
    lines = output.splitlines()
    assert f"Signed with {SECRET}" in output
    assert sum(" -> 200 " in line for line in lines) == 5
    assert any(line.startswith("Reconnected") for line in lines), output
    assert lines[-1] == "Stopped."
    assert "Traceback" not in output


async def test_listen_prints_the_secret_it_made_and_explains_a_refused_key(database_url):
    port = free_port()
    with serve_process(database_url, port):
        listen = _listen(f"http://127.0.0.1:{port}", "eg_0000000000000000_nope", "http://x/")
        output, _ = listen.communicate(timeout=20)
    assert listen.returncode == 2
    assert "Signed with whsec_" in output
    assert "the stream was refused: 401" in output
