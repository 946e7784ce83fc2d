"""Structured logs: one JSON object a line, with whatever context `extra=` carries."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else came in through `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# Secrets that travel in URLs (the Pub/Sub push token, OAuth codes and states) must not
# reach the logs through access logs or the HTTP client's request lines.
_URL_SECRET = re.compile(
    r"(?i)([?&](?:token|code|state|access_token|refresh_token|client_secret|hmac)=)[^&\s\"']+"
)


# Secrets with a shape of their own, wherever they turn up: an Authorization header, a
# token in a vendor's JSON answer, our API tokens, Shopify's and OpenAI's keys, Google's
# access tokens. Bounded patterns only: redaction runs on every line.
_SHAPED_SECRETS = (
    (re.compile(r"(?i)(\bbearer\s{1,5})[\w.~+/=-]{8,4096}"), r"\1[redacted]"),
    (
        re.compile(
            r"(?i)(\\?\"(?:access_token|refresh_token|id_token|client_secret|password|api_key)"
            r"\\?\"\s{0,5}:\s{0,5}\\?\")[^\"\\]{0,4096}"
        ),
        r"\1[redacted]",
    ),
    (re.compile(r"\b(?:dpk|shpat|shpca|shpss|sk)[_-][\w-]{8,512}"), "[redacted]"),
    (re.compile(r"\bya29\.[\w-]{8,4096}"), "[redacted]"),
)


def redact(text: str) -> str:
    text = _URL_SECRET.sub(r"\1[redacted]", text)
    for pattern, replacement in _SHAPED_SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # The whole line, so a secret in an `extra=` field or a traceback is caught too.
        return redact(json.dumps(entry, default=str))


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pgserver narrates every subprocess it runs at INFO.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
