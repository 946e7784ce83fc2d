"""Names and messages of the AliasTestMailWorkflow, shared by the API, worker and tests."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

ALIAS_TEST_MAIL_WORKFLOW = "AliasTestMailWorkflow"
SEND_ALIAS_TEST_MAIL = "send_alias_test_mail"


def alias_test_workflow_id(connection_id: uuid.UUID, request: str) -> str:
    return f"alias-test-{connection_id}-{request}"


class AliasTestMailInput(BaseModel):
    """The token travels in the history, unlike an account link's: it can do nothing but
    mark this one test as arrived, and a retried send must carry the same one."""

    user_id: uuid.UUID
    connection_id: uuid.UUID
    token: str


class AliasTestMailOutcome(BaseModel):
    note: str  # "sent", or why nothing was sent
