"""ruff is clean, modules stay small, handlers stay thin and every SQL statement says what it
does."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.helpers import ROOT

SOURCES = ("app", "cli", "core", "db", "workers", "tests", "bench")
MAX_MODULE_LINES = 400
MAX_HANDLER_LINES = 20
ROUTE_DECORATORS = {"get", "post", "put", "patch", "delete"}
SQL_STARTS = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "CREATE", "DROP")


def test_ruff_is_clean():
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_is_over_400_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for folder in SOURCES
        for path in (ROOT / folder).rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    return target.id if isinstance(target, ast.Name) else getattr(target, "attr", "")


def test_no_route_handler_is_over_20_lines():
    long = {}
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and any(
                _decorator_name(d) in ROUTE_DECORATORS for d in node.decorator_list
            ):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_HANDLER_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = lines
    assert long == {}


def test_every_sql_statement_has_a_comment_above_it():
    bare = []
    for path in (ROOT / "db").glob("*.py"):
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.parse(source).body:
            if not isinstance(node, ast.Assign) or not isinstance(
                node.value, ast.Constant | ast.JoinedStr
            ):
                continue
            text = ast.get_source_segment(source, node.value) or ""
            body = text.lstrip("f").strip("\"' \n").lstrip()
            if body.upper().startswith(SQL_STARTS) and not lines[node.lineno - 2].startswith("#"):
                bare.append(f"{path.name}:{node.lineno}")
    assert bare == []
