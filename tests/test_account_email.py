"""Changing the account's email address over real HTTP (in-process ASGI), a real database and
a real Temporal worker whose mail reaches the sandbox's sink: the link goes to the new
address and only using it changes anything; it works once and only until it expires; an
address another account uses is refused when asked for and again when the link is used;
the password and the CSRF token are required; requests are throttled."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select, update

from api.web_auth import CSRF_HEADER
from models.account_token import AccountToken
from models.db import unit_of_work
from models.event import Event
from services.account_email import MAX_EMAIL_CHANGE_REQUESTS
from tests.test_signup import PASSWORD, Desk, _existing, _form_field, _link, _sign_in, desk

__all__ = ["desk"]  # the fixture, with tests/test_signup.py's worker and mail sink


def _address(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:6]}@store.test"


async def _signed_in(desk: Desk, browser: httpx.AsyncClient, email: str) -> str:
    """Signs `browser` in; returns the session's CSRF token."""
    done = await _sign_in(browser, email, PASSWORD)
    assert done.status_code == 200, done.text
    return done.json()["csrf_token"]


async def _ask(
    browser: httpx.AsyncClient, csrf: str, new_email: str, password: str = PASSWORD
) -> httpx.Response:
    return await browser.post(
        "/api/account/email",
        json={"new_email": new_email, "current_password": password},
        headers={CSRF_HEADER: csrf},
    )


async def _use(browser: httpx.AsyncClient, link: str) -> httpx.Response:
    shown = await browser.get(link)
    assert shown.status_code == 200, shown.text
    token = link.split("token=", 1)[1]
    csrf = _form_field(shown.text, "/verify", "csrf")
    return await browser.post("/verify", data={"token": token, "csrf": csrf})


async def test_the_mailed_link_changes_the_address_once(desk: Desk) -> None:
    old, new = _address("old"), _address("new")
    user_id = await _existing(desk, old)
    async with desk.browser() as browser, desk.browser() as stranger:
        csrf = await _signed_in(desk, browser, old)
        # A reset link mailed to the old address before the change.
        page = await stranger.get("/reset")
        await stranger.post(
            "/reset", data={"email": old, "csrf": _form_field(page.text, "/reset", "csrf")}
        )
        reset_link = _link(await desk.mail_to(old), "/reset/confirm")

        asked = await _ask(browser, csrf, new)
        assert asked.status_code == 202, asked.text
        assert asked.json() == {"sent_to": new}
        mail = await desk.mail_to(new)
        assert "new email address" in str(mail["Subject"]) and str(mail["To"]) == new
        link = _link(mail, "/verify")
        # Nothing changed yet: the old address still signs in.
        assert (await desk.user(old)) is not None
        assert (await _sign_in(stranger, old, PASSWORD)).status_code == 200

        changed = await _use(browser, link)
        assert changed.status_code == 200 and "is now" in changed.text, changed.text
        user = await desk.user(new)
        assert user is not None and user.id == user_id and user.email == new
        assert user.email_verified_at is not None
        assert await desk.user(old) is None
        async with desk.browser() as fresh:
            assert (await _sign_in(fresh, old, PASSWORD)).status_code == 401
            assert (await _sign_in(fresh, new, PASSWORD)).status_code == 200
        # This browser stays signed in, now as the new address.
        me = (await browser.get("/api/session")).json()
        assert me["user"]["email"] == new

        assert (await browser.get(link)).status_code == 410
        form = (await browser.get("/reset")).text  # any public form's token serves /verify
        again = await browser.post(
            "/verify",
            data={"token": link.split("token=", 1)[1],
                  "csrf": _form_field(form, "/reset", "csrf")},
        )  # fmt: skip
        assert again.status_code == 410 and "already been used" in again.text
        # The reset link went to an address that is no longer the account's: void.
        assert (await stranger.get(reset_link)).status_code == 404
    async with desk.sessions() as session:
        types = set(
            (await session.execute(select(Event.type).where(Event.user_id == user_id))).scalars()
        )
    assert {"user.email_change_requested", "user.email_changed"} <= types


