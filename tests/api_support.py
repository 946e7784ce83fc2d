"""Helpers for tests that talk to the API over HTTP (in-process ASGI transport)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.api_token import issue_api_token
from models.db import unit_of_work


def api_client(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test", headers=headers
    )


async def token_for(sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID) -> str:
    async with unit_of_work(sessions) as session:
        return await issue_api_token(session, user_id, "tests")


def raw_email(
    *,
    sender: str = "Ava Patel <ava.patel@example.com>",
    to: str = "support@store.test",
    subject: str = "Where is my order #1001?",
    body: str = "Hi, my order #1001 has not arrived yet. Where is it?",
    message_id: str | None = None,
    in_reply_to: str | None = None,
) -> bytes:
    headers = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {format_datetime(datetime.now(UTC))}",
        f"Message-ID: {message_id or make_msgid(domain='customer.test')}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    if in_reply_to:
        headers += [f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


def deeply_nested_email(levels: int, *, to: str = "support@store.test") -> bytes:
    """A message whose MIME parts nest `levels` deep, each multipart holding the next."""
    head = (
        f"From: ava.patel@example.com\r\nTo: {to}\r\nSubject: deep\r\n"
        f"Message-ID: {make_msgid(domain='customer.test')}\r\nMIME-Version: 1.0\r\n"
    )
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(levels)
    )
    closing = "".join(f"--b{i}--\r\n" for i in reversed(range(levels)))
    return (head + opening + "Content-Type: text/plain\r\n\r\nhello\r\n" + closing).encode()
