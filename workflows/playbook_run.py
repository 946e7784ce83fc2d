"""PlaybookRunWorkflow: one playbook firing, carried out step by step, durably.

Its execution row moves pending → approved → executed or failed, or pending → rejected.
A `wait` is a durable timer that a customer's reply ends early (unless told otherwise);
the suggestion is approved through the MessageWorkflow's own update, so an automatic
approval passes the same validators and the same exactly-once execution as a person's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from kernel.enums import ActionStatus
    from workflows.contracts import FINISH, SEND_REPLY, ActionRef, FinishInput
    from workflows.failures import failure_reason
    from workflows.playbook_contracts import (
        APPLY_PLAYBOOK_ACTION,
        AUTO_APPROVE,
        CUSTOMER_REPLIED_SIGNAL,
        DECIDED_SIGNAL,
        FINISH_EXECUTION,
        FIRE_PLAYBOOKS,
        MARK_WAITING,
        PLAYBOOK_RUN_WORKFLOW,
        PREPARE_FOLLOWUP,
        RECORD_DECISION_OUTCOME,
        SETTLED_SIGNAL,
        ApplyInput,
        AutoApproved,
        DecidedInput,
        DecisionOutcomeInput,
        ExecutionRef,
        FinishExecutionInput,
        Fired,
        Firing,
        FollowupInput,
        FollowupPrepared,
        PlaybookRunInput,
        SettledInput,
        WaitingInput,
    )
    from workflows.step_policy import RETRY, execute_timeouts

R = TypeVar("R")


class Stop(Exception):
    """The run ends here, with this status and reason."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@workflow.defn(name=PLAYBOOK_RUN_WORKFLOW)
