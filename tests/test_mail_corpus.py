"""The mail corpus (tests/data/mail): every message parsed, classified and threaded as expected.

Each .eml was written for these tests in the style of a real client (Gmail, Outlook,
Apple Mail, mobile), charset, transfer encoding or failure; expectations.json says
what the inbox must make of it. Keys, all optional:
  text_equals / text_starts / text_contains / text_excludes  the new text
  quoted (exact) / quoted_contains                           the split-off history
  attachments: [[filename, content_type, size or null]]      in order
  automated: a substring of automated_reason, absent = must be answered
  defects: exact list / defects_contain: substrings
  subject, message_id, synthetic_message_id, no_date
  thread: a label; files with the same label share a thread when stored in name
          order, every other file gets a thread of its own
  error: a substring of the MalformedEmailError
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from domain.mail.classify import automated_reason
from domain.mail.mime import MalformedEmailError, ParsedEmail, parse_email
from models import Message
from services.inbox import store_inbound_email
from tests.factories import make_user

CORPUS = Path(__file__).parent / "data" / "mail"
EXPECTATIONS: dict[str, dict[str, Any]] = json.loads(
    (CORPUS / "expectations.json").read_text(encoding="utf-8")
)


def test_every_message_has_expectations() -> None:
    names = sorted(p.name for p in CORPUS.glob("*.eml"))
    assert names == sorted(EXPECTATIONS)
    assert len(names) >= 30


def _check_text(parsed: ParsedEmail, expected: dict[str, Any]) -> None:
    if "text_equals" in expected:
        assert parsed.text == expected["text_equals"]
    if "text_starts" in expected:
        assert parsed.text.startswith(expected["text_starts"]), parsed.text
    for fragment in expected.get("text_contains", []):
        assert fragment in parsed.text
    for fragment in expected.get("text_excludes", []):
        assert fragment not in parsed.text
    if "quoted" in expected:
        assert parsed.quoted == expected["quoted"]
    if "quoted_contains" in expected:
        assert expected["quoted_contains"] in parsed.quoted, parsed.quoted
        assert expected["quoted_contains"] not in parsed.text


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_corpus_message(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    expected = EXPECTATIONS[name]
    if "error" in expected:
        with pytest.raises(MalformedEmailError, match=expected["error"]):
            parse_email(raw)
        return
    parsed = parse_email(raw)
    # Stored as JSONB: everything must survive a JSON round trip.
    assert ParsedEmail.model_validate_json(parsed.model_dump_json()) == parsed
    json.dumps(parsed.headers)

    _check_text(parsed, expected)
    attachments = [[a.filename, a.content_type, a.size] for a in parsed.attachments]
    wanted = expected.get("attachments", [])
    assert [a[:2] for a in attachments] == [w[:2] for w in wanted]
    for got, want in zip(attachments, wanted, strict=True):
        assert got[2] > 0 if want[2] is None else got[2] == want[2]
    for fragment in (a.filename or "" for a in parsed.attachments):
        assert not fragment or fragment not in parsed.text

    reason = automated_reason(parsed.headers)
    if "automated" in expected:
        assert reason is not None and expected["automated"] in reason, reason
    else:
        assert reason is None

    if "defects" in expected:
        assert parsed.defects == expected["defects"]
    for fragment in expected.get("defects_contain", []):
        assert any(fragment in d for d in parsed.defects), parsed.defects
    if "subject" in expected:
        assert parsed.subject == expected["subject"]
    if "message_id" in expected:
        assert parsed.message_id == expected["message_id"]
    assert parsed.synthetic_message_id == expected.get("synthetic_message_id", False)
    assert (parsed.date is None) == expected.get("no_date", False)


async def test_corpus_threads(session: AsyncSession) -> None:
    """The whole corpus into one inbox, in name order: the labelled threads form, nothing else."""
    user = await make_user(session)
    thread_of: dict[str, uuid.UUID] = {}
    for name in sorted(EXPECTATIONS):
        if "error" in EXPECTATIONS[name]:
            continue
        raw = (CORPUS / name).read_bytes()
        stored = await store_inbound_email(session, user.id, raw, parse_email(raw))
        assert stored.created
        thread_of[name] = stored.thread_id
        message = await session.get(Message, stored.message_id)
        assert message is not None
        # What the pipeline reads back decides the same way as the parsed message.
        assert automated_reason(message.headers) == automated_reason(parse_email(raw).headers)

    labels: dict[str, set[uuid.UUID]] = {}
    for name, thread_id in thread_of.items():
        label = EXPECTATIONS[name].get("thread", name)
        labels.setdefault(label, set()).add(thread_id)
    assert all(len(ids) == 1 for ids in labels.values()), labels
    assert len(set(thread_of.values())) == len(labels)
