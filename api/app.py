"""Builds the FastAPI application around an engine (and a Temporal client) the caller owns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api import (
    account_api,
    account_settings_pages,
    actions,
    billing_api,
    billing_pages,
    billing_webhooks,
    compliance,
    gmail_oauth,
    gmail_push,
    health,
    inbound,
    messages,
    onboarding_api,
    pages,
    playbook_pages,
    settings_api,
    settings_pages,
    shopify_oauth,
    shopify_webhooks,
    signup_pages,
    threads,
    web_auth,
)
from api.errors import install_error_handlers
from kernel.settings import Settings, get_settings
from models.db import session_factory
from models.message_changes import MessageChanges
from workflows.contracts import TASK_QUEUE

STATIC_DIR = Path(__file__).parent / "static"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    changes: MessageChanges = app.state.message_changes
    await changes.start()
    try:
        yield
    finally:
        await changes.stop()


def create_app(
    engine: AsyncEngine,
    temporal: Client | None = None,
    settings: Settings | None = None,
    *,
    task_queue: str = TASK_QUEUE,
) -> FastAPI:
    """`temporal` None: messages are stored and left for the reconciler; decisions answer 503.

    `task_queue` is where new message workflows go; tests give each worker its own.
    """
    app = FastAPI(title="deskpilot", version="0.1.0", lifespan=_lifespan)
    app.state.engine = engine
    # Long polls on a message wait on these (started with the server, see _lifespan).
    app.state.message_changes = MessageChanges(engine)
    app.state.sessions = session_factory(engine)
    app.state.temporal = temporal
    app.state.settings = settings or get_settings()
    app.state.task_queue = task_queue
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(inbound.router)
    app.include_router(messages.router)
    app.include_router(actions.router)
    app.include_router(shopify_oauth.router)
    app.include_router(shopify_webhooks.router)
    app.include_router(billing_webhooks.router)
    app.include_router(compliance.router)
    app.include_router(gmail_oauth.router)
    app.include_router(gmail_push.router)
    app.include_router(web_auth.router)
    app.include_router(signup_pages.router)
    app.include_router(threads.router)
    app.include_router(pages.router)
    app.include_router(settings_api.router)
    app.include_router(settings_pages.router)
    app.include_router(playbook_pages.router)
    app.include_router(billing_api.router)
    app.include_router(billing_pages.router)
    app.include_router(onboarding_api.router)
    app.include_router(account_api.router)
    app.include_router(account_settings_pages.router)
    # The pages' CSS and JS: small, hand-written, no build step.
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
