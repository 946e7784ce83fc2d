"""Starting the AccountMailWorkflow: the API asks, the worker makes the link and mails it."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import Client
from temporalio.service import RPCError

from domain.account_tokens import TokenPurpose
from kernel.errors import Transient
from workflows.account_mail_contracts import ACCOUNT_MAIL_WORKFLOW, AccountMailInput
from workflows.contracts import TASK_QUEUE

_START_RPC_TIMEOUT = timedelta(seconds=10)


async def send_account_mail(
    client: Client | None,
    purpose: TokenPurpose,
    *,
    user_id: uuid.UUID | None = None,
    email: str | None = None,
    new_email: str | None = None,
    task_queue: str = TASK_QUEUE,
) -> str:
    """Starts one send; returns its workflow id. Transient when Temporal cannot be reached."""
    if client is None:
        raise Transient("Temporal is not configured for this API process: no email can be sent")
    workflow_id = f"account-mail-{purpose.value}-{uuid.uuid4()}"
    try:
        await client.start_workflow(
            ACCOUNT_MAIL_WORKFLOW,
            AccountMailInput(purpose=purpose, user_id=user_id, email=email, new_email=new_email),
            id=workflow_id,
            task_queue=task_queue,
            rpc_timeout=_START_RPC_TIMEOUT,
        )
    except RPCError as exc:
        raise Transient(f"the email could not be queued: {exc.message}") from exc
    return workflow_id
