"""Signing in to the web app: session cookies, CSRF tokens, login and logout, page rendering.

Browsers authenticate with the `deskpilot_session` cookie (a server-side session); programs
keep using bearer API tokens (api/deps.py accepts either). A request authenticated by the
cookie must prove with a CSRF token that it comes from our own page when it changes state;
a bearer token is never sent by a browser on its own, so those requests are exempt.

Pages use `WebUser` (no session: 303 to /login?next=...), POST form routes `CsrfProtected`,
and `render()` to fill a template with the user and the CSRF token.
"""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.errors import LoginRequired, headers_of
from api.form_csrf import PublicFormCsrf, same_secret, secure_cookies
from api.rendering import CSRF_FIELD, csrf_token_for, render
from api.schemas import error_responses
from kernel.errors import Forbidden, LimitReached, Unauthorized
from kernel.values import STORABLE_TEXT
from models.db import unit_of_work
from models.login_throttle import clear_login_failures, login_retry_after, record_login_failure
from models.user import MAX_PASSWORD_LENGTH, User, verify_password
from models.web_session import (
    SESSION_MAX_AGE,
    SignedIn,
    end_web_session,
    start_web_session,
    web_session_for,
)

SESSION_COOKIE = "deskpilot_session"
# The sign-in form is shown to nobody signed in: its CSRF token is a double-submit cookie.
LOGIN_FORM = PublicFormCsrf("deskpilot_login_csrf", b"deskpilot/login-form/v1", path="/login")
CSRF_HEADER = "X-CSRF-Token"
# Where a sign-in lands when it was not sent from a page.
HOME_PATH = "/inbox"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WRONG_CREDENTIALS = "The email or password is not correct."

router = APIRouter(tags=["sign-in"])


class TooManyAttemptsError(LimitReached):
    code = "too_many_attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(_throttled_message(retry_after), retry_after=retry_after)


def _throttled_message(retry_after: int) -> str:
    minutes = max(1, round(retry_after / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many failed sign-ins. Try again in {minutes} {unit}."


# --- keys and tokens -----------------------------------------------------------------------


def _sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return request.app.state.sessions


def safe_next(target: str | None) -> str:
    """`target` if it is a path on this site, else HOME_PATH: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return HOME_PATH
    # Browsers read a backslash as a slash ("/\\evil.example") and drop tabs and newlines.
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return HOME_PATH
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return HOME_PATH
    return target


# --- the session behind a request ------------------------------------------------------------


async def signed_in(request: Request) -> SignedIn | None:
    """The request's live session, or None; looked up once per request."""
    if hasattr(request.state, "web_session"):
        return request.state.web_session
    found: SignedIn | None = None
    value = request.cookies.get(SESSION_COOKIE)
    if value:
        async with unit_of_work(_sessions(request)) as session:
            found = await web_session_for(session, value)
    request.state.web_session = found
    return found


async def check_csrf(request: Request, session: SignedIn) -> None:
    """403 unless the request carries the session's CSRF token (header or form field)."""
    given: object = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if given is None and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        # Starlette keeps the parsed form: the route's Form() parameters read it again.
        given = (await request.form()).get(CSRF_FIELD)
    if not same_secret(given, csrf_token_for(session)):
        raise Forbidden(
            "the form's security token is missing or out of date: reload the page and try again"
        )


async def _web_user(request: Request) -> uuid.UUID:
    session = await signed_in(request)
    if session is None:
        next_path = None
        if request.method in SAFE_METHODS:
            query = f"?{request.url.query}" if request.url.query else ""
            next_path = request.url.path + query
        raise LoginRequired(next_path)
    if request.method not in SAFE_METHODS:
        await check_csrf(request, session)
    return session.user_id


async def _csrf_protected(request: Request) -> uuid.UUID:
    session = await signed_in(request)
    if session is None:
        raise LoginRequired(None)
    await check_csrf(request, session)
    return session.user_id


# A page: the signed-in user's id, or a redirect to the sign-in form.
WebUser = Annotated[uuid.UUID, Depends(_web_user)]
# A form POST: WebUser whose CSRF token has been checked (403 when missing or wrong).
CsrfProtected = Annotated[uuid.UUID, Depends(_csrf_protected)]


# --- cookies ---------------------------------------------------------------------------------


def set_session_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(SESSION_MAX_AGE.total_seconds()),
        path="/",
        secure=secure_cookies(request),
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=secure_cookies(request), httponly=True, samesite="lax"
    )


# --- signing in ------------------------------------------------------------------------------


def client_ip(request: Request) -> str | None:
    # Behind a proxy, uvicorn's --proxy-headers (with --forwarded-allow-ips) puts the real
    # client here; a header the client sets itself is never trusted.
    return request.client.host if request.client else None


async def _authenticate(request: Request, email: str, password: str) -> tuple[User, str]:
    """Checks the throttle and the password; starts a session. Returns the user and cookie."""
    ip = client_ip(request)
    async with unit_of_work(_sessions(request)) as session:
        retry_after = await login_retry_after(session, email, ip)
        if retry_after is not None:
            raise TooManyAttemptsError(retry_after)
        user = await verify_password(session, email, password)
        if user is None:
            await record_login_failure(session, email, ip)
        else:
            await clear_login_failures(session, email)
            cookie = await start_web_session(
                session,
                user.id,
                user_agent=request.headers.get("user-agent"),
                replacing=request.cookies.get(SESSION_COOKIE),
            )
    if user is None:
        raise Unauthorized(_WRONG_CREDENTIALS)
    return user, cookie


def _login_page(
    request: Request,
    *,
    next_path: str,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    nonce = LOGIN_FORM.nonce(request)
    response = render(
        request,
        "login.html",
        status_code=status_code,
        next=next_path,
        email=email,
        error=error,
        csrf_token=LOGIN_FORM.token(request, nonce),
    )
    response.headers.update(headers or {})
    LOGIN_FORM.set_cookie(request, response, nonce)
    return response


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_form(request: Request, next: str | None = None) -> Response:
    target = safe_next(next)
    if await signed_in(request) is not None:
        return RedirectResponse(target, status_code=303)
    return _login_page(request, next_path=target)


@router.post("/login", response_class=HTMLResponse, include_in_schema=False)
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH * 4)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    target = safe_next(next)
    if not LOGIN_FORM.valid(request, csrf):
        return _login_page(
            request,
            next_path=target,
            email=email,
            error="The sign-in form expired. Please try again.",
            status_code=403,
        )
    try:
        _, cookie = await _authenticate(request, email, password)
    except TooManyAttemptsError as exc:
        return _login_page(
            request,
            next_path=target,
            email=email,
            error=exc.message,
            status_code=429,
            headers=headers_of(exc),
        )
    except Unauthorized as exc:
        return _login_page(
            request, next_path=target, email=email, error=exc.message, status_code=401
        )
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, cookie)
    LOGIN_FORM.clear_cookie(response)
    return response


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    session = await signed_in(request)
    response = RedirectResponse("/login", status_code=303)
    if session is not None:
        await check_csrf(request, session)
        async with unit_of_work(_sessions(request)) as db:
            await end_web_session(db, request.cookies[SESSION_COOKIE])
    clear_session_cookie(request, response)
    return response


