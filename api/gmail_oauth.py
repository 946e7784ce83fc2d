"""Connecting Gmail: GET /gmail/connect and GET /gmail/callback (Google's consent, offline).

A signed-in merchant is sent to Google's consent screen with a one-time `state`; the
callback exchanges the code for an access and a refresh token (stored encrypted), asks
Gmail which address it is, stores the GMAIL connection with the mailbox's current
history id (mail from then on is synced) and starts its MailboxSyncWorkflow.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import RedirectResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.deps import CurrentUser, OptionalTemporalDep, SessionsDep, SettingsDep, TaskQueueDep
from integrations.gmail.client import GmailClient
from integrations.gmail.oauth import GoogleOAuth
from kernel.errors import Conflict, IntegrationError, Invalid, Transient, Unauthorized
from kernel.settings import Settings
from models.db import unit_of_work
from models.gmail import GmailAlreadyConnected, connect_gmail
from models.oauth_state import GOOGLE, consume_oauth_state, create_oauth_state
from services.mailbox_workflows import ensure_mailbox_sync

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/gmail", tags=["gmail"])


class GmailConnected(BaseModel):
    connection_id: uuid.UUID
    email_address: str
    syncing: bool  # False: stored, the sync starts when Temporal is reachable


def google_oauth(settings: Settings) -> GoogleOAuth:
    if not settings.gmail_client_id or settings.gmail_client_secret is None:
        raise Transient("Gmail is not configured: set GMAIL_CLIENT_ID and GMAIL_CLIENT_SECRET")
    return GoogleOAuth(
        settings.gmail_client_id,
        settings.gmail_client_secret.get_secret_value(),
        auth_url=settings.google_auth_url,
        token_url=settings.google_token_url,
    )


def redirect_uri(settings: Settings) -> str:
    return f"{settings.public_url.rstrip('/')}/gmail/callback"


@router.get("/connect", status_code=302, response_class=RedirectResponse)
async def connect(
    user_id: CurrentUser,
    sessions: SessionsDep,
    settings: SettingsDep,
    login_hint: Annotated[str | None, Query(description="the Gmail address to connect")] = None,
) -> RedirectResponse:
    oauth = google_oauth(settings)
    try:
        async with unit_of_work(sessions) as session:
            state = await create_oauth_state(session, user_id, provider=GOOGLE)
        url = oauth.authorization_url(redirect_uri(settings), state, login_hint)
    finally:
        await oauth.aclose()
    return RedirectResponse(url, status_code=302)


@router.get("/callback", response_model=GmailConnected)
async def callback(
    sessions: SessionsDep,
    settings: SettingsDep,
    temporal: OptionalTemporalDep,
    task_queue: TaskQueueDep,
    state: str | None = None,
    code: str | None = None,
    error: str | None = None,
) -> GmailConnected:
    if not state:
        raise Invalid("the callback needs a state")
    # Spent first, in its own transaction: whatever fails next, it cannot be replayed.
    async with unit_of_work(sessions) as session:
        user_id = await consume_oauth_state(session, state, provider=GOOGLE)
    if user_id is None:
        raise Unauthorized("the consent state is unknown, expired or already used")
    if error:
        raise Invalid(f"Google did not grant access to Gmail ({error})")
    if not code:
        raise Invalid("the callback needs a code")

    connection_id, address = await complete_connect(sessions, settings, user_id, code)
    syncing = False
    if temporal is not None:
        try:
            await ensure_mailbox_sync(
                temporal, settings, connection_id, user_id, task_queue=task_queue
            )
            syncing = True
        except Exception:
            # The reconciler starts it once Temporal answers; the connection is stored.
            logger.exception("could not start the mailbox sync yet")
    return GmailConnected(connection_id=connection_id, email_address=address, syncing=syncing)


async def complete_connect(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    user_id: uuid.UUID,
    code: str,
    *,
    keep_position: bool = True,
) -> tuple[uuid.UUID, str]:
    """Exchange the code, learn the mailbox's address and store the connection; returns
    (connection id, address). `keep_position=False` restarts the sync from now (the demo's
    sandbox mailbox is new on every run)."""
    oauth = google_oauth(settings)
    try:
        grant = await oauth.exchange_code(code, redirect_uri(settings))
        gmail = GmailClient(grant.access_token, base_url=settings.gmail_api_base_url)
        try:
            profile = await gmail.profile()
        finally:
            await gmail.aclose()
    except IntegrationError as exc:
        raise IntegrationError(
            f"could not finish connecting Gmail: {exc}", retryable=exc.retryable, code=exc.code
        ) from exc
    finally:
        await oauth.aclose()
    try:
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
    except GmailAlreadyConnected as exc:
        raise Conflict(str(exc)) from exc
    return connection_id, profile.email_address
