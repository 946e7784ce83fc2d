"""Authorised Gmail clients for connected mailboxes: the access token is refreshed before
it expires and the new one stored (encrypted) for every process to use."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.gmail.client import GMAIL_API, AccessTokenRejected, GmailClient, SentMessage
from integrations.gmail.oauth import GoogleOAuth
from kernel.errors import IntegrationError
from kernel.http import new_http_client
from models.db import unit_of_work
from models.gmail import GmailConnectionGone, GmailMetadata, load_gmail, update_gmail

# Refresh a little early: a token that expires during a long history sync fails mid-way.
REFRESH_MARGIN = timedelta(minutes=5)


class MailboxUnavailable(IntegrationError):
    """The mailbox is disabled or disconnected: nothing to do until the merchant acts."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@dataclass(frozen=True)
class Mailbox:
    connection_id: uuid.UUID
    user_id: uuid.UUID
    metadata: GmailMetadata
    client: GmailClient


class GmailAccess:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        oauth: GoogleOAuth | None,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._sessions = sessions
        self._oauth = oauth
        self._http = http or new_http_client(timeout=30)

    async def aclose(self) -> None:
        await self._http.aclose()

    @asynccontextmanager
    async def open(self, connection_id: uuid.UUID) -> AsyncIterator[Mailbox]:
        """The mailbox with a client whose token is good for at least REFRESH_MARGIN."""
        async with unit_of_work(self._sessions) as session:
            try:
                connection, metadata = await load_gmail(session, connection_id)
            except GmailConnectionGone as exc:
                raise MailboxUnavailable(str(exc)) from exc
            if metadata.disabled:
                raise MailboxUnavailable(f"Gmail {metadata.email_address} is disabled")
            token, refresh_token, user_id = (
                connection.access_token,
                connection.refresh_token,
                connection.user_id,
            )
        expires = metadata.token_expires_at
        if expires is None or expires - datetime.now(UTC) < REFRESH_MARGIN:
            token, metadata = await self._refresh(connection_id, metadata, refresh_token)
        client = GmailClient(token, base_url=metadata.api_base or GMAIL_API, http=self._http)
        # The http client is shared by every mailbox; GmailClient.aclose would close it.
        try:
            yield Mailbox(connection_id, user_id, metadata, client)
        except AccessTokenRejected as exc:
            # Revoked or rotated early: refresh on the next attempt, which Temporal makes.
            await self.forget_token(connection_id)
            raise IntegrationError(str(exc), retryable=True) from exc

    async def forget_token(self, connection_id: uuid.UUID) -> None:
        """Google refused a token we thought valid (revoked, rotated): refresh next time."""
        async with unit_of_work(self._sessions) as session:
            await update_gmail(session, connection_id, token_expires_at=None)

    async def send(
        self,
        connection_id: uuid.UUID,
        raw: bytes,
        thread_id: str | None,
        *,
        rfc_message_id: str,
        retry: bool = False,
    ) -> SentMessage:
        """Send once. On a retry the previous attempt may have gone out before it could be
        recorded: look for it in the mailbox's sent mail by its Message-ID first."""
        async with self.open(connection_id) as mailbox:
            if retry:
                earlier = await mailbox.client.find_by_message_id(
                    rfc_message_id, label_ids=["SENT"]
                )
                if earlier is not None:
                    return earlier
            return await mailbox.client.send(raw, thread_id)

    async def _refresh(
        self, connection_id: uuid.UUID, metadata: GmailMetadata, refresh_token: str | None
    ) -> tuple[str, GmailMetadata]:
        if self._oauth is None:
            raise IntegrationError(
                "Gmail's access token expired and GMAIL_CLIENT_ID/GMAIL_CLIENT_SECRET are not "
                "set, so it cannot be refreshed",
                retryable=False,
            )
        if not refresh_token:
            raise IntegrationError(
                f"Gmail {metadata.email_address} has no refresh token: reconnect Gmail",
                retryable=False,
            )
        # A refused refresh token raises GrantRevoked: the sync records it for the merchant.
        grant = await self._oauth.refresh(refresh_token)
        async with unit_of_work(self._sessions) as session:
            updated = await update_gmail(
                session,
                connection_id,
                access_token=grant.access_token,
                refresh_token=grant.refresh_token if grant.refresh_token != refresh_token else None,
                token_expires_at=grant.expires_at,
                scopes=list(grant.scopes) or metadata.scopes,
            )
        return grant.access_token, updated
