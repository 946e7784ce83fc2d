"""The MessageWorkflow's activities, one module per step: prepare (`message_prepare`),
decision (`message_decision`), execution (`message_execution`) and reply
(`message_reply`). Each step owns its transactions and is safe to retry."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.gmail_access import GmailAccess
from activities.message_decision import DecisionStep
from activities.message_execution import ExecutionStep
from activities.message_prepare import PrepareStep
from activities.message_reply import ReplyStep
from integrations.ports import MailPort, ShopifyPort, SuggesterPort


class MessageActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        shopify: ShopifyPort,
        mailer: MailPort,
        suggester: SuggesterPort,
        gmail: GmailAccess | None = None,
        *,
        policy: str = "",
    ) -> None:
        self.prepare = PrepareStep(sessions, shopify, suggester, policy=policy)
        self.decision = DecisionStep(sessions)
        self.execution = ExecutionStep(sessions, shopify)
        self.reply = ReplyStep(sessions, mailer, gmail)

    def all(self) -> list[Any]:
        return [
            self.prepare.prepare_message,
            self.decision.record_decision,
            self.decision.remind,
            self.execution.execute_action,
            self.reply.send_reply,
            self.execution.finish,
            self.execution.mark_failed,
        ]
