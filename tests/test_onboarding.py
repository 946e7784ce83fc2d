"""The first-run checklist on the inbox and GET /api/onboarding, over HTTP (in-process ASGI)
against a real PostgreSQL: each step turns done from a real change (a store connected, an
alias made through POST /api/connections, the playbooks page opened or a playbook changed,
a plan paid through the billing flow), and the checklist is gone once all four are done.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.onboarding import SetupFacts, setup_complete, setup_steps
from kernel.enums import ConnectionType, PlanType, SubscriptionStatus
from models.billing import Subscription
from models.connection import Connection
from models.db import unit_of_work
from models.event import Event
from models.playbook import Playbook
from models.user import set_password
from services.accounts import create_user
from tests.api_support import token_for
from tests.test_billing_api import Billing, billing  # noqa: F401  (the fixture)
from tests.test_settings_pages import PASSWORD, build_app, sign_in

STEPS = ["connect_store", "connect_mail", "review_playbooks", "choose_plan"]


@dataclass
class Newcomer:
    """A merchant as sign-up leaves one: a trial and the default playbooks, nothing else."""

    app: FastAPI
    id: uuid.UUID
    web: httpx.AsyncClient  # signed in with the session cookie
    csrf: str
    api: httpx.AsyncClient  # the merchant's bearer token
    sessions: async_sessionmaker[AsyncSession]

    async def done(self) -> dict[str, bool]:
        answer = await self.api.get("/api/onboarding")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        steps = {s["key"]: s["done"] for s in body["steps"]}
        assert list(steps) == STEPS
        assert body["complete"] is all(steps.values())
        return steps

    async def checklist(self) -> dict[str, str] | None:
        """The inbox's checklist as the page shows it: step -> "done" | "todo"; None: gone."""
        page = await self.web.get("/inbox")
        assert page.status_code == 200, page.text
        if 'id="onboarding"' not in page.text:
            return None
        found = re.findall(r'class="setup-step (done|todo)" data-step="(\w+)"', page.text)
        return {step: state for state, step in found}

    async def connect_store(self) -> uuid.UUID:
        async with unit_of_work(self.sessions) as session:
            shop = Connection(
                user_id=self.id,
                type=ConnectionType.SHOPIFY,
                access_token="shpat_x",
                shop_domain=f"new-{uuid.uuid4().hex[:6]}.myshopify.com",
            )
            session.add(shop)
            await session.flush()
            return shop.id


def _client(app: FastAPI, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test", headers=headers
    )


@pytest.fixture
async def newcomer(own_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Newcomer]:
    app = build_app(own_sessions)
    email = f"new-{uuid.uuid4().hex[:6]}@store.example"
    async with unit_of_work(own_sessions) as session:
        user = await create_user(session, email, "New")
        await set_password(session, user.id, PASSWORD)
        user_id = user.id
    token = await token_for(own_sessions, user_id)
    async with _client(app) as web, _client(app, Authorization=f"Bearer {token}") as api:
        csrf = await sign_in(web, email)
        yield Newcomer(app, user_id, web, csrf, api, own_sessions)


def test_the_steps_follow_the_facts_in_order() -> None:
    none = setup_steps(SetupFacts(False, False, False, False))
    assert [s.key for s in none] == STEPS and not any(s.done for s in none)
    assert not setup_complete(none)
    some = setup_steps(SetupFacts(True, False, True, False))
    assert [s.done for s in some] == [True, False, True, False]
    assert setup_complete(setup_steps(SetupFacts(True, True, True, True)))
    # Each step links to the page where it is done.
    assert [s.href.split("#")[0] for s in none] == [
        "/connections", "/connections", "/playbooks", "/usage",
    ]  # fmt: skip


async def test_a_new_account_sees_every_step_to_do_with_links(newcomer: Newcomer) -> None:
    assert await newcomer.done() == dict.fromkeys(STEPS, False)
    page = (await newcomer.web.get("/inbox")).text
    assert "Get set up" in page and "0 of 4 done." in page
    for href in ('href="/connections#shopify-h"', 'href="/connections#gmail-h"',
                 'href="/playbooks"', 'href="/usage#plans"'):  # fmt: skip
        assert href in page
    assert await newcomer.checklist() == dict.fromkeys(STEPS, "todo")


async def test_connecting_a_store_is_done_while_it_is_enabled(newcomer: Newcomer) -> None:
    shop = await newcomer.connect_store()
    assert (await newcomer.done())["connect_store"] is True
    assert (await newcomer.checklist() or {})["connect_store"] == "done"
    off = await newcomer.api.patch(f"/api/connections/{shop}", json={"enabled": False})
    assert off.status_code == 200, off.text
    assert (await newcomer.done())["connect_store"] is False


