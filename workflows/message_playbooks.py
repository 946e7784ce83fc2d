"""The MessageWorkflow's hand-off to the playbook engine: fire the matching playbooks as
their own PlaybookRunWorkflows, start the idle timers, and tell the runs how the
suggestion ends. A mixin, so the message workflow's own steps stay readable."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from workflows.contracts import MessageState, MessageWorkflowInput
    from workflows.playbook_contracts import (
        CUSTOMER_REPLIED_SIGNAL,
        FIRE_PLAYBOOKS,
        IDLE_PLAYBOOKS,
        PLAYBOOK_RUN_WORKFLOW,
        Fired,
        FireInput,
        IdleInput,
        IdlePlaybooks,
        IdleSince,
        PlaybookRunInput,
    )
    from workflows.signalling import signal_if_open

R = TypeVar("R")


class PlaybookHandoff:
    _state: MessageState | None
    _runs: list[str]

    async def _activity(
        self, name: str, arg: BaseModel, result_type: type[R], *, heartbeats: bool = False
    ) -> R:
        raise NotImplementedError  # MessageWorkflow's

    async def _hand_to_playbooks(self, data: MessageWorkflowInput) -> None:
        """Fire the playbooks that match this message; each runs as its own workflow and
        may approve through this workflow's update. Runs in the thread waiting on the
        customer hear that the customer wrote again."""
        assert self._state is not None and self._state.action_id is not None
        fired = await self._activity(
            FIRE_PLAYBOOKS,
            FireInput(
                user_id=data.user_id,
                event="message.received",
                message_id=data.message_id,
                action_id=self._state.action_id,
            ),
            Fired,
        )
        for waiting in fired.waiting_workflow_ids:
            await signal_if_open(waiting, CUSTOMER_REPLIED_SIGNAL, None)
        for firing in fired.firings:
            await self._start_run(
                firing.workflow_id,
                PlaybookRunInput(
                    user_id=data.user_id,
                    firing=firing,
                    message_workflow_id=workflow.info().workflow_id,
                    decision_patience=data.expire_after + timedelta(days=1),
                    step_timeout=data.step_timeout,
                ),
            )
        # No thread.idle playbook counting from a pending suggestion: no step to ask
        # (patched: a run that asked before this replays asking).
        counted_from = fired.idle_since is None or "no_decision" in fired.idle_since
        if counted_from or not workflow.patched("idle-known"):
            await self._start_idle_runs(data, "no_decision")

    async def _start_idle_runs(self, data: MessageWorkflowInput, since: IdleSince) -> None:
        """thread.idle playbooks: a run per playbook whose timer starts now."""
        assert self._state is not None and self._state.action_id is not None
        idle = await self._activity(
            IDLE_PLAYBOOKS,
            IdleInput(
                user_id=data.user_id,
                since=since,
                message_id=data.message_id,
                action_id=self._state.action_id,
            ),
            IdlePlaybooks,
        )
        for playbook in idle.playbooks:
            await self._start_run(
                playbook.workflow_id,
                PlaybookRunInput(
                    user_id=data.user_id,
                    delayed=FireInput(
                        user_id=data.user_id,
                        event="thread.idle",
                        message_id=data.message_id,
                        action_id=self._state.action_id,
                        since=since,
                        idle_seconds=playbook.after_seconds,
                        only_playbook_id=playbook.playbook_id,
                        trigger_key=playbook.trigger_key,
                    ),
                    delay=timedelta(seconds=playbook.after_seconds),
                    idle_execution_id=playbook.execution_id,
                    message_workflow_id=workflow.info().workflow_id,
                    decision_patience=data.expire_after + timedelta(days=1),
                    step_timeout=data.step_timeout,
                ),
            )

    async def _start_run(self, workflow_id: str, run: PlaybookRunInput) -> None:
        # A redelivery or a retried firing finds the first run, which carries on.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            # Abandoned, not cancelled, when this message's journey ends: a follow-up
            # days later is the point.
            await workflow.start_child_workflow(
                PLAYBOOK_RUN_WORKFLOW,
                run,
                id=workflow_id,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )
        self._runs.append(workflow_id)

    async def _tell_runs(self, signal: str, arg: BaseModel) -> None:
        for run in self._runs:
            await signal_if_open(run, signal, arg)