# --- the same for JSON clients ---------------------------------------------------------------


class SessionIn(BaseModel):
    email: str = Field(max_length=320, pattern=STORABLE_TEXT)
    password: str = Field(max_length=MAX_PASSWORD_LENGTH * 4)


class SessionUserOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str | None


class SessionOut(BaseModel):
    user: SessionUserOut
    # Send it as X-CSRF-Token with every POST, PUT, PATCH or DELETE made with the cookie.
    csrf_token: str


@router.post(
    "/api/session",
    response_model=SessionOut,
    responses=error_responses(
        400,
        (401, "the email or password is not correct"),
        422,
        (429, "too many failed sign-ins for this email or address"),
    ),
)
async def create_session(request: Request, body: SessionIn, response: Response) -> SessionOut:
    """Sign in with email and password: sets the session cookie.

    No CSRF token: FastAPI reads the body only when it is sent as JSON, which a cross-site
    <form> cannot do, so other sites cannot sign a browser in to an account of theirs.
    """
    user, cookie = await _authenticate(request, body.email, body.password)
    set_session_cookie(request, response, cookie)
    async with unit_of_work(_sessions(request)) as session:
        found = await web_session_for(session, cookie)
    assert found is not None  # just created
    return SessionOut(
        user=SessionUserOut(id=user.id, email=user.email, name=user.name),
        csrf_token=csrf_token_for(found),
    )


@router.get("/api/session", response_model=SessionOut, responses=error_responses(401))
async def current_session(request: Request) -> SessionOut:
    """The signed-in user and the session's CSRF token."""
    session = await signed_in(request)
    if session is None:
        raise Unauthorized("not signed in")
    return SessionOut(
        user=SessionUserOut(id=session.user_id, email=session.email, name=session.name),
        csrf_token=csrf_token_for(session),
    )


@router.delete(
    "/api/session",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403),
)
async def delete_session(request: Request) -> Response:
    """Sign out: the session ends on the server and the cookie is cleared."""
    session = await signed_in(request)
    if session is None:
        raise Unauthorized("not signed in")
    await check_csrf(request, session)
    async with unit_of_work(_sessions(request)) as db:
        await end_web_session(db, request.cookies[SESSION_COOKIE])
    response = Response(status_code=204)
    clear_session_cookie(request, response)
    return response
