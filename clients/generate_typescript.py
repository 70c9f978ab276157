"""The TypeScript SDK's generated module (filled in below)."""

from __future__ import annotations

from typing import Any

from clients.generate import Operation


def typescript_module(ops: list[Operation], schemas: dict[str, Any]) -> str:
    """The whole generated module."""
    return "// generated\n"
