"""The playbook backtest over a fixture history of 300 messages with stored suggestions and
people's decisions (bulk-written through the real models), against a real PostgreSQL: exact
counts for a known rule, a draft that differs from the stored rules, the days window, no
row changed, another merchant's playbook, the JSON route, the CLI and the rule builder."""

from __future__ import annotations

import random
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api import rule_form
from kernel.enums import ActionStatus, ActionType, ConnectionType, MessageDirection
from models.action import Action
from models.automation import AutomationSettings
from models.connection import Connection
from models.conversation import Message, Thread
from models.db import unit_of_work
from models.event import Event
from models.order import Order
from models.playbook import Playbook, PlaybookExecution
from models.suggestion import AISuggestion
from services.playbook_backtest import BacktestIn, backtest
from tests.api_support import api_client, token_for
from tests.conftest import TEST_SECRET_KEY
from tests.playbook_support import act, add_playbook, on_message, rule
from tests.test_playbook_pages import Owner, build_app, make_owner, post_form, sign_in

DRAFTED = "Thanks for writing: we are on it."
REFUND_RULE = {
    "trigger": on_message("damaged_item"),
    "conditions": [rule("suggestion.action_type", "eq", "REFUND")],
    "actions": [act("approve_suggestion", action_types=["REFUND"])],
}


@dataclass(frozen=True)
class Spec:
    intent: str
    action: ActionType | None  # None: no suggestion at all (an auto-reply, skipped)
    confidence: float
    # as_is (the API), inbox (as is, the draft sent back with CRLF), edited, rejected,
    # expired (the system), automatic (a playbook), pending (undecided)
    decision: str
    sentiment: str = "neutral"
    notes: tuple[str, ...] = ()


def specs(n: int, *args: Any, **kwargs: Any) -> list[Spec]:
    return [Spec(*args, **kwargs)] * n


R, NONE, CANCEL, INFO = (
    ActionType.REFUND,
    ActionType.NONE,
    ActionType.CANCEL,
    ActionType.INFO_REQUEST,
)
# 99 damaged-item refunds of 20.00 EUR, then 201 messages the refund rule never runs on.
HISTORY: list[Spec] = [
    *specs(30, "damaged_item", R, 0.95, "inbox"),
    *specs(20, "damaged_item", R, 0.95, "as_is"),
    *specs(6, "damaged_item", R, 0.95, "rejected"),
    *specs(4, "damaged_item", R, 0.95, "edited"),
    *specs(5, "damaged_item", R, 0.95, "expired"),
    *specs(3, "damaged_item", R, 0.95, "automatic"),
    *specs(2, "damaged_item", R, 0.95, "pending"),
    *specs(15, "damaged_item", R, 0.7, "as_is"),
    *specs(7, "damaged_item", R, 0.7, "rejected"),
    *specs(5, "damaged_item", R, 0.95, "rejected", sentiment="angry"),
    *specs(2, "damaged_item", R, 0.95, "as_is", notes=("injection",)),
    *specs(100, "order_status", NONE, 0.9, "inbox"),
    *specs(40, "cancel_request", CANCEL, 0.95, "as_is"),
    *specs(10, "cancel_request", CANCEL, 0.95, "rejected"),
    *specs(25, "other", INFO, 0.6, "edited"),
    *specs(20, "other", INFO, 0.6, "as_is"),
    *specs(6, "other", None, 0.0, "none"),
]
# Older than 30 days: outside the default window.
OLD: list[Spec] = specs(20, "damaged_item", R, 0.95, "as_is")

