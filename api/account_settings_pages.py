"""The account page: change the password and the email address, revoke API tokens and web
sessions, delete the account.

Plain forms with the session's CSRF token; each POST answers with a 303 back to the page,
or the page again with the error. The same services as the JSON API (api/account_api.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from api.billing_deps import GatewaysDep
from api.deps import CsrfProtected, OptionalTemporalDep, SessionDep, SettingsDep, WebUser
from api.errors import status_of
from api.rendering import render
from api.web_auth import clear_session_cookie, client_ip, signed_in
from domain.account_tokens import TokenPurpose
from kernel.errors import DeskpilotError, NotFound, Transient
from models.user import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from services.account_deletion import CONFIRMATION, delete_account
from services.account_deletion_workflows import stop_account_workflows
from services.account_email import request_email_change
from services.account_mail_workflows import send_account_mail
from services.account_security import (
    WrongPasswordError,
    change_password,
    list_sessions,
    list_tokens,
    revoke_session,
    revoke_token,
)

router = APIRouter(include_in_schema=False)

# Messages a redirect may ask the page to show; never text taken from the URL itself.
NOTICES = {
    "password": "Password changed. Every other browser signed in to this account is signed out.",
    "token_revoked": "Token revoked: programs using it are refused from now on.",
    "session_revoked": "Session ended: that browser is signed out.",
}
_PASSWORD_FIELD = Form(max_length=MAX_PASSWORD_LENGTH * 4)


def _sentence(exc: DeskpilotError) -> str:
    return exc.message[0].upper() + exc.message[1:] + "."


async def _page(
    request: Request,
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    notice: str | None = None,
    error: str | None = None,
    password_error: str | None = None,
    email_error: str | None = None,
    delete_error: str | None = None,
    new_email: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    current = await signed_in(request)
    return render(
        request,
        "account.html",
        status_code=status_code,
        tokens=await list_tokens(session, user_id),
        sessions=await list_sessions(session, user_id, current.session_id if current else None),
        min_password=MIN_PASSWORD_LENGTH,
        notice=notice,
        error=error,
        password_error=password_error,
        email_error=email_error,
        delete_error=delete_error,
        new_email=new_email,
        confirmation=CONFIRMATION,
    )


@router.get("/account", response_class=HTMLResponse)
async def account_page(
    request: Request, user_id: WebUser, session: SessionDep, notice: str | None = None
) -> HTMLResponse:
    return await _page(request, session, user_id, notice=NOTICES.get(notice or ""))


@router.post("/account/password", response_model=None)
async def password_form(
    request: Request,
    user_id: CsrfProtected,
    session: SessionDep,
    current_password: Annotated[str, _PASSWORD_FIELD] = "",
    new_password: Annotated[str, _PASSWORD_FIELD] = "",
    confirm_password: Annotated[str, _PASSWORD_FIELD] = "",
) -> HTMLResponse | RedirectResponse:
    if new_password != confirm_password:
        return await _page(
            request, session, user_id, status_code=422,
            password_error="The new password and its confirmation differ.",
        )  # fmt: skip
    current = await signed_in(request)
    try:
        await change_password(
            session,
            user_id,
            current_password,
            new_password,
            keep_session=current.session_id if current else None,
            ip=request.client.host if request.client else None,
        )
    except DeskpilotError as exc:
        await session.commit()  # a wrong password is counted, as a failed sign-in is
        return await _page(
            request, session, user_id, status_code=status_of(exc), password_error=_sentence(exc)
        )
    await session.commit()
    return RedirectResponse("/account?notice=password", status_code=303)


@router.post("/account/tokens/{token_id}/revoke", response_model=None)
async def revoke_token_form(
    request: Request, token_id: uuid.UUID, user_id: CsrfProtected, session: SessionDep
) -> HTMLResponse | RedirectResponse:
    try:
        await revoke_token(session, user_id, token_id)
    except NotFound:
        await session.rollback()
        return await _page(
            request, session, user_id, status_code=404,
            error="That token was not found: it may have been revoked already.",
        )  # fmt: skip
    await session.commit()
    return RedirectResponse("/account?notice=token_revoked#tokens-h", status_code=303)


@router.post("/account/sessions/{session_id}/revoke", response_model=None)
async def revoke_session_form(
    request: Request, session_id: str, user_id: CsrfProtected, session: SessionDep
) -> HTMLResponse | RedirectResponse:
    try:
        await revoke_session(session, user_id, session_id[:64])
    except NotFound:
        await session.rollback()
        return await _page(
            request, session, user_id, status_code=404,
            error="That session was not found: it may have ended already.",
        )  # fmt: skip
    await session.commit()
    return RedirectResponse("/account?notice=session_revoked#sessions-h", status_code=303)


@router.post("/account/email", response_model=None)
async def email_form(
    request: Request,
    user_id: CsrfProtected,
    session: SessionDep,
    temporal: OptionalTemporalDep,
    new_email: Annotated[str, Form(max_length=320)] = "",
    current_password: Annotated[str, _PASSWORD_FIELD] = "",
) -> HTMLResponse:
    def again(exc: DeskpilotError) -> Awaitable[HTMLResponse]:
        return _page(
            request, session, user_id, status_code=status_of(exc),
            email_error=_sentence(exc), new_email=new_email,
        )  # fmt: skip

    try:
        address = await request_email_change(
            session, user_id, new_email, current_password, ip=client_ip(request)
        )
    except DeskpilotError as exc:
        await session.commit()  # a wrong password is counted, as a failed sign-in is
        return await again(exc)
    await session.commit()
    try:
        await send_account_mail(
            temporal, TokenPurpose.VERIFY_EMAIL, user_id=user_id, new_email=address,
            task_queue=request.app.state.task_queue,
        )  # fmt: skip
    except Transient as exc:
        return await again(exc)
    return await _page(
        request, session, user_id,
        notice=f"We sent a link to {address}. Your address changes when you open it; "
        "until then you sign in with the current one.",
    )  # fmt: skip


@router.post("/account/delete", response_model=None)
async def delete_form(
    request: Request,
    user_id: CsrfProtected,
    session: SessionDep,
    gateways: GatewaysDep,
    settings: SettingsDep,
    temporal: OptionalTemporalDep,
    current_password: Annotated[str, _PASSWORD_FIELD] = "",
    confirm: Annotated[str, Form(max_length=20)] = "",
) -> HTMLResponse:
    try:
        deleted = await delete_account(
            session, user_id, current_password, confirm,
            ip=client_ip(request), gateways=gateways, settings=settings,
        )  # fmt: skip
    except DeskpilotError as exc:
        if isinstance(exc, WrongPasswordError):
            await session.commit()  # counted; nothing else was written
        else:
            await session.rollback()
        return await _page(
            request, session, user_id, status_code=status_of(exc), delete_error=_sentence(exc)
        )
    await session.commit()
    await stop_account_workflows(temporal, user_id, deleted.workflow_ids)
    request.state.web_session = None  # signed out: the page's header shows nobody
    response = render(
        request,
        "account_notice.html",
        title="Account deleted",
        message="The account and everything it held are erased. You are signed out.",
        link=("/signup", "Make a new account"),
    )
    clear_session_cookie(request, response)
    return response
