"""Authenticated HTTP destinations against real local servers: static headers, Basic and
bearer auth, OAuth2 client credentials from a real token endpoint, and mutual TLS with
certificates made for the test. Credentials are write-only: never in an answer, the audit log,
the attempts or a pg_dump."""

from __future__ import annotations

import base64
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from aiohttp import web

from db import events
from tests.db.test_secrets_at_rest import PG_DUMP
from tests.helpers import (
    auth,
    event_body,
    event_row,
    make_key,
    running_receiver,
    running_worker,
    wait_for,
)
from tests.pki import Authority

PASSWORD = "hunter2-password-never-shown"
HEADER_VALUE = "header-value-never-shown"
CLIENT_SECRET = "client-secret-never-shown"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def deliveries_of(database_url: str, endpoint_id: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT status, attempts, last_status_code, last_error FROM deliveries"
            " WHERE endpoint_id = %s ORDER BY created_at",
            (endpoint_id,),
        ).fetchall()


async def ingest_directly(database_url: str, endpoint_id: str) -> None:
    """Store an event for the endpoint's tenant as ingest would (the in-process API client
    must not run beside an in-process worker)."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cursor = await conn.execute("SELECT tenant_id FROM endpoints WHERE id = %s", (endpoint_id,))
        (tenant_id,) = await cursor.fetchone()
        await events.insert_with_fan_out(conn, [event_row(tenant_id)])


def dumped(database_url: str) -> str:
    return subprocess.run(
        [str(PG_DUMP), "--data-only", database_url],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


async def create(client, key: str, body: dict, receiver=None) -> dict:
    """Create an endpoint; the receiver learns its signing secret."""
    answer = await client.post("/v1/endpoints", json=body, headers=auth(key))
    assert answer.status_code == 201, answer.text
    if receiver is not None:
        receiver.secrets[body["url"].rsplit("/", 1)[1]] = [answer.json()["secret"]]
    return answer.json()["endpoint"]


async def test_headers_and_basic_auth_deliver_retry_dead_letter_and_recover_never_shown(
    client, database_url, receiver, worker_env
):
    key = await make_key(database_url)
    receiver.admits["basic"] = lambda given: given == basic("eventgate", PASSWORD)
    config = {
        "kind": "http",
        "headers": {"X-Partner-Key": HEADER_VALUE},
        "auth": {"type": "basic", "username": "eventgate", "password": "wrong"},
    }
    body = {"url": receiver.endpoint_url("basic"), "config": config}
    created = await client.post("/v1/endpoints", json=body, headers=auth(key))
    assert created.status_code == 201, created.text
    assert "wrong" not in created.text
    assert HEADER_VALUE not in created.text
    endpoint = created.json()["endpoint"]
    receiver.secrets["basic"] = [created.json()["secret"]]
    assert endpoint["kind"] == "http"
    assert endpoint["config"]["headers"] == ["X-Partner-Key"]
    assert endpoint["config"]["auth"] == {"type": "basic", "username": "eventgate"}

    # The wrong password: every try is refused, the delivery ends dead like any 4xx.
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    async with running_worker():
        await wait_for(lambda: deliveries_of(database_url, endpoint["id"])[0][0] == "dead")
    assert deliveries_of(database_url, endpoint["id"]) == [("dead", 3, 401, "HTTP 401")]

    # The right password, then recover: the dead delivery goes again and arrives.
    config["auth"]["password"] = PASSWORD
    path = f"/v1/endpoints/{endpoint['id']}"
    patched = await client.patch(path, json={"config": config}, headers=auth(key))
    assert patched.status_code == 200, patched.text
    assert PASSWORD not in patched.text
    since = {"since": "2000-01-01T00:00:00Z"}
    assert (await client.post(f"{path}/recover", json=since, headers=auth(key))).status_code == 202
    async with running_worker():
        await wait_for(lambda: deliveries_of(database_url, endpoint["id"])[0][0] == "succeeded")
    arrived = receiver.at("basic")[-1]
    assert arrived.headers["authorization"] == basic("eventgate", PASSWORD)
    assert arrived.headers["x-partner-key"] == HEADER_VALUE
    assert arrived.verified  # still signed

    for shown in (
        (await client.get(path, headers=auth(key))).text,
        (await client.get("/v1/endpoints", headers=auth(key))).text,
        (await client.get("/v1/audit-logs", headers=auth(key))).text,
        dumped(database_url),
    ):
        assert PASSWORD not in shown
        assert HEADER_VALUE not in shown

    # Each attempt keeps the headers it sent (credentials redacted) and those it got back.
    listed = await client.get(f"/v1/deliveries?endpoint_id={endpoint['id']}", headers=auth(key))
    delivery_id = listed.json()["deliveries"][0]["id"]
    detail = (await client.get(f"/v1/deliveries/{delivery_id}", headers=auth(key))).json()
    last = detail["attempts"][-1]
    assert last["request_headers"]["authorization"] == "Basic [redacted]"
    assert last["request_headers"]["x-partner-key"] == "[write-only]"
    assert last["request_headers"]["webhook-id"] == arrived.headers["webhook-id"]
    assert last["response_headers"]["content-type"].startswith("text/plain")  # the receiver's
    refused = detail["attempts"][0]
    assert refused["status_code"] == 401
    assert refused["response_headers"]["content-length"]


async def test_a_bearer_token_is_sent_and_kinds_filter_the_list(
    client, database_url, receiver, worker_env
):
    key = await make_key(database_url)
    receiver.admits["bearer"] = lambda given: given == "Bearer tok-123"
    config = {"kind": "http", "auth": {"type": "bearer", "token": "tok-123"}}
    endpoint = await create(client, key, {"url": receiver.endpoint_url("bearer"), "config": config})
    assert endpoint["config"]["auth"] == {"type": "bearer"}
    await create(client, key, {"url": receiver.endpoint_url("plain")})
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    async with running_worker():
        await wait_for(lambda: len(receiver.at("bearer")) == 1 and len(receiver.at("plain")) == 1)
    assert deliveries_of(database_url, endpoint["id"]) == [("succeeded", 1, 200, None)]
    assert "authorization" not in receiver.at("plain")[0].headers

    listed = await client.get("/v1/endpoints", params={"kind": "http"}, headers=auth(key))
    assert len(listed.json()["endpoints"]) == 2
    unknown = await client.get(
        "/v1/endpoints", params={"kind": "carrier-pigeon"}, headers=auth(key)
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["details"]["field"] == "kind"


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"Host": "elsewhere"}, "config.headers.Host"),
        ({"Content-Length": "1"}, "config.headers.Content-Length"),
        ({"Transfer-Encoding": "chunked"}, "config.headers.Transfer-Encoding"),
        ({"Webhook-Signature": "v1,forged"}, "config.headers.Webhook-Signature"),
        ({"X-Ok": "line\r\nInjected: yes"}, None),
        ({"Bad Name": "x"}, None),
        ({f"X-{n}": "v" for n in range(21)}, None),
    ],
)
async def test_headers_a_destination_may_not_set_are_refused(client, database_url, headers, field):
    key = await make_key(database_url)
    body = {"url": "http://127.0.0.1:9/x", "config": {"kind": "http", "headers": headers}}
    answer = await client.post("/v1/endpoints", json=body, headers=auth(key))
    assert answer.status_code == 400, answer.text
    if field:
        assert answer.json()["error"]["details"]["field"] == field
    listed = await client.get("/v1/endpoints", headers=auth(key))
    assert listed.json()["endpoints"] == []


class TokenServer:
    """An OAuth2 token endpoint (client credentials, client_secret_basic) that counts what it
    issues; revoking makes the receiver refuse a token before it expires."""

    def __init__(self) -> None:
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.forms: list[dict[str, str]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.forms.append(form)
        if request.headers.get("authorization") != basic("eventgate", CLIENT_SECRET):
            return web.json_response({"error": "invalid_client"}, status=401)
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = f"token-{len(self.issued) + 1}"
        self.issued.append(token)
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
        )

    def admits(self, given: str | None) -> bool:
        token = (given or "").removeprefix("Bearer ")
        return token in self.issued and token not in self.revoked


@contextlib.asynccontextmanager
async def running_token_server() -> AsyncIterator[TokenServer]:
    server = TokenServer()
    web_app = web.Application()
    web_app.router.add_post("/oauth/token", server.handle)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/oauth/token"
    try:
        yield server
    finally:
        await runner.cleanup()


async def test_oauth2_tokens_are_fetched_once_renewed_on_401_and_failures_recorded(
    client, database_url, receiver, worker_env
):
    key = await make_key(database_url)
    async with running_token_server() as tokens:
        receiver.admits["oauth"] = tokens.admits
        receiver.admits["oauth-bad"] = tokens.admits
        oauth = {"type": "oauth2", "token_url": tokens.url, "client_id": "eventgate"}
        good = {"kind": "http", "auth": {**oauth, "client_secret": CLIENT_SECRET, "scope": "hooks"}}
        bad = {"kind": "http", "auth": {**oauth, "client_secret": "not-it"}}
        endpoint = await create(
            client, key, {"url": receiver.endpoint_url("oauth"), "config": good}
        )
        refused = await create(
            client, key, {"url": receiver.endpoint_url("oauth-bad"), "config": bad}
        )
        assert endpoint["config"]["auth"]["token_url"] == tokens.url
        assert "client_secret" not in endpoint["config"]["auth"]
        for n in range(5):
            await client.post("/v1/events", json=event_body(payload={"n": n}), headers=auth(key))
        async with running_worker():
            await wait_for(lambda: len(receiver.at("oauth")) == 5, what="five deliveries")
            await wait_for(lambda: deliveries_of(database_url, refused["id"])[0][0] == "dead")
            assert tokens.issued == ["token-1"]  # one token however many deliveries wait
            assert tokens.forms[0]["scope"] == "hooks"
            sent = {r.headers["authorization"] for r in receiver.at("oauth")}
            assert sent == {"Bearer token-1"}

            # The receiver stops taking the token: one new token, one more try, delivered.
            tokens.revoked.add("token-1")
            await ingest_directly(database_url, endpoint["id"])
            await wait_for(lambda: len(receiver.at("oauth")) == 7, what="refused, then sent")
        assert tokens.issued == ["token-1", "token-2"]
        assert [r.headers["authorization"] for r in receiver.at("oauth")[-2:]] == [
            "Bearer token-1",
            "Bearer token-2",
        ]
        # The wrong client secret: no token, nothing sent, the token endpoint's answer recorded.
        assert receiver.at("oauth-bad") == []
        (status, attempts, code, error), *_ = deliveries_of(database_url, refused["id"])
        assert (status, attempts, code) == ("dead", 3, None)
        assert error.startswith("OAuth2 token request answered HTTP 401")
        rows = deliveries_of(database_url, endpoint["id"])
        assert rows[-1] == ("succeeded", 1, 200, None)
    assert CLIENT_SECRET not in dumped(database_url)


def server_context(tmp_path: Path, authority: Authority, client_ca: Authority) -> ssl.SSLContext:
    """A TLS server context for 127.0.0.1 that requires a client certificate of client_ca."""
    issued = authority.issue("127.0.0.1", server=True)
    (tmp_path / "server.pem").write_text(issued.certificate)
    (tmp_path / "server.key").write_text(issued.key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    context.load_verify_locations(cadata=client_ca.pem)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


async def test_mutual_tls_presents_the_client_certificate_and_fails_without_it(
    client, database_url, worker_env, tmp_path
):
    key = await make_key(database_url)
    authority, stranger = Authority(), Authority("Someone else's CA")
    ours = authority.issue("eventgate-client", server=False)
    theirs = stranger.issue("eventgate-client", server=False)

    def tls(issued, ca: str | None = authority.pem) -> dict:
        return {"client_certificate": issued.certificate, "client_key": issued.key, "ca_bundle": ca}

    async with running_receiver(server_context(tmp_path, authority, authority)) as receiver:
        good = await create(
            client,
            key,
            {"url": receiver.endpoint_url("mtls"), "config": {"kind": "http", "tls": tls(ours)}},
            receiver,
        )
        assert "PRIVATE KEY" not in str(good)
        assert good["config"]["tls"]["client_certificate"] == ours.certificate
        wrong_client = await create(
            client,
            key,
            {"url": receiver.endpoint_url("other"), "config": {"kind": "http", "tls": tls(theirs)}},
        )
        untrusted_server = await create(
            client,
            key,
            {
                "url": receiver.endpoint_url("ca"),
                "config": {"kind": "http", "tls": tls(ours, None)},
            },
        )
        await client.post("/v1/events", json=event_body(), headers=auth(key))
        async with running_worker():
            await wait_for(lambda: len(receiver.at("mtls")) == 1, what="the mTLS delivery")
            for failing in (wrong_client, untrusted_server):
                await wait_for(
                    lambda f=failing: deliveries_of(database_url, f["id"])[0][0] == "dead"
                )
        assert receiver.at("mtls")[0].verified
        assert receiver.at("other") == receiver.at("ca") == []
        for failing in (wrong_client, untrusted_server):
            (_, attempts, code, _error), *_ = deliveries_of(database_url, failing["id"])
            assert (attempts, code) == (3, None)
        # The receiver refuses a stranger's certificate during the handshake (under TLS 1.3 the
        # client learns it as an alert or a reset); ours refuses a server it cannot verify.
        wrong_error = deliveries_of(database_url, wrong_client["id"])[0][3]
        assert "SSL" in wrong_error or "reset" in wrong_error, wrong_error
        assert (
            "CERTIFICATE_VERIFY_FAILED" in deliveries_of(database_url, untrusted_server["id"])[0][3]
        )
    assert ours.key.splitlines()[1] not in dumped(database_url)


async def test_client_certificates_are_checked_at_create(client, database_url):
    key = await make_key(database_url)
    authority = Authority()
    first, second = authority.issue("a", server=False), authority.issue("b", server=False)
    cases = [
        ({"client_certificate": "not a pem", "client_key": first.key}, "client_certificate"),
        ({"client_certificate": first.certificate, "client_key": "nope"}, "client_key"),
        ({"client_certificate": first.certificate, "client_key": second.key}, "client_key"),
        (
            {"client_certificate": first.certificate, "client_key": first.key, "ca_bundle": "x"},
            "ca_bundle",
        ),
    ]
    for tls, field in cases:
        body = {"url": "http://127.0.0.1:9/x", "config": {"kind": "http", "tls": tls}}
        answer = await client.post("/v1/endpoints", json=body, headers=auth(key))
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["details"]["field"] == f"config.tls.{field}"
