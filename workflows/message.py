"""MessageWorkflow: one inbound email's journey from suggestion to executed action and reply.

prepare (classify, match order, plan limits, suggestion, PENDING action)
  → wait for a decision (approve/reject updates; reminder; expiry; superseded by a
    newer message in the thread)
  → execute the action on Shopify → send the reply → EXECUTED (or FAILED).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from domain.decision_check import edit_problems
    from kernel.enums import REPLY_ONLY, ActionStatus
    from kernel.errors import Conflict, InvalidDecision, NotFound
    from workflows import search_attributes as sa
    from workflows.contracts import (
        APPROVE_UPDATE,
        EXECUTE_ACTION,
        FINISH,
        MARK_FAILED,
        MESSAGE_WORKFLOW,
        PREPARE_MESSAGE,
        RECORD_DECISION,
        REJECT_UPDATE,
        REMIND,
        SEND_REPLY,
        STATE_QUERY,
        SUPERSEDE_SIGNAL,
        ActionRef,
        ApproveInput,
        DecisionInput,
        DecisionResult,
        FailInput,
        FinishInput,
        MessageState,
        MessageWorkflowInput,
        Prepared,
        PrepareInput,
        RejectInput,
        Stage,
        SupersedeInput,
    )
    from workflows.failures import failure_reason
    from workflows.message_playbooks import PlaybookHandoff
    from workflows.playbook_contracts import (
        DECIDED_SIGNAL,
        SETTLED_SIGNAL,
        DecidedInput,
        SettledInput,
    )
    from workflows.signalling import signal_if_open
    from workflows.step_policy import RETRY, execute_timeouts


R = TypeVar("R")


@workflow.defn(name=MESSAGE_WORKFLOW)
class MessageWorkflow(PlaybookHandoff):
    def __init__(self) -> None:
        self._input: MessageWorkflowInput | None = None
        self._state: MessageState | None = None
        self._decision: DecisionInput | None = None  # taken (validator refuses a second)
        self._decision_recorded = False  # durable in the database
        self._superseded_by: SupersedeInput | None = None
        self._runs: list[str] = []  # playbook runs told how the suggestion ends
        self._handing_off = False  # the playbooks are being fired: decisions wait

    # --- run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, data: MessageWorkflowInput) -> MessageState:
        self._input = data
        self._state = MessageState(stage=Stage.RECEIVED, message_id=data.message_id)
        prepared = await workflow.execute_activity(
            PREPARE_MESSAGE,
            PrepareInput(user_id=data.user_id, message_id=data.message_id),
            result_type=Prepared,
            start_to_close_timeout=timedelta(minutes=3),
            retry_policy=RETRY,
        )
        if prepared.skip_reason is not None:
            return self._end(Stage.SKIPPED, note=prepared.skip_reason)

        assert prepared.action_id is not None
        self._state = MessageState(
            stage=Stage.AWAITING_DECISION,
            message_id=data.message_id,
            action_id=prepared.action_id,
            action_type=prepared.action_type,
            action_status=prepared.action_status,
            suggestion_id=prepared.suggestion_id,
            note=prepared.note,
        )
        self._publish(order_name=prepared.order_name)
        for older in prepared.superseded_workflow_ids:
            await self._supersede(older)

        if prepared.action_status == ActionStatus.PENDING:
            # Running workflows started before the engine existed replay without it.
            if workflow.patched("playbook-engine"):
                # A decision taken meanwhile is recorded once the runs exist, so each run
                # hears how its suggestion ended.
                self._handing_off = True
                try:
                    await self._hand_to_playbooks(data)
                finally:
                    self._handing_off = False
            await self._await_decision(data)
        elif prepared.action_status == ActionStatus.APPROVED:
            self._decision_recorded = True  # decided in an earlier run of this message

        if self._state.action_status == ActionStatus.APPROVED:
            await self._execute(data)
        elif self._state.action_status == ActionStatus.REJECTED:
            self._end(Stage.REJECTED, note=self._state.note)
        # Let an update that is still recording finish before the workflow completes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    async def _await_decision(self, data: MessageWorkflowInput) -> None:
        def settled() -> bool:
            return self._decision_recorded or (
                self._superseded_by is not None and self._decision is None
            )

        try:
            await workflow.wait_condition(settled, timeout=data.reminder_after)
        except TimeoutError:
            await self._activity(REMIND, self._ref(), type(None))
            try:
                await workflow.wait_condition(
                    settled,
                    timeout=max(data.expire_after - data.reminder_after, timedelta(seconds=1)),
                )
            except TimeoutError:
                # A decision taken just before the expiry settles it, unless recording it
                # fails: then nothing was decided and the action expires after all.
                await workflow.wait_condition(
                    lambda: self._decision_recorded or self._decision is None
                )
                if not self._decision_recorded:
                    await self._close_undecided(
                        f"expired after {data.expire_after} without a decision"
                    )
                return
        if not self._decision_recorded and self._superseded_by is not None:
            await self._close_undecided(
                f"superseded by a newer message in the thread ({self._superseded_by.newer_message_id})"
            )

    async def _close_undecided(self, reason: str) -> None:
        assert self._state is not None and self._input is not None and self._state.action_id
        self._decision = DecisionInput(
            user_id=self._input.user_id,
            action_id=self._state.action_id,
            decision="reject",
            decided_by="system",
            reason=reason,
        )
        status = await self._activity(RECORD_DECISION, self._decision, ActionStatus)
        self._decision_recorded = True
        self._state.action_status = status
        self._state.note = reason
        await self._tell_runs(
            DECIDED_SIGNAL, DecidedInput(status=status.value, decided_by="system")
        )

    async def _execute(self, data: MessageWorkflowInput) -> None:
        assert self._state is not None
        self._state.stage = Stage.EXECUTING
        self._publish()
        try:
            await self._activity(EXECUTE_ACTION, self._ref(), dict, heartbeats=True)
        except ActivityError as err:
            await self._fail(data, failure_reason(err))
            return
        reply_error = None
        try:
            # Heartbeats too: once the relay has the reply, the step keeps trying to record
            # it through a database outage rather than fail and send it again.
            await self._activity(SEND_REPLY, self._ref(), str, heartbeats=True)
        except ActivityError as err:
            if self._state.action_type in REPLY_ONLY:
                await self._fail(data, failure_reason(err))  # the reply was the whole action
                return
            # The store already acted: the action is done, and the merchant is told
            # the customer has not heard about it.
            reply_error = failure_reason(err)
        if reply_error is None and workflow.patched("reply-finishes"):
            # The reply step ends the action EXECUTED in its last transaction.
            self._state.action_status = ActionStatus.EXECUTED
        else:
            self._state.action_status = await self._activity(
                FINISH,
                FinishInput(**self._ref().model_dump(), reply_error=reply_error),
                ActionStatus,
            )
        await self._tell_runs(SETTLED_SIGNAL, SettledInput(status=ActionStatus.EXECUTED.value))
        if reply_error is None and workflow.patched("playbook-engine"):
            await self._start_idle_runs(data, "our_reply")
        self._end(
            Stage.EXECUTED,
            note=f"the action ran but the reply was not sent: {reply_error}"
            if reply_error
            else None,
        )

    async def _fail(self, data: MessageWorkflowInput, reason: str) -> None:
        assert self._state is not None and self._state.action_id is not None
        self._state.action_status = await self._activity(
            MARK_FAILED,
            FailInput(user_id=data.user_id, action_id=self._state.action_id, error=reason),
            ActionStatus,
        )
        await self._tell_runs(
            SETTLED_SIGNAL, SettledInput(status=ActionStatus.FAILED.value, error=reason)
        )
        self._end(Stage.FAILED, note=reason)

    async def _supersede(self, workflow_id: str) -> None:
        assert self._input is not None
        await signal_if_open(
            workflow_id, SUPERSEDE_SIGNAL, SupersedeInput(newer_message_id=self._input.message_id)
        )

    # --- decisions ----------------------------------------------------------------------

    def _preparing(self) -> bool:
        return self._state is None or self._state.stage == Stage.RECEIVED

    def _validate(self, action_id: object) -> None:
        """Refuse what can be refused now. While the suggestion is still being stored, the
        action already shows as PENDING in the database: accept, and let the handler check
        once the workflow knows the action."""
        if self._preparing():
            if self._decision is not None:
                raise ApplicationError(
                    "a decision is already being recorded", type=Conflict.__name__
                )
            return
        self._check_decidable(action_id)

    def _check_decidable(self, action_id: object) -> None:
        state = self._state
        if state is None or state.action_id is None or state.stage != Stage.AWAITING_DECISION:
            raise ApplicationError(
                "this message is not waiting for a decision", type=Conflict.__name__
            )
        if action_id != state.action_id:
            raise ApplicationError(
                f"action {action_id} does not belong to this message", type=NotFound.__name__
            )
        if self._decision is not None:
            raise ApplicationError(
                f"the action was already {self._decision.decision}d", type=Conflict.__name__
            )
        if self._superseded_by is not None:
            raise ApplicationError(
                "a newer message superseded this suggestion", type=Conflict.__name__
            )

    async def _decide(self, decision: DecisionInput) -> DecisionResult:
        await workflow.wait_condition(lambda: not self._preparing() and not self._handing_off)
        # Check and take the decision with no await in between: of concurrent
        # decisions exactly one gets past this point.
        self._check_decidable(decision.action_id)
        assert self._state is not None
        self._decision = decision
        try:
            status = await self._activity(RECORD_DECISION, decision, ActionStatus)
        except ActivityError:
            self._decision = None
            raise
        self._state.action_status = status
        if decision.reason:
            self._state.note = decision.reason
        self._decision_recorded = True
        await self._tell_runs(
            DECIDED_SIGNAL, DecidedInput(status=status.value, decided_by=decision.decided_by)
        )
        return DecisionResult(action_id=decision.action_id, status=status)

    @workflow.update(name=APPROVE_UPDATE)
    async def approve(self, data: ApproveInput) -> DecisionResult:
        assert self._input is not None
        await workflow.wait_condition(lambda: not self._preparing())
        self._check_edit(data)  # accepted while preparing, before the action type was known
        return await self._decide(
            DecisionInput(
                user_id=self._input.user_id,
                action_id=data.action_id,
                decision="approve",
                decided_by=data.decided_by,
                reply=data.reply,
                payload=data.payload,
            )
        )

    @approve.validator
    def _validate_approve(self, data: ApproveInput) -> None:
        self._validate(data.action_id)
        if not self._preparing():
            self._check_edit(data)

    def _check_edit(self, data: ApproveInput) -> None:
        """Refuse an edit that cannot be carried out whatever the order says; the recording
        step checks the rest against the order. The action stays PENDING."""
        assert self._state is not None and self._state.action_type is not None
        problems = edit_problems(self._state.action_type, data.reply, data.payload)
        if problems:
            first = problems[0]
            raise ApplicationError(
                f"{first.field}: {first.reason}",
                {"field": first.field, "reason": first.reason},
                type=InvalidDecision.__name__,
            )

    @workflow.update(name=REJECT_UPDATE)
    async def reject(self, data: RejectInput) -> DecisionResult:
        assert self._input is not None
        return await self._decide(
            DecisionInput(
                user_id=self._input.user_id,
                action_id=data.action_id,
                decision="reject",
                decided_by=data.decided_by,
                reason=data.reason,
            )
        )

    @reject.validator
    def _validate_reject(self, data: RejectInput) -> None:
        self._validate(data.action_id)

    @workflow.signal(name=SUPERSEDE_SIGNAL)
    def supersede(self, data: SupersedeInput) -> None:
        if self._decision is None and self._superseded_by is None:
            self._superseded_by = data

    @workflow.query(name=STATE_QUERY)
    def state(self) -> MessageState:
        assert self._state is not None
        return self._state

    # --- helpers ------------------------------------------------------------------------

    def _ref(self) -> ActionRef:
        assert self._input is not None and self._state is not None and self._state.action_id
        return ActionRef(user_id=self._input.user_id, action_id=self._state.action_id)

    async def _activity(
        self, name: str, arg: BaseModel, result_type: type[R], *, heartbeats: bool = False
    ) -> R:
        """A step by its contract name (the workflow never imports the activities); one
        that `heartbeats` may run long as long as it keeps heartbeating."""
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

    def _end(self, stage: Stage, note: str | None = None) -> MessageState:
        assert self._state is not None
        self._state.stage = stage
        if note is not None:
            self._state.note = note
        self._publish()
        return self._state

    def _publish(self, order_name: str | None = None) -> None:
        """Keep the Web UI's search attributes in step with the state (no customer PII)."""
        assert self._input is not None and self._state is not None
        updates = [
            sa.OWNER.value_set(str(self._input.user_id)),
            sa.MESSAGE.value_set(str(self._input.message_id)),
            sa.STATUS.value_set(self._state.stage.value),
        ]
        if self._state.action_type is not None:
            updates.append(sa.ACTION_TYPE.value_set(self._state.action_type.value))
        if order_name:
            updates.append(sa.ORDER_NAME.value_set(order_name))
        workflow.upsert_search_attributes(updates)
