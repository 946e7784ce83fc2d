"""How a customer writes, for the playbooks: the mood, whether they ask for a person, and
whether they threaten legal action. Pure; English, Spanish, German, French, Japanese,
Portuguese, Italian, Dutch and Polish (the phrases are in tone_phrases.py).

Precision first: a cue is a phrase that means the thing in a customer email, not a word
that may ("manager" alone is often the customer's own; "avocat" is also an avocado).
Every pattern is alternations of literals with bounded repeats, so a search is linear in
the text whatever it holds.

Negation differs by signal:
- a mood or a request for a person is negated only within its own clause and a few words
  ("I'm not angry"; "I don't need to speak to anyone"), never across a comma ("not
  happy, I want a manager" still wants one);
- a legal threat is never negated: it is usually phrased as a condition with a negation
  in it ("if you don't refund me I'll sue"), and "I don't want to involve my lawyer" is a
  threat too.

A chargeback (or a bank or PayPal dispute) counts as a legal threat: it is a formal
dispute outside the desk that the store must answer with evidence, and refunding while
one is open can pay the customer twice; either way a person should decide.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from integrations.offline.tone_phrases import (
    ANGER_CUES,
    HUMAN_CUES,
    LEGAL_CUES,
    NEGATIVE_CUES,
    PRAISE_CUES,
    Cues,
)
from kernel.values import Sentiment

# The cue lists live in tone_phrases; they are read from here too (the tests do).
__all__ = [
    "ANGER_CUES",
    "HUMAN_CUES",
    "LEGAL_CUES",
    "NEGATIVE_CUES",
    "PRAISE_CUES",
    "Cues",
    "Tone",
    "shouting",
    "tone",
]


def _pattern(latin: Sequence[str], japanese: Sequence[str]) -> re.Pattern[str]:
    """Latin-script phrases from the start of a word; Japanese ones anywhere.

    Written in lower case and matched against lowered text, and grouped by their first
    letters ("a(?:n(?:gry)|b(?:surd))|..."): the engine tries every alternative at every
    word start, so both cut the constant of the linear scan many times (re.I over hundreds
    of flat alternatives took seconds a megabyte)."""
    # Japanese is tried anywhere, so only where a kana or kanji stands.
    kana_kanji = r"(?=[\u3040-\u30ff\u4e00-\u9fff])"
    return re.compile(
        r"\b(?:" + _grouped(latin, 4) + ")|" + kana_kanji + "(?:" + "|".join(japanese) + ")"
    )


def _grouped(phrases: Sequence[str], depth: int) -> str:
    groups: dict[str, list[str]] = {}
    others: list[str] = []
    for alternative in (unfolded for phrase in phrases for unfolded in _unfolded(phrase)):
        # A letter not followed by a quantifier can be factored out; a group, a class or
        # an escape cannot.
        if depth and alternative[:1].isalpha() and alternative[1:2] not in _QUANTIFIERS:
            groups.setdefault(alternative[0], []).append(alternative[1:])
        else:
            others.append(alternative)
    parts = [
        f"{first}(?:{_grouped(tails, depth - 1)})" if len(tails) > 1 else first + tails[0]
        for first, tails in groups.items()
    ]
    return "|".join(parts + others)


_QUANTIFIERS = ("?", "*", "+", "{")


def _unfolded(phrase: str) -> list[str]:
    """The phrase as the same alternatives with a leading group or plain class spelled out
    ("(?:speak|talk) to" -> "speak to", "talk to"), so that they begin with a letter."""
    if phrase.startswith("(?:"):
        end = _closing(phrase)
        if phrase[end + 1 : end + 2] not in _QUANTIFIERS:
            rest = phrase[end + 1 :]
            return [u for alt in _top_level(phrase[3:end]) for u in _unfolded(alt + rest)]
    elif phrase.startswith("["):
        end = phrase.find("]")
        chars = phrase[1:end]
        if chars.isalpha() and phrase[end + 1 : end + 2] not in _QUANTIFIERS:
            return [u for char in chars for u in _unfolded(char + phrase[end + 1 :])]
    return [phrase]


def _closing(phrase: str) -> int:
    """Where the group that opens the phrase closes."""
    depth, index = 0, 0
    while index < len(phrase):
        char = phrase[index]
        if char == "\\":
            index += 1
        elif char == "[":
            index = phrase.index("]", index + 1)
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ValueError(f"unbalanced pattern: {phrase!r}")


def _top_level(body: str) -> list[str]:
    """The alternatives of a group's body, split at its own "|" only."""
    parts, depth, start, index = [], 0, 0, 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            index += 1
        elif char == "[":
            index = body.index("]", index + 1)
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(body[start:index])
            start = index + 1
        index += 1
    return [*parts, body[start:]]


