"""Health probes over HTTP (in-process ASGI transport, real database)."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from models.db import create_engine
from models.migrate import head_revision
from tests.conftest import TEST_SECRET_KEY


def _client(engine: AsyncEngine) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(engine)), base_url="http://t"
    )


async def test_ready_when_the_schema_is_current(engine: AsyncEngine) -> None:
    async with _client(engine) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "schema": head_revision()}


async def _readyz(url: str) -> httpx.Response:
    engine = create_engine(url, secret_key=TEST_SECRET_KEY, pool_size=1)
    try:
        async with _client(engine) as client:
            return await client.get("/readyz")
    finally:
        await engine.dispose()


async def test_not_ready_on_an_unmigrated_database(empty_database: str) -> None:
    response = await _readyz(empty_database)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert "database not ready" in response.json()["error"]["message"]


async def test_not_ready_on_an_old_schema(empty_database: str) -> None:
    from models import migrate

    await migrate.upgrade(empty_database)
    await migrate.downgrade(empty_database, "base")
    response = await _readyz(empty_database)
    assert response.status_code == 503
    assert "deskpilot db upgrade" in response.json()["error"]["message"]


async def test_not_ready_when_the_database_is_unreachable(tmp_path: object) -> None:
    engine = create_engine(
        f"postgresql://nobody@/nothing?host={tmp_path}", secret_key=TEST_SECRET_KEY, pool_size=1
    )
    try:
        async with _client(engine) as client:
            response = await client.get("/readyz")
            alive = await client.get("/healthz")
    finally:
        await engine.dispose()
    assert response.status_code == 503
    assert alive.status_code == 200
