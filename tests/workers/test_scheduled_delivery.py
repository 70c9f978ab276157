"""Scheduled delivery: an event's deliver_at holds its deliveries until then; a delete before
cancels them; the horizon is enforced; retention keeps what still waits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg

from db import partitions
from tests.helpers import (
    add_endpoint,
    auth,
    event_body,
    make_key,
    running_worker,
    wait_for,
)


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def delivery_rows(url: str) -> dict[str, tuple]:
    """Per event id: (status, deliver_at, next_attempt_at), a parked one's as None."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT event_id::text, status, deliver_at,"
            " CASE WHEN next_attempt_at < 'infinity' THEN next_attempt_at END FROM deliveries"
        ).fetchall()
    return {event_id: rest for event_id, *rest in rows}


async def test_a_scheduled_event_is_visible_at_once_and_delivered_on_time(
    client, database_url, receiver, worker_env
):
    key = await make_key(database_url)
    await add_endpoint(client, key, receiver, "hook")
    due = datetime.now(UTC) + timedelta(seconds=3)
    later = await client.post(
        "/v1/events",
        json=event_body(payload={"n": "later"}, deliver_at=rfc3339(due)),
        headers=auth(key),
    )
    assert later.status_code == 201, later.text
    assert later.json()["status"] == "scheduled"
    assert later.json()["deliver_at"].startswith(due.strftime("%Y-%m-%dT%H:%M:%S"))
    past = datetime.now(UTC) - timedelta(hours=1)
    now_events = await client.post(
        "/v1/events/batch",
        json={
            "events": [
                event_body(payload={"n": "past"}, deliver_at=rfc3339(past)),
                event_body(payload={"n": "now"}),
            ]
        },
        headers=auth(key),
    )
    assert [e["status"] for e in now_events.json()["events"]] == ["pending", "pending"]

    # Stored and shown at once, as scheduled, with its delivery waiting.
    later_id = later.json()["event_id"]
    shown = (await client.get(f"/v1/events/{later_id}", headers=auth(key))).json()
    assert shown["status"] == "scheduled"
    inbox = (await client.get("/v1/inbox", headers=auth(key))).json()["events"]
    assert later_id in [e["id"] for e in inbox]
    listed = await client.get("/v1/deliveries", params={"event_id": later_id}, headers=auth(key))
    (delivery,) = listed.json()["deliveries"]
    assert delivery["status"] == "pending"
    assert delivery["deliver_at"] == shown["deliver_at"]

    async with running_worker():
        await wait_for(lambda: len(receiver.at("hook")) == 3, timeout=15)
    arrivals = {r.body["payload"]["n"]: r.wall for r in receiver.at("hook")}
    assert arrivals["now"] < due.timestamp()
    assert arrivals["past"] < due.timestamp()
    # Not before its time, and within the workers' poll interval (1 s) after it.
    assert due.timestamp() <= arrivals["later"] < due.timestamp() + 2.5
    shown = (await client.get(f"/v1/events/{later_id}", headers=auth(key))).json()
    assert shown["status"] == "pending"  # still in the inbox: nobody acknowledged it


async def test_deleting_a_scheduled_event_cancels_its_deliveries(
    client, database_url, receiver, worker_env
):
    key = await make_key(database_url)
    await add_endpoint(client, key, receiver, "hook")
    due = rfc3339(datetime.now(UTC) + timedelta(hours=1))
    created = await client.post("/v1/events", json=event_body(deliver_at=due), headers=auth(key))
    event_id = created.json()["event_id"]
    deleted = await client.delete(f"/v1/events/{event_id}", headers=auth(key))
    assert deleted.json()["deleted"] is True
    listed = await client.get("/v1/deliveries", params={"status": "cancelled"}, headers=auth(key))
    (delivery,) = listed.json()["deliveries"]
    assert delivery["event_id"] == event_id
    assert delivery["last_error"] == "event deleted"
    assert delivery["next_attempt_at"] is None
    async with running_worker():
        await asyncio.sleep(2)  # two of the workers' claim rounds
    assert delivery_rows(database_url)[event_id][0] == "cancelled"
    assert receiver.received == []


