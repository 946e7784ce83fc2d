"""Web sign-in over real HTTP (in-process ASGI) against a real database: passwords, sessions,
CSRF, throttling, logout, expiry, redirects; bearer API tokens keep working beside them."""

from __future__ import annotations

import hashlib
import re
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.deps import CsrfProtected, WebUser
from api.rendering import render
from api.web_auth import SESSION_COOKIE, safe_next
from kernel.settings import Settings
from models.api_token import issue_api_token
from models.db import unit_of_work
from models.login_throttle import LoginFailure
from models.user import User, set_password
from models.web_session import WebSession
from services.accounts import create_user

PASSWORD = "correct horse battery staple"
EMAIL = "owner@store.example"


def _settings(public_url: str = "http://api.test") -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, DESKPILOT_SECRET_KEY="s" * 48, DESKPILOT_PUBLIC_URL=public_url
    )


def build_app(
    sessions: async_sessionmaker[AsyncSession], settings: Settings | None = None
) -> FastAPI:
    app = create_app(sessions.kw["bind"], None, settings or _settings())

    # A page and a form as the page engineers will write them.
    @app.get("/t/page", response_class=HTMLResponse)
    async def page(request: Request, user_id: WebUser) -> HTMLResponse:
        return render(request, "base.html", owner=str(user_id))

    @app.post("/t/form")
    async def form(user_id: CsrfProtected) -> dict[str, str]:
        return {"user_id": str(user_id)}

    return app


def client_for(app: FastAPI, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test", headers=headers
    )


async def _merchant(
    sessions: async_sessionmaker[AsyncSession], email: str = EMAIL, password: str | None = PASSWORD
) -> uuid.UUID:
    async with unit_of_work(sessions) as session:
        user = await create_user(session, email, "Owner")
        if password is not None:
            await set_password(session, user.id, password)
        return user.id


def _form_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', html)
    assert found, html
    return found.group(1)


async def _sign_in_form(
    client: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD, next: str = ""
) -> httpx.Response:
    page = await client.get("/login")
    assert page.status_code == 200
    return await client.post(
        "/login",
        data={"email": email, "password": password, "csrf": _form_csrf(page.text), "next": next},
    )


async def _sign_in_json(
    client: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD
) -> httpx.Response:
    return await client.post("/api/session", json={"email": email, "password": password})


