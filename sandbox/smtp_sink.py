"""An SMTP stand-in for an outbound relay: records every message it is given.

Deliveries land in the same `MailSink` the HTTP endpoint fills (marked `via="smtp"`),
so `GET /mail/messages` on the sandbox shows the demo's replies. Like the HTTP sink it
does not deduplicate: a reply sent twice shows up twice.

With a `MailRelay`, mail for one domain is also passed on to that domain's mail server, as a
real relay would look up the MX: the demo's inbound domain reaches deskpilot's own SMTP
receiver, so a test email to an alias arrives.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import default

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

from sandbox.mail_sink import Delivery, MailSink


@dataclass(frozen=True)
class MailRelay:
    """Where mail for `domain` goes next: the host and port its MX would name."""

    domain: str
    host: str
    port: int


class SmtpSinkHandler:
    def __init__(self, sink: MailSink, relay: MailRelay | None = None) -> None:
        self.sink = sink
        self.relay = relay

    async def _pass_on(self, envelope: Envelope, raw: bytes) -> str | None:
        """Hand the relay's recipients to the next hop; an SMTP reply to give the sender
        when it did not take them (the sender keeps the message and retries on a 4xx)."""
        if self.relay is None:
            return None
        domain = self.relay.domain.lower()
        rcpts = [r for r in envelope.rcpt_tos if r.rpartition("@")[2].lower() == domain]
        if not rcpts:
            return None
        try:
            await aiosmtplib.send(
                raw,
                sender=envelope.mail_from or "",
                recipients=rcpts,
                hostname=self.relay.host,
                port=self.relay.port,
                start_tls=False,
                use_tls=False,
                timeout=30,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0]
            return f"{refused.code} {refused.message}"
        except aiosmtplib.SMTPResponseException as exc:
            return f"{exc.code} {exc.message}"
        except (aiosmtplib.SMTPException, OSError) as exc:
            return f"451 4.4.1 the next hop for @{domain} did not answer: {exc}"
        return None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        refused = await self._pass_on(envelope, raw)
        if refused is not None:
            return refused  # not recorded: the sender's retry is the delivery
        headers = BytesParser(policy=default).parsebytes(raw, headersonly=True)
        self.sink.record(
            Delivery(
                message_id=str(headers.get("Message-ID", "")),
                sender=envelope.mail_from or "",
                recipients=list(envelope.rcpt_tos),
                raw_b64=base64.b64encode(raw).decode("ascii"),
                via="smtp",
            )
        )
        return "250 2.0.0 OK: recorded"


@contextlib.asynccontextmanager
async def serving_smtp_sink(
    sink: MailSink, host: str = "127.0.0.1", port: int = 0, *, relay: MailRelay | None = None
) -> AsyncIterator[int]:
    """Run the SMTP sink in this event loop until the block exits; yields its port."""
    loop = asyncio.get_running_loop()
    handler = SmtpSinkHandler(sink, relay)
    connections: list[SMTP] = []

    def connection() -> SMTP:
        protocol = SMTP(handler, hostname="sink.sandbox", decode_data=False, loop=loop)
        connections.append(protocol)
        return protocol

    server = await loop.create_server(connection, host, port)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        # A client still connected would keep wait_closed waiting; a sink has nothing to finish.
        for protocol in connections:
            if protocol.transport is not None:
                protocol.transport.close()
        await server.wait_closed()