STORED_RULE_COUNTS = {
    "messages": 300,
    "approves": True,
    "matched": 99,
    "would_run": 70,
    "would_approve": 70,
    "would_hold": 29,
    "agreed": 62,  # 50 approved as is + 12 held and rejected
    "disagreed": 27,  # 4 edited + 6 rejected it would approve, 17 held a person approved
    "unknown": 10,  # expired 5, approved by a playbook 3, pending 2
    "when_approving": {"approved": 50, "edited": 4, "rejected": 6, "unknown": 10},
    "when_holding": {"approved": 17, "edited": 0, "rejected": 12, "unknown": 0},
    "held_by": {"below_threshold": 22, "angry": 5, "guardrail_note": 2},
    "money_would_move": 70,
    "refunds_by_currency": {"EUR": Decimal("1400.00")},
}


async def write_history(
    session: AsyncSession,
    user_id: uuid.UUID,
    order: Order,
    history: list[Spec],
    *,
    first: datetime,
    step: timedelta,
) -> None:
    """One thread per message, shuffled in time (fixed seed), decided an hour after it came."""
    shuffled = list(history)
    random.Random(15).shuffle(shuffled)
    rows: list[Any] = []
    for i, spec in enumerate(shuffled):
        at = first + i * step
        thread = Thread(
            id=uuid.uuid4(),
            user_id=user_id,
            customer_email="ava@example.com",
            subject=f"{spec.intent} {i}",
            last_message_at=at,
        )
        message = Message(
            id=uuid.uuid4(),
            user_id=user_id,
            thread_id=thread.id,
            order_id=order.id,
            direction=MessageDirection.INBOUND,
            message_id=f"<history-{uuid.uuid4().hex}@customer.test>",
            from_address="ava@example.com",
            subject=thread.subject,
            body_text=f"About my order ({spec.intent})",
            sent_at=at,
            created_at=at,
            workflow_started_at=at,
        )
        rows += [thread, message]
        if spec.action is None:
            continue
        suggestion = AISuggestion(
            id=uuid.uuid4(),
            message_id=message.id,
            reply=DRAFTED,
            proposed_action=spec.action,
            order_id=order.id,
            confidence=spec.confidence,
            intent=spec.intent,
            sentiment=spec.sentiment,
            guardrails=[{"code": c, "detail": "noted"} for c in spec.notes],
            created_at=at,
        )
        final = {"inbox": DRAFTED.replace(".", ".\r\n"), "edited": "A different reply."}
        payload: dict[str, Any] = {"reply": final.get(spec.decision, DRAFTED)}
        if spec.action is R:
            payload["amount"] = "20.00"
        status = {
            "rejected": ActionStatus.REJECTED,
            "expired": ActionStatus.REJECTED,
            "pending": ActionStatus.PENDING,
        }.get(spec.decision, ActionStatus.EXECUTED)
        action = Action(
            id=uuid.uuid4(),
            user_id=user_id,
            message_id=message.id,
            suggestion_id=suggestion.id,
            order_id=order.id,
            type=spec.action,
            status=status,
            payload=payload,
            created_at=at,
        )
        rows += [suggestion, action]
        decided = {
            "as_is": ("action.approved", "api", []),
            "inbox": ("action.approved", "api", ["reply"]),
            "edited": ("action.approved", "api", ["reply"]),
            "automatic": ("action.approved", f"playbook:{uuid.uuid4()}", []),
            "rejected": ("action.rejected", "api", []),
            "expired": ("action.rejected", "system", []),
        }.get(spec.decision)
        if decided is not None:
            kind, by, edited = decided
            rows.append(
                Event(
                    user_id=user_id,
                    type=kind,
                    entity="action",
                    entity_id=str(action.id),
                    payload={"by": by, "reason": None, "edited": edited},
                    created_at=at + timedelta(hours=1),
                )
            )
    # Parents first: the ORM orders the inserts by the foreign keys.
    session.add_all(rows)
    await session.flush()


@dataclass
class History:
    sessions: async_sessionmaker[AsyncSession]
    a: Owner
    b: Owner
    playbook_id: uuid.UUID  # A's refund rule
    theirs: uuid.UUID  # B's refund rule
    now: datetime


