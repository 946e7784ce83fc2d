"""Separate what a customer just wrote from quoted history and signatures. Pure.

Mail clients append the whole conversation and a signature to every reply; the
model should read the new words only, while the rest is kept for the merchant.
"""

from __future__ import annotations

import re

# Gmail, Apple Mail and Thunderbird introduce a quote with one attribution line,
# sometimes wrapped onto two; localised clients say the same in their language.
_ATTRIBUTION = re.compile(
    r"^\s*("
    r"On\s.+\swrote:"
    r"|Le\s.+\sa\s+écrit\s*:"
    r"|Am\s.+\sschrieb\s.*:"
    r"|El\s.+\sescribió:"
    r"|Il\s.+\sha\s+scritto:"
    r"|Op\s.+\sschreef\s.*:"
    r"|Den\s.+\sskrev\s.*:"
    r"|Em\s.+\sescreveu:"
    r"|W\s+dniu\s.+\snapisa[łl]\s*\(?a?\)?:"
    r"|.+\snapisa[łl](?:a|\(a\))?:"
    r"|.+\d{4}.+<[^<>\s]+@[^<>\s]+>(:|\s+wrote:)"
    r")\s*$",
    re.IGNORECASE,
)
# Outlook and others: a separator line before the quoted message.
_SEPARATOR = re.compile(
    r"^\s*("
    r"-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original"
    r"|Mensagem original|Messaggio originale|Oorspronkelijk bericht|Oryginalna wiadomo[śs][ćc]"
    r"|Wiadomo[śs][ćc] oryginalna|元のメッセージ)\s*-{2,}"
    r"|-{2,}\s*(Forwarded message|Weitergeleitete Nachricht|Message transf[ée]r[ée]"
    r"|Mensaje reenviado|Mensagem encaminhada|Messaggio inoltrato|Doorgestuurd bericht"
    r"|Wiadomo[śs][ćc] przekazana|Przekazana wiadomo[śs][ćc]|転送されたメッセージ)\s*-{2,}"
    r"|Begin forwarded message:"
    r"|_{10,}"
    r")\s*$",
    re.IGNORECASE,
)
# Outlook's header block ("From: ... Sent: ... To: ... Subject: ..."), in a few languages.
_FROM_LINE = re.compile(
    r"^\s*\*?(From|De|Von|Da|Van|Från|Od|差出人)\s?\*?[:\uff1a]\s*\S", re.IGNORECASE
)
_SENT_LINE = re.compile(
    r"^\s*\*?(Sent|Date|Envoyé|Gesendet|Datum|Inviato|Enviado|Enviada|Fecha|Data|Skickat"
    r"|Verzonden|Wysłano|Wysłane|送信日時|日付)\s?\*?[:\uff1a]\s*\S",
    re.IGNORECASE,
)
_SIGNATURE_DELIMITER = re.compile(r"^--\s?$")  # RFC 3676 4.3: "-- " (some clients trim it)
_MOBILE_SIGNATURE = re.compile(
    r"^\s*("
    r"Sent from my \w+.*"
    r"|Sent from (Outlook|Yahoo Mail|Mail for Windows|Gmail)\b.*"
    r"|Get Outlook for (iOS|Android)\b.*"
    r"|Sent via .*(mobile|phone|Android|iPhone).*"
    r"|Von meinem \w+ gesendet"
    r"|Envoyé de mon \w+"
    r"|Enviado desde mi \w+"
    r"|Inviato da \w+.*"
    r"|Enviado do meu \w+.*"
    r"|(?:Verzonden|Verstuurd) (?:vanaf|met) mijn \w+.*"
    r"|Wys[łl]ane z (?:mojego )?\w+.*"
    r"|iPhoneから送信"
    r")\s*$",
    re.IGNORECASE,
)
_QUOTED_LINE = re.compile(r"^\s*>")
# No attribution, separator or signature line is longer; a longer line is text. The bound
# also keeps the line patterns (some backtrack over a line) linear in the message's size.
MARKER_LINE_MAX = 300
# Where the new text ends is found in a message's first lines, and a trailing quote in its
# last ones; the lines between are kept whole but not examined one by one.
SCANNED_LINES = 5_000


def _attribution_at(lines: list[str], i: int) -> bool:
    if _ATTRIBUTION.match(lines[i]):
        return True
    # Gmail wraps a long attribution: "On Tue, ... Ava Patel <" / "ava@example.com> wrote:".
    return (
        i + 1 < len(lines)
        and len(lines[i + 1]) <= MARKER_LINE_MAX
        and bool(
            lines[i].strip() and _ATTRIBUTION.match(f"{lines[i].rstrip()} {lines[i + 1].strip()}")
        )
    )


def _outlook_header_at(lines: list[str], i: int) -> bool:
    # A "From:" alone is something a customer may write; a date line right under it is not.
    if not _FROM_LINE.match(lines[i]):
        return False
    return any(_SENT_LINE.match(line) for line in lines[i + 1 : i + 4])


def _trailing_quote_start(lines: list[str]) -> int | None:
    """Where the final run of '>' lines (and blank lines) begins, if the message ends in one.

    Only the trailing run: inline answers between quoted lines are new text.
    """
    start: int | None = None
    for i in range(len(lines) - 1, max(len(lines) - SCANNED_LINES, 0) - 1, -1):
        if _QUOTED_LINE.match(lines[i]):
            start = i
        elif lines[i].strip():
            break
    return start


def _boundary(lines: list[str]) -> int | None:
    for i, line in enumerate(lines[:SCANNED_LINES]):
        if len(line) > MARKER_LINE_MAX:
            continue
        if (
            _SEPARATOR.match(line)
            or _SIGNATURE_DELIMITER.match(line)
            or _MOBILE_SIGNATURE.match(line)
            or _attribution_at(lines, i)
            or _outlook_header_at(lines, i)
        ):
            return i
    return _trailing_quote_start(lines)


def split_reply(text: str) -> tuple[str, str]:
    """(new text, quoted history and signature). Nothing is dropped: new + quoted is all of it.

    A message that is nothing but a quote or a bare forward keeps everything as new
    text, so the model never gets an empty message.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    boundary = _boundary(lines)
    if boundary is None:
        return text.strip(), ""
    new = "\n".join(lines[:boundary]).strip()
    quoted = "\n".join(lines[boundary:]).strip()
    if not new:
        return text.strip(), ""
    return new, quoted
