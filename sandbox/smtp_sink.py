"""An SMTP stand-in for an outbound relay: records every message it is given.

Deliveries land in the same `MailSink` the HTTP endpoint fills (marked `via="smtp"`),
so `GET /mail/messages` on the sandbox shows the demo's replies. Like the HTTP sink it
does not deduplicate: a reply sent twice shows up twice.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from email.parser import BytesParser
from email.policy import default

from aiosmtpd.smtp import SMTP, Envelope, Session

from sandbox.mail_sink import Delivery, MailSink


class SmtpSinkHandler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
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
    sink: MailSink, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[int]:
    """Run the SMTP sink in this event loop until the block exits; yields its port."""
    loop = asyncio.get_running_loop()
    handler = SmtpSinkHandler(sink)
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
