"""Checks on what Shopify sends us: OAuth query strings, shop domains, webhook bodies.

Pure functions, no I/O: the API routes call them and tests exercise them directly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timedelta

_SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
# Shopify's own clock and ours may differ a little; a replayed install link should not work.
TIMESTAMP_TOLERANCE = timedelta(seconds=90)
# Parameters that carry signatures rather than signed data.
_UNSIGNED = frozenset({"hmac", "signature"})


def oauth_message(params: Mapping[str, str]) -> str:
    """The string Shopify signs: every other parameter, sorted, joined as k=v&k=v."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in _UNSIGNED)


def sign_oauth_query(params: Mapping[str, str], secret: str) -> str:
    """The hex HMAC-SHA256 Shopify would put in `hmac` for these parameters."""
    return hmac.new(secret.encode(), oauth_message(params).encode(), hashlib.sha256).hexdigest()


def verify_oauth_query(params: Mapping[str, str], secret: str) -> bool:
    received = params.get("hmac")
    if not received:
        return False
    return hmac.compare_digest(sign_oauth_query(params, secret), received.lower())


def valid_shop_domain(shop: str | None) -> bool:
    return bool(shop) and _SHOP_DOMAIN.fullmatch(shop or "") is not None


def fresh_timestamp(
    ts: str | int | None, now: datetime, tolerance: timedelta = TIMESTAMP_TOLERANCE
) -> bool:
    """True when `ts` (Unix seconds) is within `tolerance` of `now`, either way."""
    try:
        seconds = int(ts) if ts is not None else None
    except (TypeError, ValueError):
        return False
    if seconds is None:
        return False
    return abs(now.timestamp() - seconds) <= tolerance.total_seconds()


def sign_webhook(raw_body: bytes, secret: str) -> str:
    """The base64 HMAC-SHA256 Shopify sends in X-Shopify-Hmac-Sha256."""
    digest = hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_webhook(raw_body: bytes, header_b64: str | None, secret: str) -> bool:
    if not header_b64:
        return False
    # A header that is not base64 at all is simply a bad signature, not an error.
    try:
        received = base64.b64decode(header_b64.strip(), validate=True)
    except (ValueError, TypeError):
        return False
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()
    return hmac.compare_digest(expected, received)
