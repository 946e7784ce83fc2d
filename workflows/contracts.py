"""The names and messages shared by the MessageWorkflow, its activities, the API and the CLI.

Activities raise `kernel.errors`; `activities/errors.py` turns the final ones into
non-retryable ApplicationErrors whose type is the error's class name.

One pydantic model in, one out, for every workflow, activity, update, signal and
query; clients and workers both use `pydantic_data_converter`.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from kernel.enums import ActionStatus, ActionType

TASK_QUEUE = "deskpilot-messages"
MESSAGE_WORKFLOW = "MessageWorkflow"
APPROVE_UPDATE = "approve"
REJECT_UPDATE = "reject"
SUPERSEDE_SIGNAL = "supersede"
STATE_QUERY = "state"


def message_workflow_id(user_id: uuid.UUID, rfc_message_id: str) -> str:
    """The business key of a message's journey: a second delivery finds the first workflow.

    The Message-ID is hashed so no customer address leaks into workflow ids.
    """
    digest = hashlib.sha256(rfc_message_id.strip().encode("utf-8")).hexdigest()[:24]
    return f"msg-{user_id}-{digest}"


class Stage(StrEnum):
    RECEIVED = "received"
    SKIPPED = "skipped"  # auto-reply, bounce, list mail: stored, never answered
    AWAITING_DECISION = "awaiting_decision"
    EXECUTING = "executing"
    EXECUTED = "executed"
    REJECTED = "rejected"
    FAILED = "failed"


class MessageWorkflowInput(BaseModel):
    user_id: uuid.UUID
    message_id: uuid.UUID  # messages.id, not the RFC Message-ID
    reminder_after: timedelta = timedelta(hours=24)
    expire_after: timedelta = timedelta(days=7)
    # How long one attempt of a step may take before Temporal retries it elsewhere:
    # also how long a crashed worker's step waits before another worker takes it over.
    step_timeout: timedelta = timedelta(seconds=30)


class ApproveInput(BaseModel):
    action_id: uuid.UUID
    reply: str | None = Field(default=None, description="edited reply; None keeps the draft")
    payload: dict[str, Any] | None = Field(
        default=None, description="edited action payload; None keeps the suggestion's"
    )
    decided_by: str = "api"


class RejectInput(BaseModel):
    action_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=1000)
    decided_by: str = "api"


class DecisionResult(BaseModel):
    action_id: uuid.UUID
    status: ActionStatus


class SupersedeInput(BaseModel):
    newer_message_id: uuid.UUID


class MessageState(BaseModel):
    """What the query returns: enough for the inbox to render the message's progress."""

    stage: Stage
    message_id: uuid.UUID
    action_id: uuid.UUID | None = None
    action_type: ActionType | None = None
    action_status: ActionStatus | None = None
    suggestion_id: uuid.UUID | None = None
    note: str | None = None  # why it was skipped, rejected, failed, or has no suggestion


# --- the MessageWorkflow's activities ----------------------------------------------------
# The workflow calls them by these names; `activities/` implements them under the same
# names and imports these models, never the reverse.

PREPARE_MESSAGE = "prepare_message"
RECORD_DECISION = "record_decision"
REMIND = "remind"
EXECUTE_ACTION = "execute_action"
SEND_REPLY = "send_reply"
FINISH = "finish"
MARK_FAILED = "mark_failed"

# Payload keys the execution writes for itself; an edited payload cannot set them
# (it would skip the order check or pretend the store already acted).
EXECUTION_KEYS = frozenset({"outcome", "performing_since", "prepared"})


class PrepareInput(BaseModel):
    user_id: uuid.UUID
    message_id: uuid.UUID


class Prepared(BaseModel):
    skip_reason: str | None = None
    order_name: str | None = None
    suggestion_id: uuid.UUID | None = None
    action_id: uuid.UUID | None = None
    action_type: ActionType | None = None
    action_status: ActionStatus | None = None
    note: str | None = None
    # Workflows of older messages in the thread still waiting for a decision.
    superseded_workflow_ids: list[str] = []


class DecisionInput(BaseModel):
    user_id: uuid.UUID
    action_id: uuid.UUID
    decision: Literal["approve", "reject"]
    decided_by: str
    reply: str | None = None
    payload: dict[str, Any] | None = None
    reason: str | None = None


class ActionRef(BaseModel):
    user_id: uuid.UUID
    action_id: uuid.UUID


class FinishInput(ActionRef):
    reply_error: str | None = None  # the store acted but the reply could not be sent


class FailInput(BaseModel):
    user_id: uuid.UUID
    action_id: uuid.UUID
    error: str
