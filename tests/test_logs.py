"""Structured logs keep secrets out: in URLs, in extra fields, in tracebacks, in vendor bodies."""

from __future__ import annotations

import json
import logging
import sys

import httpx
import pytest

from kernel.errors import IntegrationError
from kernel.http import classify_status
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


def test_secrets_in_extra_fields_and_tracebacks_are_redacted() -> None:
    try:
        raise RuntimeError('vendor said {"access_token": "ya29.a0Af-secret-token", "x": 1}')
    except RuntimeError:
        record = logging.makeLogRecord(
            {
                "msg": "refresh failed",
                "name": "deskpilot",
                "exc_info": sys.exc_info(),
                "authorization": "Bearer dpk_abcdefghijklmnopqrstuvwxyz",
                "shop_token": "shpat_0123456789abcdef",
            }
        )
    line = JsonFormatter().format(record)
    for secret in ("a0Af-secret-token", "abcdefghijklmnop", "0123456789abcdef"):
        assert secret not in line
    entry = json.loads(line)  # still one valid JSON object
    assert entry["authorization"] == "Bearer [redacted]" and entry["shop_token"] == "[redacted]"
    assert '\\"access_token\\": \\"[redacted]' in line and entry["msg"] == "refresh failed"


def test_a_vendor_error_body_is_cut_short_and_redacted() -> None:
    body = '{"error": "invalid_grant", "refresh_token": "1//0g-secret"}' + "x" * 5_000
    response = httpx.Response(400, text=body, request=httpx.Request("POST", "https://v.test"))
    with pytest.raises(IntegrationError) as caught:
        classify_status(response, "token refresh")
    assert "1//0g-secret" not in caught.value.message and "invalid_grant" in caught.value.message
    assert len(caught.value.message) < 400
