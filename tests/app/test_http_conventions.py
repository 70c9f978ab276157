"""Request ids, the error envelope on every error, health checks and the API description."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from tests.helpers import auth, event_body, make_key, wait_for


async def test_request_id_is_echoed_or_generated(client):
    given = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = await client.get("/health/live", headers={"X-Request-ID": "bad id\twith spaces"})
    assert generated.headers["x-request-id"] not in ("", "bad id\twith spaces")


async def test_unknown_routes_and_methods_use_the_envelope(client):
    for response, status, code in (
        (await client.get("/nope"), 404, "not_found"),
        (await client.get("/v1/nothing-here"), 404, "not_found"),
        (await client.put("/v1/inbox"), 405, "method_not_allowed"),
    ):
        assert response.status_code == status
        error = response.json()["error"]
        assert error["code"] == code
        assert error["request_id"] == response.headers["x-request-id"]


async def test_internal_errors_leak_nothing(client, database_url):
    key = await make_key(database_url)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("DROP TABLE events CASCADE")
    response = await client.post("/v1/events", json=event_body(), headers=auth(key))
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    assert "events" not in error["message"]
    assert "psycopg" not in response.text
    assert error["request_id"] == response.headers["x-request-id"]


async def test_health_routes(client):
    for path in ("/health", "/health/live", "/health/ready"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
    ready = (await client.get("/health/ready")).json()
    assert ready["database"]["ok"] is True
    assert ready["database"]["latency_ms"] >= 0


async def set_connections_allowed(server_url: str, database: str, allowed: bool) -> None:
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as conn:
        name = sql.Identifier(database)
        await conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(name, sql.Literal(allowed))
        )
        if not allowed:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )


async def test_ready_is_503_while_the_database_is_unreachable_and_recovers(
    client, server_url, database_url
):
    database = urlsplit(database_url).path.lstrip("/")
    await set_connections_allowed(server_url, database, False)
    try:
        down = await client.get("/health/ready")
        assert down.status_code == 503
        assert down.json()["database"]["ok"] is False
    finally:
        await set_connections_allowed(server_url, database, True)

    async def ready() -> bool:
        return (await client.get("/health/ready")).status_code == 200

    await wait_for(ready, what="ready again")


async def test_openapi_describes_every_route_with_auth_and_errors(client):
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    expected = {
        "/v1/events": {"post"},
        "/v1/events/batch": {"post"},
        "/v1/events/{event_id}": {"get", "delete"},
        "/v1/events/{event_id}/ack": {"post"},
        "/v1/inbox": {"get"},
        "/v1/keys": {"get", "post"},
        "/v1/keys/{key_id}": {"get", "delete"},
        "/v1/keys/{key_id}/rotate": {"post"},
        "/health/ready": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
        if path.startswith("/v1"):
            for method in methods:
                operation = paths[path][method]
                assert operation["security"], (path, method)
                assert {"401", "403"} <= set(operation["responses"]), (path, method)
    assert set(spec["components"]["securitySchemes"]) == {"ApiKeyHeader", "BearerAuth"}
    # Every destination kind's config is documented, as a tagged union on `kind`.
    schemas = spec["components"]["schemas"]
    assert {"HttpConfig", "RabbitMqConfig", "NatsConfig", "RedisConfig"} <= set(schemas)
    assert {"BasicAuth", "BearerAuth", "OAuth2ClientCredentials", "MutualTls"} <= set(schemas)
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_docs_load_every_asset_from_this_server(client):
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", docs.text)
    assert len(assets) >= 4  # stylesheet, two scripts, icon
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by Eventgate (no CDN)"
        assert (await client.get(asset)).status_code == 200, asset
    assert "http://" not in docs.text
    assert "https://" not in docs.text


def test_every_guard_runs_on_the_event_loop(settings):
    import inspect

    from app.main import create_app

    # A sync guard is run in a worker thread on every request: a thread hop per request.
    app = create_app(settings)
    guards = {
        guard
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        for guard in handler.resolve_guards()
    }
    assert guards
    assert [g for g in guards if not inspect.iscoroutinefunction(g)] == []


def test_every_route_checks_its_query_and_scope(settings):
    from app.edge import api_edge
    from app.main import create_app
    from app.scopes import check_request

    # The API edge checks its routes itself; every other route has the guard. (Litestar's own
    # /docs routes take no query parameters and name no scope.)
    app = create_app(settings)
    unchecked = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            layers = [getattr(m, "middleware", m) for m in handler.resolve_middleware()]
            if api_edge not in layers and check_request not in handler.resolve_guards():
                unchecked.append(route.path)
    assert unchecked
    assert all(path.startswith("/docs") for path in unchecked), unchecked
