"""Time in the console, in Chromium: a scheduled event shows `scheduled` with its time; a
schedule is run by hand, paused and resumed; the Jobs page lists every maintenance task, runs
one by hand and highlights a failure. Photographed into test-output/screenshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from playwright.async_api import Browser, expect

from core.tasks import MAINTENANCE_TASKS
from tests.browser.test_console import TIMEOUT_MS, shoot, until_shown
from tests.helpers import make_key


async def test_scheduled_events_schedules_and_jobs_in_a_real_browser(
    browser: Browser, live_api, worker, screenshots, database_url
):
    key = await make_key(database_url)
    async with httpx.AsyncClient(base_url=live_api, headers={"X-API-Key": key}) as api:
        later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        event = {"source": "billing", "event_type": "invoice.reminder", "payload": {"n": 1}}
        created = await api.post("/v1/events", json={**event, "deliver_at": later})
        assert created.json()["status"] == "scheduled"
        schedule = {
            "name": "weekday report",
            "cron": "0 9 * * 1-5",
            "timezone": "Europe/Berlin",
            "event_type": "report.due",
            "payload": {"report": "daily"},
        }
        assert (await api.post("/v1/schedules", json=schedule)).status_code == 201
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE endpoint_rate_windows")  # one task will fail: highlighted

    context = await browser.new_context(viewport={"width": 1366, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    await page.goto(f"{live_api}/console/sign-in")
    await page.fill("input[name=key]", key)
    await page.click("text=Sign in with the key")

    await page.click("nav >> text=Events")
    await expect(page.locator("#events .badge.scheduled")).to_have_text("scheduled")
    await shoot(page, screenshots, "20-scheduled-event")

    await page.click("nav >> text=Schedules")
    await expect(page.locator("#schedules")).to_contain_text("0 9 * * 1-5")
    await shoot(page, screenshots, "21-schedules")
    await page.click("text=weekday report")
    await page.click("text=Run now")
    await expect(page.locator(".notice")).to_contain_text("Run now")
    await expect(page.locator("#runs")).to_contain_text("manual")
    await page.click("button:text('Pause')")
    await expect(page.locator("dl.fields")).to_contain_text("paused")
    await shoot(page, screenshots, "22-schedule-paused")
    await page.click("button:text('Resume')")
    await expect(page.locator("dl.fields")).to_contain_text("active")

    await page.click("nav >> text=Jobs")
    for spec in MAINTENANCE_TASKS:
        await expect(page.locator("#jobs")).to_contain_text(spec.name)
    # The worker defers each task's current tick as it starts: wait until none waits.
    await until_shown(page, "#jobs tr:has-text('rotate_partitions') button:text('Run now')")
    await page.locator("#jobs tr", has_text="rotate_partitions").locator("button").click()
    await expect(page.locator(".notice")).to_contain_text("Queued")
    await until_shown(page, "#task-runs tr:has-text('manual') .badge.succeeded")
    await shoot(page, screenshots, "23-job-history")
    # Run the task whose table is gone: its failure is highlighted on the Jobs page.
    await page.goto(f"{live_api}/console/jobs")
    await until_shown(page, "#jobs tr:has-text('purge_rate_windows') button:text('Run now')")
    await page.locator("#jobs tr", has_text="purge_rate_windows").locator("button").click()
    await page.goto(f"{live_api}/console/jobs")
    await until_shown(page, "#jobs tr.problem:has-text('purge_rate_windows')")
    await shoot(page, screenshots, "24-jobs")
    await context.close()
