"""ShopifyWebhookWorkflow: one per Shopify event, applying the stored delivery durably.

The API answers Shopify as soon as the delivery is committed; this workflow does the
work, retrying through database hiccups, and its id (from X-Shopify-Event-Id) makes a
redelivery or a reconciler pass find it instead of starting a second.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.shopify_contracts import (
        PROCESS_SHOPIFY_WEBHOOK,
        SHOPIFY_WEBHOOK_WORKFLOW,
        ShopifyWebhookInput,
        ShopifyWebhookOutcome,
    )

# Shopify gives us 30 days to act on compliance topics; a day of retries with a
# ten-minute ceiling rides out any outage short of that, and the reconciler covers the rest.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=150,
)


@workflow.defn(name=SHOPIFY_WEBHOOK_WORKFLOW)
class ShopifyWebhookWorkflow:
    @workflow.run
    async def run(self, data: ShopifyWebhookInput) -> ShopifyWebhookOutcome:
        return await workflow.execute_activity(
            PROCESS_SHOPIFY_WEBHOOK,
            data,
            result_type=ShopifyWebhookOutcome,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
