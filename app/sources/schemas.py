"""Request and response bodies of the /v1/sources and /v1/triggers routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from app.pagination import Pagination

SourceName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")]
HeaderName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9-]{1,100}$")]
Pointer = Annotated[str, msgspec.Meta(pattern=r"^(/[^/\x00]{0,100}){1,10}$")]
TypeName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,199}$")]
TypePrefix = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{0,50}$")]
Tolerance = Annotated[int, msgspec.Meta(ge=1, le=86_400)]
Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=1024, pattern=r"^[\x21-\x7e]+$")]
KeepHeaders = Annotated[list[HeaderName], msgspec.Meta(max_length=50)]


class GitHub(msgspec.Struct, tag="github", tag_field="scheme", forbid_unknown_fields=True):
    """X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>."""


class Stripe(msgspec.Struct, tag="stripe", tag_field="scheme", forbid_unknown_fields=True):
    """Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">."""

    tolerance_seconds: Tolerance = 300


class Shopify(msgspec.Struct, tag="shopify", tag_field="scheme", forbid_unknown_fields=True):
    """X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the body>."""


class Slack(msgspec.Struct, tag="slack", tag_field="scheme", forbid_unknown_fields=True):
    """X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{X-Slack-Request-Timestamp}:{body}">."""

    tolerance_seconds: Tolerance = 300


class StandardWebhooks(
    msgspec.Struct, tag="standard-webhooks", tag_field="scheme", forbid_unknown_fields=True
):
    """webhook-id, webhook-timestamp and webhook-signature, with a whsec_ secret."""

    tolerance_seconds: Tolerance = 300


class Hmac(msgspec.Struct, tag="hmac", tag_field="scheme", forbid_unknown_fields=True):
    """Any HMAC in a header: of the body, or of "{timestamp}.{body}" with timestamp_header."""

    header: HeaderName
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: Annotated[str, msgspec.Meta(pattern=r"^[\x21-\x7e]{0,20}$")] = ""
    timestamp_header: HeaderName | None = None
    tolerance_seconds: Tolerance = 300


class Basic(msgspec.Struct, tag="basic", tag_field="scheme", forbid_unknown_fields=True):
    """Authorization: Basic with this username; the secret is the password."""

    username: Annotated[str, msgspec.Meta(pattern=r"^[\x21-\x39\x3b-\x7e]{1,100}$")]


class ApiKey(msgspec.Struct, tag="api-key", tag_field="scheme", forbid_unknown_fields=True):
    """The secret sent as the value of one header."""

    header: HeaderName


class NoVerification(msgspec.Struct, tag="none", tag_field="scheme", forbid_unknown_fields=True):
    """Anyone with the trigger URL may send (the token is the only credential)."""


Verification = (
    GitHub | Stripe | Shopify | Slack | StandardWebhooks | Hmac | Basic | ApiKey | NoVerification
)


class SourceIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new source. Exactly one of event_type (fixed), event_type_header and
    event_type_pointer says what type its events get (after event_type_prefix). The secret is
    generated when omitted (except for stripe, shopify and slack, whose secret the provider
    gives)."""

    name: SourceName
    verification: Verification
    event_type: TypeName | None = None
    event_type_header: HeaderName | None = None
    event_type_pointer: Pointer | None = None
    event_type_prefix: TypePrefix = ""
    keep_headers: KeepHeaders = msgspec.field(default_factory=list)
    secret: Secret | None = None


class SourcePatch(msgspec.Struct, forbid_unknown_fields=True):
    """Changes to a source; absent fields stay. Giving one event-type rule replaces the
    other two."""

    name: SourceName | msgspec.UnsetType = msgspec.UNSET
    verification: Verification | msgspec.UnsetType = msgspec.UNSET
    event_type: TypeName | msgspec.UnsetType = msgspec.UNSET
    event_type_header: HeaderName | msgspec.UnsetType = msgspec.UNSET
    event_type_pointer: Pointer | msgspec.UnsetType = msgspec.UNSET
    event_type_prefix: TypePrefix | msgspec.UnsetType = msgspec.UNSET
    keep_headers: KeepHeaders | msgspec.UnsetType = msgspec.UNSET
    secret: Secret | msgspec.UnsetType = msgspec.UNSET


class SourceView(msgspec.Struct):
    """A source (its secret only through GET /v1/sources/{id}/secret)."""

    id: uuid.UUID
    name: str
    trigger_path: str
    event_type: str | None
    event_type_header: str | None
    event_type_pointer: str | None
    event_type_prefix: str
    keep_headers: list[str]
    verification: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class SourceCreated(msgspec.Struct):
    """A new source and its secret (shown here and by the secret route only)."""

    source: SourceView
    secret: str | None


class SourceList(msgspec.Struct):
    """A page of sources, oldest first."""

    sources: list[SourceView]
    pagination: Pagination


class SourceSecret(msgspec.Struct):
    """The secret a source verifies requests with (None for `none`)."""

    secret: str | None


class RejectionView(msgspec.Struct):
    """A refused trigger request: no secret, no body."""

    id: uuid.UUID
    status_code: int
    reason: str
    client_ip: str
    header_names: list[str]
    body_size: int
    created_at: datetime


class RejectionList(msgspec.Struct):
    """The newest refused requests of a source (at most 100), newest first."""

    rejections: list[RejectionView]


class TriggerAccepted(msgspec.Struct):
    """The event a trigger request became (duplicate: a redelivery of an earlier one;
    cancelled: the source's transformation chose to store nothing, and event_id is null)."""

    event_id: uuid.UUID | None
    duplicate: bool
    cancelled: bool = False
