"""GET /v1/events/stream on real `eventgate serve` processes: live events, exact resumption,
late commits, bounds per key, slow consumers, revoked keys and several processes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import uuid

import httpx
import psycopg

from app.pagination import encode_cursor
from db import events as events_db
from tests.helpers import api_process, auth, event_row, free_port, make_key, serve_process, wait_for
from tests.sse import open_stream


async def _ingest(http: httpx.AsyncClient, key: str, n: int, **fields: object) -> list[str]:
    ids = []
    for i in range(n):
        body = {"source": "shop", "event_type": "order.paid", "payload": {"n": i}, **fields}
        response = await http.post("/v1/events", json=body, headers=auth(key))
        assert response.status_code == 201, response.text
        ids.append(response.json()["event_id"])
    return ids


async def test_new_events_arrive_filtered_and_a_reconnect_resumes_exactly(database_url):
    key = await make_key(database_url)
    with api_process(database_url) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            async with open_stream(base, key, event_type="order.paid") as stream:
                assert stream.status == 200
                first = await _ingest(http, key, 3)
                await _ingest(http, key, 2, event_type="order.refunded")  # filtered out
                second = await _ingest(http, key, 2)
                got = await stream.wait_events(5)
                await asyncio.sleep(0.3)
                assert [m.json()["id"] for m in stream.events] == first + second
                assert stream.messages[0].comments == ["stream open"]
                cursor = stream.events[1].id
            # The inbox takes a stream id as its cursor: the events after that one.
            inbox = await http.get(f"/v1/inbox?cursor={cursor}", headers=auth(key))
            assert [e["id"] for e in inbox.json()["events"]][:1] == [first[2]]
            while_away = await _ingest(http, key, 2)
            async with open_stream(base, key, cursor, event_type="order.paid") as resumed:
                got = await resumed.wait_events(5)
                await asyncio.sleep(0.3)
                expected = first[2:] + second + while_away
                assert [m.json()["id"] for m in resumed.events] == expected
                assert got[0].json()["payload"] == {"n": 2}


async def test_an_event_committing_late_is_sent_before_later_ones_never_skipped(database_url):
    key = await make_key(database_url)
    with api_process(database_url) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            async with open_stream(base, key) as stream:
                # A producer that took its id first but commits last.
                slow = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
                cur = await slow.execute("SELECT id FROM tenants WHERE name = 'acme'")
                row = event_row((await cur.fetchone())[0])
                async with slow.transaction():
                    await events_db.insert_with_fan_out(slow, [row])
                    quick = await _ingest(http, key, 3)
                    await asyncio.sleep(0.5)
                    # Sending the quick ones now would let a client resume past the slow one.
                    assert stream.events == []
                await slow.close()
                got = await stream.wait_events(4)
                assert [m.json()["id"] for m in got] == [str(row.id), *quick]
            async with open_stream(base, key, got[0].id) as resumed:
                await resumed.wait_events(3)
                await asyncio.sleep(0.3)
                assert [m.json()["id"] for m in resumed.events] == quick


async def test_a_stream_resumes_without_loss_across_a_kill_9_of_its_api_process(database_url):
    key = await make_key(database_url)
    port = free_port()
    with api_process(database_url) as other:
        async with httpx.AsyncClient(base_url=other) as http:
            with serve_process(database_url, port) as (first, _):
                async with open_stream(f"http://127.0.0.1:{port}", key) as stream:
                    before = await _ingest(http, key, 5)
                    await stream.wait_events(5)
                    first.send_signal(signal.SIGKILL)
                    first.wait(timeout=10)
                    await asyncio.wait_for(stream.ended.wait(), 10)
                    last_id = stream.last_id
            # Answered 201 by the other process while the stream's process is gone.
            during = await _ingest(http, key, 20)
            with serve_process(database_url, port):
                async with open_stream(f"http://127.0.0.1:{port}", key, last_id) as resumed:
                    await resumed.wait_events(20)
                    after = await _ingest(http, key, 3)
                    await resumed.wait_events(23)
                    await asyncio.sleep(0.3)
                    ids = [m.json()["id"] for m in resumed.events]
    assert [m.json()["id"] for m in stream.events] == before
    assert ids == during + after  # each once, in order


async def test_streams_per_key_are_bounded_over_concurrent_opens(database_url):
    key = await make_key(database_url)
    other_key = await make_key(database_url)
    with api_process(database_url, EVENTGATE_STREAM_MAX_PER_KEY="3") as base:
        async with contextlib.AsyncExitStack() as stack:
            opened = await asyncio.gather(
                *(stack.enter_async_context(open_stream(base, key)) for _ in range(20))
            )
            statuses = sorted(s.status or 0 for s in opened)
            assert statuses == [200] * 3 + [429] * 17
            refused = next(s for s in opened if s.status == 429)
            assert '"code":"rate_limited"' in refused.body
            # Another key of the tenant is not held back by this one's streams.
            async with open_stream(base, other_key) as separate:
                assert separate.status == 200
        # Closed streams free their places.
        await asyncio.sleep(0.5)
        async with open_stream(base, key) as again:
            assert again.status == 200


async def test_hostile_cursors_are_refused_and_another_tenants_event_reveals_nothing(
    database_url,
):
    key = await make_key(database_url)
    stranger = await make_key(database_url, tenant="other")
    with api_process(database_url) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            foreign = await _ingest(http, stranger, 1)
            for bad in ("%00", "AAAA", "x" * 101, "AaJE5dvUchiwRUXNfG5rSgAAAAAAAAOKAA"):
                response = await http.get(
                    "/v1/events/stream", headers={**auth(key), "Last-Event-ID": bad}
                )
                assert response.status_code == 400, (bad, response.text)
                assert response.json()["error"]["code"] == "validation_error"
            for field in ("source", "event_type"):
                response = await http.get(f"/v1/events/stream?{field}=a%00b", headers=auth(key))
                assert response.status_code == 400, response.text
            async with open_stream(base, key, encode_cursor(uuid.UUID(foreign[0]))) as stream:
                mine = await _ingest(http, key, 1)
                await stream.wait_events(1)
                await _ingest(http, stranger, 2)
                await asyncio.sleep(0.5)
                assert [m.json()["id"] for m in stream.events] == mine


async def test_a_revoked_key_ends_its_streams_and_idle_streams_get_heartbeats(database_url):
    admin = await make_key(database_url)
    with api_process(database_url, EVENTGATE_STREAM_HEARTBEAT_SECONDS="0.5") as base:
        async with httpx.AsyncClient(base_url=base) as http:
            created = await http.post(
                "/v1/keys", json={"name": "s", "scopes": ["events:read"]}, headers=auth(admin)
            )
            reader = created.json()
            async with open_stream(base, reader["key"]) as stream:
                await asyncio.sleep(1.5)
                assert any("heartbeat" in m.comments for m in stream.messages)
                revoked = await http.delete(f"/v1/keys/{reader['id']}", headers=auth(admin))
                assert revoked.status_code == 200
                await asyncio.wait_for(stream.ended.wait(), 10)
                assert stream.messages[-1].event == "close"
                assert stream.messages[-1].json() == {"reason": "key_revoked"}


async def test_a_client_that_stops_reading_is_disconnected_and_others_go_on(database_url):
    key = await make_key(database_url)
    env = {"EVENTGATE_STREAM_SEND_TIMEOUT_SECONDS": "1"}
    with api_process(database_url, **env) as base:
        port = int(base.rsplit(":", 1)[1])
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", port))
        stuck.sendall(
            f"GET /v1/events/stream HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\r\n".encode()
        )
        async with (
            httpx.AsyncClient(base_url=base, timeout=30) as http,
            open_stream(base, key) as healthy,
        ):
            await asyncio.sleep(0.3)
            big = {"blob": "x" * 60_000}
            batch = [{"source": "s", "event_type": "t", "payload": big} for _ in range(100)]
            for _ in range(3):
                response = await http.post(
                    "/v1/events/batch", json={"events": batch}, headers=auth(key)
                )
                assert response.status_code == 201
            await healthy.wait_events(300, timeout=60)
            async with asyncio.timeout(30):
                while 'reason="slow_consumer"' not in (await http.get("/metrics")).text:
                    await asyncio.sleep(0.2)
        stuck.close()
        # The server forgets a stream when it notices the closed socket; on a loaded machine
        # (the full suite on two cores) that has taken longer than the default 20 s once.
        await wait_for(
            lambda: _open_streams(database_url) == 0, timeout=60, what="every stream forgotten"
        )


async def test_streams_work_through_several_api_processes(database_url):
    key = await make_key(database_url)
    with api_process(database_url, workers=2) as base:
        async with httpx.AsyncClient(base_url=base) as http, contextlib.AsyncExitStack() as stack:
            streams = [await stack.enter_async_context(open_stream(base, key)) for _ in range(4)]
            ids = await _ingest(http, key, 5)
            for stream in streams:
                got = await stream.wait_events(5)
                assert [m.json()["id"] for m in got] == ids


def _open_streams(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM event_streams").fetchone()[0]
