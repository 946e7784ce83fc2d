"""Names and messages of the BillingEventWorkflow, shared by the API, worker and tests."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

BILLING_EVENT_WORKFLOW = "BillingEventWorkflow"
PROCESS_BILLING_EVENT = "process_billing_event"
CANCEL_REPLACED_SUBSCRIPTION = "cancel_replaced_subscription"


def billing_event_workflow_id(gateway: str, event_id: str) -> str:
    """One workflow per gateway event: a redelivery finds the first one."""
    return f"billing-{gateway}-{event_id}"


class BillingEventInput(BaseModel):
    billing_event_id: uuid.UUID  # billing_events.id


class BillingEventOutcome(BaseModel):
    billing_event_id: uuid.UUID
    note: str  # what processing did, or why it did nothing
    subscription_id: uuid.UUID | None = None  # the subscription it moved, if any
    # A gateway subscription the applied one replaced, still live there: to be cancelled.
    replaced: ReplacedSubscription | None = None


class ReplacedSubscription(BaseModel):
    user_id: uuid.UUID
    gateway: str
    gateway_subscription_id: str
