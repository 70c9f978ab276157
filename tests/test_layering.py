"""db/ is the bottom layer: it imports neither app nor workers."""

from __future__ import annotations

import ast
from pathlib import Path

DB = Path(__file__).parent.parent / "db"


def test_db_imports_neither_app_nor_workers():
    offenders = []
    for path in DB.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in ("app", "workers")
            ]
    assert offenders == []