class PlaybookRunWorkflow:
    def __init__(self) -> None:
        self._input: PlaybookRunInput | None = None
        self._replied = False
        self._decided: DecidedInput | None = None
        self._settled: SettledInput | None = None
        self._result: dict[str, Any] = {}

    @workflow.run
    async def run(self, data: PlaybookRunInput) -> dict[str, Any]:
        self._input = data
        firing = data.firing
        if firing is None:
            firing = await self._delayed_firing(data)
            if firing is None:
                return {"fired": False}
        ref = ExecutionRef(user_id=data.user_id, execution_id=firing.execution_id)
        status, error = "executed", None
        try:
            for index, action in enumerate(firing.actions):
                await self._step(ref, firing, index, action)
        except Stop as stop:
            status, error = stop.status, stop.reason
        except ActivityError as err:
            status, error = "failed", failure_reason(err)
        await self._activity(
            FINISH_EXECUTION,
            FinishExecutionInput(
                **ref.model_dump(), status=status, error=error, result=self._result
            ),
            type(None),
        )
        return {"fired": True, "status": status, "error": error, **self._result}

    async def _delayed_firing(self, data: PlaybookRunInput) -> Firing | None:
        """thread.idle: wait out the idle time (a reply or a decision ends it), then
        evaluate the playbook again on what is true now."""
        assert data.delayed is not None and data.delay is not None
        since = data.delayed.since
        ended = await self._wait(
            data.delay,
            lambda: (
                (since == "our_reply" and self._replied)
                or (since == "no_decision" and self._decided is not None)
            ),
        )
        assert data.idle_execution_id is not None
        ref = ExecutionRef(user_id=data.user_id, execution_id=data.idle_execution_id)
        await self._activity(MARK_WAITING, WaitingInput(**ref.model_dump(), until=None), type(None))
        reason = None
        if ended:
            reason = (
                "the customer replied before the idle time ran out"
                if since == "our_reply"
                else "the suggestion was decided before the idle time ran out"
            )
        else:
            fired = await self._activity(FIRE_PLAYBOOKS, data.delayed, Fired)
            if fired.firings:
                return fired.firings[0]
            reason = "its conditions did not hold when the idle time ran out"
        await self._activity(
            FINISH_EXECUTION,
            FinishExecutionInput(**ref.model_dump(), status="rejected", error=reason),
            type(None),
        )
        return None

    async def _step(
        self, ref: ExecutionRef, firing: Firing, index: int, action: dict[str, Any]
    ) -> None:
        kind = action.get("type")
        if kind == "approve_suggestion":
            await self._approve(ref, firing)
        elif kind == "wait":
            await self._wait_step(ref, index, action)
        elif kind == "send_followup":
            await self._followup(ref, index, str(action.get("template", "")))
        else:  # tag_thread, close_thread, escalate, reply_with_template
            outcome = await self._activity(
                APPLY_PLAYBOOK_ACTION,
                ApplyInput(**ref.model_dump(), index=index, action=action),
                dict,
            )
            self._result.setdefault("steps", []).append(outcome)
            if outcome.get("stopped"):  # automation was switched off meanwhile
                raise Stop("rejected", str(outcome["stopped"]))

    async def _approve(self, ref: ExecutionRef, firing: Firing) -> None:
        """Approve on its own when every check allows it, else leave it to a person; then
        follow the suggestion to its end."""
        assert self._input is not None
        if firing.action_id is None:
            raise Stop("rejected", "there is no suggestion to approve")
        delayed = self._input.delayed is not None
        if firing.auto_approve or delayed:
            # An idle thread's run asks too: its suggestion may have been decided long
            # ago, and no message workflow would say how, so the run ends.
            approved = await self._activity(AUTO_APPROVE, ref, AutoApproved)
            if not approved.approved:
                self._result["blocked_by"] = approved.blocked_by
                codes = {b.get("code") for b in approved.blocked_by}
                if delayed and codes & {"decided", "no_suggestion"}:
                    raise Stop("rejected", approved.blocked_by[0]["detail"])
        else:
            self._result["blocked_by"] = firing.blocked_by
        patience = self._input.decision_patience
        if not await self._wait(patience, lambda: self._decided is not None):
            raise Stop("rejected", f"no decision within {patience}")
        decided = self._decided
        assert decided is not None
        await self._activity(
            RECORD_DECISION_OUTCOME,
            DecisionOutcomeInput(
                **ref.model_dump(), status=decided.status, decided_by=decided.decided_by
            ),
            type(None),
        )
        if decided.status != ActionStatus.APPROVED.value:
            raise Stop("rejected", f"the suggestion was rejected ({decided.decided_by})")
        if not await self._wait(patience, lambda: self._settled is not None):
            raise Stop("failed", f"the action did not finish within {patience}")
        settled = self._settled
        assert settled is not None
        if settled.status != ActionStatus.EXECUTED.value:
            raise Stop("failed", settled.error or "the action failed")

    async def _wait_step(self, ref: ExecutionRef, index: int, action: dict[str, Any]) -> None:
        seconds = int(action.get("seconds", 0))
        cancel_on_reply = bool(action.get("cancel_on_reply", True))
        until = workflow.now() + timedelta(seconds=seconds)
        await self._activity(
            MARK_WAITING,
            WaitingInput(
                **ref.model_dump(), until=until.isoformat(), cancel_on_reply=cancel_on_reply
            ),
            type(None),
        )
        replied = await self._wait(
            timedelta(seconds=seconds), lambda: cancel_on_reply and self._replied
        )
        await self._activity(MARK_WAITING, WaitingInput(**ref.model_dump(), until=None), type(None))
        if replied:
            self._result["stopped"] = f"the customer replied during the wait of step {index + 1}"
            raise Stop("executed", self._result["stopped"])

    async def _followup(self, ref: ExecutionRef, index: int, template: str) -> None:
        prepared = await self._activity(
            PREPARE_FOLLOWUP,
            FollowupInput(**ref.model_dump(), index=index, template=template),
            FollowupPrepared,
        )
        if prepared.action_id is None:
            self._result.setdefault("steps", []).append({"followup": prepared.note})
            return
        action = ActionRef(user_id=ref.user_id, action_id=prepared.action_id)
        # The same exactly-once reply step as a message's: its Message-ID is the action's.
        message_id = await self._activity(SEND_REPLY, action, str, heartbeats=True)
        if not workflow.patched("reply-finishes"):  # before, a step of its own finished it
            await self._activity(FINISH, FinishInput(**action.model_dump()), str)
        self._result.setdefault("steps", []).append({"followup": message_id})

    async def _wait(self, patience: timedelta, done: Callable[[], bool]) -> bool:
        """True if `done` came true before the timeout (a durable timer)."""
        try:
            await workflow.wait_condition(done, timeout=patience)
        except TimeoutError:
            return False
        return True

    # --- signals ------------------------------------------------------------------------

    @workflow.signal(name=DECIDED_SIGNAL)
    def decided(self, data: DecidedInput) -> None:
        if self._decided is None:
            self._decided = data

    @workflow.signal(name=SETTLED_SIGNAL)
    def settled(self, data: SettledInput) -> None:
        if self._settled is None:
            self._settled = data

    @workflow.signal(name=CUSTOMER_REPLIED_SIGNAL)
    def customer_replied(self) -> None:
        self._replied = True

    # --- helpers ------------------------------------------------------------------------

    async def _activity(
        self, name: str, arg: BaseModel, result_type: type[R], *, heartbeats: bool = False
    ) -> R:
        assert self._input is not None
        start_to_close, heartbeat = self._input.step_timeout, None
        if heartbeats:
            start_to_close, heartbeat = execute_timeouts(self._input.step_timeout)
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=start_to_close,
            heartbeat_timeout=heartbeat,
            retry_policy=RETRY,
        )
