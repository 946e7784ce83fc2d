"""The Gmail REST sandbox served on loopback, and the mail the Gmail tests exchange."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from email.utils import make_msgid

from fastapi import FastAPI

from sandbox.gmail import GmailSandbox
from sandbox.server import serve_app

MERCHANT = "support@acme-store.example"
CUSTOMER = "jane@customer.example"


def email_bytes(
    subject: str,
    *,
    sender: str = CUSTOMER,
    to: str = MERCHANT,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    body: str = "Where is my order #1001?",
) -> tuple[bytes, str]:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid(domain="test.example")
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(body)
    return bytes(msg), str(msg["Message-ID"])


class Served:
    def __init__(self, sandbox: GmailSandbox, url: str) -> None:
        self.sandbox = sandbox
        self.url = url
        self.token = sandbox.add_mailbox(MERCHANT).token


@asynccontextmanager
async def served_gmail(history_retention: int = 5) -> AsyncIterator[Served]:
    """A sandbox with the merchant's mailbox; small retention so expiry is easy to reach."""
    sandbox = GmailSandbox(history_retention=history_retention)
    app = FastAPI()
    app.include_router(sandbox.router())
    async with serve_app(app) as url:
        yield Served(sandbox, url)
