"""The JSON body every delivery of an event carries (and `eventgate listen` forwards)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


def event_body(
    event_id: object,
    source: str,
    event_type: str,
    payload: Any,
    metadata: Any,
    created_at: datetime,
) -> bytes:
    """The body of any delivery of this event (`eventgate listen` forwards the same bytes)."""
    return msgspec.json.encode(
        {
            "id": event_id,
            "source": source,
            "event_type": event_type,
            "payload": payload,
            "metadata": metadata,
            "created_at": created_at,
        }
    )
