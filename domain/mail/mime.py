"""Parse a raw RFC 5322 message into what the inbox stores. Pure: no I/O.

Refuses bodies that are not email (JSON, random text, empty) so a
misconfigured sender gets a clear 4xx instead of a junk ticket.
"""

from __future__ import annotations

import base64
import binascii
import codecs
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

from domain.mail.quoting import split_reply
from kernel.errors import Malformed, TooLarge

MAX_EMAIL_BYTES = 25 * 1024 * 1024
SYNTHETIC_DOMAIN = "deskpilot.synthetic"
MAX_LINE_CHARS = 998  # RFC 5322 2.1.1; also the messages.message_id column
MAX_ADDRESS_CHARS = 320  # the address columns
MAX_HIDDEN_CHARS = 20_000  # enough to judge what was hidden; the raw message keeps it all

# RFC 5322 allows any printable ASCII in a field name, but mail in the wild uses
# letters, digits and hyphens; braces or quotes there mean JSON or text, not email.
_FIELD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MSG_ID = re.compile(r"<[^<>\s]+>")


class MalformedEmailError(Malformed, ValueError):
    """The bytes are not an email we can take in; the message says why."""

    code = "malformed_email"


class EmailTooLargeError(TooLarge, MalformedEmailError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the message is {size} bytes; the limit is {limit} bytes")
        self.size = size
        self.limit = limit


class Attachment(BaseModel):
    """What the inbox records of an attachment: never its bytes as text."""

    filename: str | None = None
    content_type: str
    size: int  # decoded bytes


class ParsedEmail(BaseModel):
    message_id: str  # as in the header, with angle brackets
    from_address: str  # lowercased addr-spec
    to_address: str | None = None
    subject: str = ""
    date: datetime | None = None  # timezone-aware
    text: str = ""  # what the sender just wrote
    quoted: str = ""  # quoted history and signature, kept for the merchant
    hidden: str = ""  # HTML comments and hidden elements: never shown, read by the guardrails
    attachments: list[Attachment] = Field(default_factory=list)
    # What was wrong but survivable (bad charset, duplicate headers, parser defects).
    defects: list[str] = Field(default_factory=list)
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


_SURROGATE = re.compile("[\udc80-\udcff]")


def _eight_bit(raw_value: str) -> str | None:
    """A header sent as raw 8-bit bytes (no RFC 2047), read as UTF-8 or else Windows-1252.

    The stdlib keeps such bytes as surrogates and renders them as U+FFFD.
    """
    if not _SURROGATE.search(raw_value):
        return None
    data = raw_value.encode("utf-8", "surrogateescape")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("windows-1252", errors="replace")
    return re.sub(r"\r?\n[ \t]", " ", text)


def _first_raw(msg: EmailMessage, name: str) -> str | None:
    wanted = name.lower()
    return next((str(v) for k, v in msg.raw_items() if k.lower() == wanted), None)


def _header(msg: EmailMessage, name: str) -> str | None:
    raw_value = _first_raw(msg, name)
    recovered = _eight_bit(raw_value) if raw_value is not None else None
    if recovered is not None:
        return _clean(recovered).strip()
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


# Elements without an end tag: they open nothing that could hide what follows.
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
_MAX_DEPTH = 256
_CONDITIONAL = re.compile(r"\s*\[(?:if|endif)\b|\s*<!\[endif\]|\s*$", re.I)
# Inline styles that keep an element's text from the reader: the usual ways to smuggle words.
_HIDING_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*hidden|mso-hide\s*:\s*all"
    r"|font-size\s*:\s*0(?:\.0+)?(?:px|pt|em|rem|%)?\s*(?:!important\s*)?(?:;|$)"
    r"|opacity\s*:\s*0(?:\.0+)?\s*(?:!important\s*)?(?:;|$)"
    r"|(?:max-)?height\s*:\s*0(?:px)?\s*(?:!important\s*)?(?:;|$))",
    re.I,
)


def _hides(attrs: dict[str, str | None]) -> bool:
    style = (attrs.get("style") or "")[:2000]
    return "hidden" in attrs or bool(_HIDING_STYLE.search(style))


