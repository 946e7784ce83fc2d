"""Connecting a Gmail mailbox once Google's consent came back: exchange the code, learn the
mailbox's address and history position, store the connection. The API's callback and the
demo's set-up both finish a connection here."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.gmail.client import GmailClient
from integrations.gmail.oauth import GoogleOAuth
from kernel.errors import IntegrationError, Transient
from kernel.settings import Settings
from models.db import unit_of_work
from models.gmail import connect_gmail


def gmail_configured(settings: Settings) -> bool:
    return bool(settings.gmail_client_id) and settings.gmail_client_secret is not None


def google_oauth(settings: Settings) -> GoogleOAuth:
    secret = settings.gmail_client_secret
    if not gmail_configured(settings) or secret is None:
        raise Transient("Gmail is not configured: set GMAIL_CLIENT_ID and GMAIL_CLIENT_SECRET")
    return GoogleOAuth(
        settings.gmail_client_id,
        secret.get_secret_value(),
        auth_url=settings.google_auth_url,
        token_url=settings.google_token_url,
    )


def redirect_uri(settings: Settings) -> str:
    return f"{settings.public_url.rstrip('/')}/gmail/callback"


async def complete_connect(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    user_id: uuid.UUID,
    code: str,
    *,
    keep_position: bool = True,
) -> tuple[uuid.UUID, str]:
    """Returns (connection id, address). `keep_position=False` restarts the sync from now
    (the demo's sandbox mailbox is new on every run). An address another merchant has
    connected is a Conflict (`GmailAlreadyConnected`)."""
    oauth = google_oauth(settings)
    try:
        grant = await oauth.exchange_code(code, redirect_uri(settings))
        gmail = GmailClient(grant.access_token, base_url=settings.gmail_api_base_url)
        try:
            profile = await gmail.profile()
        finally:
            await gmail.aclose()
    except IntegrationError as exc:
        # Google's own message, said in the merchant's terms.
        raise IntegrationError(
            f"could not finish connecting Gmail: {exc}", retryable=exc.retryable, code=exc.code
        ) from exc
    finally:
        await oauth.aclose()
    async with unit_of_work(sessions) as session:
        connection_id = await connect_gmail(
            session,
            user_id,
            email_address=profile.email_address,
            access_token=grant.access_token,
            refresh_token=grant.refresh_token,
            token_expires_at=grant.expires_at,
            scopes=list(grant.scopes),
            history_id=profile.history_id,
            api_base=settings.gmail_api_base_url,
            keep_position=keep_position,
        )
    return connection_id, profile.email_address
