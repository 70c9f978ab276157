"""The eventgate command: dev end to end in a subprocess, and the admin subcommands."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from db import migrate
from db.embedded import server_pid
from tests.helpers import api_process
from tests.servers import http_status


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def eventgate(
    *args: str, env: dict[str, str] | None = None, **kwargs
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )


def start_dev(data_dir: Path, port: int) -> tuple[subprocess.Popen, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTGATE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "dev", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 90
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.startswith("Console:"):
            break
    for _ in range(100):
        if http_status(f"http://127.0.0.1:{port}/health/ready") == 200:
            return process, lines
        time.sleep(0.1)
    process.kill()
    process.communicate()
    pytest.fail("eventgate dev did not become ready:\n" + "\n".join(lines))


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output


def test_dev_serves_prints_a_key_and_keeps_data_across_restarts(tmp_path):
    port = free_port()
    process, lines = start_dev(tmp_path, port)
    try:
        keys = [line.split("=", 1)[1] for line in lines if line.startswith("EVENTGATE_API_KEY=")]
        assert len(keys) == 1
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/health/ready").json()["database"]["ok"] is True
        created = httpx.post(
            f"{base}/v1/events",
            json={"source": "cli", "event_type": "dev.test", "payload": {"ok": True}},
            headers={"X-API-Key": keys[0]},
        )
        assert created.status_code == 201
        event_id = created.json()["event_id"]
        endpoint = httpx.post(
            f"{base}/v1/endpoints",
            json={"url": "http://127.0.0.1:9/hook"},
            headers={"X-API-Key": keys[0]},
        ).json()
        console = next(line for line in lines if line.startswith("Console:")).split()[1]
        assert console == f"{base}/console/"
        assert "Sign in" in httpx.get(console, follow_redirects=True).text
        admin = next(line for line in lines if line.strip().startswith("email admin@localhost"))
        password = admin.split("password ", 1)[1].strip()
        assert console_sign_in(base, "admin@localhost", password) == 303
    finally:
        stop(process)
    assert server_pid(tmp_path / "postgres") is None  # Postgres stopped with it

    process, lines = start_dev(tmp_path, port)
    try:
        assert not any(line.startswith("EVENTGATE_API_KEY=") for line in lines)
        assert not any("password" in line for line in lines)  # shown once, at the first start
        assert console_sign_in(base, "admin@localhost", password) == 303
        again = httpx.get(f"{base}/v1/events/{event_id}", headers={"X-API-Key": keys[0]})
        assert again.status_code == 200
        assert again.json()["payload"] == {"ok": True}
        # Its encryption key was made once, kept in the data folder, and opens the secret.
        assert (tmp_path / "encryption-keys").stat().st_mode & 0o777 == 0o600
        shown = httpx.get(
            f"{base}/v1/endpoints/{endpoint['endpoint']['id']}/secret",
            headers={"X-API-Key": keys[0]},
        )
        assert shown.json()["secret"] == endpoint["secret"]
    finally:
        stop(process)


def console_sign_in(base: str, email: str, password: str) -> int:
    """Sign in to the console as a browser does; the answer's status (303 when it worked)."""
    with httpx.Client(base_url=base, follow_redirects=False) as browser:
        form = browser.get("/console/sign-in").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        fields = {"csrf_token": csrf, "email": email, "password": password}
        return browser.post("/console/sign-in", data=fields).status_code


