"""Builds the FastAPI application around an engine the caller owns."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from api import health
from api.errors import install_error_handlers
from models.db import session_factory


def create_app(engine: AsyncEngine) -> FastAPI:
    app = FastAPI(title="deskpilot", version="0.1.0")
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    install_error_handlers(app)
    app.include_router(health.router)
    return app
