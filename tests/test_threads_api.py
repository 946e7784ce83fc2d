"""GET /api/threads and /api/threads/{id} against a real PostgreSQL, two merchants."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from kernel.enums import ActionStatus, ActionType, MessageDirection
from models import Action, AISuggestion, Connection, Message, Order, Thread, User
from models.db import unit_of_work
from models.thread_state import refresh_needs_decision
from tests.api_support import api_client, token_for
from tests.factories import make_shopify_connection, make_user

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@dataclass
class Owner:
    user: User
    shop: Connection
    token: str


def _app(own_sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    return create_app(own_sessions.kw["bind"])


async def _owner(sessions: async_sessionmaker[AsyncSession]) -> Owner:
    async with unit_of_work(sessions) as session:
        user = await make_user(session)
        shop = await make_shopify_connection(session, user)
    return Owner(user, shop, await token_for(sessions, user.id))


@pytest.fixture
async def owners(own_sessions: async_sessionmaker[AsyncSession]) -> tuple[Owner, Owner]:
    return await _owner(own_sessions), await _owner(own_sessions)


@pytest.fixture
async def client(
    own_sessions: async_sessionmaker[AsyncSession], owners: tuple[Owner, Owner]
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(_app(own_sessions), owners[0].token) as http:
        yield http


async def add_thread(
    session: AsyncSession,
    owner: Owner,
    *,
    at: datetime,
    email: str = "ava.patel@example.com",
    subject: str = "Where is my parcel?",
    body: str = "Hello, my parcel has not arrived.",
    order_name: str | None = None,
    statuses: tuple[ActionStatus | None, ...] = (None,),
) -> Thread:
    """A thread with one inbound message per entry of `statuses` (None: no action),
    each followed by our reply, the last message at `at`."""
    thread = Thread(
        user_id=owner.user.id, customer_email=email, subject=subject, last_message_at=at
    )
    session.add(thread)
    order = None
    if order_name is not None:
        order = Order(
            connection_id=owner.shop.id,
            shop_domain=owner.shop.shop_domain,
            shopify_id=f"gid://shopify/Order/{uuid.uuid4().int % 10**12}",
            name=order_name,
            status="open",
            email=email,
            total_amount=Decimal("59.90"),
            currency="EUR",
        )
        session.add(order)
    await session.flush()
    count = len(statuses) * 2
    for k, status in enumerate(statuses):
        sent = at - timedelta(minutes=count - 1 - 2 * k)
        inbound = Message(
            user_id=owner.user.id,
            thread_id=thread.id,
            order_id=order.id if order else None,
            direction=MessageDirection.INBOUND,
            message_id=f"<{uuid.uuid4().hex}@customer.test>",
            from_address=email,
            subject=subject,
            body_text=body if k == 0 else f"Any news? {k}",
            quoted_text="> earlier" if k else "",
            sent_at=sent,
        )
        session.add(inbound)
        await session.flush()
        if status is not None:
            session.add(
                Action(
                    user_id=owner.user.id,
                    message_id=inbound.id,
                    order_id=order.id if order else None,
                    type=ActionType.REFUND,
                    status=status,
                    created_at=sent + timedelta(seconds=k),
                )
            )
        session.add(
            Message(
                user_id=owner.user.id,
                thread_id=thread.id,
                direction=MessageDirection.OUTBOUND,
                message_id=f"<{uuid.uuid4().hex}@store.test>",
                from_address="support@store.test",
                subject=f"Re: {subject}",
                body_text=f"Reply {k}: we are on it.",
                sent_at=sent + timedelta(minutes=1),
            )
        )
    await session.flush()
    # As the pipeline does whenever it creates or decides an action.
    await refresh_needs_decision(session, thread.id)
    return thread


async def _ids(client: httpx.AsyncClient, **params: str) -> list[str]:
    response = await client.get("/api/threads", params=params)
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()["threads"]]


async def test_views_split_threads_by_their_actions(
    own_sessions: async_sessionmaker[AsyncSession],
    owners: tuple[Owner, Owner],
    client: httpx.AsyncClient,
) -> None:
    me = owners[0]
    s = ActionStatus
    kinds = {
        "pending": (s.PENDING,),
        "executed": (s.EXECUTED,),
        "rejected": (s.REJECTED,),
        "failed": (s.FAILED,),
        "no_action": (None,),
        "approved": (s.APPROVED,),  # running: neither waiting for a person nor done
        "old_pending": (s.PENDING, s.EXECUTED),  # an older pending action still waits
        "old_approved": (s.APPROVED, s.EXECUTED),
    }
    made: dict[str, str] = {}
    async with unit_of_work(own_sessions) as session:
        for n, (name, statuses) in enumerate(kinds.items()):
            thread = await add_thread(
                session, me, at=T0 + timedelta(hours=n), statuses=statuses, order_name=f"#{n}"
            )
            made[name] = str(thread.id)
    newest_first = [made[name] for name in reversed(list(kinds))]

    assert await _ids(client) == newest_first
    assert await _ids(client, view="all") == newest_first
    assert set(await _ids(client, view="needs_decision")) == {made["pending"], made["old_pending"]}
    handled = {made[k] for k in ("executed", "rejected", "failed", "no_action")}
    assert set(await _ids(client, view="handled")) == handled

    listed = {t["id"]: t for t in (await client.get("/api/threads")).json()["threads"]}
    old_pending = listed[made["old_pending"]]
    assert old_pending["needs_decision"] is True
    assert old_pending["latest_action"] == {"type": "REFUND", "status": "EXECUTED"}
    assert old_pending["message_count"] == 4
    assert old_pending["snippet"] == "Reply 1: we are on it."
    assert old_pending["order_name"] == "#6"
    assert listed[made["no_action"]]["latest_action"] is None
    assert listed[made["no_action"]]["needs_decision"] is False
    assert listed[made["executed"]]["customer_email"] == "ava.patel@example.com"


async def test_search_by_customer_order_and_words(
    own_sessions: async_sessionmaker[AsyncSession],
    owners: tuple[Owner, Owner],
    client: httpx.AsyncClient,
) -> None:
    me, other = owners
    async with unit_of_work(own_sessions) as session:
        ava = await add_thread(session, me, at=T0, email="ava.patel@example.com")
        order = await add_thread(
            session, me, at=T0 + timedelta(hours=1), email="liam@example.org", order_name="#1001"
        )
        broken = await add_thread(
            session,
            me,
            at=T0 + timedelta(hours=2),
            email="zoe@example.net",
            subject="Broken mug",
            body="The mug arrived DAMAGED in the box.",
            statuses=(ActionStatus.PENDING,),
        )
        # The other merchant's matching rows must never show.
        await add_thread(
            session,
            other,
            at=T0 + timedelta(hours=3),
            email="ava.patel@example.com",
            subject="Broken mug",
            body="damaged",
            order_name="#1001",
        )
    assert await _ids(client, q="ava") == [str(ava.id)]
    assert await _ids(client, q="Ava.Patel@Example.com") == [str(ava.id)]
    assert await _ids(client, q="#1001") == [str(order.id)]
    assert await _ids(client, q="1001") == [str(order.id)]
    assert await _ids(client, q="damaged") == [str(broken.id)]  # text, any case
    assert await _ids(client, q="mug") == [str(broken.id)]  # subject
    assert await _ids(client, q="damaged", view="handled") == []
    assert await _ids(client, q="damaged", view="needs_decision") == [str(broken.id)]
    assert await _ids(client, q="nothing-like-this") == []
    assert await _ids(client, q="100%") == []  # LIKE wildcards are taken literally
    assert len(await _ids(client, q="  ")) == 3  # blank: no search


async def test_keyset_pages_have_no_duplicates_or_gaps_while_threads_arrive(
    own_sessions: async_sessionmaker[AsyncSession],
    owners: tuple[Owner, Owner],
    client: httpx.AsyncClient,
) -> None:
    me = owners[0]
    async with unit_of_work(own_sessions) as session:
        # Ties on the time (several threads per instant) must be split by id, not lost.
        existing = [
            await add_thread(session, me, at=T0 + timedelta(minutes=k // 3)) for k in range(23)
        ]
    expected = [
        str(t.id) for t in sorted(existing, key=lambda t: (t.last_message_at, t.id), reverse=True)
    ]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "5", **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/threads", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [t["id"] for t in body["threads"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        async with unit_of_work(own_sessions) as session:  # a new thread lands on top
            await add_thread(session, me, at=T0 + timedelta(days=1, minutes=pages))
    assert seen == expected
    assert pages == 5


async def test_another_merchants_threads_are_never_listed_and_answer_404(
    own_sessions: async_sessionmaker[AsyncSession],
    owners: tuple[Owner, Owner],
    client: httpx.AsyncClient,
) -> None:
    me, other = owners
    async with unit_of_work(own_sessions) as session:
        mine = await add_thread(session, me, at=T0, statuses=(ActionStatus.PENDING,))
        theirs = [
            await add_thread(session, other, at=T0 + timedelta(hours=k), statuses=(status,))
            for k, status in enumerate((ActionStatus.PENDING, ActionStatus.EXECUTED, None))
        ]
    for view in ("all", "needs_decision", "handled"):
        assert str(theirs[0].id) not in await _ids(client, view=view)
    assert await _ids(client) == [str(mine.id)]
    response = await client.get(f"/api/threads/{theirs[0].id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert (await client.get(f"/api/threads/{mine.id}")).status_code == 200
    async with api_client(_app(own_sessions), other.token) as theirs_client:
        assert len(await _ids(theirs_client)) == 3
        assert (await theirs_client.get(f"/api/threads/{mine.id}")).status_code == 404


async def test_thread_detail_has_messages_in_order_the_order_and_latest_decision(
    own_sessions: async_sessionmaker[AsyncSession],
    owners: tuple[Owner, Owner],
    client: httpx.AsyncClient,
) -> None:
    me = owners[0]
    async with unit_of_work(own_sessions) as session:
        thread = await add_thread(
            session,
            me,
            at=T0,
            order_name="#1042",
            statuses=(ActionStatus.REJECTED, ActionStatus.PENDING),
        )
        inbound = (
            (
                await session.execute(
                    select(Message)
                    .where(Message.thread_id == thread.id, Message.direction == "INBOUND")
                    .order_by(Message.sent_at)
                )
            )
            .scalars()
            .all()
        )
        suggestion = AISuggestion(
            message_id=inbound[-1].id,
            reply="We will refund you today.",
            proposed_action=ActionType.REFUND,
            confidence=0.91,
            provider="offline",
            intent="refund",
            rationale="damaged item",
        )
        session.add(suggestion)
    response = await client.get(f"/api/threads/{thread.id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["thread"]["id"] == str(thread.id)
    messages = body["messages"]
    assert [m["direction"] for m in messages] == ["INBOUND", "OUTBOUND", "INBOUND", "OUTBOUND"]
    assert [m["sent_at"] for m in messages] == sorted(m["sent_at"] for m in messages)
    assert messages[2]["quoted_text"] == "> earlier"
    assert messages[0]["from_address"] == "ava.patel@example.com"
    assert messages[0]["attachments"] == []
    assert body["order"]["name"] == "#1042"
    assert Decimal(body["order"]["total_amount"]) == Decimal("59.90")
    assert body["action"]["status"] == "PENDING"  # the latest, not the rejected one
    assert body["suggestion"]["reply"] == "We will refund you today."
    assert body["suggestion"]["confidence"] == pytest.approx(0.91)


async def test_invalid_requests_answer_json_errors(
    own_sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    cases = [
        ({"view": "archived"}, 422, "view"),
        ({"limit": "0"}, 422, "limit"),
        ({"limit": "101"}, 422, "limit"),
        ({"limit": "ten"}, 422, "limit"),
        ({"cursor": "not-a-cursor"}, 400, "cursor"),
        ({"cursor": "WyJ4IiwgInkiXQ"}, 400, "cursor"),  # base64 of ["x", "y"]
        ({"q": "x" * 201}, 422, "q"),
    ]
    for params, status, mentioned in cases:
        response = await client.get("/api/threads", params=params)
        assert response.status_code == status, (params, response.text)
        assert mentioned in response.json()["error"]["message"], params
    assert (await client.get("/api/threads/not-a-uuid")).status_code == 422
    missing = await client.get(f"/api/threads/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert "not found" in missing.json()["error"]["message"]
    async with api_client(_app(own_sessions)) as anonymous:
        assert (await anonymous.get("/api/threads")).status_code == 401
