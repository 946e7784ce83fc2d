"""What a customer's words signal in Portuguese, Italian, Dutch and Polish. Pure data.

Stems matched at the start of a word, as in `lexicon` (which merges them into its signals),
with the spellings customers type without accents ("nao", "zamowienie").
"""

from __future__ import annotations

STEMS: dict[str, tuple[str, ...]] = {
    "cancel": (
        r"anul(?:uj|ow|ac)",  # pl (anulować, anuluję, anulacja)
        r"z?rezygn",  # pl: rezygnuję z zamówienia
        r"afbestel",  # nl (annuleren is covered by "annul")
        r"disdi[rc]",  # it: disdire, disdico
    ),
    "refund": (
        r"estorn",  # pt
        r"dinheiro de volta",
        r"devolu[çc][ãa]o do (?:meu )?dinheiro",
        r"devolv\w{0,4} o (?:meu )?dinheiro",
        r"rimbors",  # it
        r"soldi indietro",
        r"restitu\w{0,6} (?:i )?soldi",
        r"terugbetal",  # nl
        r"geld terug",
        r"restitutie",
        r"terugstort",
        r"zwrot\w{0,2} (?:pieni|[śs]rodk|koszt|nale[żz]no|got[óo]wk)",  # pl
        r"zwr[óo][ćc]\w{0,6} (?:mi |nam )?(?:pieni|[śs]rodki)",
        r"oddajcie (?:mi )?pieni",
    ),
    "return": (
        r"devolu[çc][ãa]o",  # pt (devolver is already Spanish's)
        r"reso\b",  # it: fare il reso
        r"restitu(?:ire|isco|irlo|irla)",
        r"rispedir",
        r"rimandar\w{0,4} indietro",
        r"retour",  # nl: retourneren
        r"terug ?stur",
        r"terug ?zend",
        r"zwrot\w{0,3}\b",  # pl: zwrot (a return; money is "zwrot pieniędzy")
        r"zwr[óo]ci[ćc]",
        r"odes[łl]a",
        r"odesl",
        r"odeśl",
    ),
    "damaged": (
        r"danificad",  # pt
        r"quebrad",
        r"defeituos",
        r"com defeito",
        r"estragad",
        r"rachad",
        r"riscad",
        r"amassad",
        r"n[ãa]o funciona",
        r"n[ãa]o liga",
        r"dannegg",  # it
        r"rott[oaie]\b",
        r"difett",
        r"non funziona",
        r"non si accende",
        r"graffiat",
        r"incrinat",
        r"ammaccat",
        r"crepat",
        r"scheggiat",
        r"beschadig",  # nl
        r"kapot",
        r"gebroken",
        r"werkt niet",
        r"doet het niet",
        r"gescheurd",
        r"gebarsten",
        r"bekrast",
        r"deuk",
        r"lekt\b",
        r"uszkodz",  # pl
        r"zepsut",
        r"p[ęe]kni[ęe]t",
        r"p[ęe]k[łl]",
        r"rozbit",
        r"st[łl]uczon",
        r"wadliw",
        r"wad[aęy]\b",
        r"nie dzia[łl]a",
        r"porysowan",
        r"zarysowan",
        r"po[łl]aman",
        r"zniszczon",
        r"podart",
    ),
    "wrong_item": (
        r"errad",  # pt
        r"trocad",
        r"n[ãa]o [ée] o que (?:eu )?(?:pedi|encomendei)",
        r"ao inv[ée]s d",
        r"em vez d",
        r"muito (?:pequen|grande|apertad)",
        r"n[ãa]o (?:me )?serve",
        r"sbagliat",  # it
        r"errat[oaie]\b",
        r"invece d",
        r"non [èe] quello che",
        r"troppo (?:piccol|grand|strett)",
        r"non mi (?:sta|va)\b",
        r"verkeerd",  # nl
        r"in plaats van",
        r"niet wat ik (?:heb )?besteld",
        r"te (?:klein|groot|krap|strak)\b",
        r"past niet",
        r"z[łl][ayoe]? (?:rozmiar|kolor|produkt|towar|przedmiot|model)",  # pl
        r"niew[łl]a[śs]ciw",
        r"nieprawid[łl]ow",
        r"b[łl][ęe]dn",
        r"pomy[łl]k",
        r"zamiast",
        r"nie to,? co zamawia",
        r"za (?:ma[łl]|du[żz]|ciasn)",
        r"nie pasuje",
    ),
    "exchange": (
        r"troc(?:a|ar|o|ado por)\b",  # pt
        r"substitu",
        r"reenvi",
        r"(?:enviar|mandar|envie|mande)m?(?:-me)? (?:outr|um nov|uma nov|o cert|a cert)",
        r"tamanho certo",
        r"sostitu",  # it
        r"rimpiazz",
        r"(?:inviar|mandar|spedir)\w{0,4} (?:un altr|un nuov|una nuov|quell[oa] giust)",
        r"la taglia giusta",
        r"omruil",  # nl
        r"ruil",
        r"vervang",
        r"opnieuw (?:sturen|verzenden|opsturen)",
        r"nieuwe (?:sturen|opsturen|toesturen|krijgen)",
        r"de juiste (?:maat|kleur|versie)",
        r"wymian",  # pl
        r"wymieni",
        r"zamian",
        r"wy[śs]l\w{0,4} (?:nowy|now[aąe]|inny|inn[aąe]|w[łl]a[śs]ciw|poprawn)",
        r"ponownie wys",
        r"dos[łl]a",
        r"do[śs]l",
    ),
    "missing": (
        r"falt(?:ando|ou|am|ava)\b",  # pt (falta is already Spanish's)
        r"n[ãa]o (?:veio|vinha|estava na (?:caixa|encomenda))",
        r"manc(?:a|ava|ante|ano|anti|avano)\b",  # it
        r"non c'era",
        r"non era nel pacco",
        r"ontbre(?:ek|ken|kt|kend)",  # nl
        r"ontbrak",
        r"zat niet in (?:het|de) (?:pakket|doos|zending)",
        r"niet meegeleverd",
        r"brak(?:uje|owa[łl]o|uj[ąa]|)\b",  # pl
        r"nie by[łl]o w (?:paczce|pude[łl]ku|przesy[łl]ce)",
        r"niekompletn",
    ),
    "address": (
        r"endere[çc]o",  # pt
        r"morada",
        r"indirizzo",  # it
        r"adres\b",  # nl (pl: "adres" starts "adresu", "adresem" too)
        r"adres(?:u|em|ie)\b",
        r"bezorgadres",
        r"afleveradres",
        r"verzendadres",
    ),
    "change": (
        r"mud(?:ar|ei|an[çc]a|ou|amos)",  # pt
        r"alter(?:ar|a[çc][ãa]o|ei|e)\b",
        r"atualiz",
        r"nov[oa]\b",
        r"aggiorn",  # it (cambiare and modificare are covered)
        r"nuov[oa]\b",
        r"trasferit",
        r"trasloc",
        r"sbagliat",
        r"corregg",
        r"wijzig",  # nl
        r"verander",
        r"aanpass",
        r"nieuw",
        r"verhuis",
        r"fout",
        r"zmian",  # pl
        r"zmieni",
        r"zaktualiz",
        r"aktualiz",
        r"popraw",
        r"now(?:y|a|e|ego|ym)\b",
        r"przeprowadz",
        r"b[łl][ęe]dn",
    ),
    "status": (
        r"onde est[áa]",  # pt
        r"rastre",
        r"c[óo]digo de rastr",
        r"quando (?:vai|chega|ser[áa]|v[ãa]o)",
        r"ainda n[ãa]o (?:chegou|recebi|foi)",
        r"(?:n[ãa]o|nem) (?:foi|foram) (?:enviad|expedid)",
        r"n[ãa]o (?:chegou|recebi)",
        r"situa[çc][ãa]o do (?:meu )?pedido",
        r"dov'?[èe]\b",  # it
        r"dove si trova",
        r"tracciament",
        r"quando (?:arriv|verr|sar[àa]|spedi)",
        r"non (?:[èe] )?(?:ancora )?arrivat",
        r"non ho (?:ancora )?ricevuto",
        r"non (?:[èe] )?(?:ancora )?(?:stat[oa] )?(?:partit|spedit)",
        r"ancora non",
        r"stato (?:del(?:la|l'|l)?|dell') ?(?:mio |mia )?(?:ordine|spedizione)",
        r"waar (?:is|blijft)",  # nl
        r"track ?(?:&|en|and) ?trace",
        r"wanneer (?:komt|wordt|krijg|word|is)",
        r"nog (?:steeds )?niet (?:ontvangen|aangekomen|binnen|bezorgd|verzonden|geleverd)",
        r"nog niets ontvangen",
        r"verzendstatus",
        r"gdzie jest",  # pl
        r"kiedy (?:dotrze|przyjdzie|zostanie|wy[śs]l|b[ęe]dzie|otrzymam|dostan)",
        r"nie (?:dotar[łl]|dosz[łl]|przysz[łl]|otrzyma[łl]|dosta[łl])",
        r"wci[ąa][żz] nie",
        r"nadal nie",
        r"[śs]ledzeni",
        r"numer (?:do )?(?:przesy[łl]ki|[śs]ledz)",
    ),
    "thanks": (
        r"obrigad",  # pt
        r"agrade[çc]",
        r"valeu",
        r"chegou (?:bem|perfeit|direitinho|hoje)",
        r"adorei",
        r"grazie",  # it
        r"ringrazi",
        r"arrivat[oaie] (?:bene|perfett|oggi)",
        r"bedankt",  # nl
        r"dank (?:je|u)\b",
        r"dankjewel",
        r"dank ?u ?wel",
        r"goed aangekomen",
        r"dzi[ęe]kuj",  # pl
        r"dzi[ęe]ki\b",
        r"dotar[łl]\w{0,2} (?:ca[łl]|bez)",
    ),
    "compensation": (
        r"compensa[çc]",  # pt
        r"indeniza",
        r"cupom",
        r"cup[ãa]o",
        r"vale-? ?(?:compra|presente)",
        r"c[óo]digo de desconto",
        r"risarciment",  # it
        r"indennizz",
        r"buono (?:sconto|regalo|acquisto)",
        r"codice sconto",
        r"schadevergoed",  # nl
        r"tegoedbon",
        r"waardebon",
        r"kortingscode",
        r"cadeaubon",
        r"rekompens",  # pl
        r"odszkodowan",
        r"bon (?:podarunkowy|rabatowy)",
        r"kod rabatowy",
        r"kupon",
    ),
}

