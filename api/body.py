"""Reading a raw request body with a size limit (inbound mail, Shopify webhooks)."""

from __future__ import annotations

from fastapi import Request

from kernel.errors import TooLarge


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes the limit instead of buffering it all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is {declared} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
