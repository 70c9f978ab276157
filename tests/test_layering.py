"""Dependencies run one way: cli -> app -> workers -> db, with core beneath all of them."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PROJECT = ("cli", "app", "workers", "db", "core")
# What each layer may import of the project (besides itself).
ALLOWED = {
    "core": set(),
    "db": {"core"},
    "workers": {"core", "db"},
    "app": {"core", "db", "workers.enqueue"},
    "cli": {"core", "db", "workers", "app"},
}
# Modules that hold route handlers: they parse, call one service and return (never SQL).
HANDLER_MODULES = [
    *ROOT.glob("app/*/controllers.py"),
    *ROOT.glob("app/console/pages/*.py"),
    ROOT / "app" / "portal" / "pages.py",
    ROOT / "app" / "health.py",
]


def imports_of(path: Path) -> list[str]:
    """Every module a file imports (absolute names)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def allowed(layer: str, name: str) -> bool:
    top = name.split(".")[0]
    if top not in PROJECT or top == layer:
        return True
    return any(name == rule or name.startswith(rule + ".") for rule in ALLOWED[layer])


def test_every_layer_imports_only_what_is_beneath_it():
    offenders = []
    for layer in PROJECT:
        for path in (ROOT / layer).rglob("*.py"):
            for name in imports_of(path):
                if not allowed(layer, name):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_app_reaches_workers_only_through_enqueue():
    reached = {
        name
        for path in (ROOT / "app").rglob("*.py")
        for name in imports_of(path)
        if name.startswith("workers.")
    }
    assert reached <= {
        "workers.enqueue",
        "workers.enqueue.wake",
        "workers.enqueue.run_task",
        "workers.enqueue.TaskBusy",
    }


def test_route_handlers_never_import_db():
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in HANDLER_MODULES
        for name in imports_of(path)
        if name.split(".")[0] == "db"
    ]
    assert offenders == []
