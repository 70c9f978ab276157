"""An example payload drawn from an event type's JSON Schema, for a catalogue reader: the
schema's own examples, default, const or first enum value where it gives one, else a value of
its type. Bounded (depth and properties), never fetched from anywhere ($ref is not followed)."""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 6
MAX_PROPERTIES = 30
PLAIN = {"string": "string", "integer": 0, "number": 0.0, "boolean": True, "null": None}
FORMATS = {
    "date-time": "2026-01-31T12:00:00Z",
    "date": "2026-01-31",
    "email": "ada@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-7000-8000-000000000000",
}


def example_of(schema: Any, depth: int = 0) -> Any:
    """A value the schema describes (best effort: an example, not a proof)."""
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return None
    for given in ("const", "default"):
        if given in schema:
            return schema[given]
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for combined in ("oneOf", "anyOf", "allOf"):
        if isinstance(schema.get(combined), list) and schema[combined]:
            return example_of(schema[combined][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        return {
            name: example_of(child, depth + 1)
            for name, child in list(properties.items())[:MAX_PROPERTIES]
        }
    if kind == "array":
        return [example_of(schema.get("items"), depth + 1)] if "items" in schema else []
    if kind == "string":
        return FORMATS.get(str(schema.get("format")), "string")
    return PLAIN.get(kind) if isinstance(kind, str) else None
