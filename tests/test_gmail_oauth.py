"""Connecting Gmail: Google's OAuth web-server flow against the sandbox over loopback, from
the authorization redirect to Gmail calls with the tokens, and every way it can go wrong."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from integrations.gmail.client import AccessTokenRejected
from integrations.gmail.oauth import (
    GMAIL_SCOPES,
    GoogleOAuth,
    GrantRevoked,
    MissingScopes,
    TokenGrant,
)
from kernel.errors import IntegrationError
from sandbox.server import serve_app
from tests.gmail_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    MERCHANT,
    REDIRECT_URI,
    ServedGoogle,
    email_bytes,
    follow_consent,
    served_google,
)

OTHER_MAILBOX = "owner@other-store.example"


@pytest.fixture
async def google() -> AsyncIterator[ServedGoogle]:
    async with served_google() as served:
        yield served


async def connect(google: ServedGoogle, oauth: GoogleOAuth, state: str = "st-1") -> TokenGrant:
    _, params = await follow_consent(oauth.authorization_url(REDIRECT_URI, state))
    assert params["state"] == state
    return await oauth.exchange_code(params["code"], REDIRECT_URI)


async def test_connect_use_expire_refresh(google: ServedGoogle) -> None:
    google.gmail.add_mailbox(OTHER_MAILBOX)
    oauth = google.oauth()
    try:
        url = oauth.authorization_url(REDIRECT_URI, "st-42", login_hint=OTHER_MAILBOX)
        asked = dict(parse_qsl(urlsplit(url).query))
        assert asked == {
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": " ".join(GMAIL_SCOPES),
            "access_type": "offline",
            "prompt": "consent",
            "include_granted_scopes": "true",
            "state": "st-42",
            "login_hint": OTHER_MAILBOX,
        }
        where, params = await follow_consent(url)
        assert where == REDIRECT_URI
        assert params["state"] == "st-42"
        assert params["scope"].split() == list(GMAIL_SCOPES)

        grant = await oauth.exchange_code(params["code"], REDIRECT_URI)
        assert grant.refresh_token
        assert grant.scopes == GMAIL_SCOPES
        expected_expiry = datetime.now(UTC) + timedelta(seconds=3599)
        assert abs((grant.expires_at - expected_expiry).total_seconds()) < 5

        gmail = google.gmail_client(grant.access_token)
        try:
            profile = await gmail.profile()  # the login hint chose the account
            assert profile.email_address == OTHER_MAILBOX
            assert profile.history_id == google.gmail.mailbox(OTHER_MAILBOX).history_id
            sent = await gmail.send(email_bytes("Hello", sender=OTHER_MAILBOX)[0])
            assert google.gmail.sent(OTHER_MAILBOX)[0].id == sent.id

            assert google.gmail.expire_tokens(OTHER_MAILBOX) == 1
            with pytest.raises(AccessTokenRejected, match="HTTP 401") as caught:
                await gmail.profile()
            assert caught.value.retryable is False
        finally:
            await gmail.aclose()

        renewed = await oauth.refresh(grant.refresh_token)
        assert renewed.access_token != grant.access_token
        assert renewed.refresh_token == grant.refresh_token  # Google sent none: keep ours
        assert renewed.scopes == GMAIL_SCOPES
        gmail = google.gmail_client(renewed.access_token)
        try:
            assert (await gmail.profile()).email_address == OTHER_MAILBOX
        finally:
            await gmail.aclose()
    finally:
        await oauth.aclose()


async def test_a_token_expires_on_its_own(google: ServedGoogle) -> None:
    google.google.access_token_lifetime_s = 2
    oauth = google.oauth()
    try:
        grant = await connect(google, oauth)
    finally:
        await oauth.aclose()
    assert grant.expires_at < datetime.now(UTC) + timedelta(seconds=3)
    headers = {"Authorization": f"Bearer {grant.access_token}"}
    async with httpx.AsyncClient(base_url=google.url, headers=headers) as http:
        assert (await http.get("/gmail/v1/users/me/profile")).status_code == 200
        await asyncio.sleep(2.1)
        expired = await http.get("/gmail/v1/users/me/profile")
    assert expired.status_code == 401
    assert expired.json()["error"]["status"] == "UNAUTHENTICATED"


async def test_a_revoked_grant_must_be_reconnected(google: ServedGoogle) -> None:
    oauth = google.oauth()
    try:
        grant = await connect(google, oauth)
        assert grant.refresh_token is not None
        assert google.google.revoke(grant.refresh_token)  # the merchant removed our access
        with pytest.raises(GrantRevoked, match="reconnect Gmail") as caught:
            await oauth.refresh(grant.refresh_token)
        assert caught.value.retryable is False
        with pytest.raises(GrantRevoked):
            await oauth.refresh("1//0never-issued")
        gmail = google.gmail_client(grant.access_token)
        try:
            with pytest.raises(AccessTokenRejected):
                await gmail.profile()
        finally:
            await gmail.aclose()

        # Revoking through the endpoint, as an app does when a merchant disconnects.
        again = await connect(google, oauth)
        async with httpx.AsyncClient(base_url=google.url) as http:
            done = await http.post("/revoke", data={"token": again.access_token})
            assert (done.status_code, done.json()) == (200, {})
            twice = await http.post("/revoke", params={"token": again.access_token})
            assert twice.status_code == 400
            assert twice.json()["error"] == "invalid_token"
        assert again.refresh_token is not None
        with pytest.raises(GrantRevoked):
            await oauth.refresh(again.refresh_token)
    finally:
        await oauth.aclose()


async def test_a_code_works_once_and_a_replay_ends_its_tokens(google: ServedGoogle) -> None:
    oauth = google.oauth()
    try:
        _, params = await follow_consent(oauth.authorization_url(REDIRECT_URI, "s"))
        grant = await oauth.exchange_code(params["code"], REDIRECT_URI)
        with pytest.raises(GrantRevoked):
            await oauth.exchange_code(params["code"], REDIRECT_URI)
        assert grant.refresh_token is not None
        with pytest.raises(GrantRevoked):
            await oauth.refresh(grant.refresh_token)
    finally:
        await oauth.aclose()
    answer = await _token_request(google, {"grant_type": "authorization_code", "code": "4/0x"})
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "Bad Request"},
    )


async def test_an_expired_code_or_another_redirect_uri_is_refused(google: ServedGoogle) -> None:
    oauth = google.oauth()
    try:
        google.google.code_lifetime_s = 0
        _, params = await follow_consent(oauth.authorization_url(REDIRECT_URI, "s"))
        with pytest.raises(GrantRevoked):
            await oauth.exchange_code(params["code"], REDIRECT_URI)

        google.google.code_lifetime_s = 600
        _, params = await follow_consent(oauth.authorization_url(REDIRECT_URI, "s"))
        with pytest.raises(IntegrationError, match="redirect_uri_mismatch") as caught:
            await oauth.exchange_code(params["code"], "http://127.0.0.1:8000/elsewhere")
        assert caught.value.retryable is False
    finally:
        await oauth.aclose()


async def test_a_bad_redirect_uri_or_client_stops_at_google(google: ServedGoogle) -> None:
    oauth = google.oauth()
    try:
        mismatched = oauth.authorization_url("http://127.0.0.1:8000/evil", "s")
    finally:
        await oauth.aclose()
    stranger = GoogleOAuth("unknown-client", "x", auth_url=f"{google.url}/o/oauth2/v2/auth")
    try:
        unknown = stranger.authorization_url(REDIRECT_URI, "s")
    finally:
        await stranger.aclose()
    async with httpx.AsyncClient(follow_redirects=False) as browser:
        page = await browser.get(mismatched)
        assert page.status_code == 400
        assert "location" not in page.headers
        assert "Error 400: redirect_uri_mismatch" in page.text
        page = await browser.get(unknown)
        assert page.status_code == 401
        assert "location" not in page.headers
        assert "invalid_client" in page.text


async def test_any_loopback_redirect_when_none_are_registered(google: ServedGoogle) -> None:
    google.google.register_client("demo-client", "demo-secret")
    oauth = GoogleOAuth(
        "demo-client",
        "demo-secret",
        auth_url=f"{google.url}/o/oauth2/v2/auth",
        token_url=f"{google.url}/token",
    )
    try:
        where, _ = await follow_consent(oauth.authorization_url("http://localhost:5173/cb", "s"))
        assert where == "http://localhost:5173/cb"
        async with httpx.AsyncClient(follow_redirects=False) as browser:
            page = await browser.get(oauth.authorization_url("https://example.com/cb", "s"))
        assert page.status_code == 400
        assert "redirect_uri_mismatch" in page.text
    finally:
        await oauth.aclose()


async def test_who_signs_in(google: ServedGoogle) -> None:
    """The login hint if it names a mailbox, else the default account, else the first."""
    google.gmail.add_mailbox(OTHER_MAILBOX)
    oauth = google.oauth()
    try:
        signed_in = []
        for hint, default in ((None, None), (None, OTHER_MAILBOX), ("nobody@x.example", None)):
            google.google.default_account = default
            _, params = await follow_consent(oauth.authorization_url(REDIRECT_URI, "s", hint))
            grant = await oauth.exchange_code(params["code"], REDIRECT_URI)
            gmail = google.gmail_client(grant.access_token)
            try:
                signed_in.append((await gmail.profile()).email_address)
            finally:
                await gmail.aclose()
    finally:
        await oauth.aclose()
    assert signed_in == [MERCHANT, OTHER_MAILBOX, MERCHANT]


async def test_a_refused_consent_comes_back_with_access_denied(google: ServedGoogle) -> None:
    google.google.deny_next = True
    oauth = google.oauth()
    try:
        where, params = await follow_consent(oauth.authorization_url(REDIRECT_URI, "st-9"))
        assert where == REDIRECT_URI
        assert params == {"error": "access_denied", "state": "st-9"}
        _, params = await follow_consent(oauth.authorization_url(REDIRECT_URI, "st-10"))
        assert "code" in params  # only the next consent was refused
    finally:
        await oauth.aclose()


async def test_an_unticked_scope_is_named(google: ServedGoogle) -> None:
    send_scope = "https://www.googleapis.com/auth/gmail.send"
    google.google.withhold_scopes = {send_scope}
    oauth = google.oauth()
    try:
        with pytest.raises(MissingScopes, match=r"gmail\.send") as caught:
            await connect(google, oauth)
        assert caught.value.missing == (send_scope,)
        assert caught.value.retryable is False
    finally:
        await oauth.aclose()


async def test_refresh_tokens_only_for_offline_access(google: ServedGoogle) -> None:
    """Google gives a refresh token for access_type=offline on the first consent of a
    client and account, and again only with prompt=consent."""

    async def grant_for(**extra: str) -> dict[str, Any]:
        query = {
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": " ".join(GMAIL_SCOPES),
            **extra,
        }
        _, params = await follow_consent(
            f"{google.url}/o/oauth2/v2/auth?{httpx.QueryParams(query)}"
        )
        answer = await _token_request(
            google,
            {"grant_type": "authorization_code", "code": params["code"]},
            redirect_uri=REDIRECT_URI,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    online = await grant_for()
    assert set(online) == {"access_token", "expires_in", "scope", "token_type"}
    assert (online["token_type"], online["expires_in"]) == ("Bearer", 3599)
    assert "refresh_token" in await grant_for(access_type="offline")
    assert "refresh_token" not in await grant_for(access_type="offline")
    assert "refresh_token" in await grant_for(access_type="offline", prompt="consent")


async def test_client_authentication_and_grant_types(google: ServedGoogle) -> None:
    oauth = google.oauth()
    try:
        grant = await connect(google, oauth)
    finally:
        await oauth.aclose()
    refresh = {"grant_type": "refresh_token", "refresh_token": grant.refresh_token or ""}

    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    async with httpx.AsyncClient(base_url=google.url) as http:
        by_basic = await http.post(
            "/token", data=refresh, headers={"Authorization": f"Basic {basic}"}
        )
    assert by_basic.status_code == 200
    assert set(by_basic.json()) == {"access_token", "expires_in", "scope", "token_type"}

    wrong = await _token_request(google, refresh, client_secret="nope")
    assert (wrong.status_code, wrong.json()) == (
        401,
        {"error": "invalid_client", "error_description": "Unauthorized"},
    )
    stranger = await _token_request(google, refresh, client_id="who")
    assert (stranger.status_code, stranger.json()["error"]) == (401, "invalid_client")
    odd = await _token_request(google, {"grant_type": "password"})
    assert (odd.status_code, odd.json()["error"]) == (400, "unsupported_grant_type")

    bad_secret = google.oauth(client_secret="nope")
    try:
        with pytest.raises(IntegrationError, match="client id and secret") as caught:
            await bad_secret.refresh(grant.refresh_token or "")
        assert caught.value.retryable is False
        assert not isinstance(caught.value, GrantRevoked)
    finally:
        await bad_secret.aclose()


async def test_google_outages_are_retryable() -> None:
    statuses = [503, 429]
    flaky = FastAPI()

    @flaky.post("/token")
    async def token() -> JSONResponse:
        return JSONResponse({"error": "backend_error"}, status_code=statuses.pop(0))

    async with serve_app(flaky) as url:
        oauth = GoogleOAuth(CLIENT_ID, CLIENT_SECRET, token_url=f"{url}/token")
        try:
            for _ in range(2):
                with pytest.raises(IntegrationError) as caught:
                    await oauth.refresh("1//0x")
                assert caught.value.retryable is True
        finally:
            await oauth.aclose()
    assert statuses == []

    unreachable = GoogleOAuth(CLIENT_ID, CLIENT_SECRET, token_url="http://127.0.0.1:9/token")
    try:
        with pytest.raises(IntegrationError) as caught:
            await unreachable.exchange_code("4/0x", REDIRECT_URI)
        assert caught.value.retryable is True
    finally:
        await unreachable.aclose()


async def _token_request(
    google: ServedGoogle,
    form: dict[str, str],
    *,
    client_id: str = CLIENT_ID,
    client_secret: str = CLIENT_SECRET,
    redirect_uri: str | None = None,
) -> httpx.Response:
    body = {**form, "client_id": client_id, "client_secret": client_secret}
    if redirect_uri:
        body["redirect_uri"] = redirect_uri
    async with httpx.AsyncClient(base_url=google.url) as http:
        return await http.post("/token", data=body)
