"""Sign-up, email verification and password reset over real HTTP (in-process ASGI), a real
database, and a real Temporal worker whose outbound mail reaches the sandbox's mail sink:
every link is followed from the email that arrived."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message as EmailMessage
from email.policy import default
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.web_auth import SESSION_COOKIE
from domain.account_tokens import (
    TOKEN_LIFETIME,
    TokenPurpose,
    TokenState,
    new_token,
    token_digest,
    token_state,
)
from domain.default_playbooks import DEFAULT_PLAYBOOKS
from kernel.enums import PlanType
from kernel.settings import Settings
from models.account_token import AccountToken
from models.billing import Subscription
from models.db import unit_of_work
from models.playbook import Playbook
from models.user import User, set_password
from models.web_session import WebSession
from sandbox.mail_sink import MailSink
from services.account_access import (
    MAX_RESETS_PER_EMAIL,
    MAX_SIGNUPS_PER_IP,
    MAX_VERIFICATION_RESENDS,
)
from services.accounts import create_user
from tests.pipeline import running_pipeline

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase"
MAIL_WAIT_S = 30


def _settings() -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, DESKPILOT_SECRET_KEY="s" * 48, DESKPILOT_PUBLIC_URL="http://api.test"
    )


@dataclass
class Desk:
    sessions: async_sessionmaker[AsyncSession]
    sink: MailSink
    app: object

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),  # type: ignore[arg-type]
            base_url="http://api.test",
        )

    async def mail_to(self, address: str, count: int = 1) -> EmailMessage:
        """The `count`-th email that reached the sink for `address` (waits for it)."""
        async with asyncio.timeout(MAIL_WAIT_S):
            while True:
                found = [i for i, d in enumerate(self.sink.deliveries) if address in d.recipients]
                if len(found) >= count:
                    return message_from_bytes(self.sink.raw(found[count - 1]), policy=default)
                await asyncio.sleep(0.1)

    async def user(self, email: str) -> User | None:
        async with self.sessions() as session:
            return (
                await session.execute(select(User).where(func.lower(User.email) == email.lower()))
            ).scalar_one_or_none()


@pytest.fixture
async def desk(
    temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Desk]:
    queue = f"signup-{uuid.uuid4().hex[:8]}"
    engine: AsyncEngine = own_sessions.kw["bind"]
    async with running_pipeline(temporal_dev.client, own_sessions, queue) as merchant:
        app = create_app(engine, temporal_dev.client, _settings(), task_queue=queue)
        yield Desk(own_sessions, merchant.sandbox.sink, app)


def _form_field(html: str, action: str, name: str) -> str:
    """The value of field `name` in the form posting to `action` (pages may hold others)."""
    start = html.find(f'action="{action}"')
    assert start >= 0, html
    found = re.search(rf'name="{name}" value="([^"]*)"', html[start:])
    assert found, html
    return found.group(1)


def _link(email: EmailMessage, path: str) -> str:
    """The path and query of the link in the email's text."""
    body = email.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.search(rf"https?://\S+{re.escape(path)}\?token=[\w-]+", body.get_content())
    assert found, body.get_content()
    parts = urlsplit(found.group(0))
    return f"{parts.path}?{parts.query}"