async def test_mail_is_done_by_an_alias_made_on_the_api_or_by_gmail(newcomer: Newcomer) -> None:
    await newcomer.connect_store()
    async with newcomer.sessions() as session:
        domain = await session.scalar(
            select(Connection.shop_domain).where(Connection.user_id == newcomer.id)
        )
    made = await newcomer.api.post(
        "/api/connections",
        json={"type": "CUSTOM_EMAIL", "shop_domain": domain,
              "support_email": "help@new.example", "store_name": "New Store"},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    assert (await newcomer.done())["connect_mail"] is True
    gone = await newcomer.api.delete(f"/api/connections/{made.json()['id']}")
    assert gone.status_code == 204, gone.text
    assert (await newcomer.done())["connect_mail"] is False
    async with unit_of_work(newcomer.sessions) as session:
        session.add(
            Connection(
                user_id=newcomer.id,
                type=ConnectionType.GMAIL,
                access_token="ya29.x",
                metadata_={"emailAddress": f"s-{uuid.uuid4().hex[:6]}@gmail.test"},
            )
        )
    assert (await newcomer.done())["connect_mail"] is True


async def test_opening_the_playbooks_page_reviews_them_once(newcomer: Newcomer) -> None:
    assert (await newcomer.done())["review_playbooks"] is False
    for _ in range(2):
        assert (await newcomer.web.get("/playbooks")).status_code == 200
    assert (await newcomer.done())["review_playbooks"] is True
    async with newcomer.sessions() as session:
        viewed = await session.scalar(
            select(func.count()).where(
                Event.user_id == newcomer.id, Event.type == "playbooks.viewed"
            )
        )
    assert viewed == 1  # recorded once, not on every visit


async def test_changing_a_playbook_on_the_api_reviews_them(newcomer: Newcomer) -> None:
    async with newcomer.sessions() as session:
        playbook = await session.scalar(
            select(Playbook.id).where(Playbook.user_id == newcomer.id).limit(1)
        )
    changed = await newcomer.api.patch(f"/api/playbooks/{playbook}", json={"enabled": False})
    assert changed.status_code == 200, changed.text
    assert (await newcomer.done())["review_playbooks"] is True


async def test_the_checklist_is_gone_once_every_step_is_done(newcomer: Newcomer) -> None:
    await newcomer.connect_store()
    async with unit_of_work(newcomer.sessions) as session:
        session.add(
            Connection(
                user_id=newcomer.id,
                type=ConnectionType.GMAIL,
                access_token="ya29.x",
                metadata_={"emailAddress": f"s-{uuid.uuid4().hex[:6]}@gmail.test"},
            )
        )
    await newcomer.web.get("/playbooks")
    assert await newcomer.checklist() == dict(
        connect_store="done", connect_mail="done", review_playbooks="done", choose_plan="todo"
    )
    assert "3 of 4 done." in (await newcomer.web.get("/inbox")).text
    # What a gateway's activation leaves (the billing flow itself is the next test).
    async with unit_of_work(newcomer.sessions) as session:
        await session.execute(
            update(Subscription)
            .where(Subscription.user_id == newcomer.id)
            .values(plan_type=PlanType.GROWTH, status=SubscriptionStatus.active)
        )
    assert await newcomer.done() == dict.fromkeys(STEPS, True)
    assert await newcomer.checklist() is None
    # A plan that ended is a plan to choose again: the checklist is back for that step.
    async with unit_of_work(newcomer.sessions) as session:
        await session.execute(
            update(Subscription)
            .where(Subscription.user_id == newcomer.id)
            .values(status=SubscriptionStatus.cancelled)
        )
    assert (await newcomer.checklist() or {})["choose_plan"] == "todo"


async def test_another_merchants_setup_does_not_count(
    newcomer: Newcomer, own_sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with unit_of_work(own_sessions) as session:
        other = await create_user(session, f"o-{uuid.uuid4().hex[:6]}@store.example")
        session.add(
            Connection(
                user_id=other.id,
                type=ConnectionType.SHOPIFY,
                access_token="shpat_x",
                shop_domain=f"o-{uuid.uuid4().hex[:6]}.myshopify.com",
            )
        )
    assert await newcomer.done() == dict.fromkeys(STEPS, False)
    anonymous = await _client(newcomer.app).get("/api/onboarding")
    assert anonymous.status_code == 401


@pytest.mark.parametrize("gateway", ["razorpay"])
async def test_paying_for_a_plan_through_checkout_chooses_it(
    billing: Billing,  # noqa: F811
    gateway: str,
) -> None:
    async def chosen() -> bool:
        answer = await billing.api.get("/api/onboarding")
        assert answer.status_code == 200, answer.text
        return {s["key"]: s["done"] for s in answer.json()["steps"]}["choose_plan"]

    assert await chosen() is False
    checkout = await billing.checkout(gateway)
    assert await chosen() is False  # a checkout started is not a plan yet
    paid = await billing.http.post(
        checkout["checkout_url"], json={"outcome": "paid", "delivery": "ordered"}
    )
    assert paid.status_code == 200, paid.text
    await billing.settle()
    assert (await billing.view())["plan_type"] == "GROWTH"
    assert await chosen() is True
