"""A stand-in for Google's OAuth 2.0 endpoints (web-server flow) in front of the Gmail sandbox.

The consent screen is skipped: an authorization request signs in as a sandbox mailbox (the
`login_hint`, else `default_account`, else the first mailbox) and consents at once, unless
`deny_next` is set. Errors follow Google's: a bad client or redirect URI is shown to the
person (no redirect, so no code can leak to an unregistered URI); the token endpoint answers
`invalid_grant`, `invalid_client`, ... in JSON. Access tokens come from
`GmailSandbox.issue_token`, so the Gmail routes accept them and enforce their scopes.
"""

from __future__ import annotations

import base64
import binascii
import html
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from sandbox.gmail import (
    GMAIL_COMPOSE,
    GMAIL_MODIFY,
    GMAIL_READONLY,
    GMAIL_SEND,
    MAIL_GOOGLE,
    GmailSandbox,
)

AUTH_PATH = "/o/oauth2/v2/auth"
TOKEN_PATH = "/token"
REVOKE_PATH = "/revoke"
# Scopes a request may name; Google refuses others with invalid_scope.
KNOWN_SCOPES = frozenset(
    {
        MAIL_GOOGLE,
        GMAIL_READONLY,
        GMAIL_MODIFY,
        GMAIL_COMPOSE,
        GMAIL_SEND,
        "https://www.googleapis.com/auth/gmail.metadata",
        "https://www.googleapis.com/auth/userinfo.email",
        "https://www.googleapis.com/auth/userinfo.profile",
        "openid",
        "email",
        "profile",
    }
)
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    redirect_uris: list[str] | None  # None: any loopback URI, as for a local demo


@dataclass
class Grant:
    """What one code exchange handed out; revoking it ends all of its tokens."""

    client_id: str
    account: str
    scopes: tuple[str, ...]
    refresh_token: str | None = None
    access_tokens: list[str] = field(default_factory=list)
    revoked: bool = False


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    account: str
    scopes: tuple[str, ...]
    offline: bool
    consent_prompted: bool
    expires_at: float  # time.monotonic()
    grant: Grant | None = None  # set once exchanged: a second exchange is refused


def _page(status: int, error: str, detail: str) -> HTMLResponse:
    """Google's error screen: shown to the person, not sent to the app."""
    text = f"Error {status}: {error}"
    body = f"<!doctype html><title>{text}</title><h1>{text}</h1><p>{html.escape(detail)}</p>"
    return HTMLResponse(body, status_code=status)


def _token_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(x for x in (parts.query, urlencode(params)) if x)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _is_loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK_HOSTS


