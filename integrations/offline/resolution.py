"""Thanks for a resolution already made, and the sarcasm that undoes thanks. Pure.

A customer who writes "thanks, the refund arrived" names the remedy they got, not one
they ask for: the words "refund" or "replacement" there must not become a request. So
such phrases are blanked before the request signals are read, unless the message is
sarcastic ("thanks for nothing", "great, still no refund"), which undoes the thanks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_I = re.I | re.U

# The remedies a store gives, in the supported languages (stems, so plurals and cases fit).
_REMEDY = (
    r"(?:refund|money back|replacement|new one|exchange|credit"
    r"|reembolso|devoluci[oó]n|reemplazo|cambio|dinero"
    r"|r[üu]ckerstattung|erstattung|ersatz|umtausch|gutschrift|geld"
    r"|remboursement|remplacement|[ée]change|avoir"
    r"|estorno|troca|substitui[çc][ãa]o|dinheiro"
    r"|rimborso|sostituzion[ei]|cambio|soldi"
    r"|terugbetaling|vervang\w*|omruil\w*|geld"
    r"|zwrot\w*|wymian\w*|pieni[ąa]dz\w*"
    # compensation already paid is a remedy too ("I already got 40 zł compensation")
    r"|compensation|goodwill|compensaci[oó]n|entsch[äa]digung|d[ée]dommagement"
    r"|compensa[çc][ãa]o|risarciment\w*|compensatie|rekompensat\w*)"
)
# What the store did when it changed or fixed something: "thanks for sorting it out",
# "gracias por cambiarla", "merci d'avoir corrigé".
_FIXED = (
    r"(?:sorting|fixing|changing|updating|handling|resolving|cambiar\w*|arreglar\w*"
    r"|solucionar\w*|actualizar\w*|[äa]ndern|aktualisieren|erledigen|changer|modifier"
    r"|corriger|alterar|atualizar|resolver|cambiare|aggiornare|sistemare|risolvere"
    r"|wijzigen|aanpassen|oplossen|zmian\w*|poprawieni\w*|za[łl]atwieni\w*)"
)
_DONE = rf"(?:{_REMEDY}|{_FIXED})"

_GAP = r"(?:[^\W\d_]+ ){0,3}"  # up to three words: "for the quick", "pelo"

# Thanks for a remedy, or news that it arrived or that the matter is settled.
_RESOLVED = re.compile(
    "|".join(
        (
            # "thanks (so much) for the (quick) refund": the remedy is what is thanked for
            rf"\b(?:thanks?|thank you|thx)(?: (?:so|very) much| a lot)? for {_GAP}{_DONE}",
            rf"\bgracias por {_GAP}{_DONE}",
            rf"\b(?:danke|vielen dank) f[üu]r {_GAP}{_DONE}",
            rf"\bmerci (?:beaucoup )?pour {_GAP}{_DONE}",
            rf"\bobrigad[oa] (?:pel[oa]|por) {_GAP}{_DONE}",
            rf"\bgrazie (?:mille )?(?:per|del|della|dello) {_GAP}{_DONE}",
            rf"\b(?:bedankt|dank (?:je|u)(?: wel)?) voor {_GAP}{_DONE}",
            rf"\b(?:dzi[ęe]kuj[ęe](?: bardzo)?|dzi[ęe]ki) za {_GAP}{_DONE}",
            # "the refund arrived / came through / went through / showed up"
            rf"\b{_REMEDY}\b[^.!?\n]{{0,30}}?\b(?:arrived|came through|went through|"
            rf"showed up|is here|landed|lleg[oó]|ha llegado|ist angekommen|kam an|"
            rf"est arriv[ée]e?|arrivé(?:e|s|es)?\b|chegou|[èe] arrivat[oa]|is aangekomen|"
            rf"is binnen|dotar\w*|przysz\w*)",
            # "ya me llegó el reembolso": the arrival told first, then the remedy, an article
            # or two between ("llegó rota, quiero un reembolso" is a request)
            rf"\b(?:lleg[oó]|ha llegado|chegou|ist angekommen|est arriv[ée]e?|"
            rf"[èe] arrivat[oa]|is aangekomen|dotar\w*|przysz\w*)(?: [^\W\d_]{{1,4}}){{0,2}} "
            rf"{_REMEDY}",
            # "I can see the money back on my card"
            rf"\b(?:see|seen|saw|shows?|showing|showed|appeared)\b[^.!?\n]{{0,15}}?{_REMEDY}\b"
            rf"[^.!?\n]{{0,10}}?\b(?:on|in) my (?:card|account|bank|statement)",
            # "the replacements smell lovely": a remedy judged is a remedy received
            rf"\b{_REMEDY}\w*\b[^.!?\n]{{0,20}}?\b(?:is|are|looks?|smells?|fits?|works?)\b"
            rf"[^.!?\n]{{0,12}}?\b(?:great|lovely|perfect|fine|good|brilliant|beautiful|amazing)\b",
            # "I got / received my refund"
            rf"\b(?:got|received|recib[ií]|erhalten|bekommen|re[çc]u|recebi|ricevuto|"
            rf"ontvangen|gekregen|otrzyma\w*|dosta\w*)\b[^.!?\n]{{0,25}}?{_REMEDY}",
            # "all sorted", "problem solved", "issue resolved"
            r"\b(?:all (?:sorted|good now|set now|fixed)|problem (?:solved|fixed)|issue "
            r"(?:resolved|solved|fixed)|(?:todo|problema) (?:resuelto|solucionado)|"
            r"alles (?:erledigt|geklärt)|problem gelöst|tout est réglé|"
            r"probl[èe]me r[ée]solu|(?:tudo|problema) resolvido|(?:tutto|problema) "
            r"risolto|(?:alles|probleem) opgelost|(?:wszystko|problem) "
            r"(?:za[łl]atwion\w*|rozwi[ąa]zan\w*))",
            # Japanese: thanks for the refund, the replacement arrived, it is resolved
            r"(?:返金|交換品|代替品)[^。\uff01\uff1f\n]{0,12}?(?:ありがと|届きました|確認しました|"
            r"受け取りました)|解決しました",
        )
    ),
    _I,
)
# A settled matter is stated, not asked or denied: "has the refund arrived?", "I never
# got my refund" are requests.
_NEGATION = re.compile(
    r"\b(?:not|never|no|yet|still|nicht|noch|kein\w*|nie|pas|jamais|nunca|todav[ií]a|"
    r"ainda|n[ãa]o|non|ancora|niet|nog|geen|nadal|jeszcze)\b|n't\b|まだ|ません",
    _I,
)
_SENTENCE_END = re.compile(r"[.!?。\uff01\uff1f\n]")

# Thanks that is not: "thanks for nothing", "thanks a lot" next to "still" or "never",
# "oh great", a remedy in scare quotes.
_SARCASM = re.compile(
    "|".join(
        (
            r"\bthanks? (?:a lot |so much )?for nothing\b",
            r"\b(?:gracias por nada|danke für nichts|merci pour rien|merci pour "
            r"nada|obrigad[oa] por nada|grazie (?:di|per) niente|bedankt voor (?:niks|niets)|"
            r"dzi[ęe]ki za nic)\b",
            r"\b(?:oh|yeah),? (?:great|wonderful|fantastic|perfect|sure|right)\b",
            r"\b(?:thanks?|thank you)\b[^.!?\n]{0,40}\b(?:still|never|yet again|again)\b",
            r"[\"'\u201c\u2018«](?:" + _REMEDY + r")[\"'\u201d\u2019»]",
            r"\b(?:great|wonderful|fantastic|perfect|brilliant) (?:job|service|work)\b[^.!?\n]"
            r"{0,40}\b(?:not|never|still|no)\b",
            r"ありがとうございますね[。\uff01]?\s*(?:まだ|また)",
        )
    ),
    _I,
)


@dataclass(frozen=True)
class Reading:
    text: str  # the text with thanks for a remedy blanked (unless sarcastic)
    resolved: bool  # it thanks for, or reports, a remedy already made
    sarcastic: bool  # thanks that is not


def read(text: str) -> Reading:
    """What the request rules should read, and whether the message settles a matter."""
    sarcastic = _SARCASM.search(text) is not None
    if sarcastic:
        return Reading(text, resolved=False, sarcastic=True)
    kept: list[str] = []
    at, found = 0, False
    for match in _RESOLVED.finditer(text):
        if not _stated(text, match.start(), match.end()):
            continue
        kept.append(text[at : match.start()])
        at, found = match.end(), True
    kept.append(text[at:])
    return Reading(" ".join(kept) if found else text, resolved=found, sarcastic=False)


def _stated(text: str, start: int, end: int) -> bool:
    """The sentence holding text[start:end] neither asks nor denies it."""
    before = text.rfind("\n", 0, start)
    for mark in _SENTENCE_END.finditer(text, max(0, start - 200), start):
        before = max(before, mark.start())
    after = _SENTENCE_END.search(text, end)
    sentence_end = text[after.start()] if after is not None else ""
    if sentence_end in ("?", "\uff1f"):
        return False
    sentence = text[before + 1 : after.start() if after is not None else len(text)]
    return _NEGATION.search(sentence) is None
