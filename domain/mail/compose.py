"""Composing the reply a customer receives: threaded under their message, marked automatic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr


@dataclass(frozen=True)
class ReplyTo:
    """The customer's message being answered, as stored."""

    from_address: str
    subject: str
    message_id: str
    references: str | list[str]  # the References header; a repeated one is stored as a list


@dataclass(frozen=True)
class Sender:
    address: str
    store_name: str | None = None
    support_email: str | None = None  # Reply-To, when it is not the sending address


def reply_email(
    original: ReplyTo, sender: Sender, text: str, outbound_id: str, now: datetime
) -> EmailMessage:
    email = EmailMessage()
    email["From"] = (
        formataddr((sender.store_name, sender.address)) if sender.store_name else sender.address
    )
    email["To"] = original.from_address
    if sender.support_email and sender.support_email != sender.address:
        email["Reply-To"] = sender.support_email
    subject = original.subject or ""
    email["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()
    email["Date"] = format_datetime(now)
    email["Message-ID"] = outbound_id
    email["In-Reply-To"] = original.message_id
    stored = original.references
    references = (" ".join(stored) if isinstance(stored, list) else str(stored)).split()
    email["References"] = " ".join([*references, original.message_id])
    email["Auto-Submitted"] = "auto-replied"
    email.set_content(text)
    return email
