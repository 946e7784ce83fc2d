"""How a customer writes, for the playbooks: the mood, whether they ask for a person, and
whether they threaten legal action. Pure; English, Spanish, German, French and Japanese.

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

from kernel.values import Sentiment

# Each cue list: phrases in Latin scripts (English, Spanish, German, French) and in Japanese.
Cues = tuple[tuple[str, ...], tuple[str, ...]]


def _pattern(latin: Sequence[str], japanese: Sequence[str]) -> re.Pattern[str]:
    """Latin-script phrases from the start of a word; Japanese ones anywhere.

    Written in lower case and matched against lowered text, and grouped by their first
    letters ("a(?:n(?:gry)|b(?:surd))|..."): the engine tries every alternative at every
    word start, so both cut the constant of the linear scan many times (re.I over hundreds
    of flat alternatives took seconds a megabyte)."""
    # Japanese is tried anywhere, so only where a kana or kanji stands.
    kana_kanji = r"(?=[\u3040-\u30ff\u4e00-\u9fff])"
    return re.compile(
        r"\b(?:" + _grouped(latin, 2) + ")|" + kana_kanji + "(?:" + "|".join(japanese) + ")"
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


_W = r"[^\W\d_]{1,20}"  # one word, bounded: keeps "a few words" patterns linear
_PERSON_EN = (
    r"(?:(?:a|an|the|your|some|one of your) )?(?:(?:real|actual|live|human|proper) )?"
    r"(?:human(?: being)?|person|manager|supervisor|agent|representative|rep|someone|somebody|"
    r"anyone|anybody|employee|staff member|member of (?:staff|your team)|owner)\b"
)

HUMAN_CUES: Cues = (
    (
        # en
        rf"(?:speak|talk|chat) (?:to|with) {_PERSON_EN}",
        # not "need a person": "does a person need to be home to sign?"
        r"(?:want|need|like|get|give|connect|transfer|put|escalate|forward|pass)"
        r"(?: me| this| it| my (?:case|complaint|email))? (?:to |through to |on to |with )?"
        r"(?:(?:a|an|the|your) )?(?:(?:real|actual|live|human) )?"
        r"(?:human(?: being)?|manager|supervisor|representative)\b",
        r"(?:real|actual|live) (?:human|person)\b",
        r"(?:live|human|real) agent\b",
        r"human being",
        r"(?:are you|is this|am i (?:talking|speaking|writing) to) (?:(?:a|an) )?"
        r"(?:bot|robot|ai|machine|automated|real person|human)\b",
        r"(?:do ?n[o']?t|doesn'?t) want (?:to (?:talk|speak|chat) (?:to|with) )?"
        r"(?:(?:a|an|the|your|another) )?(?:bot|robot|machine|ai|chatbot|automated)\b",
        r"(?:no more|not another|enough of|stop (?:the|your|sending)) (?:(?:a|an|these) )?"
        r"(?:bot|robot|automated|canned|generic|template)\w{0,4} "
        r"(?:repl|respons|answer|messag|email)",
        r"(?:call|phone|ring) me (?:back|asap|today|please|at|on)\b",
        r"give me a (?:call|ring)",
        rf"(?:please|pls|can you|could you|can someone|could someone|have someone) "
        rf"(?:{_W} )?call me\b",
        r"escalate (?:this|it|my|the matter)\b",
        # es
        r"hablar con (?:(?:una?|el|la|su|tu|alg[uú]n|alguna) )?(?:persona|humano|ser humano|"
        r"agente|encargad[oa]|responsable|gerente|supervisora?|alguien|emplead[oa]|"
        r"representante|operador[a]?)",
        r"(?:persona|humano|agente) real",
        r"ser humano",
        r"quiero (?:(?:una?|el|la|al|a la) )?(?:persona|humano|encargad[oa]|responsable|"
        r"gerente|supervisora?)\b",
        r"que me (?:llame|llamen|atienda|atiendan) (?:una persona|alguien|un humano|"
        r"por tel[eé]fono)",
        r"ll[aá]m(?:e|en|ad)me\b",
        r"atenci[oó]n (?:humana|personal|telef[oó]nica)",
        r"(?:eres|es usted|es esto) (?:(?:una?) )?(?:bot|robot|m[aá]quina|"
        r"respuesta autom[aá]tica)\b",
        # de
        r"mit (?:(?:einem|einer|einen|dem|der|ihrem|ihrer|ihren|eurem|eurer) )?"
        r"(?:(?:echten|richtigen|menschlichen|zust[äa]ndigen|lebenden) )?"
        r"(?:menschen|mensch|mitarbeiter(?:in|innen)?|vorgesetzten|chef(?:in)?|manager(?:in)?|"
        r"verantwortlichen|person|kundenberater(?:in)?|berater(?:in)?|jemandem|"
        r"ansprechpartner(?:in)?)\b[^.!?\n]{0,20}?(?:sprechen|reden|telefonieren|verbinden|"
        r"verbunden)",
        r"verbinden sie mich",
        r"(?:echte[nrms]?|richtige[nrms]?|lebende[nrms]?) (?:mensch|person|mitarbeiter)",
        r"(?:bist du|sind sie|ist das) (?:(?:ein|eine) )?(?:bot|roboter|maschine|mensch|automat)",
        r"r[üu]ckruf\b",  # not "Rückrufaktion", a product recall
        r"rufen sie mich (?:bitte )?(?:zur[üu]ck|an)\b",
        r"(?:ihren|ihre|euren|eure) (?:vorgesetzte[nr]?|chef(?:in)?)\b",
        # fr
        r"parler (?:[àa]u|[àa]|avec) (?:(?:un|une|le|la|l'|votre|vos) ?)?"
        r"(?:(?:vrai|vraie|v[ée]ritable) )?(?:humain|[êe]tre humain|personne|conseill[eè]re?|"
        r"responsable|manager|sup[ée]rieur|agent|interlocut\w{0,4}|quelqu'un|employ[ée]|"
        r"op[ée]rat\w{0,6}|service client)",
        r"(?:un|une) (?:(?:vrai|vraie|v[ée]ritable) )(?:[êe]tre )?(?:humain|personne)",
        r"[êe]tre humain",
        r"personne (?:r[ée]elle|physique)",
        r"votre (?:responsable|sup[ée]rieur|manager)\b",
        r"(?:[êe]tes-vous|es-tu|c'est) un (?:robot|bot|humain)\b",
        r"(?:appelez|rappelez)-moi",
        r"rappel t[ée]l[ée]phonique",
        # ja, in Latin letters: "AIではなく" (also full-width)
        "(?:ai|\uff41\uff49)(?:ではなく|じゃなく|ですか)",
    ),
    (
        "人間(?:と|の(?:方|担当|スタッフ)|に(?:代わ|対応)|が対応)",
        "生身の人",
        "オペレーター",
        "(?:担当者|責任者|スタッフ|担当の方)(?:と|に)(?:直接)?(?:話|代わ|つな|繋)",
        "責任者を出",
        "(?:お?電話|折り返し)(?:を?ください|下さい|して(?:ください|下さい|ほしい|欲しい)|"
        "をお願い|で(?:話|説明|連絡))",
        "自動(?:返信|応答|メール)(?:では|じゃ)な",
        "(?:ボット|ロボット)(?:ではなく|じゃなく|ですか)",
    ),
)

LEGAL_CUES: Cues = (
    (
        # en: the law
        r"lawyers?\b",
        r"attorneys?\b",
        r"solicitors?\b",
        r"legal (?:action|steps|proceedings|advice|department|team|counsel|measures|route)",
        r"law ?suits?\b",
        r"sue (?:you|your|the (?:company|store|shop)|them)\b",
        r"(?:will|'ll|going to|gonna|shall|have to|should) sue\b",  # not "Ana and Sue"
        r"suing\b",
        r"take (?:you|this|it|them|the (?:company|store|shop)) to court",
        r"see you in court",  # not "in court" or "to court": "deliver to Court Street"
        r"court (?:case|action|claim)",
        r"small claims",
        r"trading standards",
        r"ombudsman",
        r"consumer protection (?:agency|office|authority|bureau)",
        r"report (?:you|this|your (?:company|store|shop)) to (?:the )?(?:authorities|police|ftc)\b",
        # en: payment disputes
        r"charge ?-?backs?\b",
        r"dispute (?:the|this|my|a) (?:charge|payment|transaction)",
        r"disputing (?:the|this|my) (?:charge|payment|transaction)",
        r"(?:open(?:ed|ing)?|fil(?:e|ed|ing)|rais(?:e|ed|ing)|start(?:ed|ing)?) "
        r"(?:a |an )?(?:dispute|chargeback)\b",
        r"paypal (?:dispute|claim|case)",
        r"reverse the (?:charge|payment)",
        # es
        r"abogad[oa]s?\b",
        r"acci[oó]n(?:es)? (?:legal(?:es)?|judicial(?:es)?)",
        r"medidas legales",
        r"v[ií]a judicial",
        r"demandar",
        r"(?:poner|interponer)(?:le|les|os)? una demanda",
        r"denunci(?:a|ar|ar[ée]|aremos|aros|arles)\b",
        r"tribunal(?:es)?\b",
        r"juzgado",
        r"hoja de reclamaciones",
        r"(?:oficina|asociaci[oó]n|organismos?) (?:del? )?consum(?:o|idor(?:es)?)\b",
        r"contracargo",
        r"disputa (?:con|en|del|de la|el) (?:mi banco|el banco|paypal|cargo|pago|tarjeta)",
        r"abrir (?:una )?disputa",
        # de
        r"anw[äa]lt",
        r"rechtsanw[äa]lt",
        r"rechtliche\w{0,2} schritt",
        r"juristische\w{0,2} schritt",
        r"rechtsweg",
        r"(?:vor|zum|vors) gericht",
        r"gerichtlich",
        r"klage (?:ein|erheben)",
        r"verklag",
        r"strafanzeige",
        r"anzeige (?:erstatten|gegen)",
        r"verbraucherzentrale",
        r"verbraucherschutz",
        r"r[üu]cklastschrift",
        r"lastschrift zur[üu]ck",
        r"k[äa]uferschutz",
        # fr
        r"(?:mon|notre|mes|nos) avocats?\b",
        r"avocate?s? (?:qui|pour)\b",
        r"(?:contacter|consulter|appeler|prendre|saisir|voir) (?:un|mon) avocat",
        r"juriste",
        r"poursuites",
        r"poursuivre en justice",
        r"action en justice",
        r"en justice",
        r"procès",
        r"tribunal",
        r"mise en demeure",
        r"(?:porter|d[ée]poser|porterai) plainte",
        r"dgccrf",
        r"r[ée]pression des fraudes",
        r"association de consommateurs",
        r"r[ée]trofacturation",
        r"litige (?:paypal|bancaire|avec (?:ma|la) banque)",
        r"ouvr\w{0,4} (?:un|le) litige",
        r"opposition (?:bancaire|sur (?:la|ma) carte)",
        r"faire (?:une )?opposition",
    ),
    (
        "弁護士",
        "訴え",
        "訴訟",
        "裁判",
        "法的(?:措置|手段|処置|対応|に)",
        "消費者(?:センター|庁)",
        "消費生活センター",
        "国民生活センター",
        "警察に(?:相談|通報|届け)",
        "被害届",
        "チャージバック",
        "カード会社に(?:連絡|相談|異議)",
    ),
)

ANGER_CUES: Cues = (
    (
        # en
        r"unacceptable",
        r"(?:is|it's|this is|that's) not acceptable",
        r"furious",
        r"livid",
        r"outrag(?:ed|eous)",
        r"fuming",
        r"disgust(?:ed|ing)\b",
        r"appall?(?:ed|ing)\b",
        r"ridiculous\b",
        r"esc[áa]ndalo",
        r"absurd\b",
        r"pathetic",
        r"disgrace",
        r"shameful",
        r"shame on you",
        r"how dare you",
        r"incompetent",
        r"scam(?:s|med|mers?)?\b",
        r"fraudsters?\b",
        r"(?:is|are|it's|that's|total|complete|pure|outright) fraud\b",
        r"rip-?off",
        r"ripping (?:me |people |us )?off",
        r"(?:total|complete|absolute|utter) (?:joke|nightmare|disaster|garbage|rubbish|crap)",
        r"(?:what|this is|is) a joke",
        r"worst\b(?! case)",
        r"horrendous",
        r"atrocious",
        r"fed up",
        r"sick (?:and tired )?of",
        r"had enough",
        # not "I've never ordered from you before"
        rf"never (?:again|(?:buy|order|shop|purchase) (?:{_W} ){{0,2}}(?:again|from you|here))",
        r"thanks for nothing",
        r"wtf\b",
        r"fuck",
        r"f\*+k",
        r"shit",
        r"bullshit",
        r"crap(?:py)?\b",
        r"pissed",
        r"are you kidding",
        r"kidding me",
        r"lost (?:a|another|my) (?:loyal )?customer",
        r"angry",
        r"mad at",
        # es
        r"inaceptable",
        r"no es aceptable",
        r"indignante",
        r"indignad[oa]",
        r"vergonzoso",
        r"(?:una|qu[ée]) verg[üu]enza",
        r"sinverg[üu]enza",
        r"estafa",
        r"timador",
        r"furios[oa]",
        r"enfadad[oa]",
        r"enojad[oa]",
        r"cabread[oa]",
        r"hart[oa]s?\b",
        r"rid[ií]cul[oa]",
        r"p[ée]sim[oa]",
        r"(?:lo|el|la) peor\b",
        r"nunca m[áa]s",
        r"mierda",
        r"joder",
        r"incompetentes?\b",
        r"in[úu]tiles\b",
        r"es una broma",
        r"tomando el pelo",
        r"tomadura de pelo",
        r"ladrones",
        r"es un robo",
        # de
        r"inakzeptabel",
        r"nicht akzeptabel",
        r"unversch[äa]mt",
        r"frechheit",
        r"skandal",
        r"betrug\b",
        r"betr[üu]ger",
        r"abzocke",
        r"abgezockt",
        r"w[üu]tend",
        r"stinksauer",
        rf"(?:bin|sind) (?:{_W} )?sauer\b",
        r"ver[äa]rgert",
        r"emp[öo]rt",
        r"zumutung",
        r"l[äa]cherlich",
        r"schlechteste",
        r"allerletzte",
        r"nie wieder",
        r"nie mehr",
        r"schei(?:ß|ss)",
        r"verarsch",
        r"(?:mir|jetzt) reicht[\u2019']?s\b",  # not "es reicht, wenn ...": that is "it suffices"
        r"unfassbar",
        r"katastroph",
        r"inkompetent",
        r"saftladen",
        r"armselig",
        # fr
        r"inacceptable",
        r"pas acceptable",
        r"inadmissible",
        r"scandal",
        r"honteu(?:x|se)",
        r"(?:une|quelle) honte",
        r"arnaqu",
        r"escroc",
        r"escroquerie",
        r"voleurs?\b",
        r"furieu(?:x|se)",
        r"en col[èe]re",
        r"[ée]nerv[ée]",
        r"exasp[ée]r[ée]",
        r"ras[- ]le[- ]bol",
        r"marre\b",
        r"ridicule\b",
        r"pitoyable",
        r"(?:le|la) pire\b",
        r"plus jamais",
        r"jamais plus",
        r"merde",
        r"foutez",
        r"fout(?:re|u) (?:de|du)",
        r"(?:vous )?moquez",
        r"se moque",
        r"incomp[ée]ten",
        r"c'est une blague",
    ),
    (
        "最悪",
        "ふざけ",
        "許せ(?:ない|ません)",
        "ゆるせ(?:ない|ません)",
        "激怒",
        "怒(?:って|り|っています)",
        "腹が立",
        "腹立",
        "頭にき",
        "ありえ(?:ない|ません)",
        "あり得(?:ない|ません)",
        "詐欺",
        "いい加減に",
        "二度と",
        "話にならな",
        "最低(?:です|だ|な(?:店|対応|会社)|の(?:対応|店|会社|サービス))",
        "ひどすぎ",
        "酷すぎ",
        "(?:バカ|馬鹿)に",
        "(?:なめて|舐めて)(?:る|い)",
        "金返せ",
        "ぼったくり",
        "ボッタクリ",
    ),
)

NEGATIVE_CUES: Cues = (
    (
        # en
        r"disappoint",
        r"unhappy",
        r"not (?:very |at all )?happy",
        r"frustrat",
        r"upset\b",
        r"annoy(?:ed|ing)\b",
        r"terrible\b",
        r"awful\b",
        r"horrible\b",
        r"dreadful\b",
        r"poor (?:quality|service|packaging|communication|experience)",
        r"bad (?:experience|service|quality)",
        r"(?:un|dis)satisfied",
        r"not satisfied",
        r"let down",
        r"useless",
        r"not impressed",
        r"unimpressed",
        r"forget it\b",
        r"olv[ií]dal[oa]",
        r"vergessen sie es",
        r"laissez tomber",
        # es
        r"decepci[oó]n",
        r"decepcionad[oa]",
        r"desilusi",
        r"insatisfech[oa]",
        r"no estoy (?:muy )?(?:content|satisfech)[oa]",
        r"(?:estoy|muy|bastante) molest[oa]\b",
        r"mal servicio",
        r"muy mal\b",
        r"fatal\b",
        r"frustrad[oa]",
        r"frustrante",
        r"disgustad[oa]",
        r"lamentable",
        r"preocupad[oa]",
        # de
        r"entt[äa]usch",
        r"unzufrieden",
        r"nicht (?:sehr |ganz )?zufrieden",
        r"[äa]rgerlich",
        r"[äa]rgere mich",
        r"frustriert",
        r"frustrierend",
        r"schrecklich",
        r"furchtbar",
        r"schlecht(?:e[nmrs]?)?\b",
        r"miserabel",
        r"genervt",
        r"nervig",
        r"mangelhaft",
        # fr
        r"d[ée][çc]ue?s?\b",
        r"d[ée]cevant",
        r"d[ée]ception",
        r"m[ée]content",
        r"pas (?:du tout |tr[èe]s |vraiment )?content",
        r"pas (?:du tout |tr[èe]s |vraiment )?satisfait",
        r"insatisfait",
        r"agac[ée]",
        r"frustr[ée]",
        r"affreu(?:x|se)",
        r"dommage\b",
        r"inqui[èe]te?\b",
    ),
    (
        "残念",
        "がっかり",
        "不満",
        "困って",
        "困ります",
        "悲しい",
        "ひどい",
        "酷い",
        "信じられな",
        "不快",
        "納得(?:でき|いか)な",
        "満足(?:して(?:いません|いない|おりません)|でき(?:ない|ません))",
        "失望",
    ),
)

# Praise, not gratitude: "thanks" closes most requests and says nothing of the mood; a
# message that only thanks is read as positive by the caller, which knows it asks nothing.
PRAISE_CUES: Cues = (
    (
        # en
        r"love (?:it|them|the|my|this|these)\b",
        r"amazing",
        r"awesome",
        r"excellent",
        r"wonderful",
        r"fantastic",
        r"brilliant",
        r"perfect(?:ly)?\b",
        r"great (?:service|job|product|quality|experience|work|shop|store)",
        r"(?:very|so|really) (?:happy|pleased|satisfied|grateful)\b(?! if)",  # not a request
        r"delighted",
        r"impressed",
        r"arrived (?:safely|fine|well|in perfect)",
        r"lovely",
        r"superb",
        r"you(?:'re| are) the best",
        r"best (?:service|shop|store)",
        # es
        r"me encanta",
        r"encantad[oa]",
        r"genial",
        r"perfect[oa]s?\b",
        r"excelente",
        r"estupend[oa]",
        r"maravill",
        r"fant[áa]stic[oa]",
        r"muy (?:content|satisfech|agradecid)[oa]",
        r"lleg(?:[oó]|aron) (?:bien|perfect)",
        # de
        r"super\b",
        r"(?:echt|sehr|wirklich|einfach|total) toll",
        r"perfekt",
        r"ausgezeichnet",
        r"wunderbar",
        r"wundersch[öo]n",
        r"hervorragend",
        r"begeistert",
        r"sehr zufrieden",
        r"(?:gut|heil|wohlbehalten) angekommen",
        r"gro[ßs]artig",
        # fr
        r"g[ée]nial",
        r"parfait",
        r"formidable",
        r"magnifique",
        r"merveill",
        r"ravie?s?\b",
        r"(?:tr[èe]s|vraiment|super) (?:content|satisfait|heureu)",
        r"j'adore",
        r"bien arriv[ée]",
        r"impeccable",
        r"au top",
    ),
    (
        "素晴らしい",
        "すばらしい",
        "最高(?:です|でした|の|に)",
        "満足",
        "気に入",
        "嬉しい",
        "うれしい",
        "助かりました",
        "感激",
        "感動",
        "素敵",
        "すてき",
        "無事(?:に)?届",
    ),
)

WANTS_HUMAN = _pattern(*HUMAN_CUES)
LEGAL_THREAT = _pattern(*LEGAL_CUES)
ANGER = _pattern(*ANGER_CUES)
NEGATIVE = _pattern(*NEGATIVE_CUES)
PRAISE = _pattern(*PRAISE_CUES)

# "I'm not angry", "no estoy enfadado", "nicht zufrieden" is its own cue: a negation a few
# words before a cue, in the same clause, takes it back.
_NOT_BEFORE = re.compile(
    r"(?:\b(?:not|no|isn'?t|wasn'?t|aren'?t|weren'?t|don'?t|doesn'?t|didn'?t|nicht|kein\w{0,3}|"
    r"pas|ni|sin|sans|ohne|jamais|nunca)\b|n't)(?:[^\S\n]{1,3}[^\s,;:.!?]{1,20}){0,3}[^\S\n]{0,3}$",
    re.I,
)
# A request for a person is taken back only by not wanting one: "I haven't been able to
# reach a human" or "je n'arrive pas à parler à quelqu'un" still want one, so "can't" or
# "unable" do not count (French "pas" does; precision over recall there).
_NO_WISH_BEFORE = re.compile(
    r"(?:\b(?:don'?t|do not|doesn'?t|does not|no need|needn'?t|not necessary|not needed|"
    r"never mind|without|rather than|instead of|no (?:quiero|necesito|hace falta|es necesario)|"
    r"sin|en vez de|en lugar de|nicht|kein\w{0,3}|ohne|statt|anstatt|pas|sans|"
    r"plut[ôo]t que|au lieu de)\b)(?:[^\S\n]{1,3}[^\s,;:.!?]{1,20}){0,4}[^\S\n]{0,3}$",
    re.I,
)
# German and Japanese put it after: "einen Rückruf brauche ich nicht", "電話は不要です".
_NO_WISH_AFTER = re.compile(
    r"^[^.!?\n]{0,20}?\b(?:brauche|brauchen|m[öo]chte|will|ben[öo]tige|muss) (?:ich|wir) nicht\b"
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
