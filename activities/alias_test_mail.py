"""The AliasTestMailWorkflow's activity: mail the alias its test, then record the send."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from domain.mail.alias_test import alias_test_email
from integrations.ports import MailPort
from kernel.settings import Settings
from kernel.values import OutboundEmail
from models.db import unit_of_work
from services.alias_test_email import current_test, record_test_sent
from workflows.alias_test_contracts import (
    SEND_ALIAS_TEST_MAIL,
    AliasTestMailInput,
    AliasTestMailOutcome,
)

log = logging.getLogger(__name__)


class AliasTestMailActivities:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], mailer: MailPort, settings: Settings
    ) -> None:
        self._sessions = sessions
        self._mailer = mailer
        self._settings = settings

    def all(self) -> list[object]:
        return [self.send_alias_test_mail]

    @activity.defn(name=SEND_ALIAS_TEST_MAIL)
    async def send_alias_test_mail(self, data: AliasTestMailInput) -> AliasTestMailOutcome:
        """A retry sends the same mail (same token, same Message-ID): a copy that arrives
        twice is recorded once."""
        async with unit_of_work(self._sessions) as session:
            meta = await current_test(session, data.user_id, data.connection_id, data.token)
        if meta is None:
            log.info("alias test not sent", extra={"connection_id": str(data.connection_id)})
            return AliasTestMailOutcome(note="the alias was removed, disabled or tested again")
        domain = self._settings.inbound_domain
        sender = f"no-reply@{domain}"
        info = activity.info()
        # Stable across retries, so a relay that did take an earlier attempt sees a duplicate.
        message_id = f"<alias-test-{info.workflow_id}@{domain}>"
        alias = str(meta.alias)
        email = alias_test_email(
            alias=alias,
            sender=sender,
            token=data.token,
            message_id=message_id,
            now=datetime.now(UTC),
            store_name=meta.store_name,
        )
        await self._mailer.send(
            OutboundEmail(
                message_id=message_id, sender=sender, recipients=[alias], raw=email.as_bytes()
            )
        )
        async with unit_of_work(self._sessions) as session:
            await record_test_sent(
                session, data.user_id, data.connection_id, data.token, datetime.now(UTC)
            )
        return AliasTestMailOutcome(note="sent")
