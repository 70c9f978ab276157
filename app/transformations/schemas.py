"""Request and response bodies of the transformation routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from app.pagination import Pagination
from core.transformations import MAX_CODE_BYTES

Code = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_CODE_BYTES,
        description="JavaScript that defines function handler(webhook) and returns the webhook",
    ),
]
EventType = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class TransformationIn(msgspec.Struct, forbid_unknown_fields=True):
    """The code to run from now on (kept as a new version)."""

    code: Code


class TransformationView(msgspec.Struct):
    """The owner's transformation now (code null: none) and its version (0: never set)."""

    code: str | None
    version: int


class TransformationVersionView(msgspec.Struct):
    """One kept version (code null: the transformation was removed)."""

    version: int
    code: str | None
    created_at: datetime


class TransformationVersionList(msgspec.Struct):
    """A page of versions, newest first."""

    versions: list[TransformationVersionView]
    pagination: Pagination


class EndpointTransformationTest(msgspec.Struct, forbid_unknown_fields=True):
    """A sample event to run an endpoint's handler on (code: the code to try instead of the
    stored one)."""

    payload: dict[str, Any]
    event_type: EventType = "test.event"
    code: Code | None = None


class SourceTransformationTest(msgspec.Struct, forbid_unknown_fields=True):
    """A sample trigger request to run a source's handler on."""

    payload: dict[str, Any]
    event_type: EventType = "test.event"
    headers: dict[Annotated[str, msgspec.Meta(max_length=256)], str] = {}
    code: Code | None = None


class TransformationTestResult(msgspec.Struct):
    """What the handler made of the sample: `result` (for an endpoint the method, url, headers
    and payload that would be sent; for a source the event type and payload that would be
    stored), or `cancelled`, or the `error` and its `line` in the code."""

    ok: bool
    cancelled: bool = False
    result: dict[str, Any] | None = None
    error: str | None = None
    line: int | None = None
