"""Structured logs keep URL-borne secrets out."""

from __future__ import annotations

import json
import logging

from kernel.logs import JsonFormatter


def _formatted(message: str, *args: object) -> dict[str, object]:
    record = logging.makeLogRecord({"msg": message, "args": args, "name": "uvicorn.access"})
    return json.loads(JsonFormatter().format(record))


def test_push_tokens_and_oauth_codes_are_redacted_from_request_lines() -> None:
    line = _formatted(
        '%s - "%s %s HTTP/1.1" %d',
        "127.0.0.1:5000",
        "POST",
        "/gmail/push?token=s3cr3t-push&x=1",
        204,
    )
    assert "s3cr3t-push" not in str(line["msg"])
    assert "/gmail/push?token=[redacted]&x=1" in str(line["msg"])
    callback = _formatted("GET /gmail/callback?state=abc123&code=4/0Ab-xyz&scope=gmail")["msg"]
    assert "abc123" not in str(callback) and "4/0Ab-xyz" not in str(callback)
    assert "scope=gmail" in str(callback)


def test_ordinary_messages_are_untouched() -> None:
    assert _formatted("inbound email stored")["msg"] == "inbound email stored"
    assert _formatted("a token= without a URL stays")["msg"] == "a token= without a URL stays"