WANTS_HUMAN = _pattern(*HUMAN_CUES)
LEGAL_THREAT = _pattern(*LEGAL_CUES)
ANGER = _pattern(*ANGER_CUES)
NEGATIVE = _pattern(*NEGATIVE_CUES)
PRAISE = _pattern(*PRAISE_CUES)

# "I'm not angry", "no estoy enfadado", "nicht zufrieden" is its own cue: a negation a few
# words before a cue, in the same clause, takes it back.
_NOT_BEFORE = re.compile(
    r"(?:\b(?:not|no|isn'?t|wasn'?t|aren'?t|weren'?t|don'?t|doesn'?t|didn'?t|nicht|kein\w{0,3}|"
    r"pas|ni|sin|sans|ohne|jamais|nunca|n[ãa]o|nem|sem|non|senza|niet|geen|zonder|nie|bez)\b|n't)"
    r"(?:[^\S\n]{1,3}[^\s,;:.!?]{1,20}){0,3}[^\S\n]{0,3}$",
    re.I,
)
# A request for a person is taken back only by not wanting one: "I haven't been able to
# reach a human" or "je n'arrive pas à parler à quelqu'un" still want one, so "can't" or
# "unable" do not count (French "pas" does; precision over recall there).
_NO_WISH_BEFORE = re.compile(
    r"(?:\b(?:don'?t|do not|doesn'?t|does not|no need|needn'?t|not necessary|not needed|"
    r"never mind|without|rather than|instead of|no (?:quiero|necesito|hace falta|es necesario)|"
    r"sin|en vez de|en lugar de|nicht|kein\w{0,3}|ohne|statt|anstatt|pas|sans|"
    r"plut[ôo]t que|au lieu de|"
    # pt, it, nl, pl: not wanting or needing, so "não consigo falar com um atendente" or
    # "nie mogę się połączyć z konsultantem" (can't get through) still want one
    r"n[ãa]o (?:quero|queria|preciso|precisa|precisam|[ée] (?:preciso|necess[áa]rio)|"
    r"h[áa] necessidade)|sem|em vez de|ao inv[ée]s de|"
    r"non (?:voglio|vorrei|serve|servono|occorre|ho bisogno|c'[èe] bisogno|[èe] necessario|"
    r"mi serve)|senza|invece di|anzich[ée]|"
    r"(?:wil|wilt|willen|hoef|hoeft|hoeven) (?:ik |je |u |we |jullie )?(?:niet|geen)|"
    r"liever (?:niet|geen)|niet nodig|zonder|in plaats van|"
    r"nie (?:chc[ęe]|chcemy|chcia[łl]\w{1,5}|potrzebuj[ęe]|potrzebujemy|trzeba|musz[ęe]|"
    r"ma potrzeby)|bez|zamiast)\b)(?:[^\S\n]{1,3}[^\s,;:.!?]{1,20}){0,4}[^\S\n]{0,3}$",
    re.I,
)
# German, Dutch and Japanese put it after: "einen Rückruf brauche ich nicht", "terugbellen
# is niet nodig", "電話は不要です"; the others may ("oddzwonienie nie jest potrzebne").
_NO_WISH_AFTER = re.compile(
    r"^[^.!?\n]{0,20}?\b(?:brauche|brauchen|m[öo]chte|will|ben[öo]tige|muss) (?:ich|wir) nicht\b"
    r"|^[^.!?\n]{0,20}?\b(?:(?:hoeft|hoeven|hoef) (?:het )?niet|(?:is|zijn) niet nodig)\b"
    r"|^[^.!?\n]{0,20}?\bnie (?:jest )?(?:potrzebn\w{1,3}|trzeba|konieczn\w{1,3})\b"
    r"|^[^.!?\n]{0,20}?\b(?:non (?:serve|[èe] necessari[oa]|occorre)|"
    r"n[ãa]o (?:[ée] )?(?:preciso|necess[áa]ri[oa]))\b"
    r"|^[^\u3002\uff01\uff1f\n]{0,8}(?:不要|いりません|要りません|必要(?:は)?(?:ない|ありません)|結構です)",
    re.I,
)
_NOT_AFTER = re.compile(
    _NO_WISH_AFTER.pattern + r"|^[^\u3002\uff01\uff1f\n]{0,6}(?:ない|ません|なかった)", re.I
)
_WINDOW = 40


