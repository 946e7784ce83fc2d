"""The account page: change the password, revoke API tokens and web sessions.

Plain forms with the session's CSRF token; each POST answers with a 303 back to the page,
or the page again with the error. The same services as the JSON API (api/account_api.py).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import CsrfProtected, SessionDep, WebUser
from api.errors import status_of
from api.rendering import render
from api.web_auth import signed_in
from kernel.errors import DeskpilotError, NotFound
from models.user import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from services.account_security import (
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


async def _page(
    request: Request,
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    notice: str | None = None,
    error: str | None = None,
    password_error: str | None = None,
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
        message = exc.message[0].upper() + exc.message[1:] + "."
        return await _page(
            request, session, user_id, status_code=status_of(exc), password_error=message
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
