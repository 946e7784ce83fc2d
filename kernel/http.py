"""The one way to build an outbound HTTP client, and how its failures are classified."""

from __future__ import annotations

import httpx

from kernel.errors import IntegrationError
from kernel.logs import redact


def new_http_client(*, timeout: float = 15.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False)


def raise_for_transport(exc: httpx.TransportError, what: str) -> IntegrationError:
    """Timeouts and refused connections may pass: retry them."""
    return IntegrationError(f"{what}: {type(exc).__name__}: {exc}", retryable=True)


def classify_status(response: httpx.Response, what: str) -> None:
    """429 and 5xx may pass; any other error status will not."""
    if response.is_success:
        return
    retryable = response.status_code == 429 or response.status_code >= 500
    raise IntegrationError(
        f"{what}: HTTP {response.status_code}: {redact(response.text[:300])}", retryable=retryable
    )