async def store(sessions: async_sessionmaker[AsyncSession], owner: Owner, now: datetime) -> None:
    async with unit_of_work(sessions) as session:
        shop = Connection(
            user_id=owner.id,
            type=ConnectionType.SHOPIFY,
            access_token="shpat_x",
            shop_domain=f"shop-{uuid.uuid4().hex[:6]}.myshopify.com",
        )
        session.add(shop)
        await session.flush()
        order = Order(
            connection_id=shop.id,
            shop_domain=shop.shop_domain,
            shopify_id=f"gid://shopify/Order/{uuid.uuid4().int % 10**12}",
            name="#1001",
            status="open",
            email="ava@example.com",
            total_amount=Decimal("59.90"),
            currency="EUR",
            financial_status="PAID",
        )
        session.add(order)
        await session.flush()
        start = now - timedelta(days=29, hours=12)
        await write_history(
            session, owner.id, order, HISTORY, first=start, step=timedelta(minutes=139)
        )
        await write_history(
            session, owner.id, order, OLD, first=now - timedelta(days=60), step=timedelta(days=1)
        )


@pytest.fixture
async def history(own_sessions: async_sessionmaker[AsyncSession]) -> History:
    now = datetime.now(UTC)
    a = await make_owner(own_sessions, "alpha")
    b = await make_owner(own_sessions, "bravo")
    await store(own_sessions, a, now)
    flags = {"requires_approval": False}
    ours = await add_playbook(
        own_sessions, a.id, "Refund rule", **REFUND_RULE, **flags, enabled=False
    )
    theirs = await add_playbook(own_sessions, b.id, "Refund rule", **REFUND_RULE, **flags)
    return History(own_sessions, a, b, ours, theirs, now)


async def run(h: History, body: BacktestIn, user_id: uuid.UUID | None = None) -> Any:
    async with h.sessions() as session:
        return await backtest(session, user_id or h.a.id, h.playbook_id, body, now=h.now)


