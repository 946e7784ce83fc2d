"""Approving a suggestion without a person, within the caps, through the MessageWorkflow's
own update; and recording how the suggestion was decided."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client

from activities.playbook_records import FINAL, blocker, decided_by_playbook, execution_of
from domain.playbook_engine import evaluate
from kernel.enums import ActionStatus, ActionType, PlaybookExecutionStatus
from kernel.errors import DeskpilotError, Transient
from models.action import Action
from models.automation import automation_settings
from models.db import unit_of_work
from models.playbook import Playbook, PlaybookExecution
from services import decisions
from services.playbook_facts import message_context, playbook_view
from workflows.playbook_contracts import (
    AUTO_APPROVE,
    RECORD_DECISION_OUTCOME,
    AutoApproved,
    DecisionOutcomeInput,
    ExecutionRef,
)


class ApprovalStep:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], temporal: Client) -> None:
        self._sessions = sessions
        self._temporal = temporal

    # --- approving ----------------------------------------------------------------------

    @activity.defn(name=AUTO_APPROVE)
    async def auto_approve(self, data: ExecutionRef) -> AutoApproved:
        """Approve the suggestion without a person if every check still allows it now.

        The merchant's settings row is locked while the caps are counted and this
        execution is marked approved, so concurrent runs cannot both pass a cap."""
        async with unit_of_work(self._sessions) as session:
            execution = await execution_of(session, data, lock=True)
            action = await session.get(Action, execution.action_id) if execution.action_id else None
            if action is None or execution.message_id is None:
                return AutoApproved(
                    approved=False, blocked_by=[blocker("no_suggestion", "no action to approve")]
                )
            ours = execution.automatic and execution.status is PlaybookExecutionStatus.approved
            if ours and action.status is not ActionStatus.PENDING:
                return AutoApproved(approved=True)  # approved by an earlier attempt
            if action.status is not ActionStatus.PENDING:
                return AutoApproved(
                    approved=False,
                    blocked_by=[blocker("decided", f"already {action.status.value.lower()}")],
                )
            if not ours:
                # An attempt that got past this point passed the checks and counts in the
                # caps already; checking again would count it twice.
                blocked = await self._take_caps(session, data, execution, action)
                if blocked:
                    return AutoApproved(approved=False, blocked_by=blocked)
            action_id, playbook_id = action.id, execution.playbook_id
        try:
            async with self._sessions() as session:
                await decisions.approve(
                    session,
                    self._temporal,
                    data.user_id,
                    action_id,
                    decided_by=decided_by_playbook(playbook_id),
                )
        except Transient:
            raise
        except DeskpilotError as exc:
            # Refused by the same checks a person's approval meets (a plan limit, an
            # order that changed, a person who decided first): a person decides.
            async with unit_of_work(self._sessions) as session:
                execution = await execution_of(session, data, lock=True)
                action = await session.get(Action, action_id)
                if action is not None and action.status is not ActionStatus.PENDING:
                    # An update cut short (a worker restart) still recorded the approval.
                    return AutoApproved(approved=True)
                if execution.status is PlaybookExecutionStatus.approved and execution.automatic:
                    # The amount stays: should that cut-short update still land, the
                    # decision it reports makes the execution automatic again.
                    execution.status = PlaybookExecutionStatus.pending
                    execution.automatic = False
                    execution.decided_by = None
            return AutoApproved(approved=False, blocked_by=[blocker(exc.code, str(exc))])
        return AutoApproved(approved=True)

    async def _take_caps(
        self,
        session: AsyncSession,
        data: ExecutionRef,
        execution: PlaybookExecution,
        action: Action,
    ) -> list[dict[str, str]]:
        """Check everything again now; if it still allows an automatic approval, mark the
        execution approved (so it counts in the caps) under the merchant's settings lock."""
        assert execution.message_id is not None
        playbook = await session.get(Playbook, execution.playbook_id)
        assert playbook is not None
        await automation_settings(session, data.user_id, lock=True)
        context = await message_context(session, data.user_id, execution.message_id)
        verdict = evaluate(playbook_view(playbook), context.event, context.facts, context.safety)
        if not verdict.auto_approve:
            return [b.model_dump(mode="json") for b in verdict.blocked_by]
        amount = context.facts.get("suggestion.refund_amount")
        execution.status = PlaybookExecutionStatus.approved
        execution.automatic = True
        execution.decided_by = decided_by_playbook(playbook.id)
        execution.refund_amount = amount if action.type is ActionType.REFUND else None
        return []

    @activity.defn(name=RECORD_DECISION_OUTCOME)
    async def record_decision_outcome(self, data: DecisionOutcomeInput) -> None:
        """What became of the suggestion: approved (by this playbook or a person) or
        rejected."""
        async with unit_of_work(self._sessions) as session:
            execution = await execution_of(session, data, lock=True)
            if execution.status in FINAL:
                return
            ours = data.decided_by == decided_by_playbook(execution.playbook_id)
            if data.status == ActionStatus.APPROVED.value:
                execution.status = PlaybookExecutionStatus.approved
                # This playbook's approval, even one whose update was cut short.
                execution.automatic = ours
                if not ours:
                    execution.refund_amount = None
            execution.decided_by = data.decided_by if ours else "person"
