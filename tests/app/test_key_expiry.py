"""Keys nearing expiry are visible before they stop working: a metric (and its alert rule),
a warning in the console's key list, and a line in `eventgate keys list`."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import msgspec
import yaml
from litestar.testing import AsyncTestClient

from app.main import create_app
from tests.app.console.helpers import sign_in
from tests.app.test_metrics import samples, value
from tests.helpers import ROOT, auth, make_key


async def test_keys_expiring_within_a_week_are_counted_flagged_and_listed(settings, database_url):
    admin = await make_key(database_url)
    soon = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    fresh = msgspec.structs.replace(settings, metrics_cache_seconds=0.0)
    async with AsyncTestClient(app=create_app(fresh)) as client:
        for name, expires in (("soon", soon), ("later", later)):
            body = {"name": name, "scopes": ["events:read"], "expires_at": expires}
            assert (
                await client.post("/v1/keys", json=body, headers=auth(admin))
            ).status_code == 201
        found = samples((await client.get("/metrics")).text)
        assert value(found, "eventgate_api_keys_expiring") == 1
        client.follow_redirects = False
        await sign_in(client, admin)
        page = (await client.get("/console/keys")).text
        assert page.count("expires within 7 days") == 1
    listed = subprocess.run(
        [sys.executable, "-m", "cli", "keys", "list", "--tenant", "acme"],
        env={**os.environ, "EVENTGATE_DATABASE_URL": database_url},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    states = {line.split("\t")[2]: line.split("\t")[4] for line in listed}
    assert states["later"] == "active"
    assert states["soon"].startswith("active (expires ")
    assert "within 7 days" in states["soon"]


def test_the_expiry_alert_reads_the_metric():
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    alerts = {r["alert"]: r for group in rules["groups"] for r in group["rules"]}
    assert "eventgate_api_keys_expiring" in alerts["EventgateApiKeysExpiring"]["expr"]