async def snapshot(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """Every table the backtest reads, by row count and latest change."""
    async with sessions() as session:
        counts = {
            model.__tablename__: (await session.scalar(select(func.count()).select_from(model)))
            for model in (
                Message,
                Thread,
                AISuggestion,
                Action,
                Event,
                Playbook,
                PlaybookExecution,
                AutomationSettings,
            )
        }
        changed = {
            f"{model.__tablename__}.updated_at": await session.scalar(
                select(func.max(model.updated_at))
            )
            for model in (Action, Thread, Playbook, Order)
        }
        statuses = sorted(
            (
                await session.execute(select(Action.status, func.count()).group_by(Action.status))
            ).all()
        )
        playbooks = (
            await session.execute(
                select(Playbook.id, Playbook.conditions, Playbook.execution_count).order_by(
                    Playbook.id
                )
            )
        ).all()
        return {**counts, **changed, "statuses": statuses, "playbooks": playbooks}


# --- the service -----------------------------------------------------------------------------


async def test_the_stored_rule_over_300_messages_and_nothing_changes(history: History) -> None:
    before = await snapshot(history.sessions)
    result = await run(history, BacktestIn(days=30))
    assert result.model_dump(include=set(STORED_RULE_COUNTS)) == STORED_RULE_COUNTS
    assert (result.draft, result.days, result.truncated) == (False, 30, False)
    assert result.since == history.now - timedelta(days=30) and result.until == history.now
    # The playbook is switched off: replayed as if on, since the question is its rules.
    assert result.playbook_name == "Refund rule"

    # 20 examples, the costly disagreements first: approving what a person refused.
    shown = result.examples
    assert len(shown) == 20
    assert [(e.outcome, e.decision) for e in shown[:10]].count(("approve", "rejected")) == 6
    assert {e.decision for e in shown[:10]} == {"rejected", "edited"}
    assert all(e.outcome == "approve" and e.agreed is False for e in shown[:10])
    assert all(e.outcome == "hold" and e.decision == "approved" for e in shown[10:20])
    newest_first = [e.received_at for e in shown[:10]]
    assert newest_first == sorted(newest_first, reverse=True)
    first = shown[0]
    assert first.thread_url == f"/threads/{first.thread_id}"
    assert (first.action_type, first.confidence) == ("REFUND", Decimal("0.95"))
    assert (first.refund, first.currency) == (Decimal("20.00"), "EUR")
    assert shown[10].blocked_by  # why it would have held

    # Nothing was written: not the automation defaults, no execution, no status.
    assert await snapshot(history.sessions) == before


async def test_a_draft_is_replayed_instead_of_the_stored_rules(history: History) -> None:
    lower = {**REFUND_RULE, "confidence_threshold": 0.6}
    result = await run(history, BacktestIn.model_validate({"days": 30, "draft": lower}))
    assert result.draft is True
    assert (result.would_approve, result.would_hold, result.money_would_move) == (92, 7, 92)
    assert result.when_approving.model_dump() == {
        "approved": 65,
        "edited": 4,
        "rejected": 13,
        "unknown": 10,
    }
    assert result.held_by == {"angry": 5, "guardrail_note": 2}
    assert result.refunds_by_currency == {"EUR": Decimal("1840.00")}

    cancels = {
        "trigger": on_message("cancel_request"),
        "conditions": [],
        "actions": [act("approve_suggestion", action_types=["CANCEL"])],
    }
    result = await run(history, BacktestIn.model_validate({"draft": cancels}))
    assert (result.would_approve, result.money_would_move, result.refunds_by_currency) == (
        50,
        50,
        {},
    )
    assert (result.agreed, result.disagreed) == (40, 10)

    # Without an approve step it runs, and every suggestion still waits for a person.
    tagging = {**REFUND_RULE, "actions": [act("tag_thread", tags=["damaged"])]}
    result = await run(history, BacktestIn.model_validate({"draft": tagging}))
    assert (result.approves, result.would_run, result.would_approve) == (False, 99, 0)

    # The stored rules are untouched by a draft.
    async with history.sessions() as session:
        stored = await session.get(Playbook, history.playbook_id)
        assert stored is not None and stored.confidence_threshold == 0.9
        assert stored.actions[0]["action_types"] == ["REFUND"]


async def test_the_window_is_the_last_days(history: History) -> None:
    wider = await run(history, BacktestIn(days=90))
    assert (wider.messages, wider.would_approve) == (320, 90)
    assert wider.when_approving.approved == 70
    week = await run(history, BacktestIn(days=7))
    # 300 messages over 29.5 days, one every 139 minutes: those of the last 7 days.
    expected = sum(
        1
        for i in range(300)
        if history.now - timedelta(days=29, hours=12) + i * timedelta(minutes=139)
        >= history.now - timedelta(days=7)
    )
    assert week.messages == expected and 60 < expected < 80
    assert week.would_approve < 70


async def test_another_merchants_playbook_is_not_found(history: History) -> None:
    from kernel.errors import NotFound

    with pytest.raises(NotFound):
        async with history.sessions() as session:
            await backtest(session, history.b.id, history.playbook_id, BacktestIn())
    # B's own identical rule sees none of A's messages.
    async with history.sessions() as session:
        theirs = await backtest(session, history.b.id, history.theirs, BacktestIn())
    assert (theirs.messages, theirs.examples) == (0, [])


# --- the JSON route --------------------------------------------------------------------------


async def test_the_json_route(history: History) -> None:
    app = build_app(history.sessions)
    async with api_client(app, await token_for(history.sessions, history.a.id)) as client:
        answer = await client.post(
            f"/api/playbooks/{history.playbook_id}/backtest", json={"days": 30}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        # Counted at the request's own time: the window is as the fixture's, give or take.
        assert body["messages"] == 300 and body["would_run"] == 70
        assert body["agreed"] == 62 and body["disagreed"] == 27 and body["unknown"] == 10
        assert body["money_would_move"] == 70 and body["refunds_by_currency"] == {"EUR": "1400.00"}
        assert body["examples"][0]["thread_url"].startswith("/threads/")

        drafted = await client.post(
            f"/api/playbooks/{history.playbook_id}/backtest",
            json={"days": 30, "draft": {**REFUND_RULE, "confidence_threshold": 0.6}},
        )
        assert drafted.status_code == 200 and drafted.json()["would_approve"] == 92
        broken = await client.post(
            f"/api/playbooks/{history.playbook_id}/backtest",
            json={"draft": {**REFUND_RULE, "conditions": [rule("no.such", "eq", 1)]}},
        )
        assert broken.status_code == 422, broken.text
        assert "conditions" in broken.json()["error"]["message"]
        assert (
            await client.post(f"/api/playbooks/{history.playbook_id}/backtest", json={"days": 0})
        ).status_code == 422
        assert (
            await client.post(f"/api/playbooks/{history.theirs}/backtest", json={})
        ).status_code == 404


# --- the CLI ---------------------------------------------------------------------------------


async def test_the_cli_prints_the_backtest(
    history: History, own_database: str, tmp_path: Path
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DATABASE_URL": own_database,
        "DESKPILOT_SECRET_KEY": TEST_SECRET_KEY,
        "DESKPILOT_HOME": str(tmp_path),
    }

    def deskpilot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "deskpilot", "playbook", "backtest", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = deskpilot("refund RULE", "--days", "30", "--email", history.a.email)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "This rule would have approved 70 of the last 300 messages (30 days)." in lines
    assert "Of those, a person rejected 6, edited 4 and approved 50 as they were." in lines
    assert "70 approvals would have moved money or goods (refunds: 1400.00 EUR)." in lines
    assert sum("DISAGREED" in line and "/threads/" in line for line in lines) == 20

    as_json = deskpilot("Refund rule", "--days", "90", "--email", history.a.email, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert '"messages": 320' in as_json.stdout

    # The default playbook asks a person first; --without-approval asks what it would do alone.
    default = deskpilot("Refund damaged items", "--email", history.a.email)
    assert "This rule would have approved 0 of the last 300" in default.stdout, default.stderr
    alone = deskpilot("Refund damaged items", "--email", history.a.email, "--without-approval")
    assert "This rule would have approved 70 of the last 300" in alone.stdout, alone.stderr

    missing = deskpilot("No such rule", "--email", history.a.email)
    assert missing.returncode == 1 and "no playbook called 'No such rule'" in missing.stderr
    assert "'Refund damaged items'" in missing.stderr  # the names it does have
    nobody = deskpilot("Refund rule", "--email", "nobody@store.example")
    assert nobody.returncode == 1 and "no user" in nobody.stderr


# --- the rule builder ------------------------------------------------------------------------


@pytest.fixture
async def web(history: History) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    transport = httpx.ASGITransport(app=build_app(history.sessions))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client, await sign_in(client, history.a.email)


def builder_fields(threshold: str) -> list[tuple[str, str]]:
    form = rule_form.RuleForm(
        trigger=rule_form.TriggerForm(event="message.received", intents=["damaged_item"]),
        conditions=[
            rule_form.ConditionBlock(
                rows=[rule_form.ConditionRow("suggestion.action_type", "eq", "REFUND")]
            )
        ],
        actions=[rule_form.ActionForm(type="approve_suggestion", action_types=["REFUND"])],
    )
    return [*rule_form.form_fields(form), ("confidence_threshold", threshold), ("priority", "100")]


async def test_the_builder_backtests_the_unsaved_form(
    history: History, web: tuple[httpx.AsyncClient, str]
) -> None:
    client, csrf = web
    path = f"/playbooks/{history.playbook_id}/backtest"
    page = await client.get(f"/playbooks/{history.playbook_id}")
    assert f'formaction="{path}"' in page.text  # the button sits in the builder's form

    before = await snapshot(history.sessions)
    shown = await post_form(
        client, path, [("csrf", csrf), *builder_fields("0.6"), ("backtest_days", "30")]
    )
    assert shown.status_code == 200, shown.text
    text = shown.text
    assert "This rule would have approved 92 of the last 300 messages (30 days)." in text
    assert "Of those, a person rejected 13, edited 4 and approved 65 as they were." in text
    assert text.count('href="/threads/') >= 20  # the examples link to their threads
    assert 'value="0.6"' in text  # the form keeps the draft, unsaved
    assert await snapshot(history.sessions) == before

    # An invalid draft: the error sits beside its field, nothing is replayed.
    refused = await post_form(
        client, path, [("csrf", csrf), *builder_fields("2"), ("backtest_days", "30")]
    )
    assert refused.status_code == 422
    assert "confidence threshold: a number from 0 to 1" in refused.text
    assert "This rule would have approved" not in refused.text

    # CSRF and ownership as every form of the page.
    no_csrf = await post_form(client, path, builder_fields("0.6"))
    assert no_csrf.status_code == 403
    theirs = await post_form(
        client, f"/playbooks/{history.theirs}/backtest", [("csrf", csrf), *builder_fields("0.6")]
    )
    assert theirs.status_code == 404


# --- the demo's history ----------------------------------------------------------------------


async def test_the_demo_history_is_written_once_and_backtests(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    from deskpilot.demo_history import seed_demo_history

    owner = await make_owner(own_sessions, "demo")
    now = datetime.now(UTC)
    async with unit_of_work(own_sessions) as session:
        shop = Connection(
            user_id=owner.id,
            type=ConnectionType.SHOPIFY,
            access_token="shpat_x",
            shop_domain=f"demo-{uuid.uuid4().hex[:6]}.myshopify.com",
        )
        session.add(shop)
        await session.flush()
        for n in range(5):
            session.add(
                Order(
                    connection_id=shop.id,
                    shop_domain=shop.shop_domain,
                    shopify_id=f"gid://shopify/Order/{n}",
                    name=f"#{1001 + n}",
                    status="open",
                    email=f"customer{n}@example.com",
                    total_amount=Decimal("49.00"),
                    currency="USD",
                    financial_status="PAID",
                    fulfillment_status="UNFULFILLED" if n % 2 else "FULFILLED",
                )
            )
        await session.flush()
        assert await seed_demo_history(session, owner.id, shop.shop_domain, now=now) == 300
    async with unit_of_work(own_sessions) as session:  # a restart adds nothing
        assert await seed_demo_history(session, owner.id, shop.shop_domain, now=now) == 0
    async with own_sessions() as session:
        inbound = (
            select(func.count())
            .select_from(Message)
            .where(Message.user_id == owner.id, Message.direction == MessageDirection.INBOUND)
        )
        assert await session.scalar(inbound) == 300
        # Recorded as handled: the reconciler starts no workflow for them.
        assert await session.scalar(inbound.where(Message.workflow_started_at.is_(None))) == 0
        assert await session.scalar(select(func.count()).select_from(Action)) == 300
        pending = select(func.count()).select_from(Action).where(Action.status == "PENDING")
        assert await session.scalar(pending) == 0
        damaged = (
            await session.execute(
                select(Playbook.id).where(
                    Playbook.user_id == owner.id, Playbook.template_key == "refund-damaged-item"
                )
            )
        ).scalar_one()
        result = await backtest(session, owner.id, damaged, BacktestIn(), now=now)
    assert result.messages == 300
    # The default playbook asks a person first: it would approve nothing on its own.
    assert result.would_approve == 0 and result.would_hold == result.matched > 0
    assert result.held_by["requires_approval"] == result.would_hold
    assert result.agreed + result.disagreed + result.unknown == result.matched
