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

from api.deps import CurrentUser, OptionalTemporalDep, SessionsDep, SettingsDep, TaskQueueDep
from api.schemas import error_responses
from kernel.errors import Invalid, Unauthorized
from models.db import unit_of_work
from models.oauth_state import GOOGLE, consume_oauth_state, create_oauth_state
from services.gmail_connections import complete_connect, google_oauth, redirect_uri
from services.mailbox_workflows import ensure_mailbox_sync

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/gmail", tags=["gmail"])


class GmailConnected(BaseModel):
    connection_id: uuid.UUID
    email_address: str
    syncing: bool  # False: stored, the sync starts when Temporal is reachable


@router.get(
    "/connect",
    status_code=302,
    response_class=RedirectResponse,
    responses=error_responses(401, 422, (503, "Gmail is not configured")),
)
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


@router.get(
    "/callback",
    response_model=GmailConnected,
    responses=error_responses(
        (400, "no state or code, or Google did not grant access"),
        (401, "the consent state is unknown, expired or already used"),
        (409, "the mailbox is connected to another merchant"),
        422,
        (502, "Google refused the code, or Gmail failed"),
        (503, "Gmail is not configured"),
    ),
)
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
