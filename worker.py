"""Builds the activity dependencies and runs the Temporal worker for message workflows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.message import MessageActivities
from activities.shopify_webhook import ShopifyWebhookActivities
from deskpilot.settings import Settings
from integrations.offline_suggester import OfflineSuggester
from integrations.ports import MailPort, ShopifyPort, SuggesterPort
from integrations.sandbox_mailer import NoMailer, SandboxMailer
from integrations.shopify.admin import ShopifyAdmin
from integrations.smtp_outbound import SmtpMailer
from workflows.contracts import TASK_QUEUE
from workflows.message import MessageWorkflow
from workflows.shopify_webhook import ShopifyWebhookWorkflow


@dataclass
class WorkerDependencies:
    sessions: async_sessionmaker[AsyncSession]
    shopify: ShopifyPort
    mailer: MailPort
    suggester: SuggesterPort


@asynccontextmanager
async def worker_dependencies(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[WorkerDependencies]:
    """The integrations this process talks to: Shopify's Admin API (a sandbox store's when
    its connection says so), the SMTP relay at SMTP_HOST (else the sandbox mail sink), and
    the offline suggester until the AI issue does."""
    shopify = ShopifyAdmin()
    mailer: MailPort
    if settings.smtp_host:
        mailer = SmtpMailer.from_settings(settings)
    elif settings.sandbox_url:
        mailer = SandboxMailer(settings.sandbox_url)
    else:
        # Nowhere to send replies: the worker still runs and approved replies fail with a
        # message that says so, instead of the worker crash-looping.
        mailer = NoMailer()
    try:
        yield WorkerDependencies(sessions, shopify, mailer, OfflineSuggester())
    finally:
        await shopify.aclose()
        if isinstance(mailer, SandboxMailer):
            await mailer.aclose()


def build_worker(
    client: Client, deps: WorkerDependencies, *, task_queue: str = TASK_QUEUE
) -> Worker:
    activities = MessageActivities(deps.sessions, deps.shopify, deps.mailer, deps.suggester)
    webhooks = ShopifyWebhookActivities(deps.sessions)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[MessageWorkflow, ShopifyWebhookWorkflow],
        activities=[*activities.all(), *webhooks.all()],
        # On SIGTERM let running steps finish (a cancelled send may already have left).
        graceful_shutdown_timeout=timedelta(seconds=10),
    )
