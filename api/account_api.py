"""Account settings as JSON: the password, email address, API tokens and web sessions of
the caller, and deleting the account.

The same services as the /account page (api/account_settings_pages.py). A token's secret and a
session's cookie (or its stored hash) are never in an answer; another merchant's token or
session id is not found (404).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from pydantic import BaseModel, Field

from api.billing_deps import GatewaysDep
from api.deps import (
    CurrentUser,
    OptionalTemporalDep,
    SessionDep,
    SettingsDep,
    TaskQueueDep,
    TemporalDep,
)
from api.schemas import error_responses
from api.web_auth import clear_session_cookie, client_ip, signed_in
from domain.account_tokens import TokenPurpose
from kernel.errors import DeskpilotError
from kernel.values import STORABLE_TEXT
from models.user import MAX_PASSWORD_LENGTH
from services.account_deletion import delete_account
from services.account_deletion_workflows import stop_account_workflows
from services.account_email import request_email_change
from services.account_mail_workflows import send_account_mail
from services.account_security import (
    PasswordChanged,
    TokenOut,
    WebSessionOut,
    WrongPasswordError,
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


class EmailChangeIn(BaseModel):
    new_email: str = Field(max_length=320, pattern=STORABLE_TEXT)
    current_password: str = Field(max_length=MAX_PASSWORD_LENGTH * 4)


class EmailChangeOut(BaseModel):
    # The link was mailed here; the account keeps its address until the link is used.
    sent_to: str


class AccountDeleteIn(BaseModel):
    current_password: str = Field(max_length=MAX_PASSWORD_LENGTH * 4)
    confirm: str = Field(max_length=20, description='the word "DELETE"')


class AccountDeletedOut(BaseModel):
    counts: dict[str, int]  # rows erased, by kind


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


@router.post(
    "/email",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EmailChangeOut,
    responses=error_responses(
        (400, "the new address is not an email address, or is the account's already"),
        401,
        (403, "the current password is not correct, or the X-CSRF-Token is missing"),
        (409, "another account uses the new address"),
        422,
        (429, "too many wrong passwords, or too many changes asked for"),
        (503, "the email with the link could not be queued"),
    ),
)
async def post_email(
    request: Request,
    body: EmailChangeIn,
    user_id: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
    task_queue: TaskQueueDep,
) -> EmailChangeOut:
    """Change the email address: a link goes to the new address, and only using it (on
    /verify) changes the account's address, which is then confirmed."""
    try:
        address = await request_email_change(
            session, user_id, body.new_email, body.current_password, ip=client_ip(request)
        )
    finally:
        await session.commit()  # a wrong password and a counted request are kept
    await send_account_mail(
        temporal, TokenPurpose.VERIFY_EMAIL, user_id=user_id, new_email=address,
        task_queue=task_queue,
    )  # fmt: skip
    return EmailChangeOut(sent_to=address)


@router.delete(
    "",
    response_model=AccountDeletedOut,
    responses=error_responses(
        (400, 'the confirmation is not "DELETE"'),
        401,
        (403, "the current password is not correct, or the X-CSRF-Token is missing"),
        (409, "a paid subscription is running and could not be cancelled"),
        422,
        (429, "too many wrong passwords for this account or address"),
    ),
)
async def delete_me(
    request: Request,
    response: Response,
    body: AccountDeleteIn,
    user_id: CurrentUser,
    session: SessionDep,
    gateways: GatewaysDep,
    settings: SettingsDep,
    temporal: OptionalTemporalDep,
) -> AccountDeletedOut:
    """Delete the account: each store's data is erased as shop/redact does, then every
    other row of the account; a paid subscription is cancelled first. Every session and
    API token stops working. One `account.deleted` Event, with counts only, is kept."""
    try:
        deleted = await delete_account(
            session, user_id, body.current_password, body.confirm,
            ip=client_ip(request), gateways=gateways, settings=settings,
        )  # fmt: skip
    except WrongPasswordError:
        await session.commit()  # counted, as a failed sign-in is; nothing else was written
        raise
    await session.commit()
    await stop_account_workflows(temporal, user_id, deleted.workflow_ids)
    clear_session_cookie(request, response)
    return AccountDeletedOut(counts=deleted.counts)
