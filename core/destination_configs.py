"""What an endpoint's destination is: one typed config per kind, a tagged union on `kind`.

The API validates a config into these Structs; the whole of it, credentials included, is
stored sealed (`endpoints.config_encrypted`) and opened by the worker that sends; `shown()` is
what the API, the console and the audit log see: every credential left out. A new kind adds
its Struct here, to `DestinationConfig`, and its sender under `workers/destinations/`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from core.destinations import without_password

# Header names as RFC 9110 tokens; values without control characters (no header injection).
HeaderName = Annotated[str, msgspec.Meta(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")]
HeaderValue = Annotated[str, msgspec.Meta(max_length=4096, pattern=r"^[^\x00-\x1f\x7f]*$")]
Credential = Annotated[str, msgspec.Meta(min_length=1, max_length=4096, pattern=r"^[^\x00]*$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]
Username = Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f:]+$")]
HttpUrl = Annotated[str, msgspec.Meta(min_length=8, max_length=2048, pattern=r"^https?://\S+$")]
Pem = Annotated[str, msgspec.Meta(min_length=1, max_length=65_536, pattern=r"^[^\x00]*$")]

# Headers a destination may not set: the connection's own (hop-by-hop, Host, the body's
# length and type) and the signature's, which receivers must be able to trust.
FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-type",
        "content-encoding",
    }
)
FORBIDDEN_HEADER_PREFIXES = ("webhook-",)


class BasicAuth(msgspec.Struct, tag="basic", tag_field="type", forbid_unknown_fields=True):
    """HTTP Basic authentication."""

    username: Username
    password: Credential

    def shown(self) -> dict[str, Any]:
        """Without the password."""
        return {"type": "basic", "username": self.username}


class BearerAuth(msgspec.Struct, tag="bearer", tag_field="type", forbid_unknown_fields=True):
    """A fixed bearer token."""

    token: Credential

    def shown(self) -> dict[str, Any]:
        """Without the token."""
        return {"type": "bearer"}


class OAuth2ClientCredentials(
    msgspec.Struct, tag="oauth2", tag_field="type", forbid_unknown_fields=True
):
    """OAuth2 client credentials (RFC 6749 §4.4): a token from token_url, sent as a bearer."""

    token_url: HttpUrl
    client_id: Name
    client_secret: Credential
    scope: Name | None = None
    audience: Name | None = None
    # How the client authenticates to the token endpoint: HTTP Basic (RFC 6749's default) or
    # client_id and client_secret in the form.
    client_authentication: Literal["basic", "post"] = "basic"

    def shown(self) -> dict[str, Any]:
        """Without the client secret."""
        return {
            "type": "oauth2",
            "token_url": self.token_url,
            "client_id": self.client_id,
            "scope": self.scope,
            "audience": self.audience,
            "client_authentication": self.client_authentication,
        }


HttpAuth = BasicAuth | BearerAuth | OAuth2ClientCredentials


class MutualTls(msgspec.Struct, forbid_unknown_fields=True):
    """A client certificate (and its key) in PEM, and the CAs the receiver's certificate may
    chain to besides the system's."""

    client_certificate: Pem
    client_key: Pem
    ca_bundle: Pem | None = None

    def shown(self) -> dict[str, Any]:
        """The certificate (public), never the key."""
        return {
            "client_certificate": self.client_certificate,
            "ca_bundle": self.ca_bundle,
        }


class HttpConfig(msgspec.Struct, tag="http", tag_field="kind", forbid_unknown_fields=True):
    """A signed POST to the endpoint's url, with optional headers, authentication and a
    client certificate."""

    headers: Annotated[dict[HeaderName, HeaderValue], msgspec.Meta(max_length=20)] = msgspec.field(
        default_factory=dict
    )
    auth: HttpAuth | None = None
    tls: MutualTls | None = None

    def shown(self) -> dict[str, Any]:
        """The header names (their values are credentials), the auth without its secret."""
        return {
            "kind": "http",
            "headers": sorted(self.headers),
            "auth": self.auth.shown() if self.auth else None,
            "tls": self.tls.shown() if self.tls else None,
        }

    @property
    def plain(self) -> bool:
        """True when nothing but the url is configured."""
        return not self.headers and self.auth is None and self.tls is None


# A broker's address, credentials included (`amqp://user:password@host:5672/vhost`).
BrokerUrl = Annotated[str, msgspec.Meta(min_length=8, max_length=2048, pattern=r"^[a-z]+s?://\S+$")]
# An exchange, subject, stream or routing key: printable, no spaces.
BrokerName = Annotated[str, msgspec.Meta(max_length=255, pattern=r"^[!-~]*$")]


class RabbitMqConfig(msgspec.Struct, tag="rabbitmq", tag_field="kind", forbid_unknown_fields=True):
    """Publish to a RabbitMQ exchange (AMQP 0-9-1) with publisher confirms."""

    url: BrokerUrl
    routing_key: BrokerName
    exchange: BrokerName = ""
    # A message no queue takes is returned and the try fails (rather than dropped).
    mandatory: bool = True

    def shown(self) -> dict[str, Any]:
        """Without the password."""
        return {
            "kind": "rabbitmq",
            "url": without_password(self.url),
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "mandatory": self.mandatory,
        }


class NatsConfig(msgspec.Struct, tag="nats", tag_field="kind", forbid_unknown_fields=True):
    """Publish to a NATS JetStream subject, acknowledged by the stream."""

    url: BrokerUrl
    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[!-~]+$")]

    def shown(self) -> dict[str, Any]:
        """Without the password."""
        return {"kind": "nats", "url": without_password(self.url), "subject": self.subject}


class RedisConfig(msgspec.Struct, tag="redis", tag_field="kind", forbid_unknown_fields=True):
    """Append to a Redis stream (XADD), trimmed to about max_length entries."""

    url: BrokerUrl
    stream: Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[!-~]+$")]
    max_length: Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)] = 100_000

    def shown(self) -> dict[str, Any]:
        """Without the password."""
        return {
            "kind": "redis",
            "url": without_password(self.url),
            "stream": self.stream,
            "max_length": self.max_length,
        }


DestinationConfig = HttpConfig | RabbitMqConfig | NatsConfig | RedisConfig
BrokerConfig = RabbitMqConfig | NatsConfig | RedisConfig
KINDS = ("http", "rabbitmq", "nats", "redis")
# Each broker kind's URL schemes, with their default ports.
BROKER_SCHEMES: dict[str, dict[str, int]] = {
    "rabbitmq": {"amqp": 5672, "amqps": 5671},
    "nats": {"nats": 4222, "tls": 4222},
    "redis": {"redis": 6379, "rediss": 6379},
}


def kind_of(config: DestinationConfig) -> str:
    """The kind a config is for (its tag)."""
    return str(config.__struct_config__.tag)


def forbidden_header(name: str) -> bool:
    """True for a header a destination may not set."""
    lowered = name.lower()
    return lowered in FORBIDDEN_HEADERS or lowered.startswith(FORBIDDEN_HEADER_PREFIXES)


def encode_config(config: DestinationConfig) -> str:
    """The stored (then sealed) form of a config."""
    return msgspec.json.encode(config).decode()


_DECODER: msgspec.json.Decoder[DestinationConfig] = msgspec.json.Decoder(DestinationConfig)


def decode_config(stored: str) -> DestinationConfig:
    """A config from its stored form."""
    return _DECODER.decode(stored)
