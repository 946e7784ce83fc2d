"""Builds the activity dependencies and runs the Temporal worker for message workflows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Interceptor, Worker

from activities.account_mail import AccountMailActivities
from activities.alias_test_mail import AliasTestMailActivities
from activities.billing_calendar import BillingCalendarActivities
from activities.billing_events import BillingEventActivities
from activities.errors import ErrorMapping
from activities.gmail_access import GmailAccess
from activities.mailbox import MailboxActivities
from activities.message import MessageActivities
from activities.playbook_steps import PlaybookSteps
from activities.shopify_backfill import ShopifyBackfillActivities
from activities.shopify_webhook import ShopifyWebhookActivities
from integrations.billing_gateways import billing_gateways, plan_catalog
from integrations.gmail.oauth import GoogleOAuth
from integrations.llm import suggester_from_settings
from integrations.ports import MailPort, ShopifyPort, SuggesterPort
from integrations.sandbox_mailer import NoMailer, SandboxMailer
from integrations.shopify.admin import ShopifyAdmin
from integrations.smtp_outbound import SmtpMailer
from kernel.settings import Settings
from services.gmail_connections import gmail_configured, google_oauth
from workflows.account_mail import AccountMailWorkflow
from workflows.alias_test_mail import AliasTestMailWorkflow
from workflows.billing_calendar import BillingCalendarWorkflow
from workflows.billing_events import BillingEventWorkflow
from workflows.contracts import TASK_QUEUE
from workflows.mailbox_sync import MailboxSyncWorkflow
from workflows.message import MessageWorkflow
from workflows.playbook_run import PlaybookRunWorkflow
from workflows.shopify_backfill import ShopifyBackfillWorkflow
from workflows.shopify_webhook import ShopifyWebhookWorkflow


@dataclass
class WorkerDependencies:
    sessions: async_sessionmaker[AsyncSession]
    shopify: ShopifyPort
    mailer: MailPort
    suggester: SuggesterPort
    # Connected Gmail mailboxes: their sync, and replies to mail that came from them.
    gmail: GmailAccess | None = None
    settings: Settings = field(default_factory=Settings)


def google_oauth_client(settings: Settings) -> GoogleOAuth | None:
    """Refreshes Gmail tokens; None when no Google OAuth client is configured."""
    return google_oauth(settings) if gmail_configured(settings) else None


@runtime_checkable
class Closeable(Protocol):
    async def aclose(self) -> None: ...


@asynccontextmanager
async def worker_dependencies(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[WorkerDependencies]:
    """The integrations this process talks to: Shopify's Admin API (a sandbox store's when
    its connection says so), the SMTP relay at SMTP_HOST (else the sandbox mail sink),
    Gmail for connected mailboxes, and the LLM at OPENAI_BASE_URL/OPENAI_API_KEY (else the
    offline suggester)."""
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
    oauth = google_oauth_client(settings)
    gmail = GmailAccess(sessions, oauth)
    suggester = suggester_from_settings(settings)
    try:
        yield WorkerDependencies(
            sessions, shopify, mailer, suggester, gmail=gmail, settings=settings
        )
    finally:
        await shopify.aclose()
        if isinstance(suggester, Closeable):
            await suggester.aclose()
        await gmail.aclose()
        if oauth is not None:
            await oauth.aclose()
        if isinstance(mailer, SandboxMailer):
            await mailer.aclose()


def build_worker(
    client: Client,
    deps: WorkerDependencies,
    *,
    task_queue: str = TASK_QUEUE,
    interceptors: Sequence[Interceptor] = (),
) -> Worker:
    activities = MessageActivities(
        deps.sessions,
        deps.shopify,
        deps.mailer,
        deps.suggester,
        gmail=deps.gmail,
        policy=deps.settings.store_policy,
    )
    webhooks = ShopifyWebhookActivities(deps.sessions)
    # Automatic approvals go through the MessageWorkflow's update, as a person's do.
    playbooks = PlaybookSteps(deps.sessions, client)
    mailboxes = (
        MailboxActivities(deps.sessions, deps.gmail, deps.settings).all() if deps.gmail else []
    )
    calendar = BillingCalendarActivities(
        deps.sessions, timedelta(days=deps.settings.billing_grace_days)
    )
    billing_events = BillingEventActivities(
        deps.sessions, plan_catalog(deps.settings), billing_gateways(deps.settings)
    )
    account_mail = AccountMailActivities(deps.sessions, deps.mailer, deps.settings)
    alias_test = AliasTestMailActivities(deps.sessions, deps.mailer, deps.settings)
    backfill = ShopifyBackfillActivities(deps.sessions, deps.shopify)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[
            MessageWorkflow,
            PlaybookRunWorkflow,
            ShopifyWebhookWorkflow,
            MailboxSyncWorkflow,
            BillingCalendarWorkflow,
            BillingEventWorkflow,
            AccountMailWorkflow,
            AliasTestMailWorkflow,
            ShopifyBackfillWorkflow,
        ],
        activities=[
            *activities.all(),
            *playbooks.all(),
            *webhooks.all(),
            *mailboxes,
            *calendar.all(),
            *billing_events.all(),
            *account_mail.all(),
            *alias_test.all(),
            *backfill.all(),
        ],
        # kernel.errors become Temporal failures in one place: final ones non-retryable.
        interceptors=[ErrorMapping(), *interceptors],
        # On SIGTERM let running steps finish (a cancelled send may already have left).
        graceful_shutdown_timeout=timedelta(seconds=10),
    )
