"""BillingEventWorkflow: one per gateway webhook event, applying the stored delivery.

The API answers the gateway once the delivery is committed; this workflow applies it,
retrying through database hiccups, and its id (`billing-<gateway>-<event id>`) makes a
redelivery find it instead of starting a second.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.billing_contracts import (
        BILLING_EVENT_WORKFLOW,
        CANCEL_REPLACED_SUBSCRIPTION,
        PROCESS_BILLING_EVENT,
        BillingEventInput,
        BillingEventOutcome,
    )

# Gateways retry a delivery for a day or more; our own retries ride out a database outage
# of about as long, with a ten-minute ceiling between attempts.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=150,
)


@workflow.defn(name=BILLING_EVENT_WORKFLOW)
class BillingEventWorkflow:
    @workflow.run
    async def run(self, data: BillingEventInput) -> BillingEventOutcome:
        outcome = await workflow.execute_activity(
            PROCESS_BILLING_EVENT,
            data,
            result_type=BillingEventOutcome,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RETRY,
        )
        if outcome.replaced is not None:
            # A second paid subscription took the account's place: the first must stop
            # charging. Applied first, so the account already works on the new one.
            await workflow.execute_activity(
                CANCEL_REPLACED_SUBSCRIPTION,
                outcome.replaced,
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RETRY,
            )
        return outcome