@pytest.fixture
async def app(own_sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    return build_app(own_sessions)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


async def test_sign_in_sets_a_session_cookie_that_authenticates_the_api(
    own_sessions: async_sessionmaker[AsyncSession], app: FastAPI, client: httpx.AsyncClient
) -> None:
    user_id = await _merchant(own_sessions)
    unknown = f"/api/messages/{uuid.uuid4()}"
    assert (await client.get(unknown)).status_code == 401

    signed_in = await _sign_in_form(client, email="Owner@Store.example")
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/inbox"
    cookie = next(
        c for c in signed_in.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
    )
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=lax", "path=/"} <= flags
    assert "secure" not in flags  # the public URL is http here

    # Auth passed: an unknown message is 404, not 401.
    assert (await client.get(unknown)).status_code == 404
    me = await client.get("/api/session")
    assert me.status_code == 200 and me.json()["user"]["id"] == str(user_id)

    # Only the value's hash is stored.
    value = client.cookies[SESSION_COOKIE]
    async with own_sessions() as session:
        stored = (await session.execute(select(WebSession))).scalar_one()
    assert stored.id == hashlib.sha256(value.encode()).hexdigest() != value
    assert stored.user_id == user_id

    # Another browser without the cookie is still a stranger.
    async with client_for(app) as stranger:
        assert (await stranger.get(unknown)).status_code == 401


async def test_cookie_is_secure_when_the_public_url_is_https(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _merchant(own_sessions)
    async with client_for(build_app(own_sessions, _settings("https://desk.example"))) as client:
        response = await _sign_in_json(client)
    assert response.status_code == 200
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith(SESSION_COOKIE) and "; secure" in cookie


async def test_wrong_password_and_unknown_email_get_the_same_answer_and_similar_work(
    own_sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    await _merchant(own_sessions)
    await _merchant(own_sessions, "nopassword@store.example", password=None)

    async def timed(email: str) -> tuple[httpx.Response, float]:
        started = time.perf_counter()
        response = await _sign_in_json(client, email, "wrong password!")
        return response, time.perf_counter() - started

    answers: dict[str, list[float]] = {}
    bodies = set()
    for email in [EMAIL, "nobody@store.example", "nopassword@store.example"] * 3:
        response, seconds = await timed(email)
        assert response.status_code == 401
        bodies.add(response.text)
        answers.setdefault(email, []).append(seconds)
    assert len(bodies) == 1
    assert "not correct" in bodies.pop()
    assert SESSION_COOKIE not in client.cookies
    # An argon2 verification each time (tens of ms), not a quick "no such user".
    known = statistics.median(answers[EMAIL])
    for email in ("nobody@store.example", "nopassword@store.example"):
        assert statistics.median(answers[email]) > known / 2, answers


async def test_a_user_without_a_password_cannot_sign_in(
    own_sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    await _merchant(own_sessions, password=None)
    assert (await _sign_in_json(client, EMAIL, "")).status_code == 401
    assert (await _sign_in_json(client, EMAIL, PASSWORD)).status_code == 401


async def test_the_form_shows_wrong_credentials_on_the_page(
    own_sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    await _merchant(own_sessions)
    response = await _sign_in_form(client, password="not it at all")
    assert response.status_code == 401
    assert "The email or password is not correct." in response.text
    assert 'value="owner@store.example"' in response.text
    assert SESSION_COOKIE not in client.cookies


async def test_throttling_per_email_then_the_window_passes_and_success_clears(
    own_sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    await _merchant(own_sessions)
    for _ in range(5):
        assert (await _sign_in_json(client, EMAIL, "guess guess")).status_code == 401
    # Even the right password waits: the answer must not reveal it.
    blocked = await _sign_in_json(client, EMAIL, PASSWORD)
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 15 * 60
    assert "Too many failed sign-ins" in blocked.json()["error"]["message"]
    form = await _sign_in_form(client)
    assert form.status_code == 429 and "Too many failed sign-ins" in form.text
    assert int(form.headers["retry-after"]) > 0
    # Stored in the database, without the address.
    async with own_sessions() as session:
        keys = set((await session.execute(select(LoginFailure.key))).scalars())
    assert not any("owner" in key for key in keys)

    # The window passes.
    async with unit_of_work(own_sessions) as session:
        await session.execute(
            update(LoginFailure).values(failed_at=LoginFailure.failed_at - timedelta(minutes=16))
        )
    assert (await _sign_in_json(client, EMAIL, PASSWORD)).status_code == 200

    # A success forgave the address: 4 + success + 4 failures are never blocked.
    for _ in range(4):
        assert (await _sign_in_json(client, EMAIL, "guess guess")).status_code == 401
    assert (await _sign_in_json(client, EMAIL, PASSWORD)).status_code == 200
    for _ in range(4):
        assert (await _sign_in_json(client, EMAIL, "guess guess")).status_code == 401
    assert (await _sign_in_json(client, EMAIL, PASSWORD)).status_code == 200


async def test_throttling_per_client_ip_over_many_addresses(
    own_sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    await _merchant(own_sessions)
    for n in range(20):
        response = await _sign_in_json(client, f"spray{n}@store.example", "Summer2026!")
        assert response.status_code == 401
    # A fresh address from the same IP is refused, even with a right password.
    assert (await _sign_in_json(client, EMAIL, PASSWORD)).status_code == 429


async def test_csrf_is_required_for_cookie_requests_that_change_state(
    own_sessions: async_sessionmaker[AsyncSession], app: FastAPI, client: httpx.AsyncClient
) -> None:
    user_id = await _merchant(own_sessions)
    token = (await _sign_in_json(client)).json()["csrf_token"]
    approve = f"/api/actions/{uuid.uuid4()}/approve"

    assert (await client.post(approve)).status_code == 403
    assert (await client.post(approve, headers={"X-CSRF-Token": "0" * 64})).status_code == 403
    assert (await client.post(approve, headers={"X-CSRF-Token": token})).status_code == 404

    assert (await client.post("/t/form", data={"x": "1"})).status_code == 403
    wrong = await client.post("/t/form", data={"csrf": token[:-1] + "x"})
    assert wrong.status_code == 403 and "security token" in wrong.json()["error"]["message"]
    ok = await client.post("/t/form", data={"csrf": token})
    assert ok.status_code == 200 and ok.json() == {"user_id": str(user_id)}

    assert (await client.post("/logout")).status_code == 403
    assert (await client.delete("/api/session")).status_code == 403
    assert (await client.get("/api/session")).status_code == 200  # still signed in

    # A bearer token involves no cookie: no CSRF token needed.
    async with unit_of_work(own_sessions) as session:
        api_token = await issue_api_token(session, user_id, "tests")
    async with client_for(app, Authorization=f"Bearer {api_token}") as program:
        assert (await program.post(approve)).status_code == 404


async def test_the_login_form_has_its_own_csrf_check(
    own_sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    await _merchant(own_sessions)
    page = await client.get("/login")
    csrf = _form_csrf(page.text)
    fields = {"email": EMAIL, "password": PASSWORD}
    forged = await client.post("/login", data={**fields, "csrf": "f" * 64})
    assert forged.status_code == 403 and SESSION_COOKIE not in client.cookies
    # The token belongs to this browser's nonce cookie: without it, the token is worthless.
    async with client_for(build_app(own_sessions)) as other_browser:
        stolen = await other_browser.post("/login", data={**fields, "csrf": csrf})
        assert stolen.status_code == 403
    # JSON sign-in refuses a body a cross-site form could send (a form cannot say JSON).
    as_text = await client.post(
        "/api/session",
        content=f'{{"email": "{EMAIL}", "password": "{PASSWORD}"}}',
        headers={"content-type": "text/plain"},
    )
    assert as_text.status_code == 422 and SESSION_COOKIE not in client.cookies
    assert (await client.post("/login", data={**fields, "csrf": csrf})).status_code == 303


async def test_logout_ends_the_session_on_the_server(
    own_sessions: async_sessionmaker[AsyncSession], app: FastAPI, client: httpx.AsyncClient
) -> None:
    await _merchant(own_sessions)
    await _sign_in_form(client)
    value = client.cookies[SESSION_COOKIE]
    page = await client.get("/t/page")
    assert page.status_code == 200 and "Sign out" in page.text
    out = await client.post("/logout", data={"csrf": _form_csrf(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert SESSION_COOKIE not in client.cookies
    async with own_sessions() as session:
        assert (await session.execute(select(func.count(WebSession.id)))).scalar_one() == 0
    # A copy of the old cookie is dead too.
    async with client_for(app) as replay:
        replay.cookies.set(SESSION_COOKIE, value)
        assert (await replay.get("/api/session")).status_code == 401

    token = (await _sign_in_json(client)).json()["csrf_token"]
    gone = await client.delete("/api/session", headers={"X-CSRF-Token": token})
    assert gone.status_code == 204
    assert (await client.get("/api/session")).status_code == 401


@pytest.mark.parametrize(
    "expire",
    [
        {"last_seen_at": datetime.now(UTC) - timedelta(hours=12, minutes=1)},  # idle
        {"expires_at": datetime.now(UTC) - timedelta(seconds=1)},  # absolute
    ],
    ids=["idle", "absolute"],
)
async def test_an_expired_session_no_longer_signs_in(
    own_sessions: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    expire: dict[str, datetime],
) -> None:
    await _merchant(own_sessions)
    await _sign_in_json(client)
    assert (await client.get("/api/session")).status_code == 200
    async with unit_of_work(own_sessions) as session:
        await session.execute(update(WebSession).values(**expire))
    assert (await client.get("/api/session")).status_code == 401
    page = await client.get("/t/page")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/t/page"


async def test_a_session_in_use_stays_alive_past_the_idle_timeout_since_sign_in(
    own_sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    await _merchant(own_sessions)
    await _sign_in_json(client)
    # Signed in 13 hours ago, last used 2 minutes ago.
    async with unit_of_work(own_sessions) as session:
        await session.execute(
            update(WebSession).values(
                created_at=datetime.now(UTC) - timedelta(hours=13),
                last_seen_at=datetime.now(UTC) - timedelta(minutes=2),
            )
        )
    assert (await client.get("/api/session")).status_code == 200
    async with own_sessions() as session:
        seen = (await session.execute(select(WebSession.last_seen_at))).scalar_one()
    assert datetime.now(UTC) - seen < timedelta(seconds=30)


async def test_signing_in_replaces_the_browsers_previous_session(
    own_sessions: async_sessionmaker[AsyncSession], app: FastAPI
) -> None:
    await _merchant(own_sessions)

    async def sign_in_with(cookie: str) -> str:
        async with client_for(app, Cookie=f"{SESSION_COOKIE}={cookie}") as browser:
            response = await _sign_in_json(browser)
        assert response.status_code == 200
        return response.cookies[SESSION_COOKIE]

    async def works(cookie: str) -> bool:
        async with client_for(app, Cookie=f"{SESSION_COOKIE}={cookie}") as browser:
            return (await browser.get("/api/session")).status_code == 200

    # A value planted before sign-in (session fixation) is never adopted.
    first = await sign_in_with("planted-by-someone-else")
    assert first != "planted-by-someone-else" and await works(first)
    second = await sign_in_with(first)
    assert second != first
    assert await works(second) and not await works(first)


async def test_bearer_api_tokens_still_work(
    own_sessions: async_sessionmaker[AsyncSession], app: FastAPI
) -> None:
    user_id = await _merchant(own_sessions)
    async with unit_of_work(own_sessions) as session:
        api_token = await issue_api_token(session, user_id, "tests")
    unknown = f"/api/messages/{uuid.uuid4()}"
    async with client_for(app, Authorization=f"Bearer {api_token}") as program:
        assert (await program.get(unknown)).status_code == 404
    async with client_for(app, Authorization="Bearer dpk_not-a-token") as program:
        refused = await program.get(unknown)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "",
    ],
)
def test_next_never_leaves_the_site(target: str) -> None:
    assert safe_next(target) == "/inbox"


def test_next_keeps_local_paths() -> None:
    assert safe_next("/threads/42?tab=order") == "/threads/42?tab=order"


async def test_redirects_after_sign_in_stay_on_the_site(
    own_sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    await _merchant(own_sessions)
    # A form posted without a session goes to sign in (no way back to a POST).
    posted = await client.post("/t/form", data={"csrf": "x"})
    assert posted.status_code == 303 and posted.headers["location"] == "/login"
    # A page without a session sends the browser to sign in and back.
    page = await client.get("/t/page?tab=a b")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/t/page%3Ftab%3Da%2520b"
    assert (
        'name="next" value="/t/page?tab=a%20b"' in (await client.get(page.headers["location"])).text
    )

    form = await client.get("/login?next=https://evil.example/")
    assert 'name="next" value="/inbox"' in form.text
    evil = await client.post(
        "/login",
        data={
            "email": EMAIL,
            "password": PASSWORD,
            "csrf": _form_csrf(form.text),
            "next": "//evil.example",
        },
    )
    assert evil.status_code == 303 and evil.headers["location"] == "/inbox"
    again = await client.get("/login?next=//evil.example")
    assert again.status_code == 303 and again.headers["location"] == "/inbox"
    back = await client.get("/login?next=/t/page")
    assert back.status_code == 303 and back.headers["location"] == "/t/page"


async def test_pages_escape_what_they_show(
    own_sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    form = await client.get('/login?next=/x"><script>alert(1)</script>')
    assert "<script>alert(1)" not in form.text
    assert "&#34;&gt;&lt;script&gt;" in form.text


async def test_signed_in_pages_get_the_layout_and_the_csrf_token(
    own_sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    await _merchant(own_sessions)
    token = (await _sign_in_json(client)).json()["csrf_token"]
    page = await client.get("/t/page")
    assert page.status_code == 200
    for label in ("Inbox", "Connections", "Playbooks", "Usage", "Audit", "Sign out"):
        assert label in page.text
    assert f'<meta name="csrf-token" content="{token}">' in page.text
    assert _form_csrf(page.text) == token


async def test_a_stale_password_hash_is_upgraded_at_sign_in(
    own_sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    user_id = await _merchant(own_sessions, password=None)
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    async with unit_of_work(own_sessions) as session:
        await session.execute(update(User).where(User.id == user_id).values(password_hash=weak))
    assert (await _sign_in_json(client)).status_code == 200
    async with own_sessions() as session:
        stored = (await session.execute(select(User.password_hash))).scalar_one()
    assert stored is not None and stored != weak
    assert not PasswordHasher().check_needs_rehash(stored)
    assert PasswordHasher().verify(stored, PASSWORD)


async def test_too_short_a_password_is_refused(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    from models.user import PasswordError

    user_id = await _merchant(own_sessions, password=None)
    async with unit_of_work(own_sessions) as session:
        with pytest.raises(PasswordError, match="at least 8"):
            await set_password(session, user_id, "short")
