"""Names and messages of the ShopifyBackfillWorkflow, shared by the API, worker and tests."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

SHOPIFY_BACKFILL_WORKFLOW = "ShopifyBackfillWorkflow"
BACKFILL_SHOPIFY_ORDERS = "backfill_shopify_orders"


def shopify_backfill_workflow_id(connection_id: uuid.UUID) -> str:
    """One running backfill per store: a second install meanwhile finds the first."""
    return f"shopify-backfill-{connection_id}"


class ShopifyBackfillInput(BaseModel):
    connection_id: uuid.UUID  # the SHOPIFY connection just (re)installed


class ShopifyBackfillOutcome(BaseModel):
    orders: int  # order rows written or refreshed
    note: str  # "synced", or why nothing was
