"""Account settings over HTTP (in-process ASGI) against a real PostgreSQL: the /account page
and its forms, and the JSON API - the password (the current one required; the other web
sessions end), API tokens and web sessions listed without their secrets and revoked (a
revoked token answers 401 at once, a revoked session is signed out); two merchants: the
other's ids are 404; without the CSRF token, 403."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.web_auth import CSRF_HEADER, SESSION_COOKIE
from models.api_token import ApiToken
from models.event import Event
from models.user import User
from models.web_session import WebSession, session_digest
from tests.api_support import token_for
from tests.test_settings_pages import PASSWORD, Merchant, build_app, make_merchant, sign_in

NEW_PASSWORD = "a much newer passphrase"


@dataclass
class Desk:
    app: FastAPI
    a: Merchant
    b: Merchant
    web: httpx.AsyncClient  # A, signed in
    csrf: str
    other: httpx.AsyncClient  # A again, in another browser
    api: httpx.AsyncClient  # A's bearer token
    sessions: async_sessionmaker[AsyncSession]

    async def token_ids(self, merchant: Merchant) -> list[uuid.UUID]:
        async with self.sessions() as session:
            rows = await session.execute(select(ApiToken.id).where(ApiToken.user_id == merchant.id))
            return list(rows.scalars())

    async def password_hash(self, merchant: Merchant) -> str | None:
        async with self.sessions() as session:
            return await session.scalar(select(User.password_hash).where(User.id == merchant.id))


def _client(app: FastAPI, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test", headers=headers
    )


@pytest.fixture
async def desk(own_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Desk]:
    app = build_app(own_sessions)
    a = await make_merchant(own_sessions, "alpha")
    b = await make_merchant(own_sessions, "bravo")
    async with (
        _client(app, **{"User-Agent": "Laptop Firefox"}) as web,
        _client(app, **{"User-Agent": "Phone Safari"}) as other,
        _client(app, Authorization=f"Bearer {a.token}") as api,
    ):
        csrf = await sign_in(web, a.email)
        await sign_in(other, a.email)
        yield Desk(app, a, b, web, csrf, other, api, own_sessions)


def _form_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', html)
    assert found, html
    return found.group(1)


async def _signed_in(client: httpx.AsyncClient) -> bool:
    return (await client.get("/api/session")).status_code == 200


async def _can_log_in(app: FastAPI, email: str, password: str) -> bool:
    async with _client(app) as client:
        form = await client.get("/login")
        done = await client.post(
            "/login", data={"email": email, "password": password, "csrf": _form_csrf(form.text)}
        )
        return done.status_code == 303


# --- listing ---------------------------------------------------------------------------------


async def test_the_page_is_in_the_navigation_and_shows_no_secret(desk: Desk) -> None:
    inbox = await desk.web.get("/inbox")
    assert 'href="/account"' in inbox.text
    page = await desk.web.get("/account")
    assert page.status_code == 200
    assert 'aria-current="page"' in page.text.split("</nav>")[0].split('href="/account"')[1][:30]
    assert "Laptop Firefox" in page.text and "Phone Safari" in page.text
    assert page.text.count("This browser") == 1
    assert "tests" in page.text  # the token's name
    cookie = desk.web.cookies[SESSION_COOKIE]
    for secret in (desk.a.token, cookie, session_digest(cookie)):
        assert secret not in page.text
    # The current browser has no sign-out button of its own here (that is "Sign out").
    assert page.text.count("/revoke") == 2  # one token, the other browser


async def test_the_api_lists_tokens_and_sessions_without_their_secrets(desk: Desk) -> None:
    tokens = await desk.api.get("/api/account/tokens")
    assert tokens.status_code == 200
    [token] = tokens.json()
    assert set(token) == {"id", "name", "created_at", "last_used_at"}
    assert token["name"] == "tests" and token["last_used_at"]  # this very request used it
    assert desk.a.token not in tokens.text

    listed = await desk.web.get("/api/account/sessions")
    assert listed.status_code == 200
    rows = listed.json()
    assert len(rows) == 2 and [r["current"] for r in rows].count(True) == 1
    assert {r["user_agent"] for r in rows} == {"Laptop Firefox", "Phone Safari"}
    current = next(r for r in rows if r["current"])
    assert current["user_agent"] == "Laptop Firefox"
    for client in (desk.web, desk.other):
        cookie = client.cookies[SESSION_COOKIE]
        assert cookie not in listed.text and session_digest(cookie) not in listed.text
    # With a bearer token no session is the caller's.
    by_token = (await desk.api.get("/api/account/sessions")).json()
    assert not any(r["current"] for r in by_token) and len(by_token) == 2


# --- API tokens ------------------------------------------------------------------------------


async def test_a_revoked_token_answers_401_at_once(desk: Desk) -> None:
    extra = await token_for(desk.sessions, desk.a.id)
    async with _client(desk.app, Authorization=f"Bearer {extra}") as program:
        assert (await program.get("/api/threads")).status_code == 200
        [old, new] = sorted(
            (await desk.api.get("/api/account/tokens")).json(), key=lambda t: t["created_at"]
        )
        gone = await desk.web.delete(
            f"/api/account/tokens/{new['id']}", headers={CSRF_HEADER: desk.csrf}
        )
        assert gone.status_code == 204, gone.text
        refused = await program.get("/api/threads")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    again = await desk.api.delete(f"/api/account/tokens/{new['id']}")
    assert again.status_code == 404
    assert [t["id"] for t in (await desk.api.get("/api/account/tokens")).json()] == [old["id"]]
    async with desk.sessions() as session:
        assert await session.scalar(
            select(Event.id).where(Event.user_id == desk.a.id, Event.type == "api_token.revoked")
        )


async def test_a_token_revokes_itself_and_is_refused_after(desk: Desk) -> None:
    [mine] = await desk.token_ids(desk.a)
    assert (await desk.api.delete(f"/api/account/tokens/{mine}")).status_code == 204
    assert (await desk.api.get("/api/account/tokens")).status_code == 401


async def test_another_merchants_token_is_not_found(desk: Desk) -> None:
    [theirs] = await desk.token_ids(desk.b)
    for reply in (
        await desk.api.delete(f"/api/account/tokens/{theirs}"),
        await desk.web.delete(f"/api/account/tokens/{theirs}", headers={CSRF_HEADER: desk.csrf}),
        await desk.web.post(f"/account/tokens/{theirs}/revoke", data={"csrf": desk.csrf}),
    ):
        assert reply.status_code == 404, reply.text
    assert await desk.token_ids(desk.b) == [theirs]
    async with _client(desk.app, Authorization=f"Bearer {desk.b.token}") as b:
        assert (await b.get("/api/threads")).status_code == 200
        # And B's listing holds none of A's tokens.
        assert (await b.get("/api/account/tokens")).json()[0]["id"] == str(theirs)


async def test_the_page_revokes_a_token(desk: Desk) -> None:
    [mine] = await desk.token_ids(desk.a)
    done = await desk.web.post(f"/account/tokens/{mine}/revoke", data={"csrf": desk.csrf})
    assert done.status_code == 303 and done.headers["location"].startswith(
        "/account?notice=token_revoked"
    )
    assert "Token revoked" in (await desk.web.get(done.headers["location"])).text
    assert (await desk.api.get("/api/threads")).status_code == 401
    missing = await desk.web.post(f"/account/tokens/{mine}/revoke", data={"csrf": desk.csrf})
    assert missing.status_code == 404 and "not found" in missing.text


# --- web sessions ----------------------------------------------------------------------------


async def test_revoking_another_session_signs_that_browser_out(desk: Desk) -> None:
    rows = (await desk.web.get("/api/account/sessions")).json()
    other = next(r for r in rows if not r["current"])
    gone = await desk.web.delete(
        f"/api/account/sessions/{other['id']}", headers={CSRF_HEADER: desk.csrf}
    )
    assert gone.status_code == 204, gone.text
    assert not await _signed_in(desk.other)
    inbox = await desk.other.get("/inbox")
    assert inbox.status_code == 303 and inbox.headers["location"].startswith("/login")
    assert await _signed_in(desk.web)
    assert [r["current"] for r in (await desk.web.get("/api/account/sessions")).json()] == [True]
    again = await desk.web.delete(
        f"/api/account/sessions/{other['id']}", headers={CSRF_HEADER: desk.csrf}
    )
    assert again.status_code == 404


async def test_the_page_signs_another_browser_out(desk: Desk) -> None:
    page = await desk.web.get("/account")
    [ref] = re.findall(r'action="/account/sessions/([0-9a-f]+)/revoke"', page.text)
    done = await desk.web.post(f"/account/sessions/{ref}/revoke", data={"csrf": desk.csrf})
    assert done.status_code == 303, done.text
    assert not await _signed_in(desk.other) and await _signed_in(desk.web)
    assert "that browser is signed out" in (await desk.web.get(done.headers["location"])).text


async def test_another_merchants_session_is_not_found(desk: Desk) -> None:
    async with _client(desk.app) as b:
        b_csrf = await sign_in(b, desk.b.email)
        [theirs] = (await b.get("/api/account/sessions")).json()
        for reply in (
            await desk.api.delete(f"/api/account/sessions/{theirs['id']}"),
            await desk.web.delete(
                f"/api/account/sessions/{theirs['id']}", headers={CSRF_HEADER: desk.csrf}
            ),
            await desk.web.post(
                f"/account/sessions/{theirs['id']}/revoke", data={"csrf": desk.csrf}
            ),
        ):
            assert reply.status_code == 404, reply.text
        assert await _signed_in(b)
        # The stored hash is not an id either.
        stored = session_digest(b.cookies[SESSION_COOKIE])
        hashed = await b.delete(f"/api/account/sessions/{stored}", headers={CSRF_HEADER: b_csrf})
        assert hashed.status_code == 404 and await _signed_in(b)


# --- the password ----------------------------------------------------------------------------


async def test_changing_the_password_ends_the_other_sessions(desk: Desk) -> None:
    changed = await desk.web.post(
        "/api/account/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={CSRF_HEADER: desk.csrf},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"sessions_ended": 1}
    assert await _signed_in(desk.web) and not await _signed_in(desk.other)
    assert not await _can_log_in(desk.app, desk.a.email, PASSWORD)
    assert await _can_log_in(desk.app, desk.a.email, NEW_PASSWORD)
    # The API token is not a session: it keeps working.
    assert (await desk.api.get("/api/threads")).status_code == 200
    async with desk.sessions() as session:
        assert await session.scalar(
            select(Event.id).where(
                Event.user_id == desk.a.id, Event.type == "user.password_changed"
            )
        )


async def test_a_wrong_current_password_changes_nothing(desk: Desk) -> None:
    before = await desk.password_hash(desk.a)
    wrong = await desk.web.post(
        "/api/account/password",
        json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
        headers={CSRF_HEADER: desk.csrf},
    )
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "wrong_password"
    short = await desk.web.post(
        "/api/account/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers={CSRF_HEADER: desk.csrf},
    )
    assert short.status_code == 400 and "8 characters" in short.text
    assert await desk.password_hash(desk.a) == before
    assert await _signed_in(desk.other)


async def test_wrong_passwords_are_throttled_like_sign_ins(desk: Desk) -> None:
    codes = []
    for _ in range(6):
        reply = await desk.api.post(
            "/api/account/password",
            json={"current_password": "guess", "new_password": NEW_PASSWORD},
        )
        codes.append(reply.status_code)
    assert codes == [403] * 5 + [429] and reply.headers.get("retry-after")
    # The right one is refused too until the window passes, as at the sign-in form.
    right = await desk.api.post(
        "/api/account/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert right.status_code == 429


async def test_the_page_changes_the_password(desk: Desk) -> None:
    fields = {"csrf": desk.csrf, "current_password": PASSWORD}
    differ = await desk.web.post(
        "/account/password",
        data=fields | {"new_password": NEW_PASSWORD, "confirm_password": "typo"},
    )
    assert differ.status_code == 422 and "differ" in differ.text
    wrong = await desk.web.post(
        "/account/password",
        data=fields
        | {"current_password": "nope", "new_password": NEW_PASSWORD,
           "confirm_password": NEW_PASSWORD},
    )  # fmt: skip
    assert wrong.status_code == 403 and "The current password is not correct." in wrong.text
    assert await _signed_in(desk.other)
    done = await desk.web.post(
        "/account/password",
        data=fields | {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
    )
    assert done.status_code == 303 and done.headers["location"] == "/account?notice=password"
    assert "Password changed." in (await desk.web.get(done.headers["location"])).text
    assert not await _signed_in(desk.other) and await _signed_in(desk.web)
    assert await _can_log_in(desk.app, desk.a.email, NEW_PASSWORD)


# --- refusals --------------------------------------------------------------------------------


async def test_without_the_csrf_token_nothing_changes(desk: Desk) -> None:
    [mine] = await desk.token_ids(desk.a)
    ref = next(
        r["id"] for r in (await desk.web.get("/api/account/sessions")).json() if not r["current"]
    )
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    for reply in (
        await desk.web.delete(f"/api/account/tokens/{mine}"),
        await desk.web.delete(f"/api/account/sessions/{ref}"),
        await desk.web.post("/api/account/password", json=body),
        await desk.web.post(f"/account/tokens/{mine}/revoke", data={}),
        await desk.web.post(f"/account/sessions/{ref}/revoke", data={"csrf": "forged"}),
        await desk.web.post("/account/password", data=body | {"confirm_password": NEW_PASSWORD}),
    ):
        assert reply.status_code == 403, reply.text
    assert await desk.token_ids(desk.a) == [mine]
    assert await _signed_in(desk.other)
    assert await _can_log_in(desk.app, desk.a.email, PASSWORD)


async def test_without_credentials_the_routes_refuse(desk: Desk) -> None:
    async with _client(desk.app) as nobody:
        assert (await nobody.get("/api/account/tokens")).status_code == 401
        assert (await nobody.get("/api/account/sessions")).status_code == 401
        body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        assert (await nobody.post("/api/account/password", json=body)).status_code == 401
        assert (await nobody.delete(f"/api/account/tokens/{uuid.uuid4()}")).status_code == 401
        page = await nobody.get("/account")
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/account"
    async with desk.sessions() as session:
        assert await session.scalar(select(WebSession.id).where(WebSession.user_id == desk.a.id))
