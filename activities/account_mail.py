"""The AccountMailWorkflow's activity: make the link's token, then send it by outbound mail."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import make_msgid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from domain.account_tokens import TokenPurpose
from domain.mail.account_mail import account_email, account_link
from integrations.ports import MailPort
from kernel.settings import Settings
from kernel.values import OutboundEmail
from models.db import unit_of_work
from models.user import User
from services.account_tokens import issue_account_token
from services.accounts import find_user
from workflows.account_mail_contracts import (
    SEND_ACCOUNT_MAIL,
    AccountMailInput,
    AccountMailOutcome,
)

log = logging.getLogger(__name__)


class AccountMailActivities:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], mailer: MailPort, settings: Settings
    ) -> None:
        self._sessions = sessions
        self._mailer = mailer
        self._settings = settings

    def all(self) -> list[object]:
        return [self.send_account_mail]

    async def _recipient(
        self, session: AsyncSession, data: AccountMailInput
    ) -> tuple[User, str] | None:
        """The account and the address its link goes to, or None: nothing to send."""
        if data.purpose is TokenPurpose.RESET_PASSWORD:
            found = await find_user(session, data.email or "")
            return (found, found.email) if found is not None else None
        user = (
            await session.execute(select(User).where(User.id == data.user_id))
        ).scalar_one_or_none()
        if user is None:
            return None  # deleted since the request
        if data.new_email is not None:
            # An address change: the link proves the new address, whatever the old one's state.
            return user, data.new_email
        # Verified since the request (another link was used): nothing left to confirm.
        return (user, user.email) if user.email_verified_at is None else None

    @activity.defn(name=SEND_ACCOUNT_MAIL)
    async def send_account_mail(self, data: AccountMailInput) -> AccountMailOutcome:
        """A retry after a failed send makes a new token: the unsent one is never seen and
        expires on its own."""
        async with unit_of_work(self._sessions) as session:
            recipient = await self._recipient(session, data)
            if recipient is None:
                log.info("account mail not needed", extra={"purpose": data.purpose.value})
                return AccountMailOutcome(note="no such account, or nothing to do")
            user, address = recipient
            token = await issue_account_token(session, user.id, data.purpose, address)
        # Committed before sending: the link works as soon as the mail can arrive.
        domain = self._settings.inbound_domain
        sender = f"no-reply@{domain}"
        message_id = make_msgid("account", domain=domain)
        email = account_email(
            data.purpose,
            to=address,
            sender=sender,
            link=account_link(self._settings.public_url, data.purpose, token),
            message_id=message_id,
            now=datetime.now(UTC),
            new_address=data.new_email is not None,
        )
        await self._mailer.send(
            OutboundEmail(
                message_id=message_id, sender=sender, recipients=[address], raw=email.as_bytes()
            )
        )
        return AccountMailOutcome(note="sent")
