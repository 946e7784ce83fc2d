"""Which thread an inbound email belongs to (JWZ-style, REFERENCE.md "Email"). Pure.

First the message ids it names (In-Reply-To, then References newest first); when
none is known, a reply whose references were lost (a client that drops them, a
forward through another mailbox) joins the same customer's recent thread with the
same normalised subject. Never across customers: two people asking "Where is my
order?" are two conversations.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

SUBJECT_WINDOW = timedelta(days=14)
SUBJECT_MAX = 1000
MAX_PREFIXES = 50

# Reply and forward prefixes in the languages mail clients localise them in, with
# optional counters ("Re[2]:", "Re^3:"), and ticket tags such as "[#1234]" or "[Ticket 42]".
_PREFIX = re.compile(
    r"^\s*(("
    r"re|fwd?|aw|wg|sv|vs|tr|rif|r|antw|odp|ynt|enc|res|atb|vl|fs|転送|回复|回覆|答复"
    r")\s*(\[\d+\]|\^\d+|\(\d+\))?\s*[:\uff1a]|\[[^\]]*\])\s*",
    re.IGNORECASE,
)
_REPLY_PREFIX = re.compile(
    r"^\s*(\[[^\]]*\]\s*)*(re|aw|sv|vs|rif|r|antw|odp|ynt|res|atb|vl|回复|答复)"
    r"\s*(\[\d+\]|\^\d+|\(\d+\))?\s*[:\uff1a]",
    re.IGNORECASE,
)


def normalize_subject(subject: str) -> str:
    """The subject without reply/forward prefixes or ticket tags, whitespace and case folded."""
    previous = None
    # Prefixes and tags sit at the start: a bounded head keeps a pathological subject
    # (one 1 MB word, thousands of "Re:") cheap, and no two real subjects differ only later.
    text = subject[:SUBJECT_MAX]
    for _ in range(MAX_PREFIXES):
        if previous == text:
            break
        previous = text
        text = _PREFIX.sub("", text, count=1)
    return " ".join(text.split()).casefold()


def is_reply(subject: str, in_reply_to: str | None, references: Iterable[str]) -> bool:
    """Whether the message says it answers something: only then may the subject thread it."""
    return bool(in_reply_to) or any(True for _ in references) or bool(_REPLY_PREFIX.match(subject))


def referenced_ids(in_reply_to: str | None, references: Iterable[str]) -> list[str]:
    """Ids to look up, the most likely parent first: In-Reply-To, then References newest first."""
    ordered: list[str] = []
    for message_id in [in_reply_to, *reversed(list(references))]:
        if message_id and message_id not in ordered:
            ordered.append(message_id)
    return ordered


def thread_by_references(ordered: list[str], known: Mapping[str, uuid.UUID]) -> uuid.UUID | None:
    """The thread of the nearest ancestor we have stored, if any (known: message id → thread)."""
    for message_id in ordered:
        if message_id in known:
            return known[message_id]
    return None


@dataclass(frozen=True)
class ThreadCandidate:
    thread_id: uuid.UUID
    customer_email: str
    subject: str
    last_message_at: datetime


def thread_by_subject(
    subject: str,
    customer_email: str,
    at: datetime,
    candidates: Iterable[ThreadCandidate],
    *,
    window: timedelta = SUBJECT_WINDOW,
) -> uuid.UUID | None:
    """The same customer's most recent thread with this subject within the window."""
    wanted = normalize_subject(subject)
    if not wanted:  # "Re:" alone says nothing about which conversation it is
        return None
    customer = customer_email.strip().lower()
    matches = [
        c
        for c in candidates
        if c.customer_email.strip().lower() == customer
        and normalize_subject(c.subject) == wanted
        and abs(at - c.last_message_at) <= window
    ]
    if not matches:
        return None
    return max(matches, key=lambda c: c.last_message_at).thread_id
