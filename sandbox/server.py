"""Serves the sandbox stand-ins (Shopify stores, mail sink) on one loopback port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI

from sandbox import mail_sink
from sandbox.shopify.server import ShopifySandbox


@dataclass
class Sandbox:
    shopify: ShopifySandbox = field(default_factory=ShopifySandbox)
    sink: mail_sink.MailSink = field(default_factory=mail_sink.MailSink)

    def app(self) -> FastAPI:
        app = FastAPI(title="deskpilot sandbox")
        app.include_router(self.shopify.router())
        app.include_router(mail_sink.router(self.sink))
        return app


def shop_base(sandbox_url: str, shop_domain: str) -> str:
    """The Admin API base of a sandbox shop (a real one's is https://{shop_domain})."""
    return f"{sandbox_url.rstrip('/')}/shops/{shop_domain}"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Whoever embeds the sandbox (a test, `deskpilot up`) owns SIGINT and SIGTERM.
        yield


@contextlib.asynccontextmanager
async def serve_app(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve any ASGI app in this event loop until the block exits; yields its base URL."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # surfaces the bind error
        await asyncio.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def serving(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Run the sandbox in this event loop; yields its base URL, then delivers queued webhooks."""
    try:
        async with serve_app(sandbox.app(), host, port) as url:
            yield url
    finally:
        await sandbox.shopify.dispatcher.aclose()
