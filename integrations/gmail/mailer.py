"""MailPort that sends replies from the merchant's own Gmail, in the customer's thread."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from integrations.gmail.client import GmailClient
from integrations.ports import OutboundEmail

# Which Gmail thread a reply belongs to (the threadId of the customer's message), or None
# to start a new one. Given the whole email so the caller can key on its message_id.
ThreadIdFor = Callable[[OutboundEmail], Awaitable[str | None]]


class GmailMailer:
    """Gmail takes the recipients from the message's headers, so `email.recipients` must
    match its To/Cc (the reply composer writes both)."""

    def __init__(self, client: GmailClient, thread_id_for: ThreadIdFor) -> None:
        self._client = client
        self._thread_id_for = thread_id_for

    async def send(self, email: OutboundEmail) -> None:
        thread_id = await self._thread_id_for(email)
        await self._client.send(email.raw, thread_id)
