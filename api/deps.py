"""Typed request dependencies: the database session, the caller's identity, Temporal.

The caller's identity, by kind of route:
- JSON API (/api/...): `CurrentUser` - a bearer API token, or the web session cookie
  (then a state-changing request must carry the X-CSRF-Token header); 401 JSON otherwise.
- HTML page: `WebUser` - the session cookie; without one, a 303 to /login?next=<page>.
- HTML form POST: `CsrfProtected` - a WebUser whose form's CSRF token has been checked.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.web_auth import SAFE_METHODS, CsrfProtected, WebUser, check_csrf, signed_in
from kernel.errors import Transient, Unauthorized
from kernel.settings import Settings
from models.api_token import user_for_token

_bearer = HTTPBearer(auto_error=False, description="an API token (dpk_...)")


def _sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return request.app.state.sessions


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session the route commits itself: the API commits before it touches Temporal."""
    async with _sessions(request)() as session:
        yield session


async def _current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> uuid.UUID:
    if credentials is None:
        session = await signed_in(request)
        if session is None:
            raise Unauthorized(
                "an API token is required: send Authorization: Bearer <token> (or sign in)"
            )
        # A browser sends the cookie by itself, even on a request another site made it send.
        if request.method not in SAFE_METHODS:
            await check_csrf(request, session)
        return session.user_id
    # Its own connection, so marking the token used never waits on the route's work; in
    # autocommit, as each statement stands alone: no BEGIN and COMMIT round trips.
    async with _sessions(request)() as session:
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        user_id = await user_for_token(session, credentials.credentials)
    if user_id is None:
        raise Unauthorized("the API token is not valid")
    return user_id


async def _optional_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> uuid.UUID | None:
    """CurrentUser, or None when the request carries neither a token nor a live session;
    a token that is not valid is still a 401, never taken for nobody."""
    if credentials is None and await signed_in(request) is None:
        return None
    return await _current_user(request, credentials)


def _optional_temporal(request: Request) -> Client | None:
    return request.app.state.temporal


def _temporal(request: Request) -> Client:
    client: Client | None = request.app.state.temporal
    if client is None:
        raise Transient("Temporal is not configured for this API process")
    return client


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _task_queue(request: Request) -> str:
    return request.app.state.task_queue


SessionDep = Annotated[AsyncSession, Depends(_session)]
SessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(_sessions)]
CurrentUser = Annotated[uuid.UUID, Depends(_current_user)]
OptionalUser = Annotated[uuid.UUID | None, Depends(_optional_user)]
TemporalDep = Annotated[Client, Depends(_temporal)]
OptionalTemporalDep = Annotated[Client | None, Depends(_optional_temporal)]
SettingsDep = Annotated[Settings, Depends(_settings)]
TaskQueueDep = Annotated[str, Depends(_task_queue)]

__all__ = [
    "CsrfProtected",
    "CurrentUser",
    "OptionalTemporalDep",
    "OptionalUser",
    "SessionDep",
    "SessionsDep",
    "SettingsDep",
    "TaskQueueDep",
    "TemporalDep",
    "WebUser",
]
