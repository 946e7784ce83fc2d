"""The Gmail REST sandbox (and Google's OAuth endpoints) served on loopback, and the mail the
Gmail tests exchange."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import parse_qsl, urlsplit

import httpx
from fastapi import FastAPI

from integrations.gmail.client import GmailClient
from integrations.gmail.oauth import GoogleOAuth
from sandbox.gmail import GmailSandbox
from sandbox.google_oauth import GoogleOAuthSandbox
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


CLIENT_ID = "1234-deskpilot.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-sandbox-secret"
REDIRECT_URI = "http://127.0.0.1:8000/connections/gmail/callback"


class ServedGoogle:
    """Gmail and Google's OAuth endpoints on one loopback server, with deskpilot registered."""

    def __init__(self, gmail: GmailSandbox, google: GoogleOAuthSandbox, url: str) -> None:
        self.gmail = gmail
        self.google = google
        self.url = url
        google.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])
        gmail.add_mailbox(MERCHANT)

    def oauth(self, client_secret: str = CLIENT_SECRET) -> GoogleOAuth:
        return GoogleOAuth(
            CLIENT_ID,
            client_secret,
            auth_url=f"{self.url}/o/oauth2/v2/auth",
            token_url=f"{self.url}/token",
        )

    def gmail_client(self, access_token: str) -> GmailClient:
        return GmailClient(access_token, base_url=self.url)


@asynccontextmanager
async def served_google() -> AsyncIterator[ServedGoogle]:
    gmail = GmailSandbox()
    google = GoogleOAuthSandbox(gmail)
    app = FastAPI()
    app.include_router(gmail.router())
    app.include_router(google.router())
    async with serve_app(app) as url:
        yield ServedGoogle(gmail, google, url)
    await gmail.aclose()


async def follow_consent(url: str) -> tuple[str, dict[str, str]]:
    """What a browser does with an authorization URL: returns where Google redirects it
    and that redirect's query parameters."""
    async with httpx.AsyncClient(follow_redirects=False) as browser:
        answer = await browser.get(url)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    return location.split("?")[0], dict(parse_qsl(urlsplit(location).query))
