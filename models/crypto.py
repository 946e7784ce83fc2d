"""Encryption at rest for connection tokens.

A Fernet key (AES-128-CBC + HMAC-SHA256) is derived from DESKPILOT_SECRET_KEY
with HKDF, so the operator handles one secret and a leaked database dump
holds only ciphertext. The column type encrypts on the way in and decrypts on
the way out; plaintext exists only in the Python objects.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Dialect, Text
from sqlalchemy.types import TypeDecorator

_HKDF_INFO = b"deskpilot/connection-tokens/v1"


class TokenDecryptionError(RuntimeError):
    """A stored token does not decrypt with the configured key."""


def derive_fernet_key(secret_key: str) -> bytes:
    if not secret_key:
        raise ValueError("secret key is empty")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode("utf-8")))


class TokenCipher:
    def __init__(self, secret_key: str) -> None:
        self._fernet = Fernet(derive_fernet_key(secret_key))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise TokenDecryptionError(
                "a connection token does not decrypt: DESKPILOT_SECRET_KEY differs from "
                "the key it was stored with"
            ) from exc


_cipher: TokenCipher | None = None


def install_token_cipher(secret_key: str) -> None:
    """Set the process-wide cipher; called once where the engine is built."""
    global _cipher
    _cipher = TokenCipher(secret_key)


def _current_cipher() -> TokenCipher:
    if _cipher is None:
        raise RuntimeError("token cipher not configured: call install_token_cipher() first")
    return _cipher


class EncryptedText(TypeDecorator[str]):
    """Text stored as a Fernet token."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else _current_cipher().encrypt(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else _current_cipher().decrypt(value)