async def test_the_horizon_and_the_form_of_deliver_at_are_enforced(client, database_url):
    key = await make_key(database_url)
    too_far = rfc3339(datetime.now(UTC) + timedelta(days=31))
    answer = await client.post("/v1/events", json=event_body(deliver_at=too_far), headers=auth(key))
    assert answer.status_code == 400
    assert answer.json()["error"]["details"] == {"field": "deliver_at"}
    batch = {"events": [event_body(), event_body(deliver_at=too_far)]}
    answer = await client.post("/v1/events/batch", json=batch, headers=auth(key))
    assert answer.status_code == 400
    assert answer.json()["error"]["details"] == {"field": "events[1].deliver_at"}
    for hostile in ("2026-12-05T10:00:00", "tomorrow", "99999-01-01T00:00:00Z", 1e308, None):
        body = event_body(deliver_at=hostile)
        answer = await client.post("/v1/events", json=body, headers=auth(key))
        # None is "at once"; every other one is refused, none is a 500.
        assert answer.status_code == (201 if hostile is None else 400), (hostile, answer.text)
    listed = await client.get("/v1/inbox", headers=auth(key))
    assert len(listed.json()["events"]) == 1  # only the deliver_at: null one


async def test_an_ordered_endpoint_is_not_held_by_a_scheduled_event(
    client, database_url, receiver, worker_env
):
    key = await make_key(database_url)
    await add_endpoint(client, key, receiver, "ordered", ordered=True)
    due = rfc3339(datetime.now(UTC) + timedelta(hours=1))
    await client.post(
        "/v1/events", json=event_body(payload={"n": 1}, deliver_at=due), headers=auth(key)
    )
    await client.post("/v1/events", json=event_body(payload={"n": 2}), headers=auth(key))
    async with running_worker():
        await wait_for(lambda: len(receiver.at("ordered")) == 1)
    assert receiver.at("ordered")[0].body["payload"] == {"n": 2}


async def test_enabling_an_endpoint_releases_a_scheduled_delivery_at_its_time(
    client, database_url, receiver
):
    key = await make_key(database_url)
    endpoint = await add_endpoint(client, key, receiver, "hook")
    path = f"/v1/endpoints/{endpoint['id']}"
    assert (await client.post(f"{path}/disable", headers=auth(key))).status_code == 200
    due = datetime.now(UTC) + timedelta(hours=1)
    created = await client.post(
        "/v1/events", json=event_body(deliver_at=rfc3339(due)), headers=auth(key)
    )
    event_id = created.json()["event_id"]
    with psycopg.connect(database_url) as conn:
        parked = conn.execute("SELECT next_attempt_at = 'infinity' FROM deliveries").fetchone()
    assert parked == (True,)
    assert (await client.post(f"{path}/enable", headers=auth(key))).status_code == 200
    status, deliver_at, next_attempt_at = delivery_rows(database_url)[event_id]
    assert status == "pending"
    assert next_attempt_at == deliver_at
    assert abs((deliver_at - due).total_seconds()) < 0.001


async def test_retention_keeps_a_deliveries_day_that_still_waits(client, database_url):
    key = await make_key(database_url)
    await client.post(
        "/v1/endpoints", json={"url": "https://hooks.example.com/x"}, headers=auth(key)
    )
    due = rfc3339(datetime.now(UTC) + timedelta(days=20))
    await client.post("/v1/events", json=event_body(deliver_at=due), headers=auth(key))
    today = datetime.now(UTC).date()
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        keep_from = await partitions.oldest_scheduled_day(conn)
        assert keep_from == today
        # A retention of zero days three days on would drop today's partitions (and does drop
        # the empty ones before it); not while one of its deliveries waits.
        later = today + timedelta(days=3)
        await partitions.drop_expired(conn, "deliveries", later, 0, keep_from)
        cursor = await conn.execute("SELECT count(*) FROM deliveries")
        assert (await cursor.fetchone())[0] == 1
        assert await partitions.drop_expired(conn, "deliveries", later, 0, None) >= 1
        cursor = await conn.execute("SELECT count(*) FROM deliveries")
        assert (await cursor.fetchone())[0] == 0
