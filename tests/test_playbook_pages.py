"""The playbook pages over HTTP (in-process ASGI) against a real PostgreSQL: the rule builder
(saved as version 2, errors beside their field, the add/remove buttons without JavaScript),
the executions list, the dry run, the automation settings, creating and deleting custom
playbooks, and the thread and inbox showing what a playbook handled; two merchants."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api import playbook_pages, rule_form
from api.app import create_app
from api.rule_form import ActionForm, ConditionBlock, ConditionRow, RuleForm, TriggerForm
from kernel.enums import MessageDirection, PlaybookExecutionStatus
from kernel.settings import Settings
from models.automation import AutomationSettings
from models.conversation import Message, Thread
from models.db import unit_of_work
from models.playbook import Playbook, PlaybookExecution
from models.user import set_password
from services.accounts import create_user

PASSWORD = "correct horse battery staple"
DAMAGED = "refund-damaged-item"


def settings() -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        DESKPILOT_SECRET_KEY="s" * 48,
        DESKPILOT_PUBLIC_URL="http://api.test",
        DESKPILOT_TEMPORAL_UI_PORT=8233,
    )


def build_app(sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    return create_app(sessions.kw["bind"], None, settings())


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', page)
    assert found, page
    return found.group(1)


@dataclass
class Owner:
    id: uuid.UUID
    email: str


async def make_owner(sessions: async_sessionmaker[AsyncSession], name: str) -> Owner:
    email = f"{name}-{uuid.uuid4().hex[:6]}@store.example"
    async with unit_of_work(sessions) as session:
        user = await create_user(session, email, name)  # with the default playbooks
        await set_password(session, user.id, PASSWORD)
    return Owner(user.id, email)


async def sign_in(client: httpx.AsyncClient, email: str) -> str:
    page = await client.get("/login")
    done = await client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf": _csrf(page.text)}
    )
    assert done.status_code == 303, done.text
    return (await client.get("/api/session")).json()["csrf_token"]


async def post_form(
    client: httpx.AsyncClient, path: str, pairs: list[tuple[str, str]]
) -> httpx.Response:
    """A form post with repeated names (checkboxes), as a browser sends it."""
    return await client.post(
        path,
        content=urlencode(pairs),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


@dataclass
class World:
    sessions: async_sessionmaker[AsyncSession]
    a: Owner
    b: Owner
    web: httpx.AsyncClient  # signed in as A
    csrf: str

    async def playbook(self, owner: Owner | None = None, key: str = DAMAGED) -> Playbook:
        async with self.sessions() as session:
            return (
                await session.execute(
                    select(Playbook).where(
                        Playbook.user_id == (owner or self.a).id, Playbook.template_key == key
                    )
                )
            ).scalar_one()

    async def post(self, path: str, data: list[tuple[str, str]] | dict[str, str]) -> httpx.Response:
        pairs = list(data.items()) if isinstance(data, dict) else list(data)
        return await post_form(self.web, path, [("csrf", self.csrf), *pairs])


@pytest.fixture
async def world(own_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[World]:
    app = build_app(own_sessions)
    a = await make_owner(own_sessions, "alpha")
    b = await make_owner(own_sessions, "bravo")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as web:
        yield World(own_sessions, a, b, web, await sign_in(web, a.email))


FLAGS = [
    ("confidence_threshold", "0.7"),
    ("priority", "5"),
    ("stop_processing", "on"),
    ("run_once_per_thread", "on"),
]

BUILT = RuleForm(
    trigger=TriggerForm(event="message.received", intents=["damaged_item"], languages="en, DE"),
    conditions=[
        ConditionBlock(rows=[ConditionRow("order.total_amount", "lte", "120")]),
        ConditionBlock(
            "any",
            [
                ConditionRow("message.sentiment", "ne", "angry"),
                ConditionRow("customer.order_count", "gte", "2"),
            ],
        ),
    ],
    actions=[
        ActionForm(type="approve_suggestion", action_types=["REFUND"], max_refund_amount="100"),
        ActionForm(type="wait", wait="3", wait_unit="days", cancel_on_reply=True),
        ActionForm(type="send_followup", template="Hi {customer_first_name}, all good?"),
        ActionForm(type="tag_thread", tags="auto, refund"),
    ],
)


async def test_the_builder_saves_version_2_documents_and_the_flags(world: World) -> None:
    playbook = await world.playbook()
    page = await world.web.get(f"/playbooks/{playbook.id}")
    assert page.status_code == 200
    # The stored rules fill the builder; the JSON stays as the advanced view, in version 2.
    assert '<option value="message.received" selected>' in page.text
    assert 'value="damaged_item" checked' in page.text
    assert "Advanced (JSON)" in page.text and '"version": 2' in page.text
    assert "&#34;version&#34;: 1" not in page.text and "nothing evaluates" not in page.text

    done = await world.post(
        f"/playbooks/{playbook.id}/rules",
        [*rule_form.form_fields(BUILT), *FLAGS, ("edit", "save")],
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/playbooks/{playbook.id}?notice=saved"
    stored = await world.playbook()
    assert stored.trigger == {
        "version": 2,
        "event": "message.received",
        "intents": ["damaged_item"],
        "channels": [],
        "languages": ["en", "de"],
    }
    assert stored.conditions[0] == {
        "version": 2,
        "field": "order.total_amount",
        "operator": "lte",
        "value": "120",
    }
    assert [m["field"] for m in stored.conditions[1]["any"]] == [
        "message.sentiment",
        "customer.order_count",
    ]
    assert [a["type"] for a in stored.actions] == [
        "approve_suggestion",
        "wait",
        "send_followup",
        "tag_thread",
    ]
    assert stored.actions[1]["seconds"] == 3 * 86400 and stored.actions[1]["cancel_on_reply"]
    assert (stored.confidence_threshold, stored.priority) == (0.7, 5)
    assert stored.stop_processing and stored.run_once_per_thread
    assert stored.requires_approval is False  # "A person approves" was not ticked
    # The builder shows what was saved.
    again = (await world.web.get(f"/playbooks/{playbook.id}?notice=saved")).text
    assert "Saved." in again and 'name="c1.1.field"' in again
    assert re.search(r'id="a1-wait-unit".*?<option value="days" selected>', again, re.S)
    assert (await world.playbook(world.b)).conditions != stored.conditions


async def test_an_error_sits_beside_its_field_and_nothing_is_saved(world: World) -> None:
    playbook = await world.playbook()
    form = RuleForm(
        trigger=TriggerForm(languages="english"),
        conditions=[
            ConditionBlock(rows=[ConditionRow()]),  # blank: left out
            ConditionBlock(rows=[ConditionRow("order.total_amount", "contains", "5")]),
        ],
        actions=[ActionForm(type="escalate", reason="look")],
    )
    bad_language = await world.post(
        f"/playbooks/{playbook.id}/rules", [*rule_form.form_fields(form), *FLAGS]
    )
    assert bad_language.status_code == 422
    beside = re.search(r'id="error-trigger" role="alert">([^<]+)<', bad_language.text)
    assert beside and "languages.0: String should match pattern" in beside.group(1)
    assert re.search(r'id="trigger-event"[^>]*aria-invalid="true"', bad_language.text)
    assert 'value="english"' in bad_language.text  # what was typed stays

    form.trigger.languages = "en"
    bad_operator = await world.post(
        f"/playbooks/{playbook.id}/rules", [*rule_form.form_fields(form), *FLAGS]
    )
    assert bad_operator.status_code == 422
    # conditions[0] in the document is block 2 on the page: the blank block was left out.
    beside = re.search(r'id="error-c1" role="alert">([^<]+)<', bad_operator.text)
    assert beside and "conditions[0]" in html.unescape(beside.group(1))
    assert "does not apply" in html.unescape(beside.group(1))
    assert re.search(r'id="error-c0" role="alert"><', bad_operator.text)

    bad_flags = await world.post(
        f"/playbooks/{playbook.id}/rules",
        [
            *rule_form.form_fields(RuleForm(actions=[ActionForm(type="close_thread")])),
            ("confidence_threshold", "2"),
            ("priority", "first"),
        ],
    )
    assert bad_flags.status_code == 422
    assert re.search(
        r'id="error-confidence_threshold" role="alert">confidence threshold', bad_flags.text
    )
    assert re.search(r'id="error-priority" role="alert">priority: a whole number', bad_flags.text)
    assert (await world.playbook()).trigger == playbook.trigger


async def test_the_add_and_remove_buttons_work_without_javascript(world: World) -> None:
    playbook = await world.playbook()
    base = rule_form.form_fields(RuleForm(actions=[ActionForm(type="close_thread")]))
    grown = await world.post(
        f"/playbooks/{playbook.id}/rules", [*base, *FLAGS, ("edit", "add-group")]
    )
    assert grown.status_code == 200
    assert 'name="c0.0.field"' in grown.text and 'name="c0.1.field"' in grown.text
    assert '<option value="any" selected>' in grown.text
    step = await world.post(
        f"/playbooks/{playbook.id}/rules", [*base, *FLAGS, ("edit", "add-action")]
    )
    assert 'name="a1.type"' in step.text
    assert (await world.playbook()).actions == playbook.actions  # nothing saved


async def test_builder_forms_need_the_csrf_token_and_the_owner(world: World) -> None:
    theirs = await world.playbook(world.b)
    fields = [*rule_form.form_fields(BUILT), *FLAGS]
    assert (await post_form(world.web, f"/playbooks/{theirs.id}/rules", fields)).status_code == 403
    blocked = await world.post(f"/playbooks/{theirs.id}/rules", fields)
    assert blocked.status_code == 404 and "That playbook was not found" in blocked.text
    assert (await world.post(f"/playbooks/{theirs.id}/test", {"message_id": ""})).status_code == 404
    assert (await world.post(f"/playbooks/{theirs.id}/delete", {})).status_code == 404
    assert (await world.playbook(world.b)).trigger == theirs.trigger


async def _thread_with_message(
    sessions: async_sessionmaker[AsyncSession], owner: uuid.UUID, body: str
) -> tuple[uuid.UUID, uuid.UUID]:
    async with unit_of_work(sessions) as session:
        thread = Thread(
            user_id=owner,
            customer_email="ava@example.com",
            subject="Broken mug",
            last_message_at=datetime.now(UTC),
        )
        session.add(thread)
        await session.flush()
        message = Message(
            user_id=owner,
            thread_id=thread.id,
            direction=MessageDirection.INBOUND,
            message_id=f"<{uuid.uuid4().hex}@mail.example.com>",
            from_address="ava@example.com",
            subject="Broken mug",
            body_text=body,
            sent_at=datetime.now(UTC),
        )
        session.add(message)
        await session.flush()
        return thread.id, message.id


async def test_test_on_a_thread_shows_each_condition_and_changes_nothing(world: World) -> None:
    playbook = await world.playbook()
    form = RuleForm(
        conditions=[
            ConditionBlock(rows=[ConditionRow("message.text", "contains", "broken")]),
            ConditionBlock(rows=[ConditionRow("order.total_amount", "lt", "50")]),
        ],
        actions=[ActionForm(type="tag_thread", tags="checked")],
    )
    saved = await world.post(
        f"/playbooks/{playbook.id}/rules", [*rule_form.form_fields(form), *FLAGS]
    )
    assert saved.status_code == 303
    _, message_id = await _thread_with_message(world.sessions, world.a.id, "My mug arrived broken.")
    page = await world.web.get(f"/playbooks/{playbook.id}")
    assert f'<option value="{message_id}"' in page.text  # a recent message to pick

    tested = await world.post(f"/playbooks/{playbook.id}/test", {"message_id": str(message_id)})
    assert tested.status_code == 200, tested.text
    result = tested.text[tested.text.index('id="test-result"') :]
    assert "Would not run" in result  # no order: its total is unknown
    rows = re.findall(r"<tr class=\"(matched|unmatched)\">(.*?)</tr>", result, re.S)
    assert [state for state, _ in rows] == ["matched", "unmatched"]
    assert "My mug arrived broken." in rows[0][1] and "unknown" in rows[1][1]
    assert "Tag the thread: checked" in result
    async with world.sessions() as session:
        assert (
            await session.execute(
                select(PlaybookExecution).where(PlaybookExecution.playbook_id == playbook.id)
            )
        ).first() is None

    # A pasted id works too; B's message, or no id, is not found beside the field.
    _, theirs = await _thread_with_message(world.sessions, world.b.id, "Their message")
    pasted = await world.post(
        f"/playbooks/{playbook.id}/test", {"message_id": "", "pasted_id": str(message_id)}
    )
    assert pasted.status_code == 200 and 'id="test-result"' in pasted.text
    other = await world.post(f"/playbooks/{playbook.id}/test", {"pasted_id": str(theirs)})
    assert other.status_code == 422 and "That message was not found" in other.text
    assert "Their message" not in other.text
    nothing = await world.post(f"/playbooks/{playbook.id}/test", {"pasted_id": "oops"})
    assert nothing.status_code == 422 and re.search(
        r'id="test-error" role="alert">Pick', nothing.text
    )


async def _executions(
    world: World, playbook: Playbook, thread_id: uuid.UUID, n: int, *, automatic: bool = False
) -> None:
    t0 = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
    async with unit_of_work(world.sessions) as session:
        for i in range(n):
            session.add(
                PlaybookExecution(
                    playbook_id=playbook.id,
                    user_id=playbook.user_id,
                    trigger_key=f"message:{uuid.uuid4()}",
                    workflow_id=f"playbook-run-{i}",
                    thread_id=thread_id,
                    status=PlaybookExecutionStatus.failed if i == n - 1 else PlaybookExecutionStatus.executed,
                    automatic=automatic,
                    decided_by="playbook" if automatic else "person",
                    confidence=0.93,
                    refund_amount=Decimal("12.50"),
                    trigger_data={
                        "event": {"event": "message.received", "intent": "damaged_item"},
                        "conditions": [
                            {"field": "order.total_amount", "operator": "lt", "value": "50",
                             "actual": f"{i}.00", "matched": True, "group": None},
                        ],
                        "blocked_by": [{"code": "requires_approval", "detail": f"run {i}"}],
                    },
                    result={"refund": "12.50"},
                    error="the store refused the refund" if i == n - 1 else None,
                    created_at=t0 + timedelta(minutes=i),
                )
            )  # fmt: skip


async def test_the_playbook_lists_its_executions_newest_first_in_pages(world: World) -> None:
    playbook = await world.playbook()
    thread_id, _ = await _thread_with_message(world.sessions, world.a.id, "hello")
    await _executions(world, playbook, thread_id, playbook_pages.EXECUTIONS_PAGE_SIZE + 5)
    first = await world.web.get(f"/playbooks/{playbook.id}")
    items = first.text.count('class="execution"')
    assert items == playbook_pages.EXECUTIONS_PAGE_SIZE
    newest = first.text.index("run 24")
    assert newest < first.text.index("run 23")  # newest first
    assert "the store refused the refund" in first.text and ">failed<" in first.text
    assert "order.total_amount" in first.text and "was 24.00" in first.text
    assert f'href="/threads/{thread_id}"' in first.text
    assert re.search(
        r'href="http://127\.0\.0\.1:8233/namespaces/default/workflows/playbook-run-24"', first.text
    )
    older = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert older
    second = await world.web.get(html.unescape(older.group(1)))
    assert second.text.count('class="execution"') == 5 and "run 0" in second.text
    assert 'rel="next"' not in second.text and ">Newest</a>" in second.text
    wrong = await world.web.get(f"/playbooks/{playbook.id}?cursor=nonsense")
    assert wrong.status_code == 200 and "Showing the newest instead" in wrong.text


async def test_a_thread_says_which_playbook_handled_it_and_the_inbox_filters(
    world: World,
) -> None:
    playbook = await world.playbook()
    handled, _ = await _thread_with_message(world.sessions, world.a.id, "handled on its own")
    by_person, _ = await _thread_with_message(world.sessions, world.a.id, "a person decided")
    await _executions(world, playbook, handled, 1, automatic=True)
    await _executions(world, playbook, by_person, 1)
    page = await world.web.get(f"/threads/{handled}")
    assert "Handled by the playbook" in page.text and "automatically" in page.text
    assert f'href="/playbooks/{playbook.id}#executions"' in page.text
    person = await world.web.get(f"/threads/{by_person}")
    assert "a person decided" in person.text and "<strong>automatically</strong>" not in person.text

    inbox = await world.web.get("/inbox", params={"view": "all", "automatic": "1"})
    assert inbox.status_code == 200
    assert f'data-thread-id="{handled}"' in inbox.text
    assert f'data-thread-id="{by_person}"' not in inbox.text
    assert 'id="automatic" name="automatic" value="1" checked' in inbox.text
    every = await world.web.get("/inbox", params={"view": "all"})
    assert f'data-thread-id="{by_person}"' in every.text
    # B's automatic execution never shows in A's filter, and A's not in B's.
    theirs = await world.playbook(world.b)
    b_thread, _ = await _thread_with_message(world.sessions, world.b.id, "bravo's")
    await _executions(world, theirs, b_thread, 1, automatic=True)
    inbox = await world.web.get("/inbox", params={"view": "all", "automatic": "1"})
    assert f'data-thread-id="{b_thread}"' not in inbox.text


async def test_pause_all_automation_and_the_caps(world: World) -> None:
    page = await world.web.get("/playbooks")
    assert "Pause all automation" in page.text and 'value="500"' in page.text
    paused = await world.post("/automation/enabled", {"enabled": "false"})
    assert paused.status_code == 303
    async with world.sessions() as session:
        row = await session.get(AutomationSettings, world.a.id)
        assert row is not None and row.enabled is False
        assert await session.get(AutomationSettings, world.b.id) is None  # B untouched
    page = await world.web.get(paused.headers["location"])
    assert "All automation is paused" in page.text and "Resume automation" in page.text

    caps = {
        "daily_refund_cap": "250.50",
        "daily_execution_cap": "20",
        "pause_after_failures": "2",
        "timezone": "Mars/Olympus",
        "business_hours_start": "22",
        "business_hours_end": "6",
    }
    days = [("business_days", "1"), ("business_days", "6")]
    wrong = await world.post("/automation", [*caps.items(), *days])
    assert wrong.status_code == 422
    beside = re.search(r'id="auto-error-timezone" role="alert">([^<]+)<', wrong.text)
    assert beside and "IANA" in beside.group(1)
    assert 'value="Mars/Olympus"' in wrong.text
    same_hour = await world.post(
        "/automation",
        [*{**caps, "timezone": "Europe/Berlin", "business_hours_end": "22"}.items(), *days],
    )
    assert re.search(
        r'id="auto-error-business_hours_end" role="alert">the business day', same_hour.text
    )
    no_days = await world.post("/automation", {**caps, "timezone": "Europe/Berlin"})
    assert re.search(r'id="auto-error-business_days" role="alert">choose', no_days.text)

    saved = await world.post("/automation", [*{**caps, "timezone": "Europe/Berlin"}.items(), *days])
    assert saved.status_code == 303
    async with world.sessions() as session:
        row = await session.get(AutomationSettings, world.a.id)
        assert row is not None
        assert (row.daily_refund_cap, row.daily_execution_cap) == (Decimal("250.50"), 20)
        assert (row.timezone, row.business_hours_start, row.business_hours_end) == (
            "Europe/Berlin",
            22,
            6,
        )
        assert row.business_days == [1, 6] and row.enabled is False  # the switch stays
    resumed = await world.post("/automation/enabled", {"enabled": "true"})
    assert "automation_on" in resumed.headers["location"]


async def test_create_and_delete_a_custom_playbook(world: World) -> None:
    empty = await world.post("/playbooks", {"name": "  "})
    assert empty.status_code == 422
    assert re.search(r'id="new-error-name" role="alert">name: ', empty.text)
    created = await world.post("/playbooks", {"name": "VIP customers", "description": "Tag them"})
    assert created.status_code == 303
    location = created.headers["location"]
    playbook_id = uuid.UUID(location.split("/")[2].split("?")[0])
    page = await world.web.get(location)
    assert "VIP customers" in page.text and "Created, switched off" in page.text
    assert "Delete VIP customers" in page.text
    async with world.sessions() as session:
        mine = await session.get(Playbook, playbook_id)
        assert mine is not None and mine.user_id == world.a.id and mine.enabled is False
        assert mine.trigger["version"] == 2

    default = await world.playbook()
    listed = (await world.web.get("/playbooks")).text
    assert f'action="/playbooks/{playbook_id}/delete"' in listed
    assert f'action="/playbooks/{default.id}/delete"' not in listed
    refused = await world.post(f"/playbooks/{default.id}/delete", {})
    assert refused.status_code == 409 and "can be disabled, not deleted" in refused.text
    deleted = await world.post(f"/playbooks/{playbook_id}/delete", {})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/playbooks?notice=deleted"
    async with world.sessions() as session:
        assert await session.get(Playbook, playbook_id) is None
        assert await session.get(Playbook, default.id) is not None
