"""ShopifyWebhookWorkflow: one per Shopify event, applying the stored delivery durably.

The API answers Shopify as soon as the delivery is committed; this workflow does the
work, retrying through database hiccups, and its id (from X-Shopify-Event-Id) makes a
redelivery or a reconciler pass find it instead of starting a second.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from workflows.playbook_contracts import (
        FIRE_PLAYBOOKS,
        PLAYBOOK_RUN_WORKFLOW,
        Fired,
        FireInput,
        PlaybookRunInput,
    )
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
        outcome = await workflow.execute_activity(
            PROCESS_SHOPIFY_WEBHOOK,
            data,
            result_type=ShopifyWebhookOutcome,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        if outcome.order_id is not None and workflow.patched("playbook-engine"):
            for event in outcome.order_events:
                await self._fire(outcome, event)
        return outcome

    async def _fire(self, outcome: ShopifyWebhookOutcome, event: str) -> None:
        """order.event playbooks: one run per playbook, order event and delivery."""
        assert outcome.user_id is not None and outcome.order_id is not None
        fired = await workflow.execute_activity(
            FIRE_PLAYBOOKS,
            FireInput(
                user_id=outcome.user_id,
                event="order.event",
                order_id=outcome.order_id,
                topic=event,
                trigger_key=f"order:{outcome.order_id}:{event}:{outcome.delivery_id}",
            ),
            result_type=Fired,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RETRY,
        )
        for firing in fired.firings:
            # A redelivery of the webhook finds the run already started.
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await workflow.start_child_workflow(
                    PLAYBOOK_RUN_WORKFLOW,
                    PlaybookRunInput(user_id=outcome.user_id, firing=firing),
                    id=firing.workflow_id,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                )
