"""Process configuration, read from the environment and `.env`.

Every variable is documented in `.env.example`. Values that later parts of the
product read (Shopify, Gmail, OpenAI, billing) live here too so there is one
place to look.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_KEY_FILE = "secret_key"


class ConfigurationError(RuntimeError):
    """The configuration cannot work; the message says what to change."""


class Settings(BaseSettings):
    # Only the documented names are read: a field-name fallback would make `home`
    # pick up $HOME.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    home: Path = Field(default=Path(".deskpilot"), validation_alias="DESKPILOT_HOME")
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    secret_key: SecretStr | None = Field(default=None, validation_alias="DESKPILOT_SECRET_KEY")
    log_level: str = Field(default="INFO", validation_alias="DESKPILOT_LOG_LEVEL")

    api_host: str = Field(default="127.0.0.1", validation_alias="DESKPILOT_API_HOST")
    api_port: int = Field(default=8000, validation_alias="DESKPILOT_API_PORT")
    public_url: str = Field(
        default="http://127.0.0.1:8000", validation_alias="DESKPILOT_PUBLIC_URL"
    )

    temporal_address: str | None = Field(default=None, validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", validation_alias="TEMPORAL_NAMESPACE")
    temporal_port: int = Field(default=7233, validation_alias="DESKPILOT_TEMPORAL_PORT")
    temporal_ui_port: int = Field(default=8233, validation_alias="DESKPILOT_TEMPORAL_UI_PORT")

    # How long a suggestion waits for a person before a reminder Event, and before it expires.
    decision_reminder_hours: float = Field(
        default=24, validation_alias="DESKPILOT_DECISION_REMINDER_HOURS"
    )
    decision_expiry_days: float = Field(
        default=7, validation_alias="DESKPILOT_DECISION_EXPIRY_DAYS"
    )

    # The local stand-in servers (demo store, mail sink). `deskpilot up` in demo mode
    # starts them on this port; a separate worker finds them at DESKPILOT_SANDBOX_URL.
    sandbox_port: int = Field(default=8300, validation_alias="DESKPILOT_SANDBOX_PORT")
    sandbox_url: str | None = Field(default=None, validation_alias="DESKPILOT_SANDBOX_URL")

    shopify_api_key: str | None = Field(default=None, validation_alias="SHOPIFY_API_KEY")
    shopify_api_secret: SecretStr | None = Field(
        default=None, validation_alias="SHOPIFY_API_SECRET"
    )
    shopify_scopes: str = Field(
        default="read_orders,write_orders,read_customers,read_returns,write_returns",
        validation_alias="SHOPIFY_SCOPES",
    )
    # Where a shop's Admin (OAuth and GraphQL) lives, with `{shop}` for the shop domain:
    # unset means https://{shop}; the sandbox stands in with e.g.
    # http://127.0.0.1:8300/shops/{shop}.
    shopify_admin_base_url: str | None = Field(
        default=None, validation_alias="SHOPIFY_ADMIN_BASE_URL"
    )

    gmail_client_id: str | None = Field(default=None, validation_alias="GMAIL_CLIENT_ID")
    gmail_client_secret: SecretStr | None = Field(
        default=None, validation_alias="GMAIL_CLIENT_SECRET"
    )
    gmail_pubsub_topic: str | None = Field(default=None, validation_alias="GMAIL_PUBSUB_TOPIC")
    gmail_push_secret: SecretStr | None = Field(default=None, validation_alias="GMAIL_PUSH_SECRET")
    # Google's endpoints; the sandbox stands in for all three in the demo and the tests.
    google_auth_url: str = Field(
        default="https://accounts.google.com/o/oauth2/v2/auth", validation_alias="GOOGLE_AUTH_URL"
    )
    google_token_url: str = Field(
        default="https://oauth2.googleapis.com/token", validation_alias="GOOGLE_TOKEN_URL"
    )
    gmail_api_base_url: str = Field(
        default="https://gmail.googleapis.com", validation_alias="GMAIL_API_BASE_URL"
    )
    # Pushes can be late or lost: each mailbox is also synced this often.
    gmail_poll_seconds: float = Field(default=300, gt=0, validation_alias="GMAIL_POLL_SECONDS")

    inbound_domain: str = Field(default="inbound.localhost", validation_alias="INBOUND_DOMAIN")
    # The built-in SMTP receiver for the aliases (started by `deskpilot up`).
    smtp_receiver_host: str = Field(default="127.0.0.1", validation_alias="DESKPILOT_SMTP_HOST")
    smtp_receiver_port: int = Field(default=2525, validation_alias="DESKPILOT_SMTP_PORT")
    smtp_host: str | None = Field(default=None, validation_alias="SMTP_HOST")
    smtp_port: int = Field(default=587, validation_alias="SMTP_PORT")
    smtp_username: str | None = Field(default=None, validation_alias="SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(default=None, validation_alias="SMTP_PASSWORD")
    smtp_starttls: bool = Field(default=True, validation_alias="SMTP_STARTTLS")

    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    openai_model: str = Field(default="gpt-4o-mini", validation_alias="OPENAI_MODEL")
    # How long one model call may take before it counts as failed (and is retried).
    openai_timeout_seconds: float = Field(
        default=30.0, gt=0, validation_alias="OPENAI_TIMEOUT_SECONDS"
    )
    # The store's policy as the suggester should apply it (returns, refunds, shipping).
    store_policy: str = Field(default="", validation_alias="STORE_POLICY")

    razorpay_key_id: str | None = Field(default=None, validation_alias="RAZORPAY_KEY_ID")
    razorpay_key_secret: SecretStr | None = Field(
        default=None, validation_alias="RAZORPAY_KEY_SECRET"
    )
    razorpay_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias="RAZORPAY_WEBHOOK_SECRET"
    )
    paddle_api_key: SecretStr | None = Field(default=None, validation_alias="PADDLE_API_KEY")
    paddle_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias="PADDLE_WEBHOOK_SECRET"
    )
    # Where each gateway's REST API lives: unset means the vendor's own (the SDK's
    # default); the sandbox stands in with e.g. http://127.0.0.1:8300/razorpay.
    razorpay_api_url: str | None = Field(default=None, validation_alias="RAZORPAY_API_URL")
    paddle_api_url: str | None = Field(default=None, validation_alias="PADDLE_API_URL")
    # The gateways' own ids of our paid plans: Razorpay plan ids, Paddle price ids.
    razorpay_plan_starter: str | None = Field(
        default=None, validation_alias="RAZORPAY_PLAN_STARTER"
    )
    razorpay_plan_growth: str | None = Field(default=None, validation_alias="RAZORPAY_PLAN_GROWTH")
    razorpay_plan_pro: str | None = Field(default=None, validation_alias="RAZORPAY_PLAN_PRO")
    paddle_price_starter: str | None = Field(default=None, validation_alias="PADDLE_PRICE_STARTER")
    paddle_price_growth: str | None = Field(default=None, validation_alias="PADDLE_PRICE_GROWTH")
    paddle_price_pro: str | None = Field(default=None, validation_alias="PADDLE_PRICE_PRO")
    # How long a past_due account keeps working while the gateway retries the payment.
    billing_grace_days: float = Field(
        default=7, ge=0, validation_alias="DESKPILOT_BILLING_GRACE_DAYS"
    )
    # How often the billing calendar Schedule runs (rollover, trial and grace expiry).
    billing_calendar_minutes: float = Field(
        default=15, gt=0, validation_alias="DESKPILOT_BILLING_CALENDAR_MINUTES"
    )

    @property
    def demo_mode(self) -> bool:
        """No real Shopify or Gmail credentials: run against the sandbox demo store."""
        return not (self.shopify_api_key or self.gmail_client_id)

    @property
    def embedded_temporal(self) -> bool:
        return not self.temporal_address

    @property
    def embedded_database(self) -> bool:
        """True when deskpilot runs its own PostgreSQL from the pgserver wheel."""
        return not self.database_url

    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()

    def resolve_secret_key(self) -> str:
        """The key that protects tokens at rest.

        Embedded mode generates one on first use and keeps it beside the data it
        protects; against an external database a lost or guessed key would expose
        every merchant's tokens, so it must be given explicitly.
        """
        if self.secret_key is not None and self.secret_key.get_secret_value().strip():
            return self.secret_key.get_secret_value().strip()
        if not self.embedded_database:
            raise ConfigurationError(
                "DESKPILOT_SECRET_KEY is not set. It is required when DATABASE_URL points at "
                "an external database; generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
        return load_or_create_secret_key(self.resolved_home())


def load_or_create_secret_key(home: Path) -> str:
    """Read the embedded-mode key, creating it (mode 0600) the first time."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / SECRET_KEY_FILE
    if not path.exists():
        # Written to a private temporary file and linked into place: the key is
        # never readable by others, and two processes starting together agree
        # on one key because link() refuses to overwrite.
        tmp = home / f".{SECRET_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_text(encoding="ascii").strip()
    if not key:
        raise ConfigurationError(f"{path} is empty; delete it or set DESKPILOT_SECRET_KEY")
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
