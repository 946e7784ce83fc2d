"""POST /shopify/webhooks: every Shopify topic arrives here, signed with the app secret.

Verify the signature over the raw body (401 and nothing stored otherwise), store the
delivery once per X-Shopify-Event-Id, commit, start its workflow, answer 200. Shopify
waits about five seconds; the processing happens in the ShopifyWebhookWorkflow.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import insert

from api.body import read_limited_body
from api.deps import OptionalTemporalDep, SessionsDep, SettingsDep, TaskQueueDep
from api.schemas import error_responses
from integrations.shopify_verify import valid_shop_domain, verify_webhook
from kernel.errors import Invalid, Transient, Unauthorized
from kernel.values import holds_nul
from models.db import unit_of_work
from models.shopify import ShopifyWebhook
from models.shopify_dispatch import shop_connection
from services.shopify_webhook_workflows import start_webhook_workflow

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/shopify", tags=["shopify"])

# Shopify's order bodies with many line items stay well under this.
MAX_WEBHOOK_BYTES = 4 * 1024 * 1024


class BadWebhookError(Invalid):
    code = "bad_webhook"


class WebhookAccepted(BaseModel):
    event_id: str
    duplicate: bool


def _triggered_at(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.post(
    "/webhooks",
    response_model=WebhookAccepted,
    responses=error_responses(
        (400, "the Shopify headers are missing, or the body is not a JSON object"),
        (401, "X-Shopify-Hmac-Sha256 does not match the body"),
        413,
        (503, "Shopify is not configured: Shopify delivers it again"),
    ),
)
async def receive_webhook(
    request: Request,
    sessions: SessionsDep,
    temporal: OptionalTemporalDep,
    settings: SettingsDep,
    task_queue: TaskQueueDep,
) -> WebhookAccepted:
    if settings.shopify_api_secret is None:
        # Shopify retries a 503; a 401 would read as "forged" and the delivery would be lost.
        raise Transient("Shopify is not configured: set SHOPIFY_API_SECRET")
    raw = await read_limited_body(request, MAX_WEBHOOK_BYTES)
    headers = request.headers
    if not verify_webhook(
        raw, headers.get("x-shopify-hmac-sha256"), settings.shopify_api_secret.get_secret_value()
    ):
        logger.warning(
            "shopify webhook with a bad signature refused",
            extra={"topic": headers.get("x-shopify-topic", "")[:100]},
        )
        raise Unauthorized("the webhook's X-Shopify-Hmac-Sha256 does not match its body")

    topic = headers.get("x-shopify-topic", "")
    shop = headers.get("x-shopify-shop-domain", "")
    event_id = headers.get("x-shopify-event-id") or headers.get("x-shopify-webhook-id", "")
    if not topic or not event_id or not valid_shop_domain(shop):
        raise BadWebhookError(
            "X-Shopify-Topic, X-Shopify-Event-Id and a valid X-Shopify-Shop-Domain are required"
        )
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise BadWebhookError("the body is not JSON") from exc
    if not isinstance(payload, dict):
        raise BadWebhookError("the body is not a JSON object")
    if holds_nul(payload):  # PostgreSQL stores no NUL in JSON
        raise BadWebhookError("the body holds a NUL character")

    async with unit_of_work(sessions) as session:
        connection = await shop_connection(session, shop)
        delivery_id = (
            await session.execute(
                insert(ShopifyWebhook)
                .values(
                    event_id=event_id[:255],
                    webhook_id=(headers.get("x-shopify-webhook-id") or None),
                    topic=topic[:100],
                    shop_domain=shop,
                    user_id=connection.user_id if connection else None,
                    payload=payload,
                    triggered_at=_triggered_at(headers.get("x-shopify-triggered-at")),
                )
                .on_conflict_do_nothing(index_elements=[ShopifyWebhook.event_id])
                .returning(ShopifyWebhook.id)
            )
        ).scalar_one_or_none()
    log_context = {"event_id": event_id, "topic": topic}
    if delivery_id is None:
        logger.info("shopify webhook redelivered; already stored", extra=log_context)
        return WebhookAccepted(event_id=event_id, duplicate=True)

    if temporal is not None:
        try:
            await start_webhook_workflow(temporal, delivery_id, event_id, task_queue=task_queue)
        except Exception:
            # The delivery is committed; the reconciler starts its workflow later. Shopify
            # must not redeliver (and would, on anything but a 2xx).
            logger.exception("could not start the webhook workflow yet", extra=log_context)
    return WebhookAccepted(event_id=event_id, duplicate=False)
