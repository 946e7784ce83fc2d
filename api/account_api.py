"""Account settings as JSON: the password, API tokens and web sessions of the caller.

The same services as the /account page (api/account_settings_pages.py). A token's secret and a
session's cookie (or its stored hash) are never in an answer; another merchant's token or
session id is not found (404).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from pydantic import BaseModel, Field

from api.deps import CurrentUser, SessionDep
from api.schemas import error_responses
from api.web_auth import signed_in
from kernel.errors import DeskpilotError
from models.user import MAX_PASSWORD_LENGTH
from services.account_security import (
    PasswordChanged,
    TokenOut,
    WebSessionOut,
    change_password,
    list_sessions,
    list_tokens,
    revoke_session,
    revoke_token,
)

router = APIRouter(prefix="/api/account", tags=["account"])

SessionRef = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


class PasswordIn(BaseModel):
    current_password: str = Field(max_length=MAX_PASSWORD_LENGTH * 4)
    new_password: str = Field(max_length=MAX_PASSWORD_LENGTH * 4)


async def _current_session_id(request: Request) -> str | None:
    found = await signed_in(request)
    return found.session_id if found else None


@router.get("/tokens", response_model=list[TokenOut], responses=error_responses(401))
async def get_tokens(user_id: CurrentUser, session: SessionDep) -> list[TokenOut]:
    """The merchant's API tokens: name, created, last used; never the token itself."""
    return await list_tokens(session, user_id)


@router.delete(
    "/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 403, 404, 422),
)
async def delete_token(token_id: uuid.UUID, user_id: CurrentUser, session: SessionDep) -> Response:
    """Revoke a token: from now on it answers 401."""
    await revoke_token(session, user_id, token_id)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/sessions", response_model=list[WebSessionOut], responses=error_responses(401))
async def get_sessions(
    request: Request, user_id: CurrentUser, session: SessionDep
) -> list[WebSessionOut]:
    """The merchant's live web sessions; `current` marks the one making this request."""
    return await list_sessions(session, user_id, await _current_session_id(request))


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 403, 404, 422),
)
async def delete_session(
    request: Request, session_id: SessionRef, user_id: CurrentUser, session: SessionDep
) -> Response:
    """End a web session (its `id` from the listing): that browser is signed out."""
    await revoke_session(session, user_id, session_id)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password",
    response_model=PasswordChanged,
    responses=error_responses(
        (400, "the body does not parse, or the new password is too short or too long"),
        401,
        (403, "the current password is not correct, or the X-CSRF-Token is missing"),
        422,
        (429, "too many wrong passwords for this account or address"),
    ),
)
async def post_password(
    request: Request, body: PasswordIn, user_id: CurrentUser, session: SessionDep
) -> PasswordChanged:
    """Change the password (the current one is required); every other web session ends."""
    try:
        changed = await change_password(
            session,
            user_id,
            body.current_password,
            body.new_password,
            keep_session=await _current_session_id(request),
            ip=request.client.host if request.client else None,
        )
    except DeskpilotError:
        await session.commit()  # a wrong password is counted, as a failed sign-in is
        raise
    await session.commit()
    return changed
