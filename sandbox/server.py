"""Serves the sandbox stand-ins (Shopify stores, Gmail and Google sign-in, mail sink, the
Razorpay and Paddle billing gateways) on one loopback port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI

from sandbox import mail_sink
from sandbox.gmail import GmailSandbox
from sandbox.google_oauth import GoogleOAuthSandbox
from sandbox.paddle import PaddleSandbox
from sandbox.razorpay import RazorpaySandbox
from sandbox.shopify.server import ShopifySandbox


@dataclass
class Sandbox:
    shopify: ShopifySandbox = field(default_factory=ShopifySandbox)
    sink: mail_sink.MailSink = field(default_factory=mail_sink.MailSink)
    gmail: GmailSandbox = field(default_factory=GmailSandbox)
    razorpay: RazorpaySandbox = field(default_factory=RazorpaySandbox)
    paddle: PaddleSandbox = field(default_factory=PaddleSandbox)
    # Google's sign-in, issuing tokens for the mailboxes of `gmail` above.
    google: GoogleOAuthSandbox = field(init=False)

    def __post_init__(self) -> None:
        self.google = GoogleOAuthSandbox(self.gmail)

    def app(self) -> FastAPI:
        app = FastAPI(title="deskpilot sandbox")
        app.include_router(self.shopify.router())
        app.include_router(mail_sink.router(self.sink))
        app.include_router(self.gmail.router())
        app.include_router(self.gmail.helper_router())
        app.include_router(self.google.router())
        app.include_router(self.razorpay.router())
        app.include_router(self.paddle.router())
        # Paddle's SDK drops the base URL's path (urljoin with "/transactions"), so its
        # API is answered at the root too.
        app.include_router(self.paddle.api_router(prefix=""))
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
    """Run the sandbox in this event loop; yields its base URL, then delivers queued webhooks
    and Gmail pushes."""
    try:
        async with serve_app(sandbox.app(), host, port) as url:
            yield url
    finally:
        try:
            await sandbox.shopify.dispatcher.aclose()
        finally:
            try:
                await sandbox.gmail.aclose()
            finally:
                await sandbox.razorpay.aclose()
                await sandbox.paddle.aclose()
