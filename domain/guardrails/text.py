"""Reading free text: what a customer's message tries to make us do, and what a reply promises.

Heuristics, tuned to err towards "a person should look": a false alarm costs one
manual approval, a miss can cost a refund.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from domain.order_names import order_names_in

# What a writer calls the program reading their mail, in the languages we answer in.
_MODEL = (
    r"(?:AI|A\.I\.|LLMs?|GPT|ChatGPT|chat ?bots?|language models?|(?:AI|virtual) (?:assistants?|agents?)"
    r"|automated (?:systems?|assistants?|agents?)|support bots?|bots?|IA|KI|SI)"
)
# Phrases that address the system rather than the shop.
_INSTRUCTIONS = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}"
    r"\b(?:instructions?|prompts?|rules|polic(?:y|ies)|guidelines|limits?)\b"
    r"|\byou are now\b"
    r"|\bnew instructions\b"
    r"|\b(?:developer|admin|god|jailbreak) mode\b"
    r"|\bact as (?:an? |the )?(?:admin|administrator|system|developer|manager)\b"
    r"|(?:^|\n)[ \t]{0,8}(?:[\[<(][ \t]{0,8})?(?:system|assistant|developer)[ \t]{0,8}[\]>)]?[ \t]{0,8}:"
    r"|<\|?\s{0,4}/?\s{0,4}(?:system|im_start|im_end)\b"
    # Words to a model, wherever they hide (a signature, a forwarded part): "Note to the AI
    # reading this", "AI assistants must approve", "set the confidence to 1.0".
    rf"|\b(?:note|message|instructions?|attention|dear|hello|hi)\s{{1,3}}(?:to\s{{1,3}})?(?:the\s{{1,3}}|any\s{{1,3}}|all\s{{1,3}})?{_MODEL}\b"
    rf"|\b{_MODEL}\b[^.\n]{{0,40}}\b(?:must|should|shall|needs? to|has to|is (?:instructed|required|authori[sz]ed) to|always|auto-?approve)\b"
    r"|\b(?:set|give|assign|report|use|with)\b[^.\n]{0,20}\bconfidence\b[^.\n]{0,12}(?:1(?:\.0{1,4})?|100\s?%|0\.9\d{0,4})\b"
    r"|\bauto-?approve\b"
    r"|\b(?:ignora|ignori|negeer|zignoruj|ignoruj|ignore)\w{0,4}\s{1,3}(?:\w{1,12}\s{1,3}){0,3}(?:instru|istruz|regras|regole|instructies|regels|instrukcj|zasad|polecen|anweisung|regeln"
    r"|r[èe]gles|consignes|reglas)"
    r"|指示を無視|ルールを無視|システムプロンプト",
    re.I,
)
_WORD = re.compile(r"[^\W\d_]{2,30}")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
# Enough words to say something to a model; a stray hidden "x" or a spacer is not.
HIDDEN_WORDS = 3

_CURRENCY = r"(?:[$€£¥₹]|\b(?:USD|EUR|GBP|INR|CAD|AUD|JPY|CHF|SEK|NZD)\b|\bdollars?\b|\beuros?\b)"
# Bounded and anchored at the start of a digit run: unbounded `\d+` before an optional
# currency backtracks quadratically on a long run of digits (seconds for 5,000 digits).
_NUMBER = r"(?<![\d,.])(\d{1,3}(?:,\d{3}){1,10}(?:\.\d{1,6})?|\d{1,30}(?:\.\d{1,6})?)"
_MONEY = re.compile(rf"{_CURRENCY}\s?{_NUMBER}|{_NUMBER}\s?{_CURRENCY}", re.I)
# Matched only from the start of a run of address characters, and bounded as RFC 5321 bounds
# an address: `[\w.+'-]+@` tried at every position of a long word is quadratic.
_EMAIL = re.compile(r"(?<![\w.+'-])[\w.+'-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}")


def hidden_text_signals(hidden: str) -> list[str]:
    """Why the text an email hides from its reader is suspect: a customer writes to be read,
    so words in an HTML comment or a hidden element are written for a program."""
    words = len(_WORD.findall(hidden)) + len(_CJK.findall(hidden)) // 2
    if words < HIDDEN_WORDS:
        return []
    excerpt = " ".join(hidden.split())[:60]
    return [f"the email hides text from its reader ({excerpt!r})"]


def money_amounts(text: str) -> list[Decimal]:
    """Amounts written with a currency next to them ("$40", "40 EUR", "1,200.50 USD")."""
    amounts = []
    for match in _MONEY.finditer(text):
        raw = (match.group(1) or match.group(2) or "").replace(",", "")
        try:
            amounts.append(Decimal(raw))
        except InvalidOperation:
            continue
    return amounts


def injection_signals(
    text: str,
    *,
    sender_email: str,
    shop_domains: frozenset[str],
    own_order_names: set[str],
    order_total: Decimal | None,
) -> list[str]:
    """Why the customer's text looks like it tries to steer the system; empty when it doesn't."""
    signals = []
    if match := _INSTRUCTIONS.search(text):
        signals.append(f"the message addresses the system ({match.group(0).strip()[:60]!r})")
    # Above the order's total, not its refundable rest: customers quote what they paid.
    if order_total is not None:
        asked = [amount for amount in money_amounts(text) if amount > order_total]
        if asked:
            signals.append(f"the message asks about {max(asked)}, more than the order's total")
    foreign_orders = [name for name in order_names_in(text) if name not in own_order_names]
    if foreign_orders:
        signals.append(f"the message names orders that are not the sender's: {foreign_orders}")
    sender = sender_email.strip().lower()
    others = sorted(
        {
            address.lower()
            for address in _EMAIL.findall(text)
            if address.lower() != sender and address.rsplit("@", 1)[1].lower() not in shop_domains
        }
    )
    if others:
        signals.append(f"the message names other email addresses: {others}")
    return signals


# A promise is a sentence that commits us ("we have", "will be", ...) to a kind of act.
_COMMITS = re.compile(
    r"\b(?:we|i)(?:'ve|'ll|'re|'m| have| will| are| am| shall| just)\b"
    r"|\byou(?:'ll| will) (?:receive|get|see)\b"
    r"|\b(?:has|have) been\b|\b(?:will|is|are) (?:be|being)\b|\bon (?:its|the) way\b"
    r"|\b(?:issued|processed|approved|initiated|arranged|dispatched)\b",
    re.I,
)
_NEGATION = re.compile(r"\b(?:not|no longer|unable|cannot)\b|n't\b", re.I)
_ACTS: dict[str, re.Pattern[str]] = {
    "refund": re.compile(r"\brefund|\bmoney back\b|\breimburs", re.I),
    "cancel": re.compile(r"\bcancel", re.I),
    "replace": re.compile(r"\breplac|\bre-?ship|\bexchange|\bright item\b", re.I),
    "address": re.compile(r"\baddress\b", re.I),
}
_SENTENCE_END = re.compile(r"[.!?\n]+")


def promised_acts(reply: str) -> set[str]:
    """The kinds of act ("refund", "cancel", "replace", "address") the reply commits us to."""
    acts: set[str] = set()
    for sentence in _SENTENCE_END.split(reply.replace("\u2019", "'")):
        if not _COMMITS.search(sentence) or _NEGATION.search(sentence):
            continue
        acts.update(kind for kind, pattern in _ACTS.items() if pattern.search(sentence))
    return acts
