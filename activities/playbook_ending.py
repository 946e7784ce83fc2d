"""Ending an execution, with the playbook's counters in the same transaction; failures in
a row pause the playbook."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.playbook_records import FINAL, execution_of
from kernel.enums import PlaybookExecutionStatus
from models.automation import automation_settings
from models.db import unit_of_work
from models.event import log_event
from models.playbook import Playbook, PlaybookExecution
from workflows.playbook_contracts import FINISH_EXECUTION, FinishExecutionInput


class EndingStep:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # --- ending -------------------------------------------------------------------------

    @activity.defn(name=FINISH_EXECUTION)
    async def finish_execution(self, data: FinishExecutionInput) -> None:
        """The execution's end, with the playbook's counters in the same transaction: a
        retry changes nothing twice. Failures in a row pause the playbook."""
        async with unit_of_work(self._sessions) as session:
            execution = await execution_of(session, data, lock=True)
            if execution.status in FINAL:
                return
            status = PlaybookExecutionStatus(data.status)
            now = datetime.now(UTC)
            execution.status = status
            execution.error = data.error
            result = {k: v for k, v in (execution.result or {}).items() if k != "waiting"}
            execution.result = {**result, **data.result}
            if status is not PlaybookExecutionStatus.approved and not execution.automatic:
                execution.refund_amount = None
            if status is PlaybookExecutionStatus.executed:
                execution.executed_at = now
                await session.execute(
                    update(Playbook)
                    .where(Playbook.id == execution.playbook_id)
                    .values(
                        execution_count=Playbook.execution_count + 1,
                        last_executed_at=now,
                        consecutive_failures=0,
                    )
                )
            elif status is PlaybookExecutionStatus.failed:
                await self._count_failure(session, execution, data.error or "failed")
            await log_event(
                session,
                f"playbook.{status.value}",
                user_id=data.user_id,
                entity="playbook",
                entity_id=execution.playbook_id,
                payload={"execution_id": str(execution.id), "error": data.error},
            )

    async def _count_failure(
        self, session: AsyncSession, execution: PlaybookExecution, error: str
    ) -> None:
        failures = (
            await session.execute(
                update(Playbook)
                .where(Playbook.id == execution.playbook_id)
                .values(consecutive_failures=Playbook.consecutive_failures + 1)
                .returning(Playbook.consecutive_failures)
            )
        ).scalar_one()
        settings = await automation_settings(session, execution.user_id)
        playbook = await session.get(Playbook, execution.playbook_id, with_for_update=True)
        assert playbook is not None
        if failures >= settings.pause_after_failures and playbook.enabled:
            playbook.enabled = False
            playbook.disabled_reason = (
                f"paused after {failures} failed executions in a row; the last: {error}"
            )
            await log_event(
                session,
                "playbook.paused",
                user_id=execution.user_id,
                entity="playbook",
                entity_id=playbook.id,
                payload={"failures": failures, "error": error},
            )