def test_users_are_made_by_the_operator_and_sign_in(database_url):
    env = {**os.environ, "EVENTGATE_DATABASE_URL": database_url}
    assert eventgate("tenants", "create", "acme", env=env).returncode == 0
    made = eventgate(
        "users", "create", "--tenant", "acme", "--email", "Ada@Example.com", "--admin", env=env
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("email=ada@example.com\npassword=")
    password = made.stdout.split("password=", 1)[1].strip()
    assert len(password) >= 12
    again = eventgate("users", "create", "--tenant", "acme", "--email", "ada@example.com", env=env)
    assert again.returncode != 0
    assert "already a user" in again.stderr
    chosen = {**env, "EVENTGATE_USER_PASSWORD": "a password of my own"}
    viewer = eventgate(
        "users", "create", "--tenant", "acme", "--email", "lin@example.com", env=chosen
    )
    assert viewer.stdout == "email=lin@example.com\n"  # a chosen password is never printed
    bad = eventgate("users", "create", "--tenant", "acme", "--email", "not an email", env=env)
    assert bad.returncode != 0
    assert bad.stderr.strip().count("\n") == 0
    listed = eventgate("users", "list", "--tenant", "acme", env=env).stdout.splitlines()
    assert [line.split("\t")[1:3] for line in listed] == [
        ["ada@example.com", "admin"],
        ["lin@example.com", "viewer"],
    ]
    audit = eventgate("audit", "verify", env=env)
    assert audit.returncode == 0, audit.stderr
    with api_process(database_url) as base:
        assert console_sign_in(base, "ada@example.com", password) == 303
        assert console_sign_in(base, "lin@example.com", "a password of my own") == 303
        assert console_sign_in(base, "lin@example.com", password) == 401


def test_admin_subcommands(database_url):
    env = {**os.environ, "EVENTGATE_DATABASE_URL": database_url}
    status = eventgate("migrate", "status", env=env)
    assert status.returncode == 0, status.stderr
    every = len(migrate.status(database_url))
    assert status.stdout.count("applied\t") == every
    tenant = eventgate("tenants", "create", "acme", env=env)
    assert tenant.stdout.startswith("created\t")
    assert eventgate("tenants", "create", "acme", env=env).stdout.startswith("exists\t")
    key = eventgate(
        "keys",
        "create",
        "--tenant",
        "acme",
        "--name",
        "ci",
        "--scopes",
        "events:write,events:read",
        env=env,
    )
    assert key.returncode == 0, key.stderr
    assert re.fullmatch(r"EVENTGATE_API_KEY=eg_[0-9a-f]{16}_\S{43}\n", key.stdout)
    bad = eventgate(
        "keys", "create", "--tenant", "acme", "--name", "x", "--scopes", "root", env=env
    )
    assert bad.returncode != 0
    missing = eventgate(
        "keys", "create", "--tenant", "nobody", "--name", "x", "--scopes", "admin", env=env
    )
    assert missing.returncode != 0
    listed = eventgate("tenants", "list", env=env)
    assert [line.split("\t")[1] for line in listed.stdout.splitlines()] == ["acme"]
    rolled = eventgate("migrate", "rollback", "--all", env=env)
    assert rolled.returncode == 0, rolled.stderr
    assert eventgate("migrate", "status", env=env).stdout.count("pending\t") == every


def test_keys_are_listed_and_revoked_by_the_operator(database_url):
    env = {**os.environ, "EVENTGATE_DATABASE_URL": database_url}
    eventgate("tenants", "create", "acme", env=env)
    created = eventgate(
        "keys", "create", "--tenant", "acme", "--name", "ops", "--scopes", "admin", env=env
    )
    key_id = created.stderr.split()[0].removeprefix("id=")
    listed = eventgate("keys", "list", "--tenant", "acme", env=env)
    assert listed.returncode == 0, listed.stderr
    (row,) = [line.split("\t") for line in listed.stdout.splitlines()]
    assert row[0] == key_id
    assert row[2] == "ops"
    assert row[4] == "active"
    assert created.stdout.split("=", 1)[1].split("_")[1] == row[1]  # the prefix, not the secret
    revoked = eventgate("keys", "revoke", "--tenant", "acme", key_id, env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert (
        eventgate("keys", "list", "--tenant", "acme", env=env).stdout.split("\t")[4] == "revoked\n"
    )
    other = eventgate("keys", "revoke", "--tenant", "acme", "0" * 32, env=env)
    assert other.returncode != 0
    assert "has no key" in other.stderr


def test_version_and_help_show_every_default():
    version = eventgate("--version")
    assert re.fullmatch(r"eventgate \d+\.\d+\.\d+\n", version.stdout)
    for command in ("dev", "serve", "migrate"):
        text = eventgate(command, "--help").stdout
        options = re.findall(r"^  (--[a-z-]+)", text, re.MULTILINE)
        assert options, text
        assert text.count("(default:") >= len([o for o in options if o != "--help"]) - 1, text


def test_a_second_ctrl_c_during_shutdown_is_quiet(tmp_path):
    port = free_port()
    process, _ = start_dev(tmp_path, port)
    process.send_signal(signal.SIGINT)
    assert process.stdout is not None
    seen = [process.stdout.readline()]
    while seen[-1] and not seen[-1].startswith("Stopping"):
        seen.append(process.stdout.readline())
    process.send_signal(signal.SIGINT)  # while the first is still shutting down
    rest, _ = process.communicate(timeout=60)
    output = "".join(seen) + rest
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert "KeyboardInterrupt" not in output
    assert "Already stopping" in output


def test_operator_key_changes_are_audited_and_input_errors_are_one_line(database_url):
    import psycopg

    env = {**os.environ, "EVENTGATE_DATABASE_URL": database_url}
    eventgate("tenants", "create", "acme", env=env)
    created = eventgate(
        "keys", "create", "--tenant", "acme", "--name", "ops", "--scopes", "admin", env=env
    )
    key_id = created.stderr.split()[0].removeprefix("id=")
    assert eventgate("keys", "revoke", "--tenant", "acme", key_id, env=env).returncode == 0
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT action, resource_id, actor_key_prefix, user_agent FROM audit_logs ORDER BY seq"
        ).fetchall()
    assert [(action, resource) for action, resource, _, _ in rows] == [
        ("key.create", key_id),
        ("key.revoke", key_id),
    ]
    assert all(
        prefix.startswith("cli:") and agent == "eventgate-cli" for _, _, prefix, agent in rows
    )
    assert eventgate("audit", "verify", env=env).returncode == 0
    for bad in (["--per-minute", "-3"], ["--burst", "0"], ["--per-hour", "x"]):
        refused = eventgate("rate-limits", "set-tier", "t", *bad, env=env)
        assert refused.returncode != 0
        assert "Traceback" not in refused.stderr
        assert "above zero" in refused.stderr or "whole number" in refused.stderr
    unreachable = {**env, "EVENTGATE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    lost = eventgate("tenants", "list", env=unreachable)
    assert lost.returncode != 0
    assert "Traceback" not in lost.stderr
    assert len(lost.stderr.strip().splitlines()) == 1


def test_operator_commands_find_the_dev_database_or_say_where_its_url_is(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTGATE_")}
    alone = eventgate("rate-limits", "list", env=env, cwd=tmp_path)
    assert alone.returncode != 0
    assert "Database: postgresql://" in alone.stderr
    port = free_port()
    data_dir = tmp_path / ".eventgate"
    process, _ = start_dev(data_dir, port)
    try:
        listed = eventgate("rate-limits", "list", env=env, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.startswith("standard\t") or "\nstandard\t" in listed.stdout
        assert eventgate("audit", "verify", env=env, cwd=tmp_path).returncode == 0
    finally:
        stop(process)
    assert not (data_dir / "database-url").exists()


def test_worker_refuses_unknown_queues_and_bad_concurrency(database_url):
    env = {**os.environ, "EVENTGATE_DATABASE_URL": database_url}
    for bad in (["--queues", "nope"], ["--concurrency", "0"], ["--concurrency", "x"]):
        refused = eventgate("worker", *bad, env=env)
        assert refused.returncode != 0
        assert "Traceback" not in refused.stderr
        assert refused.stderr.strip()
