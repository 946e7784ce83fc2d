"""Shopify's signatures and domains, checked without I/O; the webhook mutation is valid."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from integrations.shopify.documents import WEBHOOK_SUBSCRIPTION_CREATE
from integrations.shopify_verify import (
    fresh_timestamp,
    valid_shop_domain,
    verify_oauth_query,
    verify_webhook,
)
from sandbox.shopify.schema import validation_errors

SECRET = "hush"


def _signed(params: dict[str, str]) -> dict[str, str]:
    # Written out independently of the module under test, as Shopify's docs describe it.
    message = "&".join(f"{k}={params[k]}" for k in sorted(params))
    digest = hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
    return params | {"hmac": digest}


def test_oauth_query_signature() -> None:
    params = _signed({"shop": "a.myshopify.com", "timestamp": "1700000000", "host": "YWJj"})
    assert verify_oauth_query(params, SECRET)
    assert verify_oauth_query(params | {"signature": "ignored"}, SECRET)
    assert not verify_oauth_query(params, "other-secret")
    assert not verify_oauth_query(params | {"shop": "b.myshopify.com"}, SECRET)
    assert not verify_oauth_query({k: v for k, v in params.items() if k != "hmac"}, SECRET)
    assert not verify_oauth_query(params | {"hmac": "0" * 64}, SECRET)


def test_shop_domains() -> None:
    assert valid_shop_domain("my-store.myshopify.com")
    assert valid_shop_domain("1shop.myshopify.com")
    for bad in (
        "",
        None,
        "-shop.myshopify.com",
        "Shop.myshopify.com",
        "shop.myshopify.com.evil.test",
        "evil.test/shop.myshopify.com",
        "shop.example.com",
        "a.b.myshopify.com",
        "shop.myshopify.com\n",
    ):
        assert not valid_shop_domain(bad), bad


def test_timestamps() -> None:
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    ts = int(now.timestamp())
    assert fresh_timestamp(str(ts), now)
    assert fresh_timestamp(str(ts - 90), now)
    assert fresh_timestamp(str(ts + 60), now)
    assert not fresh_timestamp(str(ts - 91), now)
    assert not fresh_timestamp(str(ts + 3600), now)
    assert not fresh_timestamp("yesterday", now)
    assert not fresh_timestamp(None, now)
    assert fresh_timestamp(str(ts - 200), now, tolerance=timedelta(minutes=5))


def test_webhook_signature() -> None:
    body = b'{"id": 1, "name": "#1001"}'
    header = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert verify_webhook(body, header, SECRET)
    assert not verify_webhook(body + b" ", header, SECRET)
    assert not verify_webhook(body, header, "other")
    assert not verify_webhook(body, None, SECRET)
    assert not verify_webhook(body, "not base64!!", SECRET)


def test_webhook_subscription_document_validates_against_the_2026_10_schema() -> None:
    assert validation_errors(WEBHOOK_SUBSCRIPTION_CREATE) == []
