"""JSON Schema validation of payloads, shared by ingest (the API) and scheduled runs (workers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jsonschema_rs

# Patterns run on Rust's regex engine: linear time, so no pattern can stall the API.
LINEAR_PATTERNS = jsonschema_rs.RegexOptions()


def compile_schema(schema: dict[str, Any]) -> jsonschema_rs.Validator:
    """A validator for the schema (its $schema picks the draft; 2020-12 by default).

    Offline: a $ref must resolve inside the document (nothing is ever fetched or opened),
    and the schema must match its metaschema. Raises ValueError naming the problem."""
    return jsonschema_rs.validator_for(
        schema, offline=True, pattern_options=LINEAR_PATTERNS, validate_formats=False
    )


def json_path(parts: Sequence[str | int]) -> str:
    """`$.a[0].b` for the path parts of an error."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def payload_problem(schema: dict[str, Any], payload: dict[str, Any]) -> str | None:
    """Why the payload does not match the schema (its first error, with the path), or None."""
    try:
        validator = compile_schema(schema)
    except (ValueError, jsonschema_rs.ReferencingError) as exc:
        return f"the schema is not usable: {str(exc).splitlines()[0]}"
    error = next(iter(validator.iter_errors(payload)), None)
    if error is None:
        return None
    return (
        f"payload does not match the schema at `{json_path(error.instance_path)}`: {error.message}"
    )
