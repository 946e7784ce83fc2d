"""The address of a new forwarding alias: readable (from the store's name) and unguessable
(a random tail), so mail cannot be sent to a merchant's inbox by guessing its alias."""

from __future__ import annotations

import re
import secrets

MAX_SLUG_CHARS = 24
TAIL_BYTES = 4  # 8 hex digits after the slug


def alias_slug(store_name: str) -> str:
    """The store's name as a lowercase dot-atom part: letters, digits and single hyphens."""
    ascii_only = store_name.encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_only).strip("-")
    return slug[:MAX_SLUG_CHARS].rstrip("-") or "support"


def alias_address(store_name: str, inbound_domain: str, tail: str | None = None) -> str:
    tail = tail if tail is not None else secrets.token_hex(TAIL_BYTES)
    return f"{alias_slug(store_name)}-{tail}@{inbound_domain.lower()}"
