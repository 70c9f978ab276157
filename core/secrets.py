"""Endpoint signing secrets: `whsec_` + base64 of 32 random bytes (Standard Webhooks)."""

from __future__ import annotations

import base64
import secrets

SECRET_PREFIX = "whsec_"


def new_endpoint_secret() -> str:
    """A fresh endpoint secret: 32 random bytes, base64, with the whsec_ prefix."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