class GoogleOAuthSandbox:
    def __init__(self, gmail: GmailSandbox) -> None:
        self.gmail = gmail
        self.clients: dict[str, OAuthClient] = {}
        self.default_account: str | None = None
        self.deny_next = False  # the next person to see the consent screen refuses it
        # Scopes the consenting person leaves unticked (Google's consent is per scope).
        self.withhold_scopes: set[str] = set()
        self.access_token_lifetime_s: float = 3599
        self.code_lifetime_s: float = 600
        self._codes: dict[str, AuthCode] = {}
        self._grants: list[Grant] = []
        # Per (client, account): scopes granted so far, and whether a refresh token was given.
        self._granted: dict[tuple[str, str], set[str]] = {}
        self._offline: set[tuple[str, str]] = set()

    def register_client(
        self, client_id: str, client_secret: str, redirect_uris: list[str] | None = None
    ) -> OAuthClient:
        client = OAuthClient(client_id, client_secret, redirect_uris)
        self.clients[client_id] = client
        return client

    def revoke(self, token: str) -> bool:
        """The account holder removes the app's access (or the app revokes a token): every
        token the client holds for that account stops working. False if the token is unknown."""
        grant = self._grant_for(token)
        if grant is None:
            return False
        for other in self._grants:
            if (other.client_id, other.account) == (grant.client_id, grant.account):
                self._end(other)
        self._granted.pop((grant.client_id, grant.account), None)
        self._offline.discard((grant.client_id, grant.account))
        return True

    def _grant_for(self, token: str) -> Grant | None:
        for grant in self._grants:
            if not grant.revoked and (token == grant.refresh_token or token in grant.access_tokens):
                return grant
        return None

    def _end(self, grant: Grant) -> None:
        grant.revoked = True
        for access_token in grant.access_tokens:
            self.gmail.revoke_token(access_token)

    def _account(self, login_hint: str | None) -> str | None:
        # A hint is only a hint: Google lets the person pick another account.
        addresses = [m.address for m in self.gmail.mailboxes()]
        for wanted in (login_hint, self.default_account):
            for address in addresses:
                if wanted and address.lower() == wanted.lower():
                    return address
        return addresses[0] if addresses else None

    # the endpoints

    def authorize(self, params: dict[str, str]) -> Response:
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return _page(401, "invalid_client", "The OAuth client was not found.")
        redirect_uri = params.get("redirect_uri", "")
        allowed = (
            redirect_uri in client.redirect_uris
            if client.redirect_uris is not None
            else _is_loopback(redirect_uri)
        )
        if not allowed:
            return _page(
                400,
                "redirect_uri_mismatch",
                f"redirect_uri={redirect_uri or '(missing)'} is not registered for this client.",
            )
        if params.get("response_type") != "code":
            return _page(400, "invalid_request", "response_type must be 'code'.")
        requested = params.get("scope", "").split()
        if not requested:
            return _page(400, "invalid_request", "Missing required parameter: scope")
        unknown = [s for s in requested if s not in KNOWN_SCOPES]
        if unknown:
            return _page(400, "invalid_scope", f"Some requested scopes were invalid: {unknown}")
        account = self._account(params.get("login_hint"))
        if account is None:
            return _page(400, "invalid_request", "The sandbox has no mailbox to sign in with.")

        state = {"state": params["state"]} if "state" in params else {}
        if self.deny_next:
            self.deny_next = False
            return RedirectResponse(
                _with_query(redirect_uri, {"error": "access_denied", **state}), status_code=302
            )
        granted = [s for s in requested if s not in self.withhold_scopes]
        key = (client.client_id, account)
        if params.get("include_granted_scopes") == "true":
            granted += sorted(self._granted.get(key, set()) - set(granted))
        self._granted.setdefault(key, set()).update(granted)
        code = f"4/0{secrets.token_urlsafe(32)}"
        self._codes[code] = AuthCode(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            account=account,
            scopes=tuple(granted),
            offline=params.get("access_type") == "offline",
            consent_prompted="consent" in params.get("prompt", "").split(),
            expires_at=time.monotonic() + self.code_lifetime_s,
        )
        location = _with_query(redirect_uri, {"code": code, **state, "scope": " ".join(granted)})
        return RedirectResponse(location, status_code=302)

    def token(self, form: dict[str, str], authorization: str | None) -> JSONResponse:
        client = self._authenticate(form, authorization)
        if isinstance(client, JSONResponse):
            return client
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            return self._exchange(client, form)
        if grant_type == "refresh_token":
            return self._refresh(client, form)
        return _token_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _authenticate(
        self, form: dict[str, str], authorization: str | None
    ) -> OAuthClient | JSONResponse:
        """The client by HTTP Basic (RFC 6749 §2.3.1) or by client_id/client_secret fields."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return _token_error(401, "invalid_client", "Unauthorized")
            raw_id, _, raw_secret = decoded.partition(":")
            client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if not client_id:
            return _token_error(
                400, "invalid_request", "Could not determine client ID from request."
            )
        client = self.clients.get(client_id)
        if client is None:
            return _token_error(401, "invalid_client", "The OAuth client was not found.")
        if not secret or not secrets.compare_digest(secret, client.client_secret):
            return _token_error(401, "invalid_client", "Unauthorized")
        return client

    def _exchange(self, client: OAuthClient, form: dict[str, str]) -> JSONResponse:
        code = form.get("code")
        if not code:
            return _token_error(400, "invalid_request", "Missing required parameter: code")
        record = self._codes.get(code)
        if record is None or record.client_id != client.client_id:
            return _token_error(400, "invalid_grant", "Bad Request")
        if record.grant is not None:
            # A replayed code may have been stolen: end what the first exchange handed out.
            self._end(record.grant)
            return _token_error(400, "invalid_grant", "Bad Request")
        if record.expires_at <= time.monotonic():
            return _token_error(400, "invalid_grant", "Bad Request")
        if form.get("redirect_uri") != record.redirect_uri:
            return _token_error(400, "redirect_uri_mismatch", "Bad Request")

        grant = Grant(client.client_id, record.account, record.scopes)
        record.grant = grant
        self._grants.append(grant)
        key = (client.client_id, record.account)
        # Google hands out a refresh token for offline access once per client and account,
        # and again only when the consent screen was shown anew (prompt=consent).
        if record.offline and (record.consent_prompted or key not in self._offline):
            grant.refresh_token = f"1//0{secrets.token_urlsafe(48)}"
            self._offline.add(key)
        body = self._access_answer(grant)
        if grant.refresh_token:
            body["refresh_token"] = grant.refresh_token
        return JSONResponse(body)

    def _refresh(self, client: OAuthClient, form: dict[str, str]) -> JSONResponse:
        token = form.get("refresh_token") or ""
        grant = next((g for g in self._grants if token and g.refresh_token == token), None)
        if grant is None or grant.revoked or grant.client_id != client.client_id:
            return _token_error(400, "invalid_grant", "Token has been expired or revoked.")
        return JSONResponse(self._access_answer(grant))

    def _access_answer(self, grant: Grant) -> dict[str, Any]:
        access_token = self.gmail.issue_token(
            grant.account, lifetime_s=self.access_token_lifetime_s, scopes=grant.scopes
        )
        grant.access_tokens.append(access_token)
        return {
            "access_token": access_token,
            "expires_in": int(self.access_token_lifetime_s),
            "scope": " ".join(grant.scopes),
            "token_type": "Bearer",
        }

    def router(self) -> APIRouter:
        api = APIRouter()

        @api.get(AUTH_PATH)
        async def authorize(request: Request) -> Response:
            return self.authorize(dict(request.query_params))

        @api.post(TOKEN_PATH)
        async def token(request: Request) -> JSONResponse:
            form = dict(
                parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True)
            )
            return self.token(form, request.headers.get("Authorization"))

        @api.post(REVOKE_PATH)
        async def revoke(request: Request) -> JSONResponse:
            form = dict(
                parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True)
            )
            token = form.get("token") or request.query_params.get("token") or ""
            if not self.revoke(token):
                return _token_error(400, "invalid_token", "Token expired or revoked")
            return JSONResponse({})

        return api
