"""The account emails deskpilot sends a merchant: the verification and password-reset links."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from domain.account_tokens import TOKEN_LIFETIME, TokenPurpose

PRODUCT_NAME = "deskpilot"


def account_link(public_url: str, purpose: TokenPurpose, token: str) -> str:
    path = "/verify" if purpose is TokenPurpose.VERIFY_EMAIL else "/reset/confirm"
    return f"{public_url.rstrip('/')}{path}?token={token}"


def _hours(purpose: TokenPurpose) -> str:
    hours = round(TOKEN_LIFETIME[purpose].total_seconds() / 3600)
    return "1 hour" if hours == 1 else f"{hours} hours"


def account_email(
    purpose: TokenPurpose,
    *,
    to: str,
    sender: str,
    link: str,
    message_id: str,
    now: datetime,
    new_address: bool = False,
) -> EmailMessage:
    """`new_address`: a verification link for an address the account is changing to."""
    email = EmailMessage()
    email["From"] = formataddr((PRODUCT_NAME, sender))
    email["To"] = to
    email["Date"] = format_datetime(now)
    email["Message-ID"] = message_id
    # Not a reply to anything: out-of-office answers should not come back to it.
    email["Auto-Submitted"] = "auto-generated"
    if purpose is TokenPurpose.VERIFY_EMAIL and new_address:
        email["Subject"] = f"Confirm your new email address for {PRODUCT_NAME}"
        text = (
            f"Someone signed in to {PRODUCT_NAME} asked to make {to} the address of their "
            f"account.\n\nTo confirm the change, open this link:\n\n{link}\n\n"
            f"The link works once and expires in {_hours(purpose)}. "
            "Until it is used the account keeps its old address. "
            "If you did not ask, ignore this email.\n"
        )
    elif purpose is TokenPurpose.VERIFY_EMAIL:
        email["Subject"] = f"Confirm your email address for {PRODUCT_NAME}"
        text = (
            f"Welcome to {PRODUCT_NAME}.\n\n"
            f"Confirm that {to} is your address by opening this link:\n\n{link}\n\n"
            f"The link works once and expires in {_hours(purpose)}. "
            "If you did not sign up, ignore this email.\n"
        )
    else:
        email["Subject"] = f"Reset your {PRODUCT_NAME} password"
        text = (
            "Someone asked to reset the password of the account with this address.\n\n"
            f"To choose a new password, open this link:\n\n{link}\n\n"
            f"The link works once and expires in {_hours(purpose)}. "
            "If you did not ask, ignore this email: your password stays as it is.\n"
        )
    email.set_content(text)
    return email
