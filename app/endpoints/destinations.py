"""Checking an endpoint's destination config before it is stored: what its types cannot say
(forbidden headers, a token URL under the destination policy, a client certificate that
parses and matches its key), and the columns it is stored in."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from app.errors import BadRequest
from core.destination_configs import (
    BROKER_SCHEMES,
    DestinationConfig,
    HttpConfig,
    MutualTls,
    OAuth2ClientCredentials,
    encode_config,
    forbidden_header,
    kind_of,
)
from core.destinations import (
    RefusedDestination,
    check_broker_url,
    check_destination,
    well_formed_url,
    without_password,
)
from core.settings import Settings


async def check_config(config: DestinationConfig, settings: Settings) -> str:
    """BadRequest naming the field for a config that could never deliver; a broker's address
    as it may be shown."""
    if isinstance(config, HttpConfig):
        await _check_http(config, settings.allow_private_destinations)
        return ""
    try:
        check_broker_url(config.url, BROKER_SCHEMES[kind_of(config)], settings.broker_hosts)
    except RefusedDestination as exc:
        raise BadRequest(f"url refused: {exc}", {"field": "config.url"}) from exc
    return without_password(config.url)


async def _check_http(config: HttpConfig, allow_private: bool) -> None:
    for name in config.headers:
        if forbidden_header(name) or (config.auth and name.lower() == "authorization"):
            raise BadRequest(
                f"the header `{name}` cannot be set on a destination",
                {"field": f"config.headers.{name}"},
            )
    if isinstance(config.auth, OAuth2ClientCredentials):
        await _check_token_url(config.auth.token_url, allow_private)
    if config.tls is not None:
        check_client_certificate(config.tls)


async def _check_token_url(url: str, allow_private: bool) -> None:
    try:
        if allow_private:
            well_formed_url(url)
        else:
            await check_destination(url)
    except RefusedDestination as exc:
        raise BadRequest(f"token_url refused: {exc}", {"field": "config.auth.token_url"}) from exc


def check_client_certificate(tls: MutualTls) -> None:
    """BadRequest unless the certificate and key parse as PEM and belong together, and the
    CA bundle (if any) holds certificates."""
    try:
        certificate = x509.load_pem_x509_certificate(tls.client_certificate.encode())
    except ValueError:
        raise _tls_error("client_certificate", "is not a PEM certificate") from None
    try:
        key = load_pem_private_key(tls.client_key.encode(), password=None)
    except (ValueError, TypeError):
        raise _tls_error("client_key", "is not an unencrypted PEM private key") from None
    public = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*public) != certificate.public_key().public_bytes(*public):
        raise _tls_error("client_key", "does not belong to client_certificate")
    if tls.ca_bundle is not None:
        try:
            if not x509.load_pem_x509_certificates(tls.ca_bundle.encode()):
                raise ValueError
        except ValueError:
            raise _tls_error("ca_bundle", "holds no PEM certificate") from None


def _tls_error(field: str, problem: str) -> BadRequest:
    return BadRequest(f"tls.{field} {problem}", {"field": f"config.tls.{field}"})


def stored_columns(config: DestinationConfig | None) -> dict[str, Any]:
    """The endpoint's kind, config as shown, and whole config to seal (None when plain)."""
    config = config or HttpConfig()
    plain = isinstance(config, HttpConfig) and config.plain
    return {
        "kind": kind_of(config),
        "config": config.shown(),
        "config_whole": None if plain else encode_config(config),
    }