def _first(
    pattern: re.Pattern[str],
    text: str,
    before: re.Pattern[str] | None = None,
    after: re.Pattern[str] | None = None,
) -> str | None:
    """The first cue in the text that no negation around it takes back."""
    for match in pattern.finditer(text):
        ahead = text[max(0, match.start() - _WINDOW) : match.start()]
        behind = text[match.end() : match.end() + _WINDOW]
        if (before is not None and before.search(ahead)) or (
            after is not None and after.search(behind)
        ):
            continue
        return match[0]
    return None


# Shouting: a sentence of three or more words, nearly all in capitals, that ends in "!" or
# "?" or runs to five such words ("WHERE IS MY STUFF??"). An address or a signature in
# capitals ("ACME LTD", "NEW YORK NY 10001") is short or holds digits, and is not read so.
_SENTENCES = re.compile(r"[^.!?\n]{1,2000}[.!?]*")
_WORD = re.compile(r"[^\W\d_]{1,50}")
_SHOUT_LETTERS = 12


def shouting(text: str) -> str | None:
    """The capitals of the first shouted sentence, or None."""
    if sum(map(str.isupper, text)) < _SHOUT_LETTERS:
        return None
    for found in _SENTENCES.finditer(text):
        sentence = found[0]
        if len(sentence) < _SHOUT_LETTERS or sentence.lower() == sentence:
            continue
        words = [w for w in _WORD.findall(sentence) if w.lower() != w.upper()]  # cased scripts
        caps = [w for w in words if len(w) >= 2 and w.isupper()]
        upper = sum(w.isupper() for w in words)
        if len(caps) < 3 or upper < 0.8 * len(words) or sum(map(len, caps)) < _SHOUT_LETTERS:
            continue
        if sentence.rstrip().endswith(("!", "?")) or (
            len(caps) >= 5 and not any(c.isdigit() for c in sentence)
        ):
            return " ".join(caps[:6])
    return None


@dataclass(frozen=True)
class Tone:
    sentiment: Sentiment = "neutral"
    wants_human: bool = False
    legal_threat: bool = False
    cues: tuple[str, ...] = ()  # what was read, for the rationale


def tone(subject: str, body: str, *, only_thanks: bool = False, complaint: bool = False) -> Tone:
    """The signals of a message: its subject and new text (never the quoted history).

    `only_thanks`: the message thanks and asks for nothing, which is positive.
    `complaint`: it reports a problem with the goods, which outweighs any praise in it."""
    text = f"{subject}\n{body}".lower()
    human = _first(WANTS_HUMAN, text, _NO_WISH_BEFORE, _NO_WISH_AFTER)
    legal = _first(LEGAL_THREAT, text)  # never taken back: see the module docstring
    sentiment: Sentiment = "neutral"
    cues: list[str] = []
    # The strongest mood read wins; weaker ones are not searched for.
    if (anger := _first(ANGER, text, _NOT_BEFORE, _NOT_AFTER) or shouting(body)) is not None:
        sentiment, cues = "angry", [f"angry ({anger[:40]})"]
    elif (negative := _first(NEGATIVE, text, _NOT_BEFORE, _NOT_AFTER)) is not None:
        sentiment, cues = "negative", [f"negative ({negative[:40]})"]
    elif legal is not None:
        sentiment = "negative"  # a threat is no neutral message, whatever its words
    elif not complaint and (  # a problem with the goods outweighs any praise around it
        praise := "thanks" if only_thanks else _first(PRAISE, text, _NOT_BEFORE, _NOT_AFTER)
    ):
        sentiment, cues = "positive", [f"positive ({praise[:40]})"]
    if human is not None:
        cues.append(f"asks for a person ({human[:40]})")
    if legal is not None:
        cues.append(f"legal threat ({legal[:40]})")
    return Tone(sentiment, human is not None, legal is not None, tuple(cues))
