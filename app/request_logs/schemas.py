"""Response bodies of GET /v1/request-logs."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from app.pagination import Pagination


class RequestLogView(msgspec.Struct):
    """One answered request (the route template, never the path: a path may hold a token)."""

    id: uuid.UUID
    key_id: uuid.UUID | None
    method: str
    route: str
    status: int
    latency_ms: float
    request_id: str | None
    client_ip: str | None
    created_at: datetime


class RequestLogPage(msgspec.Struct):
    """Answered requests, newest first."""

    requests: list[RequestLogView]
    pagination: Pagination
