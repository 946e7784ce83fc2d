"""The names and messages shared by PlaybookRunWorkflow, its activities and the
MessageWorkflow and ShopifyWebhookWorkflow that start it."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

PLAYBOOK_RUN_WORKFLOW = "PlaybookRunWorkflow"

# Signals a run listens to: what became of the suggestion it handed over, and the
# customer writing again (which ends the waits that say so).
DECIDED_SIGNAL = "decided"
SETTLED_SIGNAL = "settled"
CUSTOMER_REPLIED_SIGNAL = "customer_replied"

# Activities
FIRE_PLAYBOOKS = "fire_playbooks"
IDLE_PLAYBOOKS = "idle_playbooks"
AUTO_APPROVE = "auto_approve"
APPLY_PLAYBOOK_ACTION = "apply_playbook_action"
MARK_WAITING = "mark_waiting"
PREPARE_FOLLOWUP = "prepare_followup"
RECORD_DECISION_OUTCOME = "record_decision_outcome"
FINISH_EXECUTION = "finish_execution"

EventKind = Literal["message.received", "order.event", "thread.idle"]
IdleSince = Literal["our_reply", "no_decision"]


def playbook_run_id(playbook_id: uuid.UUID, trigger_key: str) -> str:
    """One run per playbook and firing: a redelivered trigger finds the first run. The
    key is hashed so no order number or address reaches the Web UI."""
    digest = hashlib.sha256(trigger_key.encode("utf-8")).hexdigest()[:24]
    return f"playbook-{playbook_id}-{digest}"


class FireInput(BaseModel):
    """Evaluate the merchant's playbooks for one event; open an execution per firing."""

    user_id: uuid.UUID
    event: EventKind
    message_id: uuid.UUID | None = None  # message.received, thread.idle
    action_id: uuid.UUID | None = None
    order_id: uuid.UUID | None = None  # order.event
    topic: str | None = None  # order.event: created, updated, cancelled, fulfilled, refunded
    since: IdleSince | None = None  # thread.idle
    idle_seconds: int | None = None
    only_playbook_id: uuid.UUID | None = None  # a delayed (idle) run re-evaluates its own
    trigger_key: str | None = None  # the firing's key, when the caller fixed it


class Firing(BaseModel):
    """A playbook that matched, its open execution, and what it will do."""

    execution_id: uuid.UUID
    playbook_id: uuid.UUID
    playbook_name: str
    workflow_id: str
    trigger_key: str
    actions: list[dict[str, Any]]
    auto_approve: bool
    blocked_by: list[dict[str, str]] = Field(default_factory=list)
    confidence: float | None = None
    message_id: uuid.UUID | None = None
    thread_id: uuid.UUID | None = None
    action_id: uuid.UUID | None = None
    new: bool = True  # False: a redelivery found the execution already open


class Fired(BaseModel):
    firings: list[Firing] = Field(default_factory=list)
    # Runs in this thread waiting on the customer: told that the customer wrote again.
    waiting_workflow_ids: list[str] = Field(default_factory=list)
    # What the enabled thread.idle playbooks count from, as the firing found them: a
    # workflow starts no idle timers for a moment none counts from. None: not read.
    idle_since: list[IdleSince] | None = None


class IdleInput(BaseModel):
    """A thread starts being idle `since` our reply or a pending suggestion."""

    user_id: uuid.UUID
    since: IdleSince
    message_id: uuid.UUID
    action_id: uuid.UUID


class IdlePlaybook(BaseModel):
    """A thread.idle playbook whose timer starts now; its execution waits, open, so that
    the customer's reply can find it and end the wait."""

    playbook_id: uuid.UUID
    after_seconds: int
    execution_id: uuid.UUID
    workflow_id: str
    trigger_key: str


class IdlePlaybooks(BaseModel):
    playbooks: list[IdlePlaybook] = Field(default_factory=list)


class PlaybookRunInput(BaseModel):
    user_id: uuid.UUID
    # A firing already opened (message.received, order.event) ...
    firing: Firing | None = None
    # ... or a delayed one (thread.idle): wait, then evaluate again and maybe fire.
    delayed: FireInput | None = None
    delay: timedelta | None = None
    idle_execution_id: uuid.UUID | None = None
    message_workflow_id: str | None = None
    # How long to wait for a person's decision before giving the run up.
    decision_patience: timedelta = timedelta(days=8)
    step_timeout: timedelta = timedelta(seconds=30)


class DecidedInput(BaseModel):
    status: str  # ActionStatus value: APPROVED or REJECTED
    decided_by: str


class SettledInput(BaseModel):
    status: str  # ActionStatus value: EXECUTED or FAILED
    error: str | None = None


class ExecutionRef(BaseModel):
    user_id: uuid.UUID
    execution_id: uuid.UUID


class AutoApproved(BaseModel):
    approved: bool
    blocked_by: list[dict[str, str]] = Field(default_factory=list)


class ApplyInput(ExecutionRef):
    index: int
    action: dict[str, Any]


class WaitingInput(ExecutionRef):
    until: str | None  # ISO time, or None when the wait is over
    cancel_on_reply: bool = True


class FollowupInput(ExecutionRef):
    index: int
    template: str


class FollowupPrepared(BaseModel):
    action_id: uuid.UUID | None = None
    note: str | None = None  # why there is no follow-up to send


class DecisionOutcomeInput(ExecutionRef):
    status: str
    decided_by: str


class FinishExecutionInput(ExecutionRef):
    status: Literal["executed", "failed", "rejected"]
    error: str | None = None
    result: dict[str, Any] = Field(default_factory=dict)
