"""The console's source form: what a person types, as the API's SourceIn or SourcePatch
(a secret is write-only: left empty, a new source gets a generated one and an edit keeps its
own)."""

from __future__ import annotations

from typing import Any

from app.console.forms import Form, json_object, optional, to_struct, words
from app.errors import BadRequest
from app.sources.schemas import SourceIn, SourcePatch

SCHEMES = (
    ("github", "GitHub: X-Hub-Signature-256"),
    ("stripe", "Stripe: Stripe-Signature"),
    ("shopify", "Shopify: X-Shopify-Hmac-Sha256"),
    ("slack", "Slack: X-Slack-Signature"),
    ("standard-webhooks", "Standard Webhooks (whsec_ secret)"),
    ("hmac", "Any HMAC in a header"),
    ("basic", "HTTP Basic (the secret is the password)"),
    ("api-key", "A key in a header"),
    ("none", "None: the trigger URL is the only credential"),
)
RULES = ("event_type", "event_type_header", "event_type_pointer")
# Fields never shown again after a refusal: the secret is a credential.
WRITE_ONLY = ("secret", "csrf_token")


def _verification(form: Form) -> dict[str, Any]:
    scheme = form.get("scheme", "")
    if scheme not in {s for s, _ in SCHEMES}:
        raise BadRequest("choose how requests are verified", {"field": "scheme"})
    options = json_object(form, "options") or {}
    if "scheme" in options:
        raise BadRequest("the scheme is chosen above, not in the options", {"field": "options"})
    return {**options, "scheme": scheme}


def _fields(form: Form) -> dict[str, Any]:
    rule = form.get("rule", "event_type")
    if rule not in RULES:
        raise BadRequest("choose where the event type comes from", {"field": "rule"})
    values: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "verification": _verification(form),
        rule: form.get("rule_value", "").strip(),
        "event_type_prefix": form.get("event_type_prefix", "").strip(),
        "keep_headers": words(form.get("keep_headers")),
    }
    if (secret := optional(form.get("secret"))) is not None:
        values["secret"] = secret
    return values


def new_source(form: Form) -> SourceIn:
    """The source a form creates."""
    return to_struct(_fields(form), SourceIn)


def source_changes(form: Form) -> SourcePatch:
    """The changes an edit form makes (an empty secret keeps the current one)."""
    return to_struct(_fields(form), SourcePatch)


def typed_again(form: Form) -> dict[str, str]:
    """What was typed, to fill the form again after a refusal (never the secret)."""
    return {name: value for name, value in form.items() if name not in WRITE_ONLY}
