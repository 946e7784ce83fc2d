"""Serves the sandbox stand-ins (demo store, mail sink) on one loopback port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI

from sandbox import demo_store, mail_sink


@dataclass
class Sandbox:
    stores: demo_store.DemoStores = field(default_factory=demo_store.DemoStores)
    sink: mail_sink.MailSink = field(default_factory=mail_sink.MailSink)

    def app(self) -> FastAPI:
        app = FastAPI(title="deskpilot sandbox")
        app.include_router(demo_store.router(self.stores))
        app.include_router(mail_sink.router(self.sink))
        return app


@contextlib.asynccontextmanager
async def serving(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Run the sandbox in this event loop; yields its base URL."""
    config = uvicorn.Config(
        sandbox.app(), host=host, port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
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
