"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.schemas import error_responses
from kernel.errors import Transient
from models.migrate import head_revision

router = APIRouter(tags=["health"])
READINESS_TIMEOUT_S = 5


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz", responses=error_responses((503, "the database is not ready")))
async def readyz(request: Request) -> dict[str, str]:
    """The database answers and carries the schema this code expects."""
    engine: AsyncEngine = request.app.state.engine
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_S), engine.connect() as connection:
            current = (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar_one_or_none()
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        # OSError: the driver could not even reach the server (socket missing, refused).
        raise Transient(
            f"database not ready: {type(exc).__name__}: {next(iter(str(exc).splitlines()), '')}"
        ) from exc
    expected = head_revision()
    if current != expected:
        raise Transient(
            f"database schema is at {current!r}, expected {expected!r}: run `deskpilot db upgrade`"
        )
    return {"status": "ready", "database": "ok", "schema": current}