class _TextExtractor(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "title", "template", "noscript"})
    _BREAK = frozenset(
        {
            "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
            "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
            "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
        }
    )  # fmt: skip
    _CELL = frozenset({"td", "th"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        # What the reader never sees (comments, hidden elements): kept apart, so that the
        # model reads what the customer's reader shows and the guardrails read the rest.
        self.hidden: list[str] = []
        self._skipping = 0
        self._href: str | None = None
        self._link_start = 0
        self._open: list[tuple[str, bool]] = []  # open elements, and whether each hides

    def _hiding(self) -> bool:
        return any(hides for _, hides in self._open)

    def handle_comment(self, data: str) -> None:
        # Outlook's conditional comments ("[if mso]") wrap markup, not words.
        if not self._skipping and not _CONDITIONAL.match(data):
            self.hidden.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _VOID:
            self._open.append((tag, _hides(dict(attrs))))
            del self._open[:-_MAX_DEPTH]  # unclosed tags in broken HTML must not pile up
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAK:
            self.parts.append("\n")
        elif tag in self._CELL:
            self.parts.append(" ")
        elif tag == "a":
            href = (dict(attrs).get("href") or "").strip()
            # Tracking links and order pages matter to support; scripts and anchors do not.
            self._href = href if re.match(r"(?i)(https?:|mailto:)", href) else None
            self._link_start = len(self.parts)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                break
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BREAK:
            self.parts.append("\n")
        elif tag == "a" and self._href is not None:
            label = "".join(self.parts[self._link_start :]).strip()
            target = self._href.removeprefix("mailto:")
            if target not in label:
                self.parts.append(f" ({target})" if label else target)
            self._href = None

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        if self._hiding():
            self.hidden.append(data)
        else:
            self.parts.append(data)


def _tidy(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# Markup the stdlib parser trips over when it is malformed (it asserts, or rescans it at
# every later "<", quadratic): declarations and processing instructions carry no text, so
# they go; a "<" that opens no tag closed before the next "<", and no comment, is text, so
# it is escaped. Each lookahead stops at the next "<" or ">": linear overall.
_DECLARATION = re.compile(r"<(?:![^<>-]|\?)(?:[^<>-]|-(?!-)){0,2000}>")  # never a comment's "-->"
_STRAY_LT = re.compile(r"<(?!/?[A-Za-z][^<>]*>|!--)")


def _defused(html: str) -> str:
    return _STRAY_LT.sub("&lt;", _DECLARATION.sub("", html))


def html_to_text(html: str) -> str:
    return html_parts(html)[0]


def html_parts(html: str) -> tuple[str, str]:
    """(the text a mail client shows, the text it hides: comments and hidden elements)."""
    extractor = _TextExtractor()
    html = _defused(html)
    # A comment never closed runs to the end (as browsers read it). Cut off here: the stdlib
    # parser rescans it for every later "<!--" (quadratic) and then fails on it in close().
    closed = html.rfind("-->")
    open_tail = html.find("<!--", closed + 3 if closed >= 0 else 0)
    if open_tail >= 0:
        html, tail = html[:open_tail], html[open_tail + 4 :]
    extractor.feed(html)
    extractor.close()
    if open_tail >= 0:
        extractor.hidden.append(tail[:MAX_HIDDEN_CHARS])
    hidden = "\n".join(_tidy(part) for part in extractor.hidden)
    return _tidy("".join(extractor.parts)), _tidy(hidden)


# Labels mail clients use for a charset that is really its superset: decoding with the
# superset reads the characters the sender's client actually produced (as browsers do).
_SUPERSET = {
    "iso-8859-1": "windows-1252",
    "latin-1": "windows-1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
}
_FALLBACKS = ("utf-8", "windows-1252")


def _is_text_codec(name: str) -> bool:
    try:
        return codecs.lookup(name)._is_text_encoding
    except LookupError:
        return False


def _decode(payload: bytes, declared: str | None, defects: list[str]) -> str:
    """Bytes to text whatever the declared charset says; a wrong label is flagged, not fatal."""
    label = (declared or "us-ascii").strip().lower()
    preferred = _SUPERSET.get(label, label)
    for charset in (preferred, *_FALLBACKS):
        if not _is_text_codec(charset):
            continue
        try:
            text = payload.decode(charset)
        except (UnicodeDecodeError, LookupError):
            continue
        if charset != preferred:
            defects.append(f"charset {label!r} could not decode the text; read as {charset}")
        return text
    # windows-1252 leaves five bytes undefined; Latin-1 maps every byte.
    defects.append(f"charset {label!r} could not decode the text; read as latin-1")
    return payload.decode("latin-1")


def _base64(encoded: str, defects: list[str]) -> bytes:
    compact = re.sub(r"\s+", "", encoded)
    try:
        return base64.b64decode(compact, validate=True)
    except binascii.Error:
        pass
    # The stdlib hands back the undecoded text here; the readable start is worth more.
    defects.append("the base64 body is broken; decoded what could be read")
    match = re.match(r"[A-Za-z0-9+/]*", compact)
    core = match.group() if match else ""
    core = core[: len(core) - (1 if len(core) % 4 == 1 else 0)]  # one stray char decodes to nothing
    try:
        return base64.b64decode(core + "=" * (-len(core) % 4))
    except binascii.Error:
        return b""


def _content(part: EmailMessage, defects: list[str]) -> str:
    try:
        if str(part.get("Content-Transfer-Encoding", "")).strip().lower() == "base64":
            raw_payload = part.get_payload()
            payload: object = _base64(raw_payload if isinstance(raw_payload, str) else "", defects)
        else:
            # Undoes quoted-printable; a broken one comes back best effort.
            payload = part.get_payload(decode=True)
    except (AssertionError, LookupError, TypeError, ValueError):
        defects.append("a body part could not be decoded")
        return ""
    if not isinstance(payload, bytes):
        return ""
    text = _decode(payload, part.get_param("charset"), defects)  # type: ignore[arg-type]
    # The wire's CRLF (or a lone CR from old Mac clients) is a plain line break here.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _body_parts(msg: EmailMessage) -> tuple[EmailMessage | None, EmailMessage | None]:
    try:
        plain = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
    except (AttributeError, KeyError, TypeError, ValueError):
        return None, None
    return plain, html  # type: ignore[return-value]


def _text(msg: EmailMessage, defects: list[str]) -> tuple[str, str]:
    """(the body's text, the text its HTML hides). The hidden text is read even when the
    plain part is the body: a clean-looking HTML part can hide what the plain one says."""
    plain, html = _body_parts(msg)
    text = _clean(_content(plain, defects)).strip() if plain is not None else ""
    hidden = ""
    if html is not None:
        shown, hidden = html_parts(_content(html, [] if text else defects))
        if not text:
            # HTML-only mail, or an empty plain part next to the real HTML one.
            text = _clean(shown)
    return text, _clean(hidden)[:MAX_HIDDEN_CHARS]


def _part_size(part: EmailMessage) -> int:
    try:
        if part.get_content_maintype() == "message":
            # The enclosed message(s), without this part's own headers.
            inner = part.get_payload()
            return sum(len(m.as_bytes()) for m in inner) if isinstance(inner, list) else 0
        payload = part.get_payload(decode=True)
    except (AssertionError, LookupError, TypeError, ValueError):
        return 0
    return len(payload) if isinstance(payload, bytes) else 0


def _filename(part: EmailMessage) -> str | None:
    try:
        name = part.get_filename()
    except (HeaderParseError, IndexError, TypeError, ValueError):
        return None
    return _clean(str(name)).strip() or None if name else None


def _attachments(msg: EmailMessage) -> list[Attachment]:
    body = {id(p) for p in _body_parts(msg) if p is not None}
    found: list[Attachment] = []

    def visit(part: EmailMessage, *, root: bool) -> None:
        content_type = part.get_content_type()
        if part.get_content_maintype() == "message" and not root:
            # A forwarded message or a bounce's report is one attachment, not body text.
            found.append(
                Attachment(
                    filename=_filename(part), content_type=content_type, size=_part_size(part)
                )
            )
            return
        if part.is_multipart():
            for sub in part.iter_parts():
                visit(sub, root=False)  # type: ignore[arg-type]
            return
        if id(part) in body:
            return
        filename = _filename(part)
        disposition = part.get_content_disposition()
        if filename or disposition == "attachment" or part.get_content_maintype() != "text":
            found.append(
                Attachment(filename=filename, content_type=content_type, size=_part_size(part))
            )

    visit(msg, root=True)
    return found


# Headers a message has once (RFC 5322 3.6); a second copy is a defect, the first wins.
_SINGLE = ("From", "To", "Subject", "Date", "Message-ID", "In-Reply-To", "References")


def _duplicates(msg: EmailMessage) -> list[str]:
    counts: dict[str, int] = {}
    for name in msg:
        counts[name.lower()] = counts.get(name.lower(), 0) + 1
    return [
        f"{counts[name.lower()]} {name} headers; kept the first"
        for name in _SINGLE
        if counts.get(name.lower(), 0) > 1
    ]


def _parser_defects(msg: EmailMessage) -> list[str]:
    names: list[str] = []
    for part in msg.walk():
        for defect in getattr(part, "defects", ()):
            name = type(defect).__name__
            if name not in names:
                names.append(name)
    return names


def _headers(msg: EmailMessage) -> dict[str, str | list[str]]:
    headers: dict[str, str | list[str]] = {}
    for name, raw_value in msg.raw_items():
        try:
            value = _eight_bit(str(raw_value)) or str(
                msg.policy.header_fetch_parse(name, raw_value)
            )
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
    try:
        return _parse(raw, max_bytes)
    except RecursionError as exc:
        # The stdlib parser recurses once per nested part: thousands of levels (no mail
        # client writes more than a few) exhaust the stack. Refused, not a crash.
        raise MalformedEmailError("the message nests its MIME parts too deeply to be read") from exc


def _parse(raw: bytes, max_bytes: int) -> ParsedEmail:
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
    defects = [*_duplicates(msg), *_parser_defects(msg)]
    subject = _header(msg, "Subject") or ""
    if "\ufffd" in subject:
        defects.append("the Subject has characters that could not be decoded")
    body, hidden = _text(msg, defects)
    text, quoted = split_reply(body)
    return ParsedEmail(
        message_id=message_id,
        from_address=from_address,
        to_address=to_address if to_address and len(to_address) <= MAX_ADDRESS_CHARS else None,
        subject=subject,
        date=_date(msg),
        text=text,
        quoted=quoted,
        hidden=hidden,
        attachments=_attachments(msg),
        defects=defects,
        headers=_headers(msg),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=_MSG_ID.findall(_header(msg, "References") or ""),
        synthetic_message_id=synthetic,
    )
