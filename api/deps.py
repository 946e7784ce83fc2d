"""Typed request dependencies: the database session, the caller's identity, Temporal."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.errors import ServiceUnavailableError, UnauthorizedError
from deskpilot.settings import Settings
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
        raise UnauthorizedError("an API token is required: send Authorization: Bearer <token>")
    # Its own short transaction, so marking the token used never waits on the route's work.
    async with _sessions(request)() as session, session.begin():
        user_id = await user_for_token(session, credentials.credentials)
    if user_id is None:
        raise UnauthorizedError("the API token is not valid")
    return user_id


def _optional_temporal(request: Request) -> Client | None:
    return request.app.state.temporal


def _temporal(request: Request) -> Client:
    client: Client | None = request.app.state.temporal
    if client is None:
        raise ServiceUnavailableError("Temporal is not configured for this API process")
    return client


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _task_queue(request: Request) -> str:
    return request.app.state.task_queue


SessionDep = Annotated[AsyncSession, Depends(_session)]
SessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(_sessions)]
CurrentUser = Annotated[uuid.UUID, Depends(_current_user)]
TemporalDep = Annotated[Client, Depends(_temporal)]
OptionalTemporalDep = Annotated[Client | None, Depends(_optional_temporal)]
SettingsDep = Annotated[Settings, Depends(_settings)]
TaskQueueDep = Annotated[str, Depends(_task_queue)]
