"""Names and messages of the ShopifyWebhookWorkflow, shared by the API, worker and tests."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

SHOPIFY_WEBHOOK_WORKFLOW = "ShopifyWebhookWorkflow"
PROCESS_SHOPIFY_WEBHOOK = "process_shopify_webhook"


def shopify_webhook_workflow_id(event_id: str) -> str:
    """One workflow per Shopify event: a redelivery finds the first one."""
    return f"shopify-webhook-{event_id}"


class ShopifyWebhookInput(BaseModel):
    delivery_id: uuid.UUID  # shopify_webhooks.id


class ShopifyWebhookOutcome(BaseModel):
    delivery_id: uuid.UUID
    topic: str | None = None
    note: str  # what processing did, or why it did nothing
    error: str | None = None  # set when the delivery could not be applied and never will be
    # For an order: whose it is and its events (created, updated, cancelled, fulfilled,
    # refunded), for the playbooks that react to them.
    user_id: uuid.UUID | None = None
    order_id: uuid.UUID | None = None
    order_events: list[str] = []
