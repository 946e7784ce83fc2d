"""The PlaybookRunWorkflow's activities: fire playbooks on an event, approve on their own
within the caps, carry out their thread actions and follow-ups, and record each execution.

Deciding is `domain.playbook_engine` (pure); the facts come from `services.playbook_facts`.
Every step is safe to retry: executions are keyed by their firing, follow-ups by their
execution and step, and the counters move in the transaction that ends an execution.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from activities.playbook_actions import ActionsStep
from activities.playbook_approval import ApprovalStep
from activities.playbook_ending import EndingStep
from activities.playbook_firing import FiringStep


class PlaybookSteps:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], temporal: Client) -> None:
        self.firing = FiringStep(sessions)
        # Automatic approvals go through the MessageWorkflow's update, as a person's do.
        self.approval = ApprovalStep(sessions, temporal)
        self.actions = ActionsStep(sessions)
        self.ending = EndingStep(sessions)

    def all(self) -> list[Any]:
        return [
            self.firing.fire_playbooks,
            self.firing.idle_playbooks,
            self.approval.auto_approve,
            self.approval.record_decision_outcome,
            self.actions.apply_playbook_action,
            self.actions.mark_waiting,
            self.actions.prepare_followup,
            self.ending.finish_execution,
        ]
