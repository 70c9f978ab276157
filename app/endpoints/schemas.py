"""Request and response bodies of the /v1/endpoints routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from app.events.schemas import Channel
from app.pagination import Pagination
from core.destination_configs import DestinationConfig

Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2048, pattern=r"^https?://[^\s]+$")]
# An exact type name, `prefix.*`, or `*`.
TypePattern = Annotated[
    str,
    msgspec.Meta(max_length=255, pattern=r"^(\*|[A-Za-z0-9_][A-Za-z0-9_.:-]*?(\.\*)?)$"),
]
TypePatterns = Annotated[list[TypePattern], msgspec.Meta(max_length=100)]
RatePerSecond = Annotated[int, msgspec.Meta(ge=1, le=100_000)]
Description = Annotated[str, msgspec.Meta(max_length=1000)]
EndpointChannels = Annotated[list[Channel], msgspec.Meta(max_length=100)]
# Payload fields to operators ($eq $neq $in $nin $gt $gte $lt $lte $exists, $and/$or);
# checked by app/endpoints/filters.py.
Filter = Annotated[dict[str, Any], msgspec.Meta(description="Payload filter")]
Secret = Annotated[str, msgspec.Meta(pattern=r"^whsec_[A-Za-z0-9+/]{32,}={0,2}$")]
# v1: HMAC-SHA256 with a shared whsec_ secret; v1a: Ed25519, receivers verify with the public key.
Scheme = Literal["v1", "v1a"]


class EndpointIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new endpoint: a url (http), or a broker config. event_types empty means every type;
    with channels, only events carrying one of them; with a filter, only events whose payload
    matches it."""

    url: Url | None = None
    description: Description = ""
    event_types: TypePatterns = msgspec.field(default_factory=list)
    channels: EndpointChannels = msgspec.field(default_factory=list)
    filter: Filter | None = None
    rate_limit_per_s: RatePerSecond | None = None
    ordered: bool = False
    # Receives Eventgate's own events (eventgate.* types) and no others.
    operational: bool = False
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    signature_scheme: Scheme = "v1"
    # How deliveries leave (a tagged union on `kind`); absent: a plain signed POST to url.
    # Credentials in it are write-only: answers show the config without them.
    config: DestinationConfig | None = None


class EndpointPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Changes to an endpoint; absent fields stay as they are."""

    url: Url | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    event_types: TypePatterns | msgspec.UnsetType = msgspec.UNSET
    channels: EndpointChannels | msgspec.UnsetType = msgspec.UNSET
    filter: Filter | msgspec.UnsetType | None = msgspec.UNSET
    rate_limit_per_s: RatePerSecond | msgspec.UnsetType | None = msgspec.UNSET
    ordered: bool | msgspec.UnsetType = msgspec.UNSET
    operational: bool | msgspec.UnsetType = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    # Replaces the whole config (credentials included: they are never shown, so send them
    # again); the kind stays.
    config: DestinationConfig | msgspec.UnsetType | None = msgspec.UNSET


class EndpointView(msgspec.Struct):
    """A webhook endpoint (secrets are only shown by GET /v1/endpoints/{id}/secret)."""

    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    channels: list[str]
    filter: dict[str, Any] | None
    is_active: bool
    disabled_reason: str | None
    rate_limit_per_s: int | None
    ordered: bool
    operational: bool
    metadata: dict[str, Any]
    circuit: str
    consecutive_failures: int
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    signature_scheme: str
    # v1a: the whpk_ key receivers verify signatures with (public; null for v1).
    public_key: str | None
    kind: str
    # The destination config without its credentials (header values, passwords, tokens,
    # client secrets and keys are write-only).
    config: dict[str, Any]
    # While the circuit is open: when the next try (a probe) may go out.
    circuit_open_until: datetime | None = None


class EndpointCreated(msgspec.Struct):
    """A new endpoint and the secret its deliveries are signed with (v1), or null for v1a:
    its private key never leaves Eventgate, receivers verify with endpoint.public_key."""

    endpoint: EndpointView
    secret: str | None


class EndpointList(msgspec.Struct):
    """A page of endpoints, oldest first."""

    endpoints: list[EndpointView]
    pagination: Pagination


class SecretView(msgspec.Struct):
    """What a receiver verifies with: the whsec_ secrets (v1), or the whpk_ public keys (v1a;
    the private keys are never shown). The previous one also signs until
    previous_secret_expires_at."""

    secret: str | None
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    public_key: str | None
    previous_public_key: str | None


class RotateSecretIn(msgspec.Struct, forbid_unknown_fields=True):
    """Rotate to the given whsec_ secret, or to a generated one of the endpoint's scheme (or of
    signature_scheme, to switch: the old one keeps signing during the grace either way)."""

    secret: Secret | None = None
    signature_scheme: Scheme | None = None


class RecoverIn(msgspec.Struct, forbid_unknown_fields=True):
    """Send again every dead delivery of the endpoint created since this time."""

    since: datetime


class Recovered(msgspec.Struct):
    """How many dead deliveries were queued again."""

    endpoint_id: uuid.UUID
    recovered: int
    request_id: str


class TestSent(msgspec.Struct):
    """The test event and its delivery to the endpoint."""

    event_id: uuid.UUID
    delivery_id: uuid.UUID
    request_id: str
