"""What ships for running Eventgate elsewhere: the Dockerfile (hadolint), compose.yaml (the
Compose specification), the Kubernetes manifests (their API schemas, offline), the commands
they run (each one parses in the real CLI), and the Prometheus rules and Grafana dashboard
(every metric they name is one Eventgate exports)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

from cli.main import parser
from tests.helpers import ROOT, auth, event_body, make_key

BIN = Path(sys.executable).parent
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
# tests/data/compose-spec.json: schema/compose-spec.json of github.com/compose-spec/compose-spec
# (Apache-2.0), kept here so the check runs offline.
COMPOSE_SPEC = ROOT / "tests" / "data" / "compose-spec.json"


def _yaml_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_the_dockerfile_passes_hadolint():
    result = subprocess.run(
        [BIN / "hadolint", ROOT / "Dockerfile"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_yaml_follows_the_compose_specification():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    jsonschema.Draft7Validator(json.loads(COMPOSE_SPEC.read_text())).validate(compose)
    services = compose["services"]
    assert {"postgres", "migrate", "api", "worker", "prometheus", "grafana"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:18")
    assert "healthcheck" in services["postgres"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    for monitoring in ("prometheus", "grafana"):
        assert services[monitoring]["profiles"] == ["monitoring"]
        for volume in services[monitoring]["volumes"]:
            assert (ROOT / volume.split(":")[0]).exists(), volume


def test_the_kubernetes_manifests_validate_offline():
    kinds = set()
    for manifest in MANIFESTS:
        result = subprocess.run(
            [BIN / "kubernetes-validate", "--strict", "--quiet", manifest],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        kinds |= {doc["kind"] for doc in _yaml_documents(manifest)}
    assert kinds == {"ConfigMap", "Secret", "Job", "Deployment", "Service"}
    worker = _yaml_documents(ROOT / "deploy" / "kubernetes" / "worker.yaml")[0]
    # Longer than a delivery's drain: a claim (2 s) plus the HTTP timeout (15 s).
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 17


def _commands() -> list[list[str]]:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    found = [s["command"] for s in compose["services"].values() if "command" in s]
    for manifest in MANIFESTS:
        for doc in _yaml_documents(manifest):
            pod = doc.get("spec", {}).get("template", {}).get("spec", {})
            found += [c["command"] for c in pod.get("containers", []) if "command" in c]
    cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert cmd is not None
    return [*found, json.loads(cmd.group(1))]


def test_every_command_the_images_run_exists_in_the_cli():
    commands = _commands()
    assert len(commands) >= 6
    for command in commands:
        program, *args = command
        if program == "eventgate":
            parser().parse_args(args)  # exits (fails the test) on an unknown command or option
        else:
            assert program == "procrastinate", command
            help_run = subprocess.run(
                [BIN / "procrastinate", *args, "--help"],
                capture_output=True,
                text=True,
                check=False,
            )
            assert help_run.returncode == 0, shlex.join(command) + help_run.stderr


def _named_metrics(text: str) -> set[str]:
    return set(re.findall(r"\beventgate_[a-z_]+", text))


def _family(name: str) -> str:
    return re.sub(r"_(total|bucket|count|sum)$", "", name)


async def test_alerts_and_dashboard_name_only_exported_metrics(client, database_url):
    key = await make_key(database_url)
    await client.post("/v1/events", json=event_body(), headers=auth(key))
    exported = {_family(name) for name in _named_metrics((await client.get("/metrics")).text)}
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    alerts = {rule["alert"]: rule["expr"] for rule in rules["groups"][0]["rules"]}
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "eventgate.json").read_text())
    targets = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    named = {_family(n) for expr in [*alerts.values(), *targets] for n in _named_metrics(expr)}
    assert named <= exported, named - exported
    assert {"EventgateDeliveryBacklog", "EventgateDeadLettersGrowing"} <= set(alerts)
    assert {"EventgateEndpointDisabled", "EventgateApi5xx"} <= set(alerts)
    assert len(named) >= 10


def test_the_readme_lists_every_setting():
    from core.settings import Settings

    readme = (ROOT / "README.md").read_text()
    missing = [
        f"EVENTGATE_{name.upper()}"
        for name in Settings.__struct_fields__
        if f"EVENTGATE_{name.upper()}" not in readme
    ]
    assert missing == []