async def test_the_account_page_asks_for_the_link(desk: Desk) -> None:
    old, new = _address("page"), _address("moved")
    await _existing(desk, old)
    async with desk.browser() as browser:
        await _signed_in(desk, browser, old)
        page = await browser.get("/account")
        assert 'action="/account/email"' in page.text
        csrf = _form_field(page.text, "/account/email", "csrf")
        wrong = await browser.post(
            "/account/email",
            data={"csrf": csrf, "new_email": new, "current_password": "not it at all"},
        )
        assert wrong.status_code == 403 and "The current password is not correct." in wrong.text
        assert f'value="{new}"' in wrong.text  # the form keeps what was typed
        sent = await browser.post(
            "/account/email", data={"csrf": csrf, "new_email": new, "current_password": PASSWORD}
        )
        assert sent.status_code == 200 and f"We sent a link to {new}" in sent.text
        assert (await _use(browser, _link(await desk.mail_to(new), "/verify"))).status_code == 200
        assert (await desk.user(new)) is not None and (await desk.user(old)) is None


async def test_an_expired_link_changes_nothing(desk: Desk) -> None:
    old, new = _address("slow"), _address("later")
    await _existing(desk, old)
    async with desk.browser() as browser:
        csrf = await _signed_in(desk, browser, old)
        assert (await _ask(browser, csrf, new)).status_code == 202
        link = _link(await desk.mail_to(new), "/verify")
        shown = await browser.get(link)
        async with unit_of_work(desk.sessions) as session:
            await session.execute(
                update(AccountToken)
                .where(func.lower(AccountToken.email) == new)
                .values(expires_at=func.now() - func.make_interval(0, 0, 0, 0, 1))
            )
        late = await browser.post(
            "/verify",
            data={"token": link.split("token=", 1)[1],
                  "csrf": _form_field(shown.text, "/verify", "csrf")},
        )  # fmt: skip
    assert late.status_code == 410 and "expired" in late.text
    assert (await desk.user(old)) is not None and (await desk.user(new)) is None


async def test_an_address_in_use_is_refused_when_asked_and_when_the_link_is_used(
    desk: Desk,
) -> None:
    mine, theirs, contested = _address("mine"), _address("theirs"), _address("contested")
    await _existing(desk, mine)
    await _existing(desk, theirs)
    async with desk.browser() as browser:
        csrf = await _signed_in(desk, browser, mine)
        taken = await _ask(browser, csrf, theirs.upper())
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "email_taken"

        assert (await _ask(browser, csrf, contested)).status_code == 202
        link = _link(await desk.mail_to(contested), "/verify")
        await _existing(desk, contested)  # someone signs up with it meanwhile
        refused = await _use(browser, link)
        assert refused.status_code == 409 and "another account" in refused.text
    assert (await desk.user(mine)) is not None
    async with desk.sessions() as session:
        # Rolled back: the link was not used up by the refusal.
        used = await session.scalar(
            select(AccountToken.used_at).where(AccountToken.email == contested)
        )
    assert used is None


async def test_refusals_change_nothing(desk: Desk) -> None:
    old = _address("careful")
    await _existing(desk, old)
    async with desk.browser() as browser:
        csrf = await _signed_in(desk, browser, old)
        wrong = await _ask(browser, csrf, _address("x"), password="not it at all")
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "wrong_password"
        malformed = await _ask(browser, csrf, "not an address")
        assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "bad_email"
        same = await _ask(browser, csrf, old.upper())
        assert same.status_code == 400 and same.json()["error"]["code"] == "same_email"
        no_csrf = await browser.post(
            "/api/account/email", json={"new_email": _address("y"), "current_password": PASSWORD}
        )
        assert no_csrf.status_code == 403
        form = await browser.post(
            "/account/email", data={"new_email": _address("z"), "current_password": PASSWORD}
        )
        assert form.status_code == 403
    async with desk.sessions() as session:
        user = await desk.user(old)
        assert user is not None
        # No link was made for any of them.
        assert not (
            await session.execute(select(AccountToken.id).where(AccountToken.user_id == user.id))
        ).first()


async def test_change_requests_are_throttled(desk: Desk) -> None:
    old = _address("eager")
    await _existing(desk, old)
    async with desk.browser() as browser:
        csrf = await _signed_in(desk, browser, old)
        for _ in range(MAX_EMAIL_CHANGE_REQUESTS):
            assert (await _ask(browser, csrf, _address("try"))).status_code == 202
        throttled = await _ask(browser, csrf, _address("once-more"))
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
