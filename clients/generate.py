"""Write the SDKs' generated parts from Eventgate's OpenAPI document: typed models and one
method per operation, for Python (sync and async) and TypeScript.

    uv run python clients/generate.py

Run it after changing the API; the SDK tests fail while an operation has no method."""

from __future__ import annotations

import keyword
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON_OUT = ROOT / "clients/python/src/eventgate_client/_generated.py"
TYPESCRIPT_OUT = ROOT / "clients/typescript/src/generated.ts"
# Written by hand in each SDK (an SSE stream that resumes; a provider's raw body).
HAND_WRITTEN = {"stream_events"}
RAW_BODY = {"receive_trigger"}


@dataclass
class Param:
    """A path or query parameter of an operation."""

    name: str
    location: str
    required: bool
    schema: dict[str, Any]
    description: str = ""


@dataclass
class Operation:
    """One operation of the API, as the SDKs call it."""

    name: str
    method: str
    path: str
    summary: str
    params: list[Param] = field(default_factory=list)
    body: dict[str, Any] | None = None
    body_required: bool = False
    result: dict[str, Any] | None = None
    items_key: str | None = None
    items_schema: dict[str, Any] = field(default_factory=dict)

    @property
    def path_params(self) -> list[Param]:
        return [p for p in self.params if p.location == "path"]

    @property
    def query_params(self) -> list[Param]:
        return [p for p in self.params if p.location == "query"]


def load_schema() -> dict[str, Any]:
    """The OpenAPI document of the app, built without a database."""
    sys.path.insert(0, str(ROOT))
    from app.main import create_app
    from core.settings import Settings

    return create_app(Settings(database_url="postgresql:///unused")).openapi_schema.to_schema()


def operations(document: dict[str, Any]) -> list[Operation]:
    """Every operation of the document, sorted by name."""
    found = []
    components = document["components"]["schemas"]
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            op = Operation(spec["operationId"], method.upper(), path, spec.get("summary", ""))
            for p in spec.get("parameters", []):
                if p["in"] in ("path", "query"):
                    param = Param(p["name"], p["in"], p.get("required", False), p["schema"])
                    param.description = p.get("description", "")
                    op.params.append(param)
            content = spec.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                op.body = content["application/json"]["schema"]
                op.body_required = spec["requestBody"].get("required", False)
            for status in ("200", "201", "202"):
                answer = spec["responses"].get(status, {}).get("content", {})
                if "application/json" in answer:
                    op.result = answer["application/json"]["schema"]
                    break
            op.items_key = _items_key(op, components)
            if op.items_key and op.result:
                page = components[ref_name(op.result["$ref"])]
                op.items_schema = page["properties"][op.items_key].get("items", {})
            found.append(op)
    return sorted(found, key=lambda op: op.name)


def _items_key(op: Operation, components: dict[str, Any]) -> str | None:
    """The list a keyset page holds, when the operation is paged by cursor."""
    if not any(p.name == "cursor" for p in op.query_params) or op.result is None:
        return None
    ref = op.result.get("$ref", "")
    props = components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
    if "pagination" not in props:
        return None
    arrays = [name for name, s in props.items() if s.get("type") == "array"]
    return arrays[0] if len(arrays) == 1 else None


def ref_name(ref: str) -> str:
    """The model name a $ref points at."""
    return re.sub(r"\W", "_", ref.rsplit("/", 1)[-1])


def python_identifier(name: str) -> str:
    """A parameter name Python accepts."""
    name = re.sub(r"\W", "_", name)
    return name + "_" if keyword.iskeyword(name) else name


def main() -> None:
    """Regenerate both SDKs' generated files."""
    from clients.generate_python import python_module
    from clients.generate_typescript import typescript_module

    document = load_schema()
    ops = operations(document)
    schemas = document["components"]["schemas"]
    PYTHON_OUT.write_text(python_module(ops, schemas))
    TYPESCRIPT_OUT.write_text(typescript_module(ops, schemas))
    subprocess.run(["ruff", "format", "--quiet", str(PYTHON_OUT)], check=True)
    subprocess.run(["ruff", "check", "--fix", "--quiet", str(PYTHON_OUT)], check=True)
    print(f"{len(ops)} operations, {len(schemas)} models written")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
