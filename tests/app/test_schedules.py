"""The /v1/schedules routes: create, validate hostile input, pause/resume, run now, history,
scope, audit and tenant isolation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import psycopg

from tests.helpers import auth, make_key

DAILY = {
    "name": "daily report",
    "cron": "30 2 * * *",
    "timezone": "Europe/Berlin",
    "event_type": "report.due",
    "payload": {"report": "daily"},
    "channels": ["ops", "ops"],
}


async def create(client, key: str, **overrides) -> dict:
    answer = await client.post("/v1/schedules", json={**DAILY, **overrides}, headers=auth(key))
    assert answer.status_code == 201, answer.text
    return answer.json()


async def test_a_schedule_runs_next_at_its_local_time_and_by_hand(client, database_url):
    key = await make_key(database_url)
    schedule = await create(client, key)
    assert schedule["channels"] == ["ops"]
    assert schedule["source"] == "schedule"
    assert schedule["catch_up"] is True
    next_run = datetime.fromisoformat(schedule["next_run_at"])
    local = next_run.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) in ((2, 30), (3, 0))  # 03:00 only on a spring-forward day
    assert next_run > datetime.now(UTC)

    path = f"/v1/schedules/{schedule['id']}"
    ran = await client.post(f"{path}/run", headers=auth(key))
    assert ran.status_code == 201, ran.text
    run = ran.json()
    assert run["status"] == "succeeded"
    assert run["trigger"] == "manual"
    event = (await client.get(f"/v1/events/{run['event_id']}", headers=auth(key))).json()
    assert event["event_type"] == "report.due"
    assert event["payload"] == {"report": "daily"}
    assert event["channels"] == ["ops"]
    assert event["metadata"]["schedule_id"] == schedule["id"]
    runs = (await client.get(f"{path}/runs", headers=auth(key))).json()
    assert [r["id"] for r in runs["runs"]] == [run["id"]]
    # A run by hand leaves the next tick where it was.
    shown = (await client.get(path, headers=auth(key))).json()
    assert shown["next_run_at"] == schedule["next_run_at"]
    assert shown["last_run_at"] is not None


async def test_pause_resume_patch_and_delete_are_audited(client, database_url):
    key = await make_key(database_url)
    schedule = await create(client, key)
    path = f"/v1/schedules/{schedule['id']}"
    paused = await client.post(f"{path}/pause", headers=auth(key))
    assert paused.json()["paused"] is True
    resumed = await client.post(f"{path}/resume", headers=auth(key))
    assert resumed.json()["paused"] is False
    patched = await client.patch(path, json={"cron": "0 * * * *"}, headers=auth(key))
    assert patched.status_code == 200, patched.text
    following = datetime.fromisoformat(patched.json()["next_run_at"])
    assert (following.minute, following.second) == (0, 0)
    assert (await client.delete(path, headers=auth(key))).status_code == 200
    assert (await client.get(path, headers=auth(key))).status_code == 404
    audit = (await client.get("/v1/audit-logs", headers=auth(key))).json()["entries"]
    actions = [entry["action"] for entry in audit if entry["resource_type"] == "schedule"]
    expected = ["schedule.create", "schedule.pause", "schedule.resume", "schedule.update"]
    assert sorted(actions) == sorted([*expected, "schedule.delete"])


async def test_hostile_schedules_are_refused_clearly(client, database_url):
    key = await make_key(database_url)
    refused = {
        "cron": [
            "* * * * * *",
            "@daily",
            "0 0 30 2 *",
            "*/0 * * * *",
            "1-99999999 * * * *",
            "a b c d e",
            "\u0000 * * * *",
        ],
        "timezone": ["../../../../etc/passwd", "Mars/Olympus", "UTC\u0000", "/etc/localtime"],
        "event_type": ["", "x" * 300],
        "payload": [[], "text", None],
        "channels": [["bad channel"], [f"c{n}" for n in range(11)]],
        "catch_up": ["yes"],
    }
    for field, values in refused.items():
        for value in values:
            answer = await client.post(
                "/v1/schedules", json={**DAILY, field: value}, headers=auth(key)
            )
            assert answer.status_code == 400, (field, value, answer.text)
            assert "error" in answer.json()
    assert (await client.get("/v1/schedules", headers=auth(key))).json()["schedules"] == []


async def test_a_payload_its_type_refuses_is_a_400_and_a_failed_run_later(client, database_url):
    key = await make_key(database_url)
    schema = {"type": "object", "required": ["report"]}
    created = await client.post(
        "/v1/event-types", json={"name": "report.due", "schema": schema}, headers=auth(key)
    )
    assert created.status_code == 201, created.text
    answer = await client.post(
        "/v1/schedules", json={**DAILY, "payload": {"other": 1}}, headers=auth(key)
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["details"] == {"field": "payload"}
    schedule = await create(client, key)
    # The type's schema changes afterwards: the run is recorded failed, nothing is ingested.
    stricter = {"schema": {"type": "object", "required": ["report", "period"]}}
    await client.patch("/v1/event-types/report.due", json=stricter, headers=auth(key))
    run = (await client.post(f"/v1/schedules/{schedule['id']}/run", headers=auth(key))).json()
    assert run["status"] == "failed"
    assert run["event_id"] is None
    assert "period" in run["error"]
    assert (await client.get("/v1/inbox", headers=auth(key))).json()["events"] == []


async def test_scope_and_tenants_are_enforced(client, database_url):
    key = await make_key(database_url)
    schedule = await create(client, key)
    reader = await make_key(database_url, scopes=["events:read"])
    answer = await client.get("/v1/schedules", headers=auth(reader))
    assert answer.status_code == 403
    assert answer.json()["error"]["details"] == {"required_scope": "schedules:manage"}
    other = await make_key(database_url, tenant="other")
    path = f"/v1/schedules/{schedule['id']}"
    for method, url in (
        ("GET", path),
        ("POST", f"{path}/run"),
        ("DELETE", path),
        ("GET", f"{path}/runs"),
        ("POST", f"{path}/pause"),
    ):
        answer = await client.request(method, url, headers=auth(other))
        assert answer.status_code == 404, (method, url)
    assert (await client.get("/v1/schedules", headers=auth(other))).json()["schedules"] == []


async def test_fifty_concurrent_runs_by_hand_each_ingest_once(client, database_url):
    key = await make_key(database_url)
    schedule = await create(client, key)
    path = f"/v1/schedules/{schedule['id']}/run"
    answers = await asyncio.gather(*(client.post(path, headers=auth(key)) for _ in range(50)))
    # The key's rate limit may refuse some (429); every accepted one is one run, one event.
    accepted = [answer.json() for answer in answers if answer.status_code == 201]
    assert {answer.status_code for answer in answers} <= {201, 429}
    assert len(accepted) >= 10
    assert len({run["event_id"] for run in accepted}) == len(accepted)
    with psycopg.connect(database_url) as conn:
        runs = conn.execute("SELECT id::text FROM schedule_runs").fetchall()
    assert sorted(run_id for (run_id,) in runs) == sorted(run["id"] for run in accepted)
