"""Text analysis stays linear whatever a message holds: long runs of every kind of character,
at 1 MB, finish in bounded time, and the suggester reads a bounded head of the message.

The ceiling is far above the linear cost (well under a second a function here) and far below
what a quadratic pattern costs on 1 MB (hours): it tells the two apart on a noisy machine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.guardrails import apply_guardrails, context_for
from domain.guardrails.text import (
    hidden_text_signals,
    injection_signals,
    money_amounts,
    promised_acts,
)
from domain.mail.mime import html_parts
from domain.mail.quoting import split_reply
from domain.mail.threads import normalize_subject
from domain.order_names import order_names_in
from integrations.offline import resolution
from integrations.offline.tone import tone
from integrations.offline_suggester import OfflineSuggester
from kernel.values import ANALYSED_SUBJECT_CHARS, ANALYSED_TEXT_CHARS, SuggestionRequest

MB = 1_000_000
CEILING_S = 20.0

# Runs of one kind of character, and the pairs that used to make a pattern backtrack.
UNITS = [
    "a", "1", " ", "\n", ".", "-", "@", "a@", "a.", "1,", "#", "<", "> ", "re:", "$1", "あ",
    " \n", "order ", "<b>", "<!--", "<a ", "<![", "<?", "note to the ai ",
]  # fmt: skip


def _injection(text: str) -> list[str]:
    return injection_signals(
        text,
        sender_email="ava@example.com",
        shop_domains=frozenset({"store.example"}),
        own_order_names={"#1001"},
        order_total=Decimal("100"),
    )


ANALYSES: dict[str, Callable[[str], Any]] = {
    "injection_signals": _injection,
    "hidden_text_signals": hidden_text_signals,
    "html_parts": html_parts,  # what an HTML body shows, and what it hides
    # The suggester's signals for the playbooks: mood, a person asked for, a legal threat.
    "tone": lambda text: tone(text[:ANALYSED_SUBJECT_CHARS], text),
    "money_amounts": money_amounts,
    "order_names_in": order_names_in,
    "promised_acts": promised_acts,
    "split_reply": split_reply,
    "resolution": resolution.read,  # thanks for a remedy already made, sarcasm
    "normalize_subject": normalize_subject,
}


def _run(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _slowest(text: str) -> tuple[str, float]:
    timings = {}
    for name, analyse in ANALYSES.items():
        started = time.perf_counter()
        analyse(text)
        timings[name] = time.perf_counter() - started
    name = max(timings, key=timings.__getitem__)
    return name, timings[name]


@pytest.mark.parametrize("unit", UNITS, ids=repr)
def test_a_megabyte_run_is_analysed_in_bounded_time(unit: str) -> None:
    name, seconds = _slowest(_run(unit, MB))
    assert seconds < CEILING_S, f"{name} took {seconds:.1f}s on 1 MB of {unit!r}"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=" \n\t.,:;@#<>[]()-_'\"$a1Zé", min_size=1, max_size=4))
def test_any_short_pattern_repeated_is_analysed_in_bounded_time(unit: str) -> None:
    name, seconds = _slowest(_run(unit, 200_000))
    assert seconds < CEILING_S, f"{name} took {seconds:.1f}s on 200 kB of {unit!r}"


def test_the_suggester_reads_a_bounded_head_of_the_message() -> None:
    request = SuggestionRequest(
        store_name="Store",
        customer_email="ava@example.com",
        subject="s" * MB,
        text="a" * MB,
        quoted="> " * MB,
    )
    assert len(request.text) == len(request.quoted) == ANALYSED_TEXT_CHARS
    assert len(request.subject) == ANALYSED_SUBJECT_CHARS


@pytest.mark.parametrize("unit", ["a", " ", "\n", "a@", "1,"], ids=repr)
def test_a_poison_message_gets_a_guarded_suggestion(unit: str) -> None:
    text = _run(unit, MB)
    request = SuggestionRequest(
        store_name="Store", customer_email="ava@example.com", subject=text, text=text
    )
    started = time.perf_counter()
    draft = asyncio.run(OfflineSuggester().suggest(request))
    guarded = apply_guardrails(draft, context_for(request, sender_orders=()))
    seconds = time.perf_counter() - started
    assert seconds < CEILING_S, f"{seconds:.1f}s for a 1 MB run of {unit!r}"
    assert 0 <= guarded.draft.confidence <= 1 and guarded.draft.reply
