"""Status vocabularies, defined once here and mirrored by the CHECKs in the migrations."""

from __future__ import annotations

from typing import Final, Literal

DeliveryStatus = Literal["pending", "delivering", "succeeded", "failed", "dead", "cancelled"]
# cancelled: its event was deleted before the delivery went (a scheduled event, typically).
DELIVERY_STATUSES: Final = ("pending", "delivering", "succeeded", "failed", "dead", "cancelled")
# Not finished: waiting, being sent, or failed with a try ahead. Partial indexes on deliveries
# use exactly this predicate, so queries must spell it the same way (see sql_in).
UNFINISHED_DELIVERY_STATUSES: Final = ("pending", "delivering", "failed")
# Waiting for a try (not held by a worker right now).
WAITING_DELIVERY_STATUSES: Final = ("pending", "failed")
# The last_error of a delivery ended because its endpoint was deleted.
ENDED_BY_ENDPOINT_DELETION: Final = "endpoint deleted"

EventStatus = Literal["pending", "acknowledged"]
EVENT_STATUSES: Final = ("pending", "acknowledged")

# Event types Eventgate itself sends to operational endpoints; clients cannot use the prefix.
RESERVED_TYPE_PREFIX: Final = "eventgate."
OPERATIONAL_EVENT_TYPES: Final = (
    "eventgate.endpoint.disabled",
    "eventgate.endpoint.circuit_opened",
    "eventgate.endpoint.circuit_closed",
    "eventgate.delivery.dead_lettered",
    "eventgate.source.rejecting",
    "eventgate.api_key.expiring",
    "eventgate.schedule.run_failed",
)

Priority = Literal["low", "normal", "high"]
PRIORITIES: Final = ("low", "normal", "high")


def sql_in(values: tuple[str, ...]) -> str:
    """A SQL list literal of fixed vocabulary words: `('a', 'b')`.

    Only for the constants above (never input): a partial index is used only when the query's
    predicate is written as literals, not as a bound array.
    """
    assert all(v.isidentifier() for v in values)
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# Console users' roles, least to most (app/scopes.py:ROLE_SCOPES says what each may do).
CONSOLE_ROLES = ("viewer", "developer", "admin")
