"""ShopifyBackfillWorkflow: a store's recent orders brought in after it is (re)installed.

Webhooks only tell of orders that change from now on; without this a new store would have
no orders to match the first customer emails against. A workflow, so a store that is slow
or briefly down is retried without the install page waiting.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.shopify_backfill_contracts import (
        BACKFILL_SHOPIFY_ORDERS,
        SHOPIFY_BACKFILL_WORKFLOW,
        ShopifyBackfillInput,
        ShopifyBackfillOutcome,
    )

# An hour of retries rides out a store's outage; a reinstall starts another backfill.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=20,
)


@workflow.defn(name=SHOPIFY_BACKFILL_WORKFLOW)
class ShopifyBackfillWorkflow:
    @workflow.run
    async def run(self, data: ShopifyBackfillInput) -> ShopifyBackfillOutcome:
        return await workflow.execute_activity(
            BACKFILL_SHOPIFY_ORDERS,
            data,
            result_type=ShopifyBackfillOutcome,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RETRY,
        )
