"""After an account is deleted: stop the workflows still running for it.

Left alone they would not corrupt anything (their activities find no rows and fail as
not found, which is final), but a message waiting days for a decision nobody can give,
or a mailbox sync polling a deleted connection, is noise in the operator's Web UI.
Best effort: the deletion is committed already, so a Temporal that cannot be reached is
logged, not raised.
"""

from __future__ import annotations

import logging
import uuid

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from workflows import search_attributes

log = logging.getLogger(__name__)
_REASON = "the merchant's account was deleted"


async def _terminate(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).terminate(reason=_REASON)
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:  # finished already, or never started
            return False
        raise
    return True


async def stop_account_workflows(
    client: Client | None, user_id: uuid.UUID, workflow_ids: list[str]
) -> int:
    """Terminates `workflow_ids` (mailbox syncs, playbook runs) and the account's running
    message workflows, found by their owner search attribute. Returns how many stopped."""
    if client is None:
        return 0
    stopped = 0
    try:
        for workflow_id in workflow_ids:
            stopped += await _terminate(client, workflow_id)
        query = f'{search_attributes.OWNER.name} = "{user_id}" AND ExecutionStatus = "Running"'
        async for execution in client.list_workflows(query):
            if execution.status is WorkflowExecutionStatus.RUNNING:
                stopped += await _terminate(client, execution.id)
    except RPCError as exc:
        log.warning(
            "workflows of a deleted account not stopped",
            extra={"user_id": str(user_id), "error": exc.message},
        )
    return stopped
