"""Sign-up, email verification and password reset pages.

The forms are used before anyone is signed in, so their CSRF token is the login form's
kind: a double-submit cookie holding a random nonce, and an HMAC of it in the form.
Links are confirmed by a POST (GET only shows a button): mail scanners that fetch every
link do not use them up.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.form_csrf import PublicFormCsrf
from api.rendering import render
from api.web_auth import (
    HOME_PATH,
    SESSION_COOKIE,
    CsrfProtected,
    client_ip,
    set_session_cookie,
    signed_in,
)
from domain.account_tokens import MAX_TOKEN_LENGTH, TokenPurpose, TokenState
from kernel.errors import Invalid, Transient
from models.db import unit_of_work
from models.user import MAX_PASSWORD_LENGTH, PasswordError
from models.web_session import start_web_session
from services.account_access import (
    confirm_email,
    record_signup_attempt,
    resend_retry_after,
    reset_password,
    reset_request_retry_after,
    sign_up,
    signup_retry_after,
)
from services.account_email import EmailTakenError
from services.account_mail_workflows import send_account_mail
from services.account_tokens import check_account_token
from services.accounts import AccountError

log = logging.getLogger(__name__)
router = APIRouter(tags=["sign-up"])

# Sign-up and reset forms are shown to nobody signed in: a double-submit cookie, with
# tokens of their own (another label than the sign-in form's).
ACCOUNT_FORM = PublicFormCsrf("deskpilot_account_csrf", b"deskpilot/account-form/v1")
_EXPIRED_FORM = "The form expired. Please try again."
_EMAIL = Annotated[str, Form(max_length=320)]
_PASSWORD = Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH * 4)]
_CSRF = Annotated[str, Form(max_length=200)]
_TOKEN = Annotated[str, Form(max_length=MAX_TOKEN_LENGTH)]

_LINK_STATES = {
    TokenState.USED: (410, "This link has already been used."),
    TokenState.EXPIRED: (410, "This link has expired."),
    TokenState.UNKNOWN: (404, "This link is not valid."),
}


def _sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return request.app.state.sessions


# --- pages with a public form ---------------------------------------------------------------


def _page(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: object,
) -> HTMLResponse:
    """A page with a public form: its CSRF token, and the cookie that proves it."""
    nonce = ACCOUNT_FORM.nonce(request)
    response = render(
        request,
        template,
        status_code=status_code,
        form_csrf=ACCOUNT_FORM.token(request, nonce),
        **context,
    )
    response.headers.update(headers or {})
    ACCOUNT_FORM.set_cookie(request, response, nonce)
    return response


def _notice(
    request: Request,
    title: str,
    message: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    link: tuple[str, str] | None = None,
) -> HTMLResponse:
    response = render(
        request,
        "account_notice.html",
        status_code=status_code,
        title=title,
        message=message,
        link=link,
    )
    response.headers.update(headers or {})
    return response


def _throttled(request: Request, retry_after: int, what: str) -> HTMLResponse:
    minutes = max(1, round(retry_after / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return _notice(
        request,
        "Too many requests",
        f"Too many {what}. Try again in {minutes} {unit}.",
        status_code=429,
        headers={"Retry-After": str(retry_after)},
    )


def _bad_link(request: Request, state: TokenState, purpose: TokenPurpose) -> HTMLResponse:
    status, message = _LINK_STATES[state]
    if purpose is TokenPurpose.RESET_PASSWORD:
        return _notice(
            request,
            "Link not usable",
            f"{message} Nothing was changed.",
            status_code=status,
            link=("/reset", "Ask for a new reset link"),
        )
    return _notice(
        request,
        "Link not usable",
        f"{message} Nothing was changed. Sign in to send yourself a new one.",
        status_code=status,
        link=("/login", "Sign in"),
    )


def _task_queue(request: Request) -> str:
    return request.app.state.task_queue


# --- sign-up ---------------------------------------------------------------------------------


@router.get("/signup", response_class=HTMLResponse, include_in_schema=False)
async def signup_form(request: Request) -> Response:
    if await signed_in(request) is not None:
        return RedirectResponse(HOME_PATH, status_code=303)
    return _page(request, "signup.html", email="", error=None)


@router.post("/signup", response_class=HTMLResponse, include_in_schema=False)
async def signup(
    request: Request, email: _EMAIL = "", password: _PASSWORD = "", csrf: _CSRF = ""
) -> Response:
    if not ACCOUNT_FORM.valid(request, csrf):
        return _page(request, "signup.html", status_code=403, email=email, error=_EXPIRED_FORM)
    ip = client_ip(request)
    async with unit_of_work(_sessions(request)) as session:
        retry_after = await signup_retry_after(session, ip)
        if retry_after is None:
            # Every attempt counts, accepted or not: probing addresses costs the same.
            await record_signup_attempt(session, ip)
    if retry_after is not None:
        return _throttled(request, retry_after, "sign-ups from this address")
    try:
        async with unit_of_work(_sessions(request)) as session:
            user = await sign_up(session, email, password)
            cookie = await start_web_session(
                session,
                user.id,
                user_agent=request.headers.get("user-agent"),
                replacing=request.cookies.get(SESSION_COOKIE),
            )
    except AccountError as exc:
        exists = "already exists" in exc.message
        error = (
            "An account with this email already exists. Sign in, or reset its password."
            if exists
            else exc.message
        )
        return _page(
            request, "signup.html", status_code=409 if exists else 400, email=email, error=error
        )
    except PasswordError as exc:
        return _page(request, "signup.html", status_code=400, email=email, error=exc.message)
    try:
        await send_account_mail(
            request.app.state.temporal,
            TokenPurpose.VERIFY_EMAIL,
            user_id=user.id,
            task_queue=_task_queue(request),
        )
    except Transient as exc:
        # The account is made; the banner on every page offers to send the link again.
        log.warning("verification email not queued", extra={"error": exc.message})
    response = RedirectResponse(HOME_PATH, status_code=303)
    set_session_cookie(request, response, cookie)
    return response


# --- email verification ----------------------------------------------------------------------


@router.get("/verify", response_class=HTMLResponse, include_in_schema=False)
async def verify_form(request: Request, token: str = "") -> Response:
    await signed_in(request)  # the page's header shows who is signed in
    async with unit_of_work(_sessions(request)) as session:
        checked = await check_account_token(session, token, TokenPurpose.VERIFY_EMAIL)
    if checked.state is not TokenState.USABLE:
        return _bad_link(request, checked.state, TokenPurpose.VERIFY_EMAIL)
    return _page(request, "verify.html", token=token, email=checked.email)


@router.post("/verify", response_class=HTMLResponse, include_in_schema=False)
async def verify(request: Request, token: _TOKEN = "", csrf: _CSRF = "") -> Response:
    await signed_in(request)
    if not ACCOUNT_FORM.valid(request, csrf):
        return _notice(request, "Form expired", _EXPIRED_FORM, status_code=403)
    try:
        async with unit_of_work(_sessions(request)) as session:
            confirmed = await confirm_email(session, token)
    except EmailTakenError as exc:
        # Rolled back: the link still works should the other account give the address up.
        return _notice(
            request, "Address not changed", f"Not changed: {exc.message}.", status_code=409
        )
    used = confirmed.used
    if used.state is not TokenState.USABLE:
        return _bad_link(request, used.state, TokenPurpose.VERIFY_EMAIL)
    if confirmed.changed:
        return _notice(
            request,
            "Email changed",
            f"The account's email address is now {used.email}. Sign in with it from now on.",
            link=("/account", "Go to the account"),
        )
    return _notice(
        request,
        "Email confirmed",
        f"{used.email} is confirmed. Thank you.",
        link=(HOME_PATH, "Go to the inbox"),
    )


@router.post("/verify/resend", response_class=HTMLResponse, include_in_schema=False)
async def resend_verification(request: Request, user_id: CsrfProtected) -> Response:
    session_user = await signed_in(request)
    assert session_user is not None  # CsrfProtected
    if session_user.email_verified:
        return RedirectResponse(HOME_PATH, status_code=303)
    async with unit_of_work(_sessions(request)) as session:
        retry_after = await resend_retry_after(session, user_id)
    if retry_after is not None:
        return _throttled(request, retry_after, "verification emails")
    try:
        await send_account_mail(
            request.app.state.temporal,
            TokenPurpose.VERIFY_EMAIL,
            user_id=user_id,
            task_queue=_task_queue(request),
        )
    except Transient as exc:
        return _notice(request, "Not sent", exc.message, status_code=503)
    return _notice(
        request,
        "Email sent",
        f"We sent a new confirmation link to {session_user.email}.",
        link=(HOME_PATH, "Back to the inbox"),
    )


# --- password reset --------------------------------------------------------------------------


@router.get("/reset", response_class=HTMLResponse, include_in_schema=False)
async def reset_request_form(request: Request) -> Response:
    await signed_in(request)
    return _page(request, "reset_request.html", email="", error=None)


@router.post("/reset", response_class=HTMLResponse, include_in_schema=False)
async def reset_request(request: Request, email: _EMAIL = "", csrf: _CSRF = "") -> Response:
    await signed_in(request)
    if not ACCOUNT_FORM.valid(request, csrf):
        return _page(
            request, "reset_request.html", status_code=403, email=email, error=_EXPIRED_FORM
        )
    email = email.strip()
    if "@" not in email:
        return _page(
            request,
            "reset_request.html",
            status_code=400,
            email=email,
            error="Enter the email address of your account.",
        )
    async with unit_of_work(_sessions(request)) as session:
        retry_after = await reset_request_retry_after(session, email, client_ip(request))
    if retry_after is not None:
        return _throttled(request, retry_after, "reset requests")
    try:
        # The worker looks the account up: this answer is the same with or without one.
        await send_account_mail(
            request.app.state.temporal,
            TokenPurpose.RESET_PASSWORD,
            email=email,
            task_queue=_task_queue(request),
        )
    except Transient as exc:
        return _notice(request, "Not sent", exc.message, status_code=503)
    return _notice(
        request,
        "Check your email",
        f"If an account exists for {email}, we sent it a link to reset the password. "
        "The link works once, within an hour.",
        link=("/login", "Back to sign in"),
    )


@router.get("/reset/confirm", response_class=HTMLResponse, include_in_schema=False)
async def reset_confirm_form(request: Request, token: str = "") -> Response:
    await signed_in(request)
    async with unit_of_work(_sessions(request)) as session:
        checked = await check_account_token(session, token, TokenPurpose.RESET_PASSWORD)
    if checked.state is not TokenState.USABLE:
        return _bad_link(request, checked.state, TokenPurpose.RESET_PASSWORD)
    return _page(request, "reset_confirm.html", token=token, email=checked.email, error=None)


@router.post("/reset/confirm", response_class=HTMLResponse, include_in_schema=False)
async def reset_confirm(
    request: Request,
    token: _TOKEN = "",
    password: _PASSWORD = "",
    password_again: _PASSWORD = "",
    csrf: _CSRF = "",
) -> Response:
    await signed_in(request)

    def form_again(status: int, error: str) -> HTMLResponse:
        return _page(
            request,
            "reset_confirm.html",
            status_code=status,
            token=token,
            email=None,
            error=error,
        )

    if not ACCOUNT_FORM.valid(request, csrf):
        return form_again(403, _EXPIRED_FORM)
    if password != password_again:
        return form_again(400, "The two passwords are not the same.")
    try:
        async with unit_of_work(_sessions(request)) as session:
            used = await reset_password(session, token, password)
            cookie = None
            if used.state is TokenState.USABLE:
                assert used.user_id is not None
                # Every other session ended with the reset; this browser is signed in anew.
                cookie = await start_web_session(
                    session, used.user_id, user_agent=request.headers.get("user-agent")
                )
    except Invalid as exc:
        return form_again(400, exc.message)
    if cookie is None:
        return _bad_link(request, used.state, TokenPurpose.RESET_PASSWORD)
    response = RedirectResponse(HOME_PATH, status_code=303)
    set_session_cookie(request, response, cookie)
    return response
