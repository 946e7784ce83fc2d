"""Two Shopify stores on one account, the same customer buying at both, and both stores
numbering from #1001: mail to a store's alias is matched, and acted on, at that store.

Real components throughout: the second store added through the install (consent at the
sandbox over loopback) and its orders brought in by the backfill workflow, its alias made
over the API, mail received by the real SMTP receiver, the worker's pipeline under the
Temporal dev server, the approval over HTTP, and the effect read from the sandbox ledgers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiosmtplib
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from deskpilot.smtp_receiver import smtp_receiver
from models import Message, Order
from tests.api_support import api_client, raw_email, token_for
from tests.pipeline import Merchant, running_pipeline
from tests.test_shopify_install import (
    API_KEY,
    API_SECRET,
    install_settings,
    new_shop,
    wait_for_orders,
)

WAIT_S = 30


@dataclass
class TwoStores:
    sessions: async_sessionmaker[AsyncSession]
    merchant: Merchant  # store A: merchant.shop, its alias merchant.alias
    api: httpx.AsyncClient
    smtp_port: int
    shop_b: str
    alias_b: str
    customer: str  # has an order #1001 at both stores

    async def send(self, to: str, subject: str, body: str) -> uuid.UUID:
        """Mail from the customer to `to` over SMTP; the id of the Message it became."""
        raw = raw_email(sender=self.customer, to=to, subject=subject, body=body)
        await aiosmtplib.send(
            raw, sender=self.customer, recipients=[to], hostname="127.0.0.1",
            port=self.smtp_port, start_tls=False,
        )  # fmt: skip
        async with asyncio.timeout(WAIT_S):
            while True:
                async with self.sessions() as session:
                    found = await session.scalar(
                        select(Message.id).where(
                            Message.user_id == self.merchant.user_id,
                            Message.subject == subject,
                        )
                    )
                if found is not None:
                    return found
                await asyncio.sleep(0.05)

    async def wait_for(
        self, message_id: uuid.UUID, ready: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        async with asyncio.timeout(WAIT_S):
            while True:
                detail = await self.api.get(f"/api/messages/{message_id}")
                assert detail.status_code == 200, detail.text
                if ready(detail.json()):
                    return detail.json()
                await asyncio.sleep(0.05)

    async def order_at(self, shop: str, name: str) -> uuid.UUID:
        async with self.sessions() as session:
            found = await session.scalar(
                select(Order.id).where(Order.shop_domain == shop, Order.name == name)
            )
        assert found is not None, (shop, name)
        return found


def _status(status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda detail: detail["action"] is not None and detail["action"]["status"] == status


async def _install(api: httpx.AsyncClient, shop: str) -> None:
    """The signed-in merchant adds a store from the connections page."""
    started = await api.get("/shopify/install", params={"shop": shop})
    assert started.status_code == 302, started.text
    async with httpx.AsyncClient(timeout=10) as browser:
        approved = await browser.get(started.headers["location"])
    assert approved.status_code == 302, approved.text
    back = urlsplit(approved.headers["location"])
    installed = await api.get(f"{back.path}?{back.query}")
    assert installed.status_code == 200, installed.text


@pytest.fixture
async def stores(
    temporal_dev: WorkflowEnvironment, own_sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[TwoStores]:
    queue = f"two-stores-{uuid.uuid4().hex[:8]}"
    engine: AsyncEngine = own_sessions.kw["bind"]
    async with running_pipeline(temporal_dev.client, own_sessions, queue) as merchant:
        shopify = merchant.sandbox.shopify
        shopify.state.register_app(API_KEY, API_SECRET, scopes="read_orders,write_orders")
        customer = merchant.orders["1001"]["email"]
        # Store B: empty until the customer's first order there, which is B's #1001 too.
        shop_b = new_shop()
        shopify.add_shop(shop_b, orders=0, name="Store B")
        assert shopify.create_order(shop_b, email=customer).name == "#1001"
        shopify.create_order(shop_b, email="someone.else@example.com")
        # Store A's alias is at inbound.test too.
        settings = install_settings(merchant.sandbox_url, INBOUND_DOMAIN="inbound.test")
        app = create_app(engine, temporal_dev.client, settings, task_queue=queue)
        token = await token_for(own_sessions, merchant.user_id)
        async with (
            api_client(app, token) as api,
            smtp_receiver(
                own_sessions, temporal_dev.client, settings, port=0, task_queue=queue
            ) as smtp_port,
        ):
            await _install(api, shop_b)
            await wait_for_orders(own_sessions, shop_b, 2)
            alias = await api.post(
                "/api/connections",
                json={
                    "type": "CUSTOM_EMAIL",
                    "shop_domain": shop_b,
                    "store_name": "Store B",
                    "support_email": "help@store-b.example",
                },
            )
            assert alias.status_code == 201, alias.text
            yield TwoStores(
                own_sessions, merchant, api, smtp_port, shop_b, alias.json()["alias"], customer
            )


async def test_mail_to_a_stores_alias_matches_that_stores_order(stores: TwoStores) -> None:
    shop_a = stores.merchant.shop.domain
    to_b = await stores.send(stores.alias_b, "Order at B", "Where is my order #1001?")
    to_a = await stores.send(stores.merchant.alias, "Order at A", "Where is my order #1001?")
    at_b = await stores.wait_for(to_b, lambda d: d["message"]["order_id"] is not None)
    at_a = await stores.wait_for(to_a, lambda d: d["message"]["order_id"] is not None)
    assert at_b["message"]["order_id"] == str(await stores.order_at(stores.shop_b, "#1001"))
    assert at_a["message"]["order_id"] == str(await stores.order_at(shop_a, "#1001"))


async def test_an_action_approved_for_store_b_runs_at_store_b(stores: TwoStores) -> None:
    shop_b = stores.merchant.sandbox.shopify.shop(stores.shop_b)
    before_a, before_b = len(stores.merchant.shop.ledger), len(shop_b.ledger)
    message_id = await stores.send(
        stores.alias_b,
        "Refund for #1001",
        "My order #1001 arrived broken. I would like a refund please.",
    )
    pending = await stores.wait_for(message_id, _status("PENDING"))
    assert pending["message"]["order_id"] == str(await stores.order_at(stores.shop_b, "#1001"))
    action = pending["action"]
    approved = await stores.api.post(f"/api/actions/{action['id']}/approve")
    assert approved.status_code == 200, approved.text
    await stores.wait_for(message_id, _status("EXECUTED"))

    effects = shop_b.ledger[before_b:]
    assert effects, "nothing happened at store B"
    order_b = shop_b.by_name("#1001")
    assert order_b is not None
    assert all(e.get("order_id") in (None, order_b.gid) for e in effects), effects
    assert stores.merchant.shop.ledger[before_a:] == []
