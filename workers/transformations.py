"""An endpoint's transformation applied to one delivery, in the worker's sandbox."""

from __future__ import annotations

from core.sandbox import Sandbox
from core.transformations import Refused, Shaped, endpoint_result, endpoint_webhook
from db.delivery_queue import Claimed
from workers.destinations.base import Outcome, Try


async def shape(sandbox: Sandbox, c: Claimed, body: bytes) -> Shaped | Outcome:
    """The delivery as the endpoint's handler leaves it, or the failed try it made (retried
    like any failure; nothing was sent, so the endpoint's health is not touched)."""
    assert c.transformation is not None
    clock = Try()
    url = c.url if c.kind == "http" else None
    webhook = endpoint_webhook(body, str(c.event_id), c.event_type, url)
    verdict = await sandbox.run(c.tenant_id, c.transformation, webhook, "endpoint")
    if not verdict.ok:
        where = f" (line {verdict.line})" if verdict.line else ""
        return _not_sent(clock, f"transformation failed: {verdict.error}{where}")
    assert verdict.output is not None
    try:
        shaped = endpoint_result(verdict.output, url)
    except Refused as exc:
        return _not_sent(clock, f"transformation refused: {exc}")
    if shaped.cancelled:
        outcome = _not_sent(clock, "cancelled by the endpoint's transformation")
        outcome.cancelled = True
        return outcome
    return shaped


def _not_sent(clock: Try, error: str) -> Outcome:
    outcome = clock.failed(error)
    outcome.sent = False
    return outcome
