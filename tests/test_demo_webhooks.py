"""Demo mode end to end for Shopify's side: the sandbox store's signed order webhooks reach
deskpilot's webhook endpoint over loopback and keep the orders table in step."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from deskpilot.demo import bootstrap_demo
from integrations.offline_suggester import OfflineSuggester
from integrations.sandbox_mailer import NoMailer
from integrations.shopify.admin import ShopifyAdmin
from kernel.enums import ActionType
from kernel.settings import Settings
from kernel.values import ShopTarget
from models import Order
from sandbox.server import Sandbox, serve_app, serving, shop_base
from sandbox.shopify.server import DEMO_SHOP
from worker import WorkerDependencies, build_worker


async def _order(sessions: async_sessionmaker[AsyncSession], name: str) -> Order:
    async with sessions() as session:
        return (await session.execute(select(Order).where(Order.name == name))).scalar_one()


async def test_demo_store_webhooks_keep_orders_in_step(
    temporal_dev: WorkflowEnvironment,
    own_sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        DESKPILOT_HOME=str(tmp_path),
        SHOPIFY_API_SECRET="demo-webhook-secret",
        INBOUND_DOMAIN="in.example",
    )
    queue = f"demo-{uuid.uuid4().hex[:8]}"
    app = create_app(own_sessions.kw["bind"], temporal_dev.client, settings, task_queue=queue)
    sandbox = Sandbox()
    admin = ShopifyAdmin()
    deps = WorkerDependencies(own_sessions, admin, NoMailer(), OfflineSuggester())
    try:
        async with (
            serving(sandbox) as sandbox_url,
            serve_app(app) as api_base,
            build_worker(temporal_dev.client, deps, task_queue=queue),
        ):
            await bootstrap_demo(
                own_sessions, settings, sandbox, sandbox_url, api_base=api_base, temporal_ui=None
            )
            before = await _order(own_sessions, "#1001")
            assert before.financial_status == "PAID"

            shop = sandbox.shopify.shop(DEMO_SHOP)
            [token] = shop.tokens
            target = ShopTarget(
                shop_domain=DEMO_SHOP,
                access_token=token,
                api_base=shop_base(sandbox_url, DEMO_SHOP),
            )
            # A full refund of #1001, as an approved REFUND action makes it.
            prepared = await admin.prepare(target, before.shopify_id, ActionType.REFUND, {})
            await admin.perform(target, before.shopify_id, ActionType.REFUND, prepared, "demo-key")
            await sandbox.shopify.dispatcher.settle()

            async with asyncio.timeout(30):  # the webhook is processed by a workflow
                while True:
                    if (await _order(own_sessions, "#1001")).financial_status == "REFUNDED":
                        break
                    await asyncio.sleep(0.1)
    finally:
        await admin.aclose()
    after = await _order(own_sessions, "#1001")
    assert after.id == before.id and after.status == "open"
