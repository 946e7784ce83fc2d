"""The opaque cursor of a keyset page: the (time, id) of its last row, so the next page
starts strictly after it. Shared by every listing that pages this way."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime

from kernel.errors import Invalid


class InvalidCursorError(Invalid, ValueError):
    """A cursor this API did not issue (or one that was altered)."""


def encode_keyset(at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([at.isoformat(), str(row_id)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_keyset(value: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        at, row_id = json.loads(raw)
        parsed = datetime.fromisoformat(at), uuid.UUID(row_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCursorError("the cursor is not one this API issued") from exc
    if parsed[0].tzinfo is None:
        raise InvalidCursorError("the cursor is not one this API issued")
    return parsed
