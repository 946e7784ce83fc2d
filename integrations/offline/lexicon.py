"""What a customer's words signal, in English, Spanish, German, French, Japanese, and
(from `lexicon_pt_it_nl_pl`) Portuguese, Italian, Dutch and Polish. Pure.

Each signal is one pattern over all nine languages (with the misspellings customers
commonly type), so a rule can be read as "the text asks for a refund" whatever the
language. Japanese has no word boundaries, so its stems are matched anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from integrations.offline import lexicon_pt_it_nl_pl as more

_I = re.I


def _words(*stems: str) -> str:
    """Stems matched at the start of a word (Latin scripts)."""
    return r"\b(?:" + "|".join(stems) + ")"


def _any(*stems: str) -> str:
    """Stems matched anywhere (Japanese)."""
    return "(?:" + "|".join(stems) + ")"


SIGNALS: dict[str, re.Pattern[str]] = {
    "cancel": re.compile(
        _words(
            r"cancel",
            r"cancle",
            r"cancal",
            r"canel",  # en, with typos
            r"anula",
            r"anule",  # es (cancelar is covered by cancel)
            r"stornier",
            r"storno",
            r"abbestell",
            r"annullier",  # de
            r"annul",  # fr
        )
        + "|"
        + _any("キャンセル", "取り消", "取消"),
        _I,
    ),
    "refund": re.compile(
        _words(
            r"refund",
            r"refound",
            r"rembo",
            r"reimburs",
            r"money back",
            r"my money",
            r"reembols",
            r"devolu?ci[oó]n del dinero",
            r"devolv\w* (?:el|mi) dinero",
            r"(?:me |nos )?devolv[eé]is el dinero",
            r"devu[eé]lv\w* (?:el|mi) dinero",
            r"erstatt",
            r"r[üu]ckerstatt",
            r"geld zur[üu]ck",
            r"r[üu]ckzahl",
            r"gutschrift",
            r"rembours",
            r"remboursement",
        )
        + "|"
        + _any("返金", "払い戻", "払戻"),
        _I,
    ),
    "return": re.compile(
        _words(
            r"(?:want|like|need) to return",
            r"send (?:it|them|this) back",
            r"return (?:it|them|this)",
            r"devolver",
            r"devoluci[oó]n",
            r"zur[üu]ck ?schicken",
            r"zur[üu]cksenden",
            r"r[üu]cksendung",
            r"retoure",
            r"retourner",
            r"renvoyer (?:le|la|les)",
        )
        + "|"
        + _any("返品"),
        _I,
    ),
    "damaged": re.compile(
        _words(
            r"damage",
            r"dammage",
            r"broke",
            r"borken",
            r"crack",
            r"shatter",
            r"smash",
            r"defect",
            r"faulty",
            r"dented\b",
            r"torn\b",
            r"ripped\b",
            r"leak",
            r"scratch",
            r"stained\b",
            r"(?:does ?n[o']?t|doesnt|won'?t|will not|do(?:es)? not) (?:work|turn on|switch on|charge|start)",
            r"stopped working",
            r"not working",
            r"rot[oa]s?\b",
            r"da[ñn]ad",
            r"defectuos",
            r"estropead",
            r"rajad",
            r"no funciona",
            r"no enciende",
            r"partid[oa]s?\b",
            r"kaputt",
            r"besch[äa]digt",
            r"defekt",
            r"zerbrochen",
            r"gebrochen",
            r"gerissen",
            r"funktioniert nicht",
            r"geht nicht",
            r"zerkratzt",
            r"undicht",
            r"cass[ée]",
            r"ab[îi]m[ée]",
            r"endommag",
            r"d[ée]fectueu",
            r"fissur",
            r"f[êe]l[ée]",
            r"ne (?:fonctionne|marche|s'allume|d[ée]marre) pas",
            r"ray[ée]",
        )
        + "|"
        + _any(
            "壊れ",
            "破損",
            "割れ",
            "欠け",
            "不良",
            "動かな",
            "故障",
            "傷",
            "汚れ",
            "点かな",
            "つかな",
        ),
        _I,
    ),
    "wrong_item": re.compile(
        _words(
            r"wrong",
            r"incorrect",
            r"not what i ordered",
            r"instead of",
            r"different (?:colou?r|size|item|model)",
            r"too (?:small|big|large|tight)",  # not "too long": that is about waiting
            r"does ?n[o']?t fit",
            r"mix-?up",
            r"equivocad",
            r"err[oó]ne[oa]",
            r"incorrect[oa]",
            r"en (?:lugar|vez) de",
            r"no es (?:lo|el|la) que",
            r"(?:muy|demasiado) (?:peque|grande)",
            r"no me (?:queda|vale)",
            r"falsch",
            r"verwechsel",
            r"statt\b",
            r"anstatt\b",
            r"zu (?:klein|gro[ßs]|eng|kurz|lang)",
            r"passt nicht",
            r"nicht (?:das|die|der) (?:richtige|bestellte)",
            r"mauvais",
            r"erron",
            r"au lieu d",
            r"trop (?:petit|grand|serr)",
            r"pas (?:le|la|les) bon",
            r"pas (?:ce|celui|celle) que",
            r"ne me va pas",
        )
        + "|"
        + _any("違う", "間違", "違い", "別の商品", "小さすぎ", "大きすぎ", "合わな"),
        _I,
    ),
    "exchange": re.compile(
        _words(
            r"exchange",
            r"excahnge",
            r"replace",
            r"replacment",
            r"swap",
            r"resend",
            r"re-send",
            r"reship",
            r"(?:send|ship|get|want|need) (?:me |us )?(?:another|a new|a replacement|the right|the correct)",
            r"(?:the right|the correct|a different) (?:size|one|colou?r|item)",
            r"cambi",
            r"reemplaz",
            r"sustitu",
            r"(?:enviar|mandar|env[ií]en|manden|enviad|mandad) "
            r"(?:me |nos )?(?:otr|un[ao]? nuev|la correct|el correct|la buena)",
            r"la talla (?:correcta|buena)",
            r"la (?:correcta|buena)",
            r"umtausch",
            r"austausch",
            r"tausch",
            r"ersatz",
            r"(?:neue[nsm]?|richtige[nsm]?) "
            r"(?:\w+ )?(?:schicken|senden|zuschicken|bekommen)",
            r"nachliefer",
            r"[ée]chang",
            r"remplac",
            r"(?:envoyer|renvoyer|recevoir) (?:un|une|le|la) (?:autre|nouve|bon)",
            r"la bonne taille",
            r"le bon\b",
        )
        + "|"
        + _any("交換", "取り替え", "取替", "再送", "送り直", "送りなお", "新しいもの", "正しい"),
        _I,
    ),
    "missing": re.compile(
        _words(
            r"missing",
            r"wasn'?t in the (?:box|package|parcel)",
            r"not in the (?:box|package|parcel)",
            r"only (?:got|received) (?:one|1|part)",
            r"falta",
            r"faltaba",
            r"no ven[ií]a",
            r"fehlt",
            r"fehlte",
            r"nicht (?:im|in dem) (?:paket|karton)",
            r"nur (?:ein|eine|einen) ",
            r"manqu",
            r"pas dans le (?:colis|carton|paquet)",
        )
        + "|"
        + _any("入っていな", "入ってな", "足りな", "不足", "欠品"),
        _I,
    ),
    "address": re.compile(
        _words(
            r"address",
            r"adress",
            r"addres",
            r"shipping to",
            r"(?:ship|send|deliver|post) (?:it |them |this |the order )?to",
            r"env[ií]a(?:lo|dlo|rlo)? a",
            r"(?:liefern|schicken|senden) (?:sie )?an",
            r"(?:livrer|envoyer|exp[ée]dier) (?:[àa]|au)\b",
            r"direcci[oó]n",
            r"domicilio",
            r"adresse",
            r"anschrift",
            r"lieferadresse",
        )
        + "|"
        + _any("住所", "届け先", "配送先", "送り先", "に届けて", "に送って"),
        _I,
    ),
    "change": re.compile(
        _words(
            r"change",
            r"chnage",
            r"update",
            r"correct",
            r"new",
            r"moved",
            r"moving",
            r"wrong",
            r"typo",
            r"cambi",
            r"nueva",
            r"actualiz",
            r"corregi",
            r"me (?:he )?mud",
            r"mudanza",
            r"equivoc",
            r"[äa]nder",
            r"neue",
            r"umgezogen",
            r"umzug",
            r"falsch",
            r"korrigier",
            r"chang",
            r"modifi",
            r"nouvelle",
            r"d[ée]m[ée]nag",
            r"corrig",
            r"erron",
        )
        + "|"
        + _any("変更", "変え", "新しい", "引っ越", "間違", "訂正"),
        _I,
    ),
    "status": re.compile(
        _words(
            r"where(?: is|'s)",
            r"tracking",
            r"track",
            r"status",
            r"update on",
            r"(?:has ?n[o']?t|have ?n[o']?t|not|never|still not|yet to) (?:yet )?(?:arrived|been delivered|received|come|shipped)",
            r"when will",
            r"when\b[^.?!\n]{0,40}\b(?:ship|arriv|deliver|dispatch|be sent)",
            r"(?:shipping|delivery|dispatch) date",
            r"cu[aá]ndo\b[^.?!\n]{0,40}\b(?:env[ií]|lleg|mand|sale)",
            r"wann\b[^.?!\n]{0,40}\b(?:verschickt|versendet|geliefert|an ?kommt|kommt)",
            r"quand\b[^.?!\n]{0,40}\b(?:exp[ée]di|arriv|livr|envoy)",
            r"still waiting",
            r"(?:did|has|have) (?:the|my|it|that|this)\b[^.?!\n]{0,30}\b(?:go|gone) through",
            r"(?:went|gone) through\?",
            r"(?:just )?checking (?:whether|if|on)\b",
            r"any news",
            r"shipped yet",
            r"eta\b",
            r"d[oó]nde est[aá]",
            r"seguimiento",
            r"estado",
            r"cu[aá]ndo (?:llega|lo recib|me lleg)",
            r"no (?:me )?ha (?:llegado|sido enviado)",
            r"todav[ií]a no",
            r"a[uú]n no",
            r"wo (?:ist|bleibt)",
            r"sendungsverfolgung",
            r"sendungsnummer",
            r"wann (?:kommt|wird|ist)",
            r"noch nicht (?:angekommen|erhalten|da|geliefert|verschickt)",
            r"lieferstatus",
            r"o[uù] (?:en )?est",
            r"suivi",
            r"statut",
            r"quand (?:vais|va|arriv|sera)",
            r"pas encore (?:re[çc]u|arriv|livr|exp[ée]di)",
            r"toujours pas",
        )
        + "|"
        + _any(
            "いつ発送",
            "いつ届",
            "どこ",
            "追跡",
            "配送状況",
            "いつ届",
            "まだ届",
            "届いていません",
            "発送状況",
            "いつ頃",
        ),
        _I,
    ),
    "thanks": re.compile(
        _words(
            r"thank",
            r"thx",
            r"appreciate",
            r"arrived (?:safely|fine|today|well)",
            r"love (?:it|them)",
            r"gracias",
            r"lleg[oó] (?:bien|perfect)",
            r"encanta",
            r"danke",
            r"vielen dank",
            r"gut angekommen",
            r"bestens",
            r"merci",
            r"bien re[çc]u",
            r"bien arriv",
        )
        + "|"
        + _any("ありがとう", "届きました", "無事", "感謝"),
        _I,
    ),
    # Asking for more than an action can give: a person decides.
    "compensation": re.compile(
        _words(
            r"compensat",
            r"voucher",
            r"gift ?card",
            r"store credit",
            r"coupon",
            r"discount code",
            r"free (?:upgrade|shipping for)",
            r"double (?:the )?refund",
            r"refund (?:me )?twice",
            r"indemniza",
            r"compensaci",
            r"cup[oó]n",
            r"vale de",
            r"entsch[äa]digung",
            r"gutschein",
            r"d[ée]dommag",
            r"indemnis",
            r"bon d'achat",
            r"geste commercial",
        )
        + "|"
        + _any("補償", "慰謝料", "クーポン", "割引"),
        _I,
    ),
    # Words that talk to a program rather than to a shop.
    "instructions": re.compile(
        r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}\b(?:instructions?|prompts?|rules|"
        r"polic(?:y|ies)|guidelines|limits?)\b"
        r"|\b(?:you are now|new instructions|system prompt|as an ai|developer mode|admin mode)\b"
        r"|(?:^|\n)[ \t]{0,8}(?:[\[<(][ \t]{0,8})?(?:system|assistant|developer)[ \t]{0,8}[\]>)]?[ \t]{0,8}:"
        r"|\bignora\w* (?:las |tus )?(?:instrucciones|reglas)"
        r"|\bignorier\w* (?:alle |die |deine )*(?:anweisungen|regeln)"
        r"|\bignore[rz]? (?:les |vos |tes )*(?:instructions|r[èe]gles|consignes)"
        r"|指示を無視|ルールを無視|システムプロンプト",
        _I,
    ),
}

# Misspellings customers type in a hurry (letters swapped, dropped or doubled), beyond
# those written into the patterns above.
_MISSPELLINGS: dict[str, tuple[str, ...]] = {
    "cancel": (r"cansel", r"cancl", r"cacnel", r"stonier"),
    "refund": (
        r"refnd", r"refun\b", r"rfund", r"reefund", r"refudn", r"refunf", r"rembolso",
        r"reenbolso", r"erstat",
        # Spanish b/v: "debolvais el dinero", "devolbeis el dinero"
        r"de[bv]ol[bv]\w* (?:el|mi) dinero", r"deb[uü]el[bv]\w* (?:el|mi) dinero",
    ),
    "damaged": (
        r"damged", r"damagd", r"dmaged", r"brocken", r"brokn", r"craked", r"cracekd",
        r"deffect", r"defctive", r"smashd",
    ),
    "wrong_item": (r"wrnog", r"worng", r"wromg", r"wron\b", r"diffrent (?:colou?r|size|item)"),
    "exchange": (r"replce", r"repalce", r"replase", r"replacemnt", r"exhange", r"exchnage"),
    "missing": (r"misssing", r"mising", r"msising", r"missin\b"),
    "status": (
        r"wheres\b", r"were is (?:my|the)", r"whe?re? is my", r"wher is", r"traking",
        r"trackng", r"(?:not|never|n'?t) (?:yet )?(?:recie?ved|recived|arived|arrvied|arrivd)",
    ),
    "thanks": (r"thnks", r"thanx", r"thnx", r"tnx", r"thanls"),
}  # fmt: skip
for _extra in (more.STEMS, _MISSPELLINGS):
    for _name, _stems in _extra.items():
        SIGNALS[_name] = re.compile(f"{SIGNALS[_name].pattern}|{_words(*_stems)}", _I)

# "Don't send another", "no hace falta que enviéis otra", "kein Ersatz", "pas besoin"...
# "X rather than Y" asks for X, so Y counts as negated too.
_NEGATION_BEFORE = re.compile(
    r"(?:\b(?:no|not|don'?t|do not|doesn'?t|never|without|rather than|instead of|nicht|kein\w*|"
    r"ohne|statt|anstatt|pas|ni|sin|en (?:lugar|vez) de|jamais|plut[ôo]t que|au lieu de|"
    + "|".join(more.NEGATIONS_BEFORE)
    + r")\b|n't)[^.!?\n]{0,24}$",
    _I,
)
# A negation reaches to the end of its clause: in "it doesn't work, please refund it" or
# "nie działa i proszę o zwrot" the refund is asked for, not refused.
_CLAUSE_BREAK = re.compile(
    # Not "en" (Spanish and French "en lugar de", "en vez de"); Polish "i" only lower case,
    # since English "I" starts clauses of its own ("I don't think I want a refund").
    r"[,;:]|\b(?:and|but|so|please|und|aber|bitte|y|pero|et|mais|e|mas|ma|maar|ale|oraz)\b"
    r"|(?-i:\bi\b)",
    _I,
)
# German and Japanese put the negation after the thing: "eine Erstattung brauche ich nicht".
_NEGATION_AFTER = re.compile(
    r"^\w*[^.!?\n]{0,20}?(?:\b(?:brauche|brauchen|m[öo]chte|will|ben[öo]tige) (?:ich|wir) nicht\b"
    r"|\bnicht (?:n[öo]tig|notwendig|erforderlich)\b)"
    r"|^.{0,6}(?:不要|いりません|要りません|必要ありません|結構です|しなくて)",
    _I,
)


def affirmed(signal: str, text: str) -> bool:
    """Whether the text has the signal in a clause that does not negate it."""
    return any(True for _ in affirmed_matches(signal, text))


def affirmed_matches(signal: str, text: str) -> Iterator[re.Match[str]]:
    for match in SIGNALS[signal].finditer(text):
        before = text[max(0, match.start() - 40) : match.start()]
        breaks = [b.end() for b in _CLAUSE_BREAK.finditer(before)]
        before = before[breaks[-1] :] if breaks else before
        after = text[match.end() : match.end() + 40]
        if _NEGATION_BEFORE.search(before) or _NEGATION_AFTER.search(after):
            continue
        yield match


def present(signal: str, text: str) -> bool:
    return SIGNALS[signal].search(text) is not None


# --- the customer's language ----------------------------------------------------------------

_KANA = re.compile(r"[\u3040-\u30ff]")
_LANG_WORDS: dict[str, re.Pattern[str]] = {
    "es": re.compile(
        r"\b(?:hola|gracias|pedido|el|la|los|las|que|por|para|con|una?|mi|estoy|quiero|"
        r"muy|pero|est[aá]|lleg[oó]|saludos|buenos|d[ií]as|favor)\b",
        _I,
    ),
    "de": re.compile(
        r"\b(?:hallo|danke|bestellung|der|die|das|und|ich|nicht|ist|mit|mein\w*|bitte|"
        r"ein\w*|gr[üu](?:ß|ss)e|sehr|geehrte|leider|wurde|habe)\b",
        _I,
    ),
    "fr": re.compile(
        r"\b(?:bonjour|merci|commande|le|la|les|et|je|pas|est|avec|une?|mon|ma|mes|"
        r"cordialement|vous|s'il|svp|j'ai|n'est|re[çc]u)\b",
        _I,
    ),
    "en": re.compile(
        r"\b(?:hi|hello|thanks|order|the|and|i|not|is|with|my|please|it|was|you|"
        r"regards|have|this|of)\b",
        _I,
    ),
    **{lang: re.compile(rf"\b(?:{words})\b", _I) for lang, words in more.LANGUAGE_WORDS.items()},
}


def language(text: str) -> str:
    """The customer's language among those the replies are written in; English otherwise."""
    if len(_KANA.findall(text)) >= 3:
        return "ja"
    counts = {lang: len(pattern.findall(text)) for lang, pattern in _LANG_WORDS.items()}
    best = max(counts, key=lambda lang: (counts[lang], lang == "en"))
    return best if counts[best] > 0 else "en"
