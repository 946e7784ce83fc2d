"""The test email that proves a forwarding alias receives mail: what it says, the header
that marks it, and how a copy that arrived is told from a forged one.

The mail carries a random token in `TEST_HEADER`; only its SHA-256 is stored with the alias.
The receiver recognises the mail by that digest, so a customer who copies the header into
their own mail sends an ordinary message, and an arrived test never reaches the inbox.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from domain.mail.account_mail import PRODUCT_NAME

TEST_HEADER = "X-Deskpilot-Alias-Test"
# Asking again sooner is refused: one test at a time is enough to wait for.
MIN_RESEND_INTERVAL = timedelta(seconds=30)
# How long the page keeps refreshing itself while it waits for the arrival.
PENDING_WINDOW = timedelta(minutes=2)
MAX_TOKEN_LENGTH = 100


def new_test_token() -> tuple[str, str]:
    """A fresh token for one test email and the digest to store with the alias."""
    value = secrets.token_urlsafe(24)
    return value, alias_token_digest(value)


def alias_token_digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def header_token(headers: Mapping[str, str | list[str]]) -> str | None:
    """The token of a parsed message's test header (names match in any case), or None. A
    message with several such headers is not a test: our mail carries exactly one."""
    found = [value for name, value in headers.items() if name.lower() == TEST_HEADER.lower()]
    if len(found) != 1 or not isinstance(found[0], str):
        return None
    value = found[0].strip()
    return value if 0 < len(value) <= MAX_TOKEN_LENGTH else None


def token_matches(token: str | None, stored_digest: str | None) -> bool:
    if not token or not stored_digest:
        return False
    return hmac.compare_digest(alias_token_digest(token), stored_digest)


def alias_test_email(
    *,
    alias: str,
    sender: str,
    token: str,
    message_id: str,
    now: datetime,
    store_name: str | None,
) -> EmailMessage:
    email = EmailMessage()
    email["From"] = formataddr((PRODUCT_NAME, sender))
    email["To"] = alias
    email["Date"] = format_datetime(now)
    email["Message-ID"] = message_id
    email["Subject"] = f"{PRODUCT_NAME} test email for {alias}"
    email["Auto-Submitted"] = "auto-generated"
    email[TEST_HEADER] = token
    name = f" of {store_name}" if store_name else ""
    email.set_content(
        f"This is the test email you asked for from the connections page, sent to the "
        f"forwarding address{name}, {alias}.\n\n"
        "When it arrives, the connections page shows the time. It is not put in the inbox "
        "and is not counted in your plan's emails.\n"
    )
    return email


def arrival_pending(
    requested_at: datetime | None, received_at: datetime | None, now: datetime
) -> bool:
    """Whether the page should keep refreshing: asked for recently and not arrived yet."""
    if requested_at is None:
        return False
    if received_at is not None and received_at >= requested_at:
        return False
    return now - requested_at < PENDING_WINDOW


def resend_wait(requested_at: datetime | None, now: datetime) -> int:
    """Seconds until another test may be asked for (0: now)."""
    if requested_at is None:
        return 0
    left = (requested_at + MIN_RESEND_INTERVAL - now).total_seconds()
    return max(0, int(left + 0.999))
