"""The README's marked examples run verbatim (only the address is the test server's) against
a real `eventgate serve`, and every command in them succeeds."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.helpers import ROOT, api_process, make_key

EXAMPLE = re.compile(r"<!-- example: ([a-z-]+) -->\n```sh\n(.*?)```", re.S)
README_ADDRESS = "http://127.0.0.1:8080"


def examples() -> dict[str, str]:
    return dict(EXAMPLE.findall((ROOT / "README.md").read_text()))


def answers_in(output: str) -> list[dict]:
    """The JSON documents curl printed one after another (no newline between them)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := output.find("{", at)) != -1:
        document, at = decoder.raw_decode(output, at)
        found.append(document)
    return found


def test_the_marked_examples_are_found():
    assert "scheduling" in examples()


@pytest.mark.parametrize("name", sorted(examples()))
async def test_a_readme_example_runs_verbatim(name, database_url):
    key = await make_key(database_url)
    script = examples()[name]
    with api_process(database_url) as base:
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script.replace(README_ADDRESS, base)],
            env={**os.environ, "EVENTGATE_API_KEY": key},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert run.returncode == 0, run.stderr + run.stdout
    answers = answers_in(run.stdout)
    assert answers, run.stdout
    # No error envelope (curl -f already fails on one; a run's own `error` is null).
    assert not [answer for answer in answers if isinstance(answer.get("error"), dict)]
    assert len(answers) == examples()[name].count("curl -sf") - examples()[name].count("$(curl")
