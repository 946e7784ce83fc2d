"""Deleting the account over HTTP (in-process ASGI) against a real PostgreSQL: every row of
the merchant goes (each store as shop/redact erases it, then the rest), one Event with
counts and no personal data stays, the sessions, API token and password stop working;
another merchant's rows are untouched; the password, the typed confirmation and the CSRF
token are required; a running paid subscription that cannot be cancelled refuses."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.web_auth import CSRF_HEADER, SESSION_COOKIE
from kernel.enums import ActionStatus, ActionType, SubscriptionStatus
from models.action import Action
from models.automation import automation_settings
from models.base import Base
from models.billing import Subscription, UsageRecord
from models.connection import Connection
from models.conversation import Message
from models.db import unit_of_work
from models.event import Event, log_event
from models.order import Order
from models.playbook import Playbook, PlaybookExecution
from models.suggestion import AISuggestion
from models.user import User
from tests.factories import make_message, make_order, make_thread, set_usage
from tests.test_account import Desk, _can_log_in, _client, _signed_in, desk
from tests.test_settings_pages import PASSWORD, Merchant

__all__ = ["desk"]  # the fixture, shared with tests/test_account.py

FILLED = (
    "threads", "messages", "ai_suggestions", "actions", "playbook_executions", "connections",
    "playbooks", "api_tokens", "web_sessions", "subscriptions", "usage_records", "events",
    "automation_settings",
)  # fmt: skip


async def _fill(sessions: async_sessionmaker[AsyncSession], merchant: Merchant) -> None:
    """A store's order and its conversation, a mailbox-only thread, a suggestion and an
    action on each, usage and events: what a working desk holds."""
    async with unit_of_work(sessions) as session:
        user = await session.get(User, merchant.id)
        assert user is not None
        shop = await session.get(Connection, merchant.shop)
        assert shop is not None
        order = await make_order(session, shop)
        for linked in (True, False):
            thread = await make_thread(session, user)
            message = await make_message(session, thread)
            if linked:
                message.order_id = order.id
            suggestion = AISuggestion(
                message_id=message.id, reply="On its way.", proposed_action=ActionType.NONE,
                confidence=0.9, order_id=order.id if linked else None,
            )  # fmt: skip
            session.add(suggestion)
            await session.flush()
            session.add(
                Action(
                    user_id=user.id, message_id=message.id, suggestion_id=suggestion.id,
                    order_id=order.id if linked else None, type=ActionType.REFUND,
                    status=ActionStatus.PENDING, payload={"amount": str(Decimal("5.00"))},
                )
            )  # fmt: skip
            await log_event(
                session, "message.received", user_id=user.id, entity="message",
                entity_id=message.id,
            )  # fmt: skip
            playbook = await session.scalar(
                select(Playbook).where(Playbook.user_id == user.id).limit(1)
            )
            assert playbook is not None
            session.add(
                PlaybookExecution(
                    playbook_id=playbook.id, user_id=user.id, message_id=message.id,
                    thread_id=thread.id, trigger_key=f"message:{message.id}",
                    workflow_id=f"playbook-run-{message.id}",
                )
            )  # fmt: skip
        await automation_settings(session, user.id)
        await set_usage(session, user.id, emails_sent=3)


async def _rows_of(
    sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID
) -> dict[str, int | None]:
    """Rows per table reaching the user: by user_id, or through the rows that have one."""
    async with sessions() as session:
        counts: dict[str, int | None] = {}
        for table in Base.metadata.sorted_tables:
            if "user_id" in table.c:
                counts[table.name] = await session.scalar(
                    select(func.count()).select_from(table).where(table.c.user_id == user_id)
                )
        counts["users"] = await session.scalar(
            select(func.count()).select_from(User).where(User.id == user_id)
        )
        mine = select(Message.id).where(Message.user_id == user_id)
        counts["ai_suggestions"] = await session.scalar(
            select(func.count()).where(AISuggestion.message_id.in_(mine))
        )
        subscription = select(Subscription.id).where(Subscription.user_id == user_id)
        counts["usage_records"] = await session.scalar(
            select(func.count()).where(UsageRecord.subscription_id.in_(subscription))
        )
        return counts


async def _orders(sessions: async_sessionmaker[AsyncSession], merchant: Merchant) -> int:
    async with sessions() as session:
        return await session.scalar(
            select(func.count()).where(Order.connection_id == merchant.shop)
        )


def _delete_body(password: str = PASSWORD, confirm: str = "DELETE") -> dict[str, str]:
    return {"current_password": password, "confirm": confirm}


async def test_deleting_erases_every_row_and_keeps_one_event(desk: Desk) -> None:
    for merchant in (desk.a, desk.b):
        await _fill(desk.sessions, merchant)
    before_a, before_b = (
        await _rows_of(desk.sessions, desk.a.id),
        await _rows_of(desk.sessions, desk.b.id),
    )
    # The fill reached every kind that matters, so "zero after" means something.
    for table in FILLED:
        assert before_a[table], table
    assert await _orders(desk.sessions, desk.a) == 1

    gone = await desk.web.request(
        "DELETE", "/api/account", json=_delete_body(), headers={CSRF_HEADER: desk.csrf}
    )
    assert gone.status_code == 200, gone.text
    counts = gone.json()["counts"]
    assert counts["shops"] == 1 and counts["shop_orders"] == 1 and counts["users"] == 1
    assert counts["shop_threads"] + counts["threads"] == 2

    after_a = await _rows_of(desk.sessions, desk.a.id)
    assert {t: n for t, n in after_a.items() if n} == {}
    assert await _orders(desk.sessions, desk.a) == 0
    assert await _rows_of(desk.sessions, desk.b.id) == before_b
    assert await _orders(desk.sessions, desk.b) == 1

    async with desk.sessions() as session:
        [kept] = (
            await session.execute(
                select(Event).where(
                    Event.type == "account.deleted", Event.entity_id == str(desk.a.id)
                )
            )
        ).scalars()
    assert kept.user_id is None and kept.entity == "user" and kept.payload == counts
    assert desk.a.email not in json.dumps(kept.payload)

    # Signed out everywhere, the token refused, the password no longer opens anything.
    assert SESSION_COOKIE in gone.headers.get("set-cookie", "")
    assert not await _signed_in(desk.web) and not await _signed_in(desk.other)
    assert (await desk.api.get("/api/threads")).status_code == 401
    assert not await _can_log_in(desk.app, desk.a.email, PASSWORD)
    async with _client(desk.app, Authorization=f"Bearer {desk.b.token}") as b:
        assert (await b.get("/api/threads")).status_code == 200


async def test_the_page_deletes_the_account_and_signs_out(desk: Desk) -> None:
    page = await desk.web.get("/account")
    assert 'action="/account/delete"' in page.text and "Type DELETE to confirm" in page.text
    done = await desk.web.post(
        "/account/delete",
        data={"csrf": desk.csrf, "current_password": PASSWORD, "confirm": "DELETE"},
    )
    assert done.status_code == 200 and "Account deleted" in done.text
    assert desk.a.email not in done.text  # the header shows nobody signed in
    assert not await _signed_in(desk.web) and not await _can_log_in(
        desk.app, desk.a.email, PASSWORD
    )
    assert (await desk.web.get("/account")).status_code == 303


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (_delete_body(password="not the password"), 403, "wrong_password"),
        (_delete_body(confirm="delete it"), 400, "not_confirmed"),
        (_delete_body(confirm=""), 400, "not_confirmed"),
    ],
)
async def test_a_wrong_password_or_no_confirmation_deletes_nothing(
    desk: Desk, body: dict[str, str], status: int, code: str
) -> None:
    before = await _rows_of(desk.sessions, desk.a.id)
    refused = await desk.api.request("DELETE", "/api/account", json=body)
    assert refused.status_code == status and refused.json()["error"]["code"] == code
    missing = await desk.api.request("DELETE", "/api/account", json={"confirm": "DELETE"})
    assert missing.status_code in (400, 422)
    page = await desk.web.post("/account/delete", data={"csrf": desk.csrf} | body)
    assert page.status_code == status and 'id="delete-error"' in page.text
    assert await _rows_of(desk.sessions, desk.a.id) == before
    assert await _signed_in(desk.web) and await _can_log_in(desk.app, desk.a.email, PASSWORD)


async def test_only_the_callers_account_and_only_with_the_csrf_token(desk: Desk) -> None:
    # The cookie alone (a request another site made the browser send) is refused.
    forged = await desk.web.request("DELETE", "/api/account", json=_delete_body())
    assert forged.status_code == 403
    page = await desk.web.post("/account/delete", data=_delete_body() | {"csrf": "forged"})
    assert page.status_code == 403
    assert await _signed_in(desk.web)
    # There is no account id to name: B's credentials delete B, whatever B knows of A.
    async with _client(desk.app, Authorization=f"Bearer {desk.b.token}") as b:
        done = await b.request("DELETE", "/api/account", json=_delete_body())
        assert done.status_code == 200
    assert (await desk.api.get("/api/threads")).status_code == 200
    assert await _can_log_in(desk.app, desk.a.email, PASSWORD)
    assert not await _can_log_in(desk.app, desk.b.email, PASSWORD)


async def test_a_paid_subscription_that_cannot_be_cancelled_refuses(desk: Desk) -> None:
    async with unit_of_work(desk.sessions) as session:
        await session.execute(
            update(Subscription)
            .where(Subscription.user_id == desk.a.id)
            .values(
                status=SubscriptionStatus.active,
                payment_gateway="paddle",  # not configured in these tests
                gateway_subscription_id="sub_01running",
            )
        )
    refused = await desk.api.request("DELETE", "/api/account", json=_delete_body())
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "subscription_running" and "usage page" in error["message"]
    assert await _can_log_in(desk.app, desk.a.email, PASSWORD)
    assert (await desk.api.get("/api/threads")).status_code == 200
