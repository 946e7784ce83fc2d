"""Parse a raw RFC 5322 message into what the inbox stores. Pure: no I/O.

Refuses bodies that are not email (JSON, random text, empty) so a
misconfigured sender gets a clear 4xx instead of a junk ticket.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email import policy
from email.errors import HeaderParseError
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from typing import Any

from pydantic import BaseModel, Field

MAX_EMAIL_BYTES = 25 * 1024 * 1024
SYNTHETIC_DOMAIN = "deskpilot.synthetic"
MAX_LINE_CHARS = 998  # RFC 5322 2.1.1; also the messages.message_id column
MAX_ADDRESS_CHARS = 320  # the address columns

# RFC 5322 allows any printable ASCII in a field name, but mail in the wild uses
# letters, digits and hyphens; braces or quotes there mean JSON or text, not email.
_FIELD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MSG_ID = re.compile(r"<[^<>\s]+>")


class MalformedEmailError(ValueError):
    """The bytes are not an email we can take in; the message says why."""


class EmailTooLargeError(MalformedEmailError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the message is {size} bytes; the limit is {limit} bytes")
        self.size = size
        self.limit = limit


class ParsedEmail(BaseModel):
    message_id: str  # as in the header, with angle brackets
    from_address: str  # lowercased addr-spec
    to_address: str | None = None
    subject: str = ""
    date: datetime | None = None  # timezone-aware
    text: str = ""
    headers: dict[str, str | list[str]] = Field(default_factory=dict)
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    synthetic_message_id: bool = False


def synthetic_message_id(raw: bytes) -> str:
    """A stable id for a message without one, so a redelivery is still recognised."""
    return f"<{hashlib.sha256(raw).hexdigest()[:32]}@{SYNTHETIC_DOMAIN}>"


def _clean(value: str) -> str:
    # PostgreSQL text and JSONB refuse NUL characters.
    return value.replace("\x00", "")


def _header(msg: EmailMessage, name: str) -> str | None:
    try:
        value = msg.get(name)
    except (HeaderParseError, IndexError, TypeError, ValueError):
        # The stdlib's header parser can trip over hostile input; treat it as absent.
        return None
    return None if value is None else _clean(str(value)).strip()


def _first_address(msg: EmailMessage, name: str) -> str | None:
    try:
        header: Any = msg.get(name)
        addresses = getattr(header, "addresses", ()) if header is not None else ()
    except (HeaderParseError, IndexError, TypeError, ValueError):
        return None
    for address in addresses:
        spec = _clean(address.addr_spec).strip().lower()
        local, at, domain = spec.rpartition("@")
        if at and local and domain:
            return spec
    return None


def _date(msg: EmailMessage) -> datetime | None:
    try:
        header: Any = msg.get("Date")
        value = getattr(header, "datetime", None) if header is not None else None
    except (HeaderParseError, IndexError, TypeError, ValueError):
        return None
    if not isinstance(value, datetime):
        return None
    # "-0000" means "zone unknown" (RFC 5322 3.3); UTC is the only sensible reading.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class _TextExtractor(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "title"})
    _BREAK = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (" ".join(line.split()) for line in "".join(extractor.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _content(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):
        # Unknown charset or broken transfer encoding: keep what can be read.
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


def _text(msg: EmailMessage) -> str:
    plain = msg.get_body(preferencelist=("plain",))
    if plain is not None:
        return _clean(_content(plain)).strip()
    html = msg.get_body(preferencelist=("html",))
    if html is not None:
        return _clean(html_to_text(_content(html)))
    return ""


def _headers(msg: EmailMessage) -> dict[str, str | list[str]]:
    headers: dict[str, str | list[str]] = {}
    for name, raw_value in msg.raw_items():
        try:
            value = str(msg.policy.header_fetch_parse(name, raw_value))
        except (HeaderParseError, IndexError, TypeError, ValueError):
            value = re.sub(r"\r?\n[ \t]", " ", str(raw_value))  # unfolded, undecoded
        text = _clean(value).strip()
        existing = headers.get(name)
        if existing is None:
            headers[name] = text
        elif isinstance(existing, list):
            existing.append(text)
        else:
            headers[name] = [existing, text]
    return headers


def parse_email(raw: bytes, *, max_bytes: int = MAX_EMAIL_BYTES) -> ParsedEmail:
    if len(raw) > max_bytes:
        raise EmailTooLargeError(len(raw), max_bytes)
    if not raw.strip():
        raise MalformedEmailError("the body is empty; send the raw RFC 5322 message")
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)  # policy.default builds EmailMessage
    names = list(msg.keys())
    if not names or any(not _FIELD_NAME.match(name) for name in names):
        raise MalformedEmailError(
            "the body is not an RFC 5322 message: it must start with header fields "
            "(From:, Subject:, ...), then a blank line, then the body"
        )
    from_address = _first_address(msg, "From")
    if from_address is None:
        raise MalformedEmailError("the message has no usable From address")

    if len(from_address) > MAX_ADDRESS_CHARS:
        raise MalformedEmailError(f"the From address is longer than {MAX_ADDRESS_CHARS} characters")

    message_id = _header(msg, "Message-ID") or ""
    synthetic = not message_id
    if synthetic:
        message_id = synthetic_message_id(raw)
    elif not message_id.startswith("<"):
        message_id = f"<{message_id}>"
    if len(message_id) > MAX_LINE_CHARS:
        raise MalformedEmailError(f"the Message-ID is longer than {MAX_LINE_CHARS} characters")
    to_address = _first_address(msg, "To")
    in_reply_to = _MSG_ID.findall(_header(msg, "In-Reply-To") or "")
    return ParsedEmail(
        message_id=message_id,
        from_address=from_address,
        to_address=to_address if to_address and len(to_address) <= MAX_ADDRESS_CHARS else None,
        subject=_header(msg, "Subject") or "",
        date=_date(msg),
        text=_text(msg),
        headers=_headers(msg),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=_MSG_ID.findall(_header(msg, "References") or ""),
        synthetic_message_id=synthetic,
    )
