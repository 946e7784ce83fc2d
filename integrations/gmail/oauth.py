"""Google's OAuth 2.0 web-server flow, for the Gmail access a merchant grants deskpilot.

The merchant's browser goes to `authorization_url`; Google sends it back to our redirect URI
with a code, which `exchange_code` trades for tokens. We ask for offline access with a fresh
consent each time, so a (re)connection always yields a refresh token; `refresh` turns that
into new access tokens. Google's consent screen lets a person untick a scope, so a grant is
checked for every scope deskpilot needs.

`invalid_grant` (a used or expired code, a revoked or expired refresh token) raises
`GrantRevoked`: only the merchant reconnecting Gmail can fix it. Transport errors, 429 and
5xx may pass and are retryable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from kernel.errors import IntegrationError
from kernel.http import classify_status, new_http_client, raise_for_transport

GMAIL_SCOPES = (
    "https://www.googleapis.com/auth/gmail.readonly",
    "https://www.googleapis.com/auth/gmail.send",
)
GOOGLE_AUTH_URL = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    refresh_token: str | None
    expires_at: datetime
    scopes: tuple[str, ...]


class GrantRevoked(IntegrationError):
    """Google no longer honours the code or refresh token: the merchant has to reconnect."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"Google refused the Gmail authorization ({detail}); "
            "the merchant needs to reconnect Gmail",
            retryable=False,
        )


class MissingScopes(IntegrationError):
    """The merchant unticked a permission deskpilot needs on Google's consent screen."""

    def __init__(self, missing: tuple[str, ...]) -> None:
        super().__init__(
            "Gmail was connected without the permission(s) deskpilot needs: "
            f"{', '.join(missing)}; reconnect Gmail and allow every requested permission",
            retryable=False,
        )
        self.missing = missing


class GoogleOAuth:
    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        auth_url: str = GOOGLE_AUTH_URL,
        token_url: str = GOOGLE_TOKEN_URL,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._auth_url = auth_url
        self._token_url = token_url
        self._owns_http = http is None
        self._http = http or new_http_client()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    def authorization_url(
        self, redirect_uri: str, state: str, login_hint: str | None = None
    ) -> str:
        """Where to send the merchant's browser; Google returns it to `redirect_uri`."""
        params = {
            "client_id": self._client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": " ".join(GMAIL_SCOPES),
            # offline: we sync while the merchant is away, which needs a refresh token;
            # consent: Google gives a new refresh token only when consent is shown again.
            "access_type": "offline",
            "prompt": "consent",
            "include_granted_scopes": "true",
            "state": state,
        }
        if login_hint:
            params["login_hint"] = login_hint
        return f"{self._auth_url}?{urlencode(params)}"

    async def exchange_code(self, code: str, redirect_uri: str) -> TokenGrant:
        body = await self._token(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            "code exchange",
        )
        return _grant(body, None)

    async def refresh(self, refresh_token: str) -> TokenGrant:
        body = await self._token(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}, "token refresh"
        )
        # Google rarely rotates a refresh token; without a new one the old one stays valid.
        return _grant(body, refresh_token)

    async def _token(self, form: dict[str, str], what: str) -> dict[str, Any]:
        label = f"Google OAuth {what}"
        form = {**form, "client_id": self._client_id, "client_secret": self._client_secret}
        try:
            response = await self._http.post(self._token_url, data=form)
        except httpx.TransportError as exc:
            raise raise_for_transport(exc, label) from exc
        if response.status_code in (400, 401):
            error = _error_code(response)
            if error == "invalid_grant":
                raise GrantRevoked(f"{label}: invalid_grant")
            if error in ("invalid_client", "unauthorized_client"):
                raise IntegrationError(
                    f"{label}: Google refused deskpilot's OAuth client ({error}); "
                    "check the Google client id and secret",
                    retryable=False,
                )
        classify_status(response, label)
        try:
            body = response.json()
        except ValueError as exc:
            raise IntegrationError(f"{label}: answer is not JSON", retryable=True) from exc
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise IntegrationError(f"{label}: answer has no access_token", retryable=True)
        return body


def _error_code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    return error if isinstance(error, str) else None


def _grant(body: dict[str, Any], previous_refresh: str | None) -> TokenGrant:
    # RFC 6749 §5.1: an absent scope means the scopes that were asked for.
    scope = body.get("scope")
    scopes = tuple(scope.split()) if isinstance(scope, str) else GMAIL_SCOPES
    missing = tuple(s for s in GMAIL_SCOPES if s not in scopes)
    if missing:
        raise MissingScopes(missing)
    return TokenGrant(
        access_token=body["access_token"],
        refresh_token=body.get("refresh_token") or previous_refresh,
        expires_at=datetime.now(UTC) + timedelta(seconds=int(body.get("expires_in") or 0)),
        scopes=scopes,
    )
