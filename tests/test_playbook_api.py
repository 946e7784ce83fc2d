"""The playbook API against the real app and a real PostgreSQL: executions in keyset pages,
custom playbooks created and deleted, the playbook on a message, the automation settings,
and the dry run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from domain.playbook_rules import PlaybookRules
from kernel.enums import ActionStatus, ActionType, PlaybookExecutionStatus
from models.action import Action
from models.automation import AutomationSettings
from models.base import Base
from models.conversation import Message, Thread
from models.db import unit_of_work
from models.event import Event
from models.playbook import Playbook, PlaybookExecution
from models.suggestion import AISuggestion
from models.user import User
from services.accounts import create_user
from tests.api_support import api_client, token_for
from tests.factories import make_message, make_order, make_shopify_connection, make_thread

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

RULES: dict[str, Any] = {
    "trigger": {"version": 1, "event": "message.received", "intents": ["order_status"]},
    "conditions": [
        {"version": 1, "field": "order.total_amount", "operator": "lte", "value": 80},
    ],
    "actions": [{"version": 1, "type": "escalate", "reason": "a person looks first"}],
}


@dataclass
class Merchant:
    id: uuid.UUID
    token: str
    thread: Thread
    message: Message
    playbooks: list[Playbook]  # the defaults, by name


async def _merchant(sessions: async_sessionmaker[AsyncSession]) -> Merchant:
    async with unit_of_work(sessions) as session:
        user = await create_user(session, f"m-{uuid.uuid4().hex[:8]}@store.example")
        thread = await make_thread(session, user)
        message = await make_message(session, thread)
        playbooks = list(
            (
                await session.execute(
                    select(Playbook).where(Playbook.user_id == user.id).order_by(Playbook.name)
                )
            ).scalars()
        )
    return Merchant(user.id, await token_for(sessions, user.id), thread, message, playbooks)


@pytest.fixture
async def merchants(own_sessions: async_sessionmaker[AsyncSession]) -> tuple[Merchant, Merchant]:
    return await _merchant(own_sessions), await _merchant(own_sessions)


@pytest.fixture
async def clients(
    own_sessions: async_sessionmaker[AsyncSession], merchants: tuple[Merchant, Merchant]
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    app = create_app(own_sessions.kw["bind"])
    async with api_client(app, merchants[0].token) as a, api_client(app, merchants[1].token) as b:
        yield a, b


async def add_executions(
    sessions: async_sessionmaker[AsyncSession],
    owner: Merchant,
    playbook: Playbook,
    moments: list[datetime],
    **values: Any,
) -> list[uuid.UUID]:
    async with unit_of_work(sessions) as session:
        rows = [
            PlaybookExecution(
                playbook_id=playbook.id,
                user_id=owner.id,
                trigger_key=f"message:{uuid.uuid4()}",
                created_at=at,
                **values,
            )
            for at in moments
        ]
        session.add_all(rows)
        await session.flush()
        return [r.id for r in rows]


async def count(sessions: async_sessionmaker[AsyncSession], model: type[Any], **where: Any) -> int:
    async with sessions() as session:
        query = select(func.count()).select_from(model).filter_by(**where)
        return (await session.execute(query)).scalar_one()


async def event_types(sessions: async_sessionmaker[AsyncSession], owner: Merchant) -> list[str]:
    async with sessions() as session:
        rows = await session.execute(
            select(Event.type).where(Event.user_id == owner.id).order_by(Event.created_at)
        )
        return list(rows.scalars())


# --- executions ------------------------------------------------------------------------------


async def _all_pages(client: httpx.AsyncClient, url: str, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        answer = await client.get(url, params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append([e["id"] for e in body["executions"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


async def test_executions_come_newest_first_in_keyset_pages(
    own_sessions: async_sessionmaker[AsyncSession],
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, _ = merchants
    playbook, other = a.playbooks[0], a.playbooks[1]
    # Ties on created_at (one transaction writes several) are ordered by id.
    moments = [T0, T0, T0, T0 + timedelta(seconds=1), T0 - timedelta(days=1), T0, T0]
    ids = await add_executions(own_sessions, a, playbook, moments)
    await add_executions(own_sessions, a, other, [T0 + timedelta(hours=1)])
    expected = [
        str(i)
        for _, i in sorted(zip(moments, ids, strict=True), key=lambda p: (p[0], p[1]), reverse=True)
    ]
    url = f"/api/playbooks/{playbook.id}/executions"
    for limit in (1, 2, 3, 7, 100):
        pages = await _all_pages(clients[0], url, limit)
        assert [i for page in pages for i in page] == expected, limit
        assert all(0 < len(page) <= limit for page in pages)
        assert len(pages) == max(1, -(-len(expected) // limit))


async def test_later_pages_are_stable_while_executions_are_written(
    own_sessions: async_sessionmaker[AsyncSession],
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, _ = merchants
    playbook = a.playbooks[0]
    await add_executions(own_sessions, a, playbook, [T0 - timedelta(minutes=m) for m in range(6)])
    url = f"/api/playbooks/{playbook.id}/executions"
    first = (await clients[0].get(url, params={"limit": 2})).json()
    newer = await add_executions(own_sessions, a, playbook, [T0 + timedelta(minutes=5)] * 3)
    seen = [e["id"] for e in first["executions"]]
    cursor = first["next_cursor"]
    while cursor:
        page = (await clients[0].get(url, params={"limit": 2, "cursor": cursor})).json()
        seen += [e["id"] for e in page["executions"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 6
    assert not set(seen) & {str(i) for i in newer}
    fresh = await _all_pages(clients[0], url, 4)
    assert [i for page in fresh for i in page][:3] == sorted(map(str, newer), reverse=True)


async def test_an_execution_shows_what_it_did(
    own_sessions: async_sessionmaker[AsyncSession],
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, _ = merchants
    playbook = a.playbooks[0]
    [execution_id] = await add_executions(
        own_sessions,
        a,
        playbook,
        [T0],
        status=PlaybookExecutionStatus.executed,
        confidence=0.97,
        trigger_data={"intent": "damaged_item"},
        result={"refund": "12.50"},
        executed_at=T0 + timedelta(seconds=3),
        message_id=a.message.id,
        thread_id=a.thread.id,
        workflow_id="playbook-run-x",
        decided_by="playbook",
        automatic=True,
    )
    body = (await clients[0].get(f"/api/playbooks/{playbook.id}/executions")).json()
    assert body == {
        "executions": [
            {
                "id": str(execution_id),
                "status": "executed",
                "confidence": 0.97,
                "trigger_data": {"intent": "damaged_item"},
                "result": {"refund": "12.50"},
                "error": None,
                "created_at": "2026-11-01T09:00:00Z",
                "executed_at": "2026-11-01T09:00:03Z",
                "message_id": str(a.message.id),
                "thread_id": str(a.thread.id),
                "workflow_id": "playbook-run-x",
                "decided_by": "playbook",
                "automatic": True,
            }
        ],
        "next_cursor": None,
    }


@pytest.mark.parametrize(
    "cursor", ["not-a-cursor", "WyJ5ZXN0ZXJkYXkiLCAieCJd", "WyIyMDI2LTExLTAxVDA5OjAwOjAwIiwgIjEiXQ"]
)
async def test_a_cursor_the_api_did_not_issue_is_refused(
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    cursor: str,
) -> None:
    playbook = merchants[0].playbooks[0]
    answer = await clients[0].get(
        f"/api/playbooks/{playbook.id}/executions", params={"cursor": cursor}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "bad_request"


async def test_another_merchants_executions_are_not_found(
    own_sessions: async_sessionmaker[AsyncSession],
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, _ = merchants
    await add_executions(own_sessions, a, a.playbooks[0], [T0])
    answer = await clients[1].get(f"/api/playbooks/{a.playbooks[0].id}/executions")
    assert answer.status_code == 404
    assert a.message.id.hex not in answer.text
    unknown = await clients[0].get(f"/api/playbooks/{uuid.uuid4()}/executions")
    assert unknown.status_code == 404


# --- creating and deleting -------------------------------------------------------------------


async def test_a_custom_playbook_is_created_and_listed(
    own_sessions: async_sessionmaker[AsyncSession],
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = merchants
    body = {
        "name": "Cheap orders to a person",
        "description": "Small orders get a look first.",
        **RULES,
        "confidence_threshold": 0.75,
        "requires_approval": False,
        "priority": 10,
        "stop_processing": True,
        "run_once_per_thread": True,
    }
    answer = await clients[0].post("/api/playbooks", json=body)
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert {k: created[k] for k in ("name", "description", "category", "is_default")} == {
        "name": "Cheap orders to a person",
        "description": "Small orders get a look first.",
        "category": "CUSTOM",
        "is_default": False,
    }
    assert created["confidence_threshold"] == 0.75
    assert created["requires_approval"] is False
    assert created["enabled"] is True
    assert (created["priority"], created["stop_processing"], created["run_once_per_thread"]) == (
        10,
        True,
        True,
    )
    assert (created["consecutive_failures"], created["disabled_reason"]) == (0, None)
    assert created["execution_count"] == 0
    # Stored in the current (normalised) form, meaning the same rules.
    assert PlaybookRules.parse(
        created["trigger"], created["conditions"], created["actions"]
    ) == PlaybookRules.parse(RULES["trigger"], RULES["conditions"], RULES["actions"])

    listed = (await clients[0].get("/api/playbooks")).json()
    assert created["id"] in [p["id"] for p in listed]
    assert created["id"] not in (await clients[1].get("/api/playbooks")).text
    assert (await clients[1].get(f"/api/playbooks/{created['id']}")).status_code == 404
    assert "playbook.created" in await event_types(own_sessions, a)
    assert "playbook.created" not in await event_types(own_sessions, b)


async def test_a_created_playbook_has_safe_defaults(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    answer = await clients[0].post("/api/playbooks", json={"name": "Minimal", **RULES})
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["requires_approval"] is True
    assert created["confidence_threshold"] == 0.9
    assert (created["priority"], created["stop_processing"], created["run_once_per_thread"]) == (
        100,
        False,
        False,
    )


@pytest.mark.parametrize(
    ("change", "code", "says"),
    [
        ({"trigger": {"version": 1, "event": "cron"}}, "invalid_playbook", "trigger"),
        ({"actions": []}, "invalid_playbook", "actions"),
        (
            {
                "conditions": [
                    {"version": 1, "field": "order.secret", "operator": "eq", "value": "x"}
                ]
            },
            "invalid_playbook",
            "conditions",
        ),
        (
            {
                "conditions": [
                    {"version": 1, "field": "message.text", "operator": "contains", "value": "a\0"}
                ]
            },
            "invalid_playbook",
            "conditions",
        ),
        ({"name": ""}, "invalid_request", "name"),
        ({"name": "a\0b"}, "invalid_request", "name"),
        ({"confidence_threshold": 1.5}, "invalid_request", "confidence_threshold"),
        ({"priority": -1}, "invalid_request", "priority"),
    ],
)
async def test_a_playbook_that_cannot_be_used_is_refused_with_the_reason(
    own_sessions: async_sessionmaker[AsyncSession],
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    change: dict[str, Any],
    code: str,
    says: str,
) -> None:
    before = await count(own_sessions, Playbook, user_id=merchants[0].id)
    answer = await clients[0].post("/api/playbooks", json={"name": "x", **RULES, **change})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    assert says in error["message"]
    if code == "invalid_playbook":
        assert error["message"].startswith(says)  # the part comes first
    assert await count(own_sessions, Playbook, user_id=merchants[0].id) == before


async def test_a_custom_playbook_is_deleted_with_its_executions(
    own_sessions: async_sessionmaker[AsyncSession],
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, _ = merchants
    created = (await clients[0].post("/api/playbooks", json={"name": "Temp", **RULES})).json()
    async with own_sessions() as session:
        playbook = await session.get(Playbook, uuid.UUID(created["id"]))
    assert playbook is not None
    await add_executions(own_sessions, a, playbook, [T0, T0], message_id=a.message.id)
    # Another merchant's delete is not found and changes nothing.
    assert (await clients[1].delete(f"/api/playbooks/{created['id']}")).status_code == 404
    assert await count(own_sessions, PlaybookExecution, playbook_id=playbook.id) == 2

    answer = await clients[0].delete(f"/api/playbooks/{created['id']}")
    assert answer.status_code == 204
    assert answer.content == b""
    assert (await clients[0].get(f"/api/playbooks/{created['id']}")).status_code == 404
    assert await count(own_sessions, PlaybookExecution, playbook_id=playbook.id) == 0
    assert (await clients[0].get(f"/api/messages/{a.message.id}")).json()["playbook"] is None
    assert (await clients[0].delete(f"/api/playbooks/{created['id']}")).status_code == 404
    assert (await event_types(own_sessions, a))[-2:] == ["playbook.created", "playbook.deleted"]


async def test_a_default_playbook_can_be_disabled_not_deleted(
    own_sessions: async_sessionmaker[AsyncSession],
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, _ = merchants
    default = a.playbooks[0]
    assert default.is_default
    answer = await clients[0].delete(f"/api/playbooks/{default.id}")
    assert answer.status_code == 409
    assert answer.json()["error"] == {
        "code": "conflict",
        "message": "a default playbook can be disabled, not deleted",
    }
    assert await count(own_sessions, Playbook, id=default.id) == 1
    disabled = await clients[0].patch(f"/api/playbooks/{default.id}", json={"enabled": False})
    assert disabled.json()["enabled"] is False
    assert "playbook.deleted" not in await event_types(own_sessions, a)


async def test_playbooks_show_their_ordering_and_self_pause(
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    listed = (await clients[0].get("/api/playbooks")).json()
    assert len(listed) == len(merchants[0].playbooks)
    for playbook in listed:
        assert isinstance(playbook["priority"], int)
        assert isinstance(playbook["stop_processing"], bool)
        assert isinstance(playbook["run_once_per_thread"], bool)
        assert playbook["consecutive_failures"] == 0
        assert playbook["disabled_reason"] is None


# --- the playbook on a message ---------------------------------------------------------------


async def test_a_message_names_the_playbook_that_handled_it(
    own_sessions: async_sessionmaker[AsyncSession],
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, _ = merchants
    url = f"/api/messages/{a.message.id}"
    assert (await clients[0].get(url)).json()["playbook"] is None

    async with unit_of_work(own_sessions) as session:
        thread = await session.get(Thread, a.thread.id)
        assert thread is not None
        unrelated = await make_message(session, thread)
    first, second = a.playbooks[0], a.playbooks[1]
    await add_executions(own_sessions, a, first, [T0], message_id=a.message.id)
    [newest] = await add_executions(
        own_sessions, a, second, [T0 + timedelta(minutes=1)], message_id=a.message.id
    )
    await add_executions(own_sessions, a, first, [T0 + timedelta(hours=1)], message_id=unrelated.id)
    assert (await clients[0].get(url)).json()["playbook"] == {
        "id": str(second.id),
        "name": second.name,
        "execution_id": str(newest),
    }
    assert (await clients[1].get(url)).status_code == 404


# --- automation settings ---------------------------------------------------------------------


async def test_automation_settings_start_at_the_defaults(
    own_sessions: async_sessionmaker[AsyncSession],
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    answer = await clients[0].get("/api/settings/automation")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    body.pop("updated_at")
    assert body == {
        "enabled": True,
        "daily_refund_cap": "500.0000",
        "daily_execution_cap": 100,
        "pause_after_failures": 3,
        "timezone": "UTC",
        "business_hours_start": 9,
        "business_hours_end": 17,
        "business_days": [1, 2, 3, 4, 5],
    }
    assert await count(own_sessions, AutomationSettings, user_id=merchants[0].id) == 1
    assert (await clients[0].get("/api/settings/automation")).json()["enabled"] is True


async def test_automation_settings_change_and_are_logged(
    own_sessions: async_sessionmaker[AsyncSession],
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = merchants
    change = {
        "daily_refund_cap": "120.50",
        "daily_execution_cap": 5,
        "pause_after_failures": 2,
        "timezone": "Europe/Berlin",
        "business_hours_start": 22,
        "business_hours_end": 6,  # a night shift spans midnight
        "business_days": [6, 1, 7],
    }
    answer = await clients[0].patch("/api/settings/automation", json=change)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["daily_refund_cap"] == "120.5000"
    assert body["business_days"] == [1, 6, 7]
    assert (body["timezone"], body["business_hours_start"], body["business_hours_end"]) == (
        "Europe/Berlin",
        22,
        6,
    )
    assert body["enabled"] is True
    async with own_sessions() as session:
        payload = (
            await session.execute(
                select(Event.payload).where(
                    Event.user_id == a.id, Event.type == "automation.updated"
                )
            )
        ).scalar_one()
    assert payload == {**change, "daily_refund_cap": "120.50", "business_days": [1, 6, 7]}

    off = await clients[0].patch("/api/settings/automation", json={"enabled": False})
    assert off.json()["enabled"] is False
    again = await clients[0].patch("/api/settings/automation", json={"enabled": False, **change})
    assert again.status_code == 200
    on = await clients[0].patch("/api/settings/automation", json={"enabled": True})
    assert on.json()["enabled"] is True
    automation = [t for t in await event_types(own_sessions, a) if t.startswith("automation.")]
    assert automation == ["automation.updated", "automation.disabled", "automation.enabled"]
    # The other merchant's switch and caps are its own.
    theirs = (await clients[1].get("/api/settings/automation")).json()
    assert (theirs["enabled"], theirs["daily_execution_cap"], theirs["timezone"]) == (
        True,
        100,
        "UTC",
    )
    assert not [t for t in await event_types(own_sessions, b) if t.startswith("automation.")]


@pytest.mark.parametrize(
    ("change", "code", "says"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "invalid_request", "timezone"),
        ({"timezone": "localtime"}, "invalid_request", "timezone"),
        ({"timezone": "../../etc/passwd"}, "invalid_request", "timezone"),
        ({"timezone": ""}, "invalid_request", "timezone"),
        ({"daily_refund_cap": "-1"}, "invalid_request", "daily_refund_cap"),
        ({"daily_refund_cap": "1000000000000000"}, "invalid_request", "daily_refund_cap"),
        ({"daily_refund_cap": "1.00001"}, "invalid_request", "daily_refund_cap"),
        ({"daily_refund_cap": "NaN"}, "invalid_request", "daily_refund_cap"),
        ({"daily_execution_cap": -1}, "invalid_request", "daily_execution_cap"),
        ({"daily_execution_cap": 2**31}, "invalid_request", "daily_execution_cap"),
        ({"pause_after_failures": 0}, "invalid_request", "pause_after_failures"),
        ({"business_hours_start": 24}, "invalid_request", "business_hours_start"),
        ({"business_hours_end": 0}, "invalid_request", "business_hours_end"),
        ({"business_hours_end": 9}, "invalid_settings", "business_hours_end"),
        (
            {"business_hours_start": 12, "business_hours_end": 12},
            "invalid_settings",
            "business_hours_end",
        ),
        ({"business_hours_start": 17}, "invalid_settings", "business_hours_start"),
        ({"business_days": []}, "invalid_request", "business_days"),
        ({"business_days": [1, 1]}, "invalid_request", "business_days"),
        ({"business_days": [0]}, "invalid_request", "business_days"),
        ({"business_days": [8]}, "invalid_request", "business_days"),
        ({"enabled": "sometimes"}, "invalid_request", "enabled"),
    ],
)
async def test_automation_settings_that_cannot_be_used_are_refused(
    own_sessions: async_sessionmaker[AsyncSession],
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    change: dict[str, Any],
    code: str,
    says: str,
) -> None:
    before = (await clients[0].get("/api/settings/automation")).json()
    answer = await clients[0].patch("/api/settings/automation", json=change)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    assert says in error["message"]
    if code == "invalid_settings":
        assert error["field"] == says
    assert (await clients[0].get("/api/settings/automation")).json() == before
    assert not [
        t for t in await event_types(own_sessions, merchants[0]) if t.startswith("automation.")
    ]


async def test_the_automation_settings_need_a_caller(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with api_client(create_app(own_sessions.kw["bind"])) as anonymous:
        assert (await anonymous.get("/api/settings/automation")).status_code == 401
        patched = await anonymous.patch("/api/settings/automation", json={"enabled": False})
        assert patched.status_code == 401
        assert (
            await anonymous.post("/api/playbooks", json={"name": "x", **RULES})
        ).status_code == 401


# --- the dry run -----------------------------------------------------------------------------

DAMAGED: dict[str, Any] = {
    "name": "Refund damaged items on small orders",
    "trigger": {"version": 2, "event": "message.received", "intents": ["damaged_item"]},
    "conditions": [
        {"version": 2, "field": "order.total_amount", "operator": "lte", "value": 80},
        {
            "version": 2,
            "any": [
                {"version": 2, "field": "message.text", "operator": "contains", "value": "broken"},
                {"version": 2, "field": "message.sentiment", "operator": "eq", "value": "angry"},
            ],
        },
    ],
    "actions": [
        {
            "version": 2,
            "type": "approve_suggestion",
            "action_types": ["REFUND"],
            "max_refund_amount": "50",
        }
    ],
    "confidence_threshold": 0.8,
}


async def add_refund_request(
    sessions: async_sessionmaker[AsyncSession],
    owner: Merchant,
    *,
    body: str = "The vase arrived broken.",
    amount: str = "30.00",
    with_order: bool = True,
) -> uuid.UUID:
    """An inbound message on an order, its suggestion (a refund for a damaged item) and
    the PENDING action, as the pipeline leaves them."""
    async with unit_of_work(sessions) as session:
        thread = await session.get(Thread, owner.thread.id)
        assert thread is not None
        order = None
        if with_order:
            user = await session.get(User, owner.id)
            assert user is not None
            order = await make_order(session, await make_shopify_connection(session, user))
        message = await make_message(session, thread)
        message.body_text = body
        message.order_id = order.id if order else None
        suggestion = AISuggestion(
            message_id=message.id,
            reply="Sorry about the vase, we refunded it.",
            proposed_action=ActionType.REFUND,
            order_id=message.order_id,
            confidence=0.93,
            intent="damaged_item",
        )
        session.add(suggestion)
        await session.flush()
        session.add(
            Action(
                user_id=owner.id,
                message_id=message.id,
                suggestion_id=suggestion.id,
                order_id=message.order_id,
                type=ActionType.REFUND,
                status=ActionStatus.PENDING,
                payload={"amount": amount},
            )
        )
        return message.id


async def every_row_count(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        return {
            table.name: (
                await session.execute(select(func.count()).select_from(table))
            ).scalar_one()
            for table in Base.metadata.sorted_tables
        }


async def playbook_rows(sessions: async_sessionmaker[AsyncSession]) -> list[Any]:
    async with sessions() as session:
        rows = await session.execute(
            select(
                Playbook.id,
                Playbook.enabled,
                Playbook.execution_count,
                Playbook.last_executed_at,
                Playbook.consecutive_failures,
                Playbook.updated_at,
            ).order_by(Playbook.id)
        )
        return list(rows.all())


async def test_a_dry_run_explains_each_condition_and_changes_nothing(
    own_sessions: async_sessionmaker[AsyncSession],
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, _ = merchants
    created = (await clients[0].post("/api/playbooks", json=DAMAGED)).json()
    message_id = await add_refund_request(own_sessions, a)
    counts, playbooks = await every_row_count(own_sessions), await playbook_rows(own_sessions)
    assert counts["automation_settings"] == 0  # the facts' first read would store defaults

    answer = await clients[0].post(
        f"/api/playbooks/{created['id']}/test", json={"message_id": str(message_id)}
    )
    assert answer.status_code == 200, answer.text
    verdict = answer.json()
    assert verdict["would_run"] is True
    assert verdict["trigger_matched"] is True
    assert verdict["matched"] is True
    assert verdict["event"]["event"] == "message.received"
    assert verdict["event"]["intent"] == "damaged_item"
    total = verdict["conditions"][0]
    assert Decimal(total["actual"]) == Decimal("59.90")  # money as decimal text
    total["actual"] = "59.90"
    shown = [
        (c["field"], c["operator"], c["actual"], c["matched"], c["group"])
        for c in verdict["conditions"]
    ]
    assert shown == [
        ("order.total_amount", "lte", "59.90", True, None),
        ("message.text", "contains", "The vase arrived broken.", True, "any[1]"),
        ("message.sentiment", "eq", "neutral", False, "any[1]"),
    ]
    assert Decimal(str(verdict["conditions"][0]["value"])) == 80
    assert [a["type"] for a in verdict["actions"]] == ["approve_suggestion"]
    # A person approves by default: the one reason it would not approve on its own.
    assert [b["code"] for b in verdict["blocked_by"]] == ["requires_approval"]
    assert verdict["auto_approve"] is False

    assert await every_row_count(own_sessions) == counts
    assert await playbook_rows(own_sessions) == playbooks


async def test_a_dry_run_shows_what_blocks_an_automatic_approval(
    own_sessions: async_sessionmaker[AsyncSession],
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, _ = merchants
    created = (
        await clients[0].post("/api/playbooks", json={**DAMAGED, "requires_approval": False})
    ).json()
    url = f"/api/playbooks/{created['id']}/test"
    within = await add_refund_request(own_sessions, a)
    verdict = (await clients[0].post(url, json={"message_id": str(within)})).json()
    assert (verdict["would_run"], verdict["auto_approve"], verdict["blocked_by"]) == (
        True,
        True,
        [],
    )

    too_much = await add_refund_request(own_sessions, a, amount="75.00")
    verdict = (await clients[0].post(url, json={"message_id": str(too_much)})).json()
    assert verdict["would_run"] is True
    assert "refund_cap" in [b["code"] for b in verdict["blocked_by"]]
    assert verdict["auto_approve"] is False

    await clients[0].patch("/api/settings/automation", json={"enabled": False})
    counts = await every_row_count(own_sessions)
    verdict = (await clients[0].post(url, json={"message_id": str(within)})).json()
    assert verdict["would_run"] is False
    assert "automation_off" in [b["code"] for b in verdict["blocked_by"]]
    assert await every_row_count(own_sessions) == counts


async def test_a_fact_that_is_missing_does_not_match(
    own_sessions: async_sessionmaker[AsyncSession],
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, _ = merchants
    created = (await clients[0].post("/api/playbooks", json=DAMAGED)).json()
    no_order = await add_refund_request(own_sessions, a, with_order=False)
    answer = await clients[0].post(
        f"/api/playbooks/{created['id']}/test", json={"message_id": str(no_order)}
    )
    verdict = answer.json()
    assert verdict["conditions"][0]["field"] == "order.total_amount"
    assert verdict["conditions"][0]["actual"] is None
    assert verdict["conditions"][0]["matched"] is False
    assert verdict["would_run"] is False


async def test_a_dry_run_needs_the_merchants_own_playbook_and_message(
    own_sessions: async_sessionmaker[AsyncSession],
    merchants: tuple[Merchant, Merchant],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = merchants
    mine = await add_refund_request(own_sessions, a)
    theirs = await add_refund_request(own_sessions, b)
    counts = await every_row_count(own_sessions)
    for client, playbook, message in (
        (clients[1], a.playbooks[0].id, theirs),  # A's playbook, B's message
        (clients[1], b.playbooks[0].id, mine),  # B's playbook, A's message
        (clients[0], a.playbooks[0].id, uuid.uuid4()),
        (clients[0], uuid.uuid4(), mine),
    ):
        answer = await client.post(
            f"/api/playbooks/{playbook}/test", json={"message_id": str(message)}
        )
        assert answer.status_code == 404, (playbook, message, answer.text)
        assert str(mine) not in answer.text or message == mine
    refused = await clients[0].post(
        f"/api/playbooks/{a.playbooks[0].id}/test", json={"message_id": "nope"}
    )
    assert refused.status_code == 422
    assert await every_row_count(own_sessions) == counts
