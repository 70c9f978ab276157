"""A real OpenID Connect provider for the console's single sign-on tests: panva's
oidc-provider (Node.js, installed from tests/oidc_provider's lock file) on a loopback address
of its own (127.0.0.2, so it is another site than the console's 127.0.0.1)."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from tests.servers import http_status, stop, wait_until

PACKAGE = Path(__file__).parent / "oidc_provider"
HOST = "127.0.0.2"
CLIENT_ID = "eventgate-console"
CLIENT_SECRET = "a-client-secret-for-the-tests"
FORM = re.compile(r'<form[^>]*action="([^"]+)"', re.S)
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def installed() -> None:
    """The provider's packages, from the lock file (once)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("Node.js is not installed (.ci/run installs nodejs and npm)")
    if (PACKAGE / "node_modules" / "oidc-provider").is_dir():
        return
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=PACKAGE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def free_port(host: str = HOST) -> int:
    """A free port on the provider's address."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def answering(issuer: str) -> bool:
    """Whether the provider serves its discovery document."""
    return http_status(f"{issuer}/.well-known/openid-configuration") == 200


@contextlib.contextmanager
def oidc_provider(redirect_uri: str) -> Iterator[str]:
    """A running provider that knows the console as a client; yields its issuer URL."""
    installed()
    port = free_port()
    issuer = f"http://{HOST}:{port}"
    command = ["node", "provider.mjs", HOST, str(port), CLIENT_ID, CLIENT_SECRET, redirect_uri]
    process = subprocess.Popen(
        command,
        cwd=PACKAGE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: answering(issuer), process, "the OpenID Connect provider")
        yield issuer
    finally:
        stop(process)


def console_env(issuer: str) -> dict[str, str]:
    """The settings that point a console at the provider."""
    return {
        "EVENTGATE_OIDC_ISSUER": issuer,
        "EVENTGATE_OIDC_CLIENT_ID": CLIENT_ID,
        "EVENTGATE_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "EVENTGATE_OIDC_NAME": "Test SSO",
    }


def form_action(answer: httpx.Response) -> str:
    """The absolute address the page's (first) form posts to."""
    found = FORM.search(answer.text)
    assert found, f"no form on {answer.url}: {answer.text[:500]}"
    return urljoin(str(answer.url), unescape(found.group(1)))


async def follow(client: httpx.AsyncClient, answer: httpx.Response, until: str) -> httpx.Response:
    """Follow redirects across both sites, stopping before an address that starts with
    `until` (answered with that redirect) or at a page."""
    while answer.is_redirect:
        target = urljoin(str(answer.url), answer.headers["location"])
        if target.startswith(until):
            return answer
        answer = await client.get(target)
    return answer


async def provider_callback(client: httpx.AsyncClient, base: str, login: str) -> str:
    """Start single sign-on in the console and sign in at the provider as `login` (its
    development form: any password); the callback address the provider sends the browser to."""
    callback = f"{base}/console/sign-in/oidc/callback"
    answer = await follow(client, await client.get(f"{base}/console/sign-in/oidc"), callback)
    typed: dict[str, Any] = {"login": login, "password": "any"}
    for _ in range(3):  # the log-in form, then the consent form
        if answer.is_redirect:
            return urljoin(str(answer.url), answer.headers["location"])
        assert answer.status_code == 200, answer.text[:500]
        fields = {**dict(HIDDEN.findall(answer.text)), **typed}
        answer = await follow(client, await client.post(form_action(answer), data=fields), callback)
        typed = {}
    raise AssertionError(f"the provider never sent the browser back: {answer.text[:500]}")
