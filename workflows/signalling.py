"""Signalling another workflow that may already have finished. Workflow code only."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ApplicationError


async def signal_if_open(workflow_id: str, signal: str, arg: BaseModel | None = None) -> None:
    """Send `signal`; a workflow that already closed has nothing left to hear."""
    try:
        handle = workflow.get_external_workflow_handle(workflow_id)
        if arg is None:
            await handle.signal(signal)
        else:
            await handle.signal(signal, arg)
    except ApplicationError:
        workflow.logger.info("workflow already closed", extra={"workflow_id": workflow_id})
