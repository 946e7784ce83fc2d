"""Parsing raw RFC 5322 messages: what the inbox keeps, and what it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.mail.mime import (
    EmailTooLargeError,
    MalformedEmailError,
    parse_email,
    synthetic_message_id,
)
from tests.api_support import deeply_nested_email

PLAIN = (
    b'From: "Ava Patel" <Ava.Patel@Example.COM>\r\n'
    b"To: Support <support@demo-store.example>\r\n"
    b"Subject: =?utf-8?q?Where_is_my_order_=E2=80=94?=\r\n"
    b" #1001\r\n"
    b"Date: Tue, 3 Nov 2026 10:00:00 +0100\r\n"
    b"Message-ID: <abc123@mail.example.com>\r\n"
    b"In-Reply-To: <reply-1@demo-store.example>\r\n"
    b"References: <first@mail.example.com>\r\n <reply-1@demo-store.example>\r\n"
    b"Received: from a by b\r\n"
    b"Received: from c by d\r\n"
    b"\r\n"
    b"Hello, where is order #1001?\r\n"
)


def test_plain_message() -> None:
    parsed = parse_email(PLAIN)
    assert parsed.message_id == "<abc123@mail.example.com>"
    assert parsed.from_address == "ava.patel@example.com"
    assert parsed.to_address == "support@demo-store.example"
    assert parsed.subject == "Where is my order — #1001"
    assert parsed.date == datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    assert parsed.date is not None and parsed.date.utcoffset() == timedelta(hours=1)
    assert parsed.text == "Hello, where is order #1001?"
    assert parsed.in_reply_to == "<reply-1@demo-store.example>"
    assert parsed.references == ["<first@mail.example.com>", "<reply-1@demo-store.example>"]
    assert parsed.headers["Received"] == ["from a by b", "from c by d"]
    assert parsed.headers["Subject"] == "Where is my order — #1001"
    assert not parsed.synthetic_message_id
    # Stored as JSONB: must round-trip through JSON.
    assert parsed.model_validate_json(parsed.model_dump_json()) == parsed


def test_multipart_prefers_the_plain_part() -> None:
    raw = (
        b"From: c@example.com\nMessage-ID: <m@x>\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/alternative; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain; charset=utf-8\n\nplain words\n"
        b"--b\nContent-Type: text/html; charset=utf-8\n\n<p>html words</p>\n--b--\n"
    )
    assert parse_email(raw).text == "plain words"


def test_html_only_is_stripped_of_tags() -> None:
    raw = (
        b"From: c@example.com\nSubject: hi\nContent-Type: text/html; charset=utf-8\n\n"
        b"<html><head><style>p {color: red}</style></head><body>"
        b"<p>My mug arrived <b>broken</b> &amp; chipped.</p><div>Order #1002</div>"
        b"<script>alert(1)</script></body></html>"
    )
    assert parse_email(raw).text == "My mug arrived broken & chipped.\n\nOrder #1002"


def test_missing_message_id_gets_a_stable_synthetic_one() -> None:
    raw = b"From: c@example.com\nSubject: no id\n\nbody\n"
    first, again = parse_email(raw), parse_email(raw)
    assert first.synthetic_message_id
    assert first.message_id == again.message_id == synthetic_message_id(raw)
    assert first.message_id.startswith("<") and first.message_id.endswith("@deskpilot.synthetic>")
    assert parse_email(raw + b"more\n").message_id != first.message_id


def test_naive_and_missing_dates() -> None:
    unknown_zone = b"From: c@example.com\nDate: Tue, 3 Nov 2026 10:00:00 -0000\n\nx\n"
    assert parse_email(unknown_zone).date == datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
    garbage = b"From: c@example.com\nDate: yesterday-ish\n\nx\n"
    assert parse_email(garbage).date is None


def test_nul_characters_are_dropped() -> None:
    # PostgreSQL text refuses NUL; an email carrying one must still be storable.
    parsed = parse_email(b"From: c@example.com\nSubject: a\x00b\n\nx\x00y\n")
    assert parsed.subject == "ab" and parsed.text == "xy"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"  \r\n\t", "empty"),
        (b'{"from": "c@example.com", "text": "hi"}', "not an RFC 5322"),
        (b'{"From": "c@example.com"}', "not an RFC 5322"),
        (b"hello there, this is just some text", "not an RFC 5322"),
        (b"<html><body>hi</body></html>", "not an RFC 5322"),
        (b"Subject: no sender\n\nbody\n", "no usable From"),
        (b"From: nobody\n\nbody\n", "no usable From"),
        (b"From: \n\nbody\n", "no usable From"),
    ],
)
def test_non_email_bodies_are_refused(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedEmailError, match=reason):
        parse_email(body)


def test_oversize_is_refused_before_parsing() -> None:
    raw = PLAIN + b"x" * 200
    with pytest.raises(EmailTooLargeError) as refused:
        parse_email(raw, max_bytes=len(PLAIN))
    assert refused.value.size == len(raw)
    assert isinstance(refused.value, MalformedEmailError)
    assert parse_email(PLAIN, max_bytes=len(PLAIN)).message_id == "<abc123@mail.example.com>"


def test_reply_text_is_split_from_quoted_history() -> None:
    raw = (
        b"From: c@example.com\nSubject: Re: x\n\nYes please.\n\n"
        b"On Mon, Nov 2, 2026 at 9:00 AM Shop <s@demo.example> wrote:\n> Shall we refund?\n"
    )
    parsed = parse_email(raw)
    assert parsed.text == "Yes please."
    assert (
        parsed.quoted
        == "On Mon, Nov 2, 2026 at 9:00 AM Shop <s@demo.example> wrote:\n> Shall we refund?"
    )


def test_html_links_keep_their_address() -> None:
    html = (
        '<p>See <a href="https://t.example/1">tracking</a>, '
        '<a href="https://t.example/2">https://t.example/2</a> and '
        '<a href="mailto:help@x.example">help@x.example</a> '
        '<a href="javascript:alert(1)">click</a></p>'
    )
    from domain.mail.mime import html_to_text

    assert html_to_text(html) == (
        "See tracking (https://t.example/1), https://t.example/2 and help@x.example click"
    )


@pytest.mark.parametrize(
    ("charset", "body", "text", "flagged"),
    [
        (b"iso-8859-1", b"caf\xe9 \x93ok\x94", "café “ok”", False),  # really Windows-1252
        (b"utf-8", b"caf\xe9", "café", True),
        (b"us-ascii", "café".encode(), "café", False),
        (b"no-such-charset", b"plain", "plain", True),
        (b"base64", b"plain", "plain", True),  # a codec, but not a text encoding
        (b"shift_jis", "①番".encode("cp932"), "①番", False),  # NEC extension: cp932
    ],
)
def test_any_declared_charset_is_read(
    charset: bytes, body: bytes, text: str, flagged: bool
) -> None:
    raw = b"From: c@example.com\nContent-Type: text/plain; charset=" + charset + b"\n\n" + body
    parsed = parse_email(raw)
    assert parsed.text == text
    assert bool(parsed.defects) == flagged


def test_attachments_are_metadata_not_text() -> None:
    raw = (
        b"From: c@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        b"--b\nContent-Type: text/plain\n\nsee attached\n"
        b"--b\nContent-Type: text/csv\nContent-Disposition: attachment; filename=items.csv\n\n"
        b"sku,qty\nMUG,2\n"
        b"--b--\n"
    )
    parsed = parse_email(raw)
    assert parsed.text == "see attached"
    assert [(a.filename, a.content_type, a.size) for a in parsed.attachments] == [
        # The line break before a boundary belongs to the boundary (RFC 2046 5.1.1).
        ("items.csv", "text/csv", len(b"sku,qty\nMUG,2"))
    ]


def test_duplicate_headers_keep_the_first_and_are_flagged() -> None:
    raw = b"From: c@example.com\nMessage-ID: <one@x>\nMessage-ID: <two@x>\n\nbody\n"
    parsed = parse_email(raw)
    assert parsed.message_id == "<one@x>"
    assert parsed.defects == ["2 Message-ID headers; kept the first"]
    assert parsed.headers["Message-ID"] == ["<one@x>", "<two@x>"]


def test_deep_nesting_is_refused_with_a_reason_and_shallow_nesting_is_read() -> None:
    assert parse_email(deeply_nested_email(200)).text == "hello"
    with pytest.raises(MalformedEmailError, match="nests its MIME parts too deeply"):
        parse_email(deeply_nested_email(2_000))