async def _sign_up(
    browser: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    page = await browser.get("/signup")
    assert page.status_code == 200
    return await browser.post(
        "/signup",
        data={
            "email": email,
            "password": password,
            "csrf": _form_field(page.text, "/signup", "csrf"),
        },
    )


async def _existing(desk: Desk, email: str) -> uuid.UUID:
    async with unit_of_work(desk.sessions) as session:
        user = await create_user(session, email, "Owner")
        await set_password(session, user.id, PASSWORD)
        return user.id


async def _sign_in(browser: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await browser.post("/api/session", json={"email": email, "password": password})


async def test_login_page_links_to_sign_up_and_password_reset(desk: Desk) -> None:
    async with desk.browser() as browser:
        page = await browser.get("/login")
    assert 'href="/signup"' in page.text and 'href="/reset"' in page.text


async def test_sign_up_makes_the_account_signs_in_and_the_mailed_link_verifies(
    desk: Desk,
) -> None:
    email = f"new-{uuid.uuid4().hex[:6]}@store.test"
    async with desk.browser() as browser:
        signed_up = await _sign_up(browser, email)
        assert signed_up.status_code == 303 and signed_up.headers["location"] == "/inbox"
        assert SESSION_COOKIE in browser.cookies

        user = await desk.user(email)
        assert user is not None and user.password_hash and user.email_verified_at is None
        async with desk.sessions() as session:
            subscription = (
                await session.execute(select(Subscription).where(Subscription.user_id == user.id))
            ).scalar_one()
            playbooks = (
                await session.execute(select(func.count()).where(Playbook.user_id == user.id))
            ).scalar_one()
        assert subscription.plan_type == PlanType.TRIAL
        assert playbooks == len(DEFAULT_PLAYBOOKS)

        # Unverified, the account works, and every page asks to confirm.
        inbox = await browser.get("/inbox")
        assert inbox.status_code == 200 and "Please confirm your email address" in inbox.text

        mail = await desk.mail_to(email)
        assert "Confirm your email" in str(mail["Subject"])
        link = _link(mail, "/verify")
        async with desk.sessions() as session:
            stored = (await session.execute(select(AccountToken.token_hash))).scalars().all()
        token = link.split("token=", 1)[1]
        # Only the hash is stored.
        assert token not in stored and token_digest(token) in stored

        # A GET (a link scanner, or the merchant) only shows the button.
        shown = await browser.get(link)
        assert shown.status_code == 200 and "Confirm my email" in shown.text
        assert (await desk.user(email)).email_verified_at is None  # type: ignore[union-attr]

        confirmed = await browser.post(
            "/verify", data={"token": token, "csrf": _form_field(shown.text, "/verify", "csrf")}
        )
        assert confirmed.status_code == 200 and "is confirmed" in confirmed.text
        assert (await desk.user(email)).email_verified_at is not None  # type: ignore[union-attr]
        inbox = await browser.get("/inbox")
        assert "Please confirm your email address" not in inbox.text

        # Single use.
        again = await browser.post(
            "/verify", data={"token": token, "csrf": _form_field(shown.text, "/verify", "csrf")}
        )
        assert again.status_code == 410 and "already been used" in again.text
        assert (await browser.get(link)).status_code == 410


async def test_sign_up_refusals_make_no_account(desk: Desk) -> None:
    taken = f"taken-{uuid.uuid4().hex[:6]}@store.test"
    await _existing(desk, taken)
    async with desk.browser() as browser:
        existing = await _sign_up(browser, taken.upper())
        assert existing.status_code == 409 and "already exists" in existing.text
        assert SESSION_COOKIE not in browser.cookies

        short = await _sign_up(browser, "short@store.test", "short")
        assert short.status_code == 400 and "at least 8 characters" in short.text
        invalid = await _sign_up(browser, "not an address")
        assert invalid.status_code == 400

        # CSRF: no token, a forged one, or another browser's token without its cookie.
        no_csrf = await browser.post(
            "/signup", data={"email": "x@store.test", "password": PASSWORD}
        )
        forged = await browser.post(
            "/signup", data={"email": "x@store.test", "password": PASSWORD, "csrf": "f" * 64}
        )
        page = await browser.get("/signup")
        async with desk.browser() as other:
            stolen = await other.post(
                "/signup",
                data={
                    "email": "x@store.test",
                    "password": PASSWORD,
                    "csrf": _form_field(page.text, "/signup", "csrf"),
                },
            )
    assert no_csrf.status_code == forged.status_code == stolen.status_code == 403
    for email in ("short@store.test", "x@store.test"):
        assert await desk.user(email) is None


async def test_sign_ups_from_one_address_are_throttled(desk: Desk) -> None:
    async with desk.browser() as browser:
        for n in range(MAX_SIGNUPS_PER_IP):
            # Refused attempts count too.
            assert (await _sign_up(browser, f"probe{n}@store.test", "short")).status_code == 400
        throttled = await _sign_up(browser, "one-more@store.test")
    assert throttled.status_code == 429 and "Too many sign-ups" in throttled.text
    assert int(throttled.headers["retry-after"]) > 0
    assert await desk.user("one-more@store.test") is None


async def test_an_expired_or_forged_verification_link_changes_nothing(desk: Desk) -> None:
    email = f"late-{uuid.uuid4().hex[:6]}@store.test"
    async with desk.browser() as browser:
        await _sign_up(browser, email)
        link = _link(await desk.mail_to(email), "/verify")
        token = link.split("token=", 1)[1]
        shown = await browser.get(link)
        csrf = _form_field(shown.text, "/verify", "csrf")
        async with unit_of_work(desk.sessions) as session:
            await session.execute(
                update(AccountToken).values(
                    expires_at=func.now() - func.make_interval(0, 0, 0, 0, 1)
                )
            )
        expired_get = await browser.get(link)
        expired_post = await browser.post("/verify", data={"token": token, "csrf": csrf})
        forged_get = await browser.get("/verify?token=" + "A" * 43)
        forged_post = await browser.post("/verify", data={"token": "A" * 43, "csrf": csrf})
        no_token = await browser.get("/verify")
        # A reset token is not a verification token.
        wrong_kind = await browser.get(f"/reset/confirm?token={token}")
    assert expired_get.status_code == expired_post.status_code == 410
    assert "expired" in expired_get.text and "Nothing was changed" in expired_post.text
    assert forged_get.status_code == forged_post.status_code == no_token.status_code == 404
    assert wrong_kind.status_code == 404
    assert (await desk.user(email)).email_verified_at is None  # type: ignore[union-attr]
    async with desk.sessions() as session:
        assert (await session.execute(select(AccountToken.used_at))).scalar_one() is None


async def test_verification_needs_the_forms_csrf_token(desk: Desk) -> None:
    email = f"csrf-{uuid.uuid4().hex[:6]}@store.test"
    async with desk.browser() as browser:
        await _sign_up(browser, email)
        token = _link(await desk.mail_to(email), "/verify").split("token=", 1)[1]
        refused = await browser.post("/verify", data={"token": token})
    assert refused.status_code == 403
    assert (await desk.user(email)).email_verified_at is None  # type: ignore[union-attr]


async def test_resending_the_verification_link_is_csrf_protected_and_throttled(
    desk: Desk,
) -> None:
    email = f"resend-{uuid.uuid4().hex[:6]}@store.test"
    async with desk.browser() as browser:
        await _sign_up(browser, email)
        inbox = await browser.get("/inbox")
        csrf = _form_field(inbox.text, "/verify/resend", "csrf")
        assert (await browser.post("/verify/resend", data={})).status_code == 403
        for _ in range(MAX_VERIFICATION_RESENDS):
            sent = await browser.post("/verify/resend", data={"csrf": csrf})
            assert sent.status_code == 200 and f"new confirmation link to {email}" in sent.text
        throttled = await browser.post("/verify/resend", data={"csrf": csrf})
        assert throttled.status_code == 429 and "retry-after" in throttled.headers

        # The newest link works, and so does an earlier one until it expires.
        newest = await desk.mail_to(email, 1 + MAX_VERIFICATION_RESENDS)
        link = _link(newest, "/verify")
        shown = await browser.get(link)
        confirmed = await browser.post(
            "/verify",
            data={
                "token": link.split("token=", 1)[1],
                "csrf": _form_field(shown.text, "/verify", "csrf"),
            },
        )
        assert confirmed.status_code == 200
        # Verified: a resend does nothing and goes back to the inbox.
        done = await browser.post("/verify/resend", data={"csrf": csrf})
    assert done.status_code == 303 and done.headers["location"] == "/inbox"


async def test_password_reset_by_the_mailed_link_ends_the_other_sessions(desk: Desk) -> None:
    email = f"forgot-{uuid.uuid4().hex[:6]}@store.test"
    user_id = await _existing(desk, email)
    async with desk.browser() as elsewhere, desk.browser() as browser:
        assert (await _sign_in(elsewhere, email, PASSWORD)).status_code == 200

        page = await browser.get("/reset")
        asked = await browser.post(
            "/reset", data={"email": email, "csrf": _form_field(page.text, "/reset", "csrf")}
        )
        assert asked.status_code == 200 and f"If an account exists for {email}" in asked.text
        mail = await desk.mail_to(email)
        assert "Reset your deskpilot password" in str(mail["Subject"])
        link = _link(mail, "/reset/confirm")
        token = link.split("token=", 1)[1]

        form = await browser.get(link)
        assert form.status_code == 200 and "Choose a new password" in form.text
        csrf = _form_field(form.text, "/reset/confirm", "csrf")
        fields = {"token": token, "csrf": csrf}

        mismatch = await browser.post(
            "/reset/confirm", data={**fields, "password": NEW_PASSWORD, "password_again": "other"}
        )
        assert mismatch.status_code == 400 and "not the same" in mismatch.text
        short = await browser.post(
            "/reset/confirm", data={**fields, "password": "short", "password_again": "short"}
        )
        assert short.status_code == 400 and "at least 8 characters" in short.text
        no_csrf = await browser.post(
            "/reset/confirm",
            data={"token": token, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD},
        )
        assert no_csrf.status_code == 403
        # None of those used the link.
        done = await browser.post(
            "/reset/confirm",
            data={**fields, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD},
        )
        assert done.status_code == 303 and done.headers["location"] == "/inbox"
        assert (await browser.get("/api/session")).status_code == 200
        assert (await elsewhere.get("/api/session")).status_code == 401
        async with desk.sessions() as session:
            live = (
                await session.execute(select(func.count()).where(WebSession.user_id == user_id))
            ).scalar_one()
        assert live == 1
        # The link reached the address: it is verified too.
        assert (await desk.user(email)).email_verified_at is not None  # type: ignore[union-attr]

        # Reused: a clear page, and the password stays the new one.
        reused_get = await browser.get(link)
        reused = await browser.post(
            "/reset/confirm",
            data={**fields, "password": "third password!", "password_again": "third password!"},
        )
        assert reused_get.status_code == reused.status_code == 410
        assert "already been used" in reused.text and "Nothing was changed" in reused.text

    async with desk.browser() as fresh:
        assert (await _sign_in(fresh, email, PASSWORD)).status_code == 401
        assert (await _sign_in(fresh, email, "third password!")).status_code == 401
        assert (await _sign_in(fresh, email, NEW_PASSWORD)).status_code == 200


async def test_a_reset_request_answers_the_same_whether_or_not_the_account_exists(
    desk: Desk,
) -> None:
    real = f"real-{uuid.uuid4().hex[:6]}@store.test"
    nobody = f"nobody-{uuid.uuid4().hex[:6]}@store.test"
    await _existing(desk, real)
    answers = []
    async with desk.browser() as browser:
        for email in (nobody, real):
            page = await browser.get("/reset")
            answer = await browser.post(
                "/reset", data={"email": email, "csrf": _form_field(page.text, "/reset", "csrf")}
            )
            answers.append((answer.status_code, answer.text.replace(email, "ADDRESS")))
    assert answers[0] == answers[1] and answers[0][0] == 200
    await desk.mail_to(real)
    async with desk.sessions() as session:
        rows = (await session.execute(select(AccountToken.email))).scalars().all()
    assert nobody not in rows


async def test_reset_requests_are_throttled_and_csrf_protected(desk: Desk) -> None:
    email = f"spam-{uuid.uuid4().hex[:6]}@store.test"
    await _existing(desk, email)
    async with desk.browser() as browser:
        page = await browser.get("/reset")
        csrf = _form_field(page.text, "/reset", "csrf")
        assert (await browser.post("/reset", data={"email": email})).status_code == 403
        for _ in range(MAX_RESETS_PER_EMAIL):
            assert (
                await browser.post("/reset", data={"email": email, "csrf": csrf})
            ).status_code == 200
        throttled = await browser.post("/reset", data={"email": email.upper(), "csrf": csrf})
    assert throttled.status_code == 429 and "Too many reset requests" in throttled.text
    assert int(throttled.headers["retry-after"]) > 0


async def test_an_expired_or_forged_reset_link_changes_nothing(desk: Desk) -> None:
    email = f"slow-{uuid.uuid4().hex[:6]}@store.test"
    await _existing(desk, email)
    async with desk.browser() as browser:
        page = await browser.get("/reset")
        csrf = _form_field(page.text, "/reset", "csrf")
        await browser.post("/reset", data={"email": email, "csrf": csrf})
        link = _link(await desk.mail_to(email), "/reset/confirm")
        token = link.split("token=", 1)[1]
        async with unit_of_work(desk.sessions) as session:
            await session.execute(
                update(AccountToken).values(
                    expires_at=func.now() - func.make_interval(0, 0, 0, 0, 1)
                )
            )
        fields = {"csrf": csrf, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
        expired = await browser.post("/reset/confirm", data={**fields, "token": token})
        forged = await browser.post("/reset/confirm", data={**fields, "token": "B" * 43})
        forged_get = await browser.get("/reset/confirm?token=" + "B" * 43)
    assert expired.status_code == 410 and "expired" in expired.text
    assert forged.status_code == forged_get.status_code == 404
    async with desk.browser() as fresh:
        assert (await _sign_in(fresh, email, PASSWORD)).status_code == 200


def test_a_token_works_until_it_expires_and_only_once() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    later = now + TOKEN_LIFETIME[TokenPurpose.RESET_PASSWORD]
    assert TOKEN_LIFETIME[TokenPurpose.RESET_PASSWORD] < TOKEN_LIFETIME[TokenPurpose.VERIFY_EMAIL]
    assert token_state(later, None, now) is TokenState.USABLE
    assert token_state(later, None, later) is TokenState.EXPIRED
    assert token_state(later, now, now) is TokenState.USED
    value, digest = new_token()
    assert digest == token_digest(value) and len(digest) == 64 and value not in digest
