"""MailPort that sends replies through an SMTP relay (aiosmtplib).

The raw bytes go out exactly as send_reply recorded them, so the Message-ID, From
(`storeName <alias>`), Reply-To and threading headers are the ones stored with the reply.
"""

from __future__ import annotations

import logging

import aiosmtplib
from aiosmtplib.errors import (
    SMTPException,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from kernel.errors import IntegrationError
from kernel.settings import Settings
from kernel.values import OutboundEmail

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 30.0


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout: float = SEND_TIMEOUT_SECONDS,
    ) -> None:
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpMailer:
        if not settings.smtp_host:
            raise ValueError("SMTP_HOST is not set")
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_username,
            password=password,
            starttls=settings.smtp_starttls,
        )

    @property
    def address(self) -> str:
        return f"{self._host}:{self._port}"

    async def send(self, email: OutboundEmail) -> None:
        where = f"SMTP relay {self.address}"
        try:
            refused, _ = await aiosmtplib.send(
                email.raw,
                sender=email.sender,
                recipients=email.recipients,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                # True demands the upgrade (a relay without it is refused, never sent to in
                # clear text); False never tries it, for a loopback sink.
                start_tls=self._starttls,
                use_tls=False,
                timeout=self._timeout,
            )
        except SMTPRecipientsRefused as exc:
            # Every recipient refused: retry only if the relay said "later" to all of them.
            codes = [r.code for r in exc.recipients]
            retryable = bool(codes) and all(400 <= code < 500 for code in codes)
            details = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            raise IntegrationError(
                f"{where} refused the recipients: {details}", retryable=retryable
            ) from exc
        except SMTPResponseException as exc:
            # 4xx is "try again later" (greylisting, a full queue); 5xx is a refusal.
            raise IntegrationError(
                f"{where} answered {exc.code} {exc.message}", retryable=400 <= exc.code < 500
            ) from exc
        except (SMTPTimeoutError, SMTPServerDisconnected, OSError) as exc:
            # Includes SMTPConnectError (refused connection) and DNS failures.
            raise IntegrationError(f"{where} unreachable: {exc}", retryable=True) from exc
        except SMTPException as exc:
            # The rest (STARTTLS or AUTH demanded but not offered, SMTPNotSupported) is a
            # mismatch between our settings and the relay: trying again will not fix it.
            raise IntegrationError(f"{where}: {exc}", retryable=False) from exc
        if refused:
            # Some recipients were taken and the message is gone: a retry would send it again.
            log.warning(
                "relay refused some recipients",
                extra={"message_id": email.message_id, "refused": sorted(refused)},
            )