# Negations that come before what they negate, as in `lexicon` (no, not, without, instead of).
NEGATIONS_BEFORE = (
    r"n[ãa]o",
    r"nem",
    r"sem",
    r"em vez de",
    r"non",
    r"senza",
    r"invece di",
    r"niet",
    r"geen",
    r"zonder",
    r"in plaats van",
    r"nie",
    r"bez",
    r"zamiast",
)

# Words frequent in each language and rare in the others we answer in: enough to tell them
# apart from Spanish, German and English, with which they share most short words.
LANGUAGE_WORDS: dict[str, str] = {
    "pt": (
        r"ol[áa]|obrigad[oa]|n[ãa]o|voc[êe]s?|meu|minha|encomenda|com|uma|um|o|os|do|da|dos|das|"
        r"estou|"
        r"quero|gostaria|muito|mas|chegou|ainda|atenciosamente|tamb[ée]m|j[áa]|[ée]|isso|"
        r"cumprimentos|pe[çc]o|recebi|\w+[çc][ãa]o|\w+[çc][õo]es"
    ),
    "it": (
        r"ciao|salve|buongiorno|buonasera|grazie|ordine|il|gli|della|dello|del|di|che|sono|[èe]|"
        r"ho|mio|mia|vorrei|per|cordiali|saluti|ancora|pacco|perch[ée]|questo|questa|anche|"
        r"molto|non|distinti|arrivato|ricevuto"
    ),
    "nl": (
        r"hoi|goedemorgen|goedemiddag|goedendag|bedankt|bestelling|het|een|ik|niet|mijn|van|"
        r"voor|maar|nog|graag|groeten|vriendelijke|jullie|uw|geen|zijn|heb|wil|pakket|"
        r"ontvangen|alstublieft|alsjeblieft|dank"
    ),
    "pl": (
        r"dzie[ńn]|dobry|witam|dzi[ęe]kuj[ęe]|zam[óo]wieni\w{0,2}|nie|jest|m[óo]j|moje|moja|"
        r"si[ęe]|że|czy|prosz[ęe]|pozdrawiam|paczk\w|ju[żz]|jeszcze|bardzo|by[łl]\w{0,2}|"
        r"mam|chc[ęe]|chcia[łl]\w{0,4}|jak|oraz|otrzyma\w{0,4}"
    ),
}
