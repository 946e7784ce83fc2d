"""An in-process stand-in for an outbound mail server: records every delivery.

It does not deduplicate, so a reply sent twice shows up twice: the tests count on that.
"""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field


class Delivery(BaseModel):
    message_id: str
    sender: str
    recipients: list[str]
    raw_b64: str
    via: Literal["http", "smtp"] = "http"  # the HTTP endpoint or the SMTP sink
    # When the sink took the message (set by the sink, whatever a client sends).
    received_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class MailSink:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()

    def record(self, delivery: Delivery) -> None:
        stamped = delivery.model_copy(update={"received_at": datetime.now(UTC)})
        with self._lock:
            self.deliveries.append(stamped)

    def raw(self, index: int) -> bytes:
        return base64.b64decode(self.deliveries[index].raw_b64)


def router(sink: MailSink) -> APIRouter:
    api = APIRouter(prefix="/mail")

    @api.post("/messages", status_code=202)
    async def deliver(delivery: Delivery) -> dict[str, str]:
        sink.record(delivery)
        return {"status": "queued"}

    @api.get("/messages")
    async def deliveries() -> list[dict[str, Any]]:
        return [d.model_dump(mode="json") for d in sink.deliveries]

    return api
