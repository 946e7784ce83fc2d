"""POST /billing/webhooks/razorpay and /billing/webhooks/paddle: the gateways' signed news.

Verify the signature over the raw body (401 and nothing stored otherwise; Paddle's
signature also carries a timestamp that must be within 5 s), store the delivery once per
(gateway, event id), commit, start its BillingEventWorkflow, answer 200. When the
workflow cannot be started the delivery stays stored and unprocessed, and the answer is
503: the gateway delivers it again, and that redelivery starts it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from api.billing_deps import GatewaysDep
from api.body import read_limited_body
from api.deps import OptionalTemporalDep, SessionsDep, TaskQueueDep
from api.schemas import error_responses
from integrations.billing_gateways import BadWebhook, BillingGateway
from kernel.errors import Transient, Unauthorized
from kernel.values import holds_nul
from models.db import unit_of_work
from services.billing_webhooks import record_arrival, start_billing_workflow

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/billing/webhooks", tags=["billing"])

# A subscription event is a few kilobytes.
MAX_WEBHOOK_BYTES = 1024 * 1024
_SETTINGS = {
    "razorpay": "RAZORPAY_KEY_ID, RAZORPAY_KEY_SECRET and RAZORPAY_WEBHOOK_SECRET",
    "paddle": "PADDLE_API_KEY and PADDLE_WEBHOOK_SECRET",
}
_SIGNATURE = {"razorpay": "X-Razorpay-Signature", "paddle": "Paddle-Signature"}


class BillingWebhookAccepted(BaseModel):
    event_id: str
    duplicate: bool


def _responses(name: str) -> dict[int | str, dict[str, Any]]:
    return error_responses(
        (401, f"{_SIGNATURE[name]} does not match the body (or its time is past)"),
        413,
        (422, "the body is not a JSON event"),
        (503, "the gateway is not configured, or processing could not start: it retries"),
    )


async def _receive(
    name: str,
    request: Request,
    sessions: SessionsDep,
    temporal: OptionalTemporalDep,
    gateway: BillingGateway | None,
    task_queue: str,
) -> BillingWebhookAccepted:
    if gateway is None or not gateway.webhooks_configured:
        # The gateway retries a 503; a 401 would read as "forged" and the news be lost.
        raise Transient(f"{name} is not configured: set {_SETTINGS[name]}")
    raw = await read_limited_body(request, MAX_WEBHOOK_BYTES)
    if not gateway.verify_webhook(raw, request.headers):
        logger.warning("billing webhook with a bad signature refused", extra={"gateway": name})
        raise Unauthorized(f"the webhook's {_SIGNATURE[name]} does not match its body")
    try:
        event = gateway.parse_webhook(raw, request.headers)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        # Signed, so the gateway's, but not in the shape its documentation gives.
        logger.warning("billing webhook not readable", extra={"gateway": name, "error": repr(exc)})
        raise BadWebhook(f"the {name} event cannot be read: {exc!r}") from exc
    payload = json.loads(raw)
    if holds_nul(payload):  # PostgreSQL stores no NUL in JSON
        raise BadWebhook("the body holds a NUL character")
    async with unit_of_work(sessions) as session:
        arrival = await record_arrival(session, name, event, payload)
    context = {"gateway": name, "event_id": event.event_id, "event": event.event_type}
    if arrival.processed:
        logger.info("billing webhook redelivered; already applied", extra=context)
        return BillingWebhookAccepted(event_id=event.event_id, duplicate=True)
    if temporal is None:
        raise Transient("the webhook is stored but cannot be processed yet: Temporal is down")
    try:
        await start_billing_workflow(
            temporal, name, event.event_id, arrival.billing_event_id, task_queue=task_queue
        )
    except Exception as exc:
        logger.exception("could not start the billing event workflow", extra=context)
        raise Transient(
            "the webhook is stored but its processing could not start; deliver it again"
        ) from exc
    return BillingWebhookAccepted(event_id=event.event_id, duplicate=not arrival.new)


@router.post("/razorpay", response_model=BillingWebhookAccepted, responses=_responses("razorpay"))
async def receive_razorpay(
    request: Request,
    sessions: SessionsDep,
    temporal: OptionalTemporalDep,
    gateways: GatewaysDep,
    task_queue: TaskQueueDep,
) -> BillingWebhookAccepted:
    return await _receive(
        "razorpay", request, sessions, temporal, gateways.get("razorpay"), task_queue
    )


@router.post("/paddle", response_model=BillingWebhookAccepted, responses=_responses("paddle"))
async def receive_paddle(
    request: Request,
    sessions: SessionsDep,
    temporal: OptionalTemporalDep,
    gateways: GatewaysDep,
    task_queue: TaskQueueDep,
) -> BillingWebhookAccepted:
    return await _receive("paddle", request, sessions, temporal, gateways.get("paddle"), task_queue)
