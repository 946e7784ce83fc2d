"""MailPort that hands replies to the sandbox mail sink over HTTP (when no SMTP relay is set)."""

from __future__ import annotations

import base64

import httpx

from kernel.errors import IntegrationError
from kernel.http import classify_status, new_http_client, raise_for_transport
from kernel.values import OutboundEmail


class SandboxMailer:
    def __init__(self, base_url: str, http: httpx.AsyncClient | None = None) -> None:
        self._url = f"{base_url.rstrip('/')}/mail/messages"
        self._http = http or new_http_client()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, email: OutboundEmail) -> None:
        body = {
            "message_id": email.message_id,
            "sender": email.sender,
            "recipients": email.recipients,
            "raw_b64": base64.b64encode(email.raw).decode("ascii"),
        }
        try:
            response = await self._http.post(self._url, json=body)
        except httpx.TransportError as exc:
            raise raise_for_transport(exc, "send reply") from exc
        classify_status(response, "send reply")


class NoMailer:
    """MailPort for a worker with no outbound mail configured: every send fails, saying why."""

    async def send(self, email: OutboundEmail) -> None:
        raise IntegrationError(
            "no outbound mail is configured (set SMTP_HOST, or DESKPILOT_SANDBOX_URL for the demo mail sink)",
            retryable=False,
        )
