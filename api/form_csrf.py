"""Double-submit CSRF for the forms shown before anyone is signed in (sign-in, sign-up,
password reset): there is no session to hold a token, so the page sets a random nonce in
an HttpOnly cookie and puts an HMAC of it, keyed by the secret key, in the form. A post
from another site carries the cookie but cannot know the HMAC."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response


def secure_cookies(request: Request) -> bool:
    return str(request.app.state.settings.public_url).lower().startswith("https://")


def same_secret(given: object, expected: str) -> bool:
    """Constant-time equality, False for anything but a string."""
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class PublicFormCsrf:
    cookie: str
    label: bytes  # what the key is derived for: each family of forms has its own tokens
    path: str = "/"
    max_age: int = 60 * 60

    def token(self, request: Request, nonce: str) -> str:
        secret = request.app.state.settings.resolve_secret_key().encode("utf-8")
        key = hmac.new(secret, self.label, hashlib.sha256).digest()
        return hmac.new(key, nonce.encode("utf-8"), hashlib.sha256).hexdigest()

    def nonce(self, request: Request) -> str:
        """The browser's nonce when it has a well-formed one, so two open tabs both work."""
        nonce = request.cookies.get(self.cookie) or ""
        if 16 <= len(nonce) <= 64 and nonce.isascii() and nonce.replace("-", "").isalnum():
            return nonce
        return secrets.token_hex(16)

    def valid(self, request: Request, given: object) -> bool:
        nonce = request.cookies.get(self.cookie)
        return bool(nonce) and same_secret(given, self.token(request, nonce or ""))

    def set_cookie(self, request: Request, response: Response, nonce: str) -> None:
        response.set_cookie(
            self.cookie,
            nonce,
            max_age=self.max_age,
            path=self.path,
            secure=secure_cookies(request),
            httponly=True,
            samesite="strict",
        )

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(self.cookie, path=self.path)
