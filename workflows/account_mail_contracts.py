"""Names and messages of the AccountMailWorkflow, shared by the API, worker and tests."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from domain.account_tokens import TokenPurpose

ACCOUNT_MAIL_WORKFLOW = "AccountMailWorkflow"
SEND_ACCOUNT_MAIL = "send_account_mail"


class AccountMailInput(BaseModel):
    """Which link to send. A reset names the address typed into the form: the worker looks
    the account up, so the API answers the same whether or not one exists. No token is
    in here: the activity makes it, so Temporal's history holds no usable link."""

    purpose: TokenPurpose
    user_id: uuid.UUID | None = None  # verify_email
    email: str | None = None  # reset_password
    # verify_email for an address change: the link goes to this address, not the account's.
    new_email: str | None = None


class AccountMailOutcome(BaseModel):
    note: str  # "sent", or why nothing was sent
