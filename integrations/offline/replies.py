# ruff: noqa: RUF001  (Japanese is written with full-width punctuation)
"""Reply templates in the customer's language (English, Spanish, German, French, Japanese,
Portuguese, Italian, Dutch and Polish).

Each promises only what its action does, and is filled with the order's own data. The
English ones are also what the guardrails read for promises, so a reply-only template
never commits to a refund, a cancellation, a replacement or an address change, in any
language.

The register is each language's usual one for a shop: "tu" in Spanish, "Sie", "vous" and
the Italian "lei"; "je" in Dutch, as Dutch web shops write. Portuguese reads as both
European and Brazilian: no "você" and no "o senhor", no clitic whose place differs between
the two, and words both use ("pedido", "endereço", "transportadora"). Polish speaks
impersonally or with the gender-neutral "Państwo", since a second-person past tense would
have to guess the customer's gender. Item titles stand in parentheses where the grammar
around them would depend on their number or gender.
"""

from __future__ import annotations

LANGUAGES = ("en", "es", "de", "fr", "ja", "pt", "it", "nl", "pl")

_LETTER = {
    "en": ("Hi,", "Best regards,"),
    "es": ("Hola:", "Un saludo,"),
    "de": ("Guten Tag,", "Viele Grüße"),
    "fr": ("Bonjour,", "Cordialement,"),
    "ja": ("お問い合わせいただきありがとうございます。", "よろしくお願いいたします。"),
    "pt": ("Olá,", "Cordialmente,"),
    "it": ("Buongiorno,", "Cordiali saluti,"),
    "nl": ("Hallo,", "Met vriendelijke groet,"),
    # Polish, like German, goes on in lower case after a salutation ending in a comma, and
    # puts no comma after the closing formula.
    "pl": ("Dzień dobry,", "Z pozdrowieniami"),
}

_TEMPLATES: dict[str, dict[str, str]] = {
    "ask_order": {
        "en": "Thanks for getting in touch. So that we can help, could you reply with your order number (you will find it in your order confirmation), writing from the email address you used when you ordered?",
        "es": "Gracias por escribirnos. Para poder ayudarte, ¿puedes respondernos con tu número de pedido (aparece en la confirmación del pedido), desde la dirección de correo con la que hiciste la compra?",
        "de": "vielen Dank für Ihre Nachricht. Damit wir helfen können, antworten Sie uns bitte mit Ihrer Bestellnummer (sie steht in der Bestellbestätigung), und zwar von der E-Mail-Adresse, mit der Sie bestellt haben.",
        "fr": "Merci pour votre message. Pour que nous puissions vous aider, pourriez-vous nous répondre avec votre numéro de commande (il figure dans la confirmation de commande), depuis l'adresse e-mail utilisée lors de la commande ?",
        "ja": "お手数ですが、ご注文時のメールアドレスから、ご注文番号（ご注文確認メールに記載されています）をお知らせいただけますでしょうか。",
        "pt": "Agradecemos a sua mensagem. Para podermos ajudar, pode responder a este e-mail com o número do pedido (indicado na confirmação do pedido), usando o mesmo endereço de e-mail com que fez a compra?",
        "it": "Grazie per averci scritto. Per poterla aiutare, potrebbe rispondere indicando il numero d'ordine (lo trova nella conferma d'ordine), scrivendo dall'indirizzo e-mail usato per l'acquisto?",
        "nl": "Bedankt voor je bericht. Om je te kunnen helpen, vragen we je te antwoorden met je bestelnummer (dat vind je in de orderbevestiging), vanaf het e-mailadres waarmee je de bestelling hebt geplaatst.",
        "pl": "dziękujemy za wiadomość. Abyśmy mogli pomóc, prosimy o odpowiedź z numerem zamówienia (znajduje się w potwierdzeniu zamówienia), wysłaną z adresu e-mail podanego przy składaniu zamówienia.",
    },
    "ask_problem": {
        "en": "Thanks for your message about order {order}. Could you tell us a little more about what you need, so that we can help?",
        "es": "Gracias por tu mensaje sobre el pedido {order}. ¿Puedes contarnos un poco más sobre lo que necesitas para que podamos ayudarte?",
        "de": "vielen Dank für Ihre Nachricht zur Bestellung {order}. Können Sie uns etwas genauer schreiben, worum es geht, damit wir helfen können?",
        "fr": "Merci pour votre message concernant la commande {order}. Pourriez-vous nous en dire un peu plus sur ce dont vous avez besoin, afin que nous puissions vous aider ?",
        "ja": "ご注文 {order} についてご連絡いただきありがとうございます。お手数ですが、ご用件をもう少し詳しくお知らせいただけますでしょうか。",
        "pt": "Agradecemos a sua mensagem sobre o pedido {order}. Pode explicar um pouco melhor do que precisa, para podermos ajudar?",
        "it": "Grazie per il suo messaggio sull'ordine {order}. Potrebbe spiegarci un po' meglio di cosa ha bisogno, così da poterla aiutare?",
        "nl": "Bedankt voor je bericht over bestelling {order}. Kun je iets meer vertellen over wat je nodig hebt, zodat we je kunnen helpen?",
        "pl": "dziękujemy za wiadomość w sprawie zamówienia {order}. Prosimy napisać nieco więcej o tym, czego Państwo potrzebują, abyśmy mogli pomóc.",
    },
    "ask_item": {
        "en": "We're sorry about the trouble with order {order}. Which item is concerned? Just reply with its name.",
        "es": "Sentimos el problema con el pedido {order}. ¿De qué artículo se trata? Respóndenos con su nombre.",
        "de": "es tut uns leid, dass es mit der Bestellung {order} ein Problem gibt. Um welchen Artikel geht es? Antworten Sie uns einfach mit seinem Namen.",
        "fr": "Nous sommes désolés pour ce souci avec la commande {order}. De quel article s'agit-il ? Répondez-nous simplement avec son nom.",
        "ja": "ご注文 {order} の件、ご迷惑をおかけして申し訳ございません。どの商品についてのお問い合わせか、商品名をお知らせいただけますでしょうか。",
        "pt": "Lamentamos o problema com o pedido {order}. Qual é o produto em questão? Basta responder com o nome do produto.",
        "it": "Ci dispiace per il problema con l'ordine {order}. Di quale articolo si tratta? Basta rispondere con il nome dell'articolo.",
        "nl": "Vervelend dat er iets mis is met bestelling {order}. Om welk artikel gaat het? Antwoord gewoon met de naam van het artikel.",
        "pl": "przykro nam, że z zamówieniem {order} jest problem. Którego produktu dotyczy zgłoszenie? Wystarczy odpisać, podając jego nazwę.",
    },
    "ask_address": {
        "en": "Happy to help with the delivery address of order {order}. Could you reply with the complete new address: street and number, postcode, city and country?",
        "es": "Con gusto te ayudamos con la dirección de entrega del pedido {order}. ¿Puedes respondernos con la nueva dirección completa: calle y número, código postal, ciudad y país?",
        "de": "gern helfen wir bei der Lieferadresse der Bestellung {order}. Antworten Sie uns bitte mit der vollständigen neuen Adresse: Straße und Hausnummer, Postleitzahl, Ort und Land.",
        "fr": "Nous vous aidons volontiers pour l'adresse de livraison de la commande {order}. Pourriez-vous nous répondre avec la nouvelle adresse complète : rue et numéro, code postal, ville et pays ?",
        "ja": "ご注文 {order} のお届け先について承知いたしました。新しいご住所（郵便番号、都道府県・市区町村、番地、建物名）をすべてお知らせいただけますでしょうか。",
        "pt": "Claro, podemos ajudar com o endereço de entrega do pedido {order}. Pode responder com o novo endereço completo: rua e número, código postal, cidade e país?",
        "it": "La aiutiamo volentieri con l'indirizzo di consegna dell'ordine {order}. Potrebbe rispondere con il nuovo indirizzo completo: via e numero civico, CAP, città e paese?",
        "nl": "We helpen je graag met het bezorgadres van bestelling {order}. Kun je het volledige nieuwe adres sturen: straat en huisnummer, postcode, plaats en land?",
        "pl": "chętnie pomożemy w sprawie adresu dostawy zamówienia {order}. Prosimy o odpowiedź z pełnym nowym adresem: ulica i numer, kod pocztowy, miejscowość i kraj.",
    },
    "refunded": {
        "en": "We're sorry about order {order}. We have refunded {amount} {currency} to your original payment method.",
        "es": "Sentimos lo ocurrido con el pedido {order}. Te hemos reembolsado {amount} {currency} en tu método de pago original.",
        "de": "es tut uns leid, was mit der Bestellung {order} passiert ist. Wir haben Ihnen {amount} {currency} auf Ihr ursprüngliches Zahlungsmittel erstattet.",
        "fr": "Nous sommes désolés pour la commande {order}. Nous vous avons remboursé {amount} {currency} sur votre moyen de paiement d'origine.",
        "ja": "ご注文 {order} の件、誠に申し訳ございません。{amount} {currency} をご購入時のお支払い方法へ返金いたしました。",
        "pt": "Lamentamos o problema com o pedido {order}. O valor de {amount} {currency} foi reembolsado para o meio de pagamento original.",
        "it": "Ci dispiace per quanto successo con l'ordine {order}. Le abbiamo rimborsato {amount} {currency} sul metodo di pagamento originale.",
        "nl": "Het spijt ons wat er met bestelling {order} is gebeurd. We hebben {amount} {currency} terugbetaald via de betaalmethode die je bij de bestelling hebt gebruikt.",
        "pl": "przepraszamy za problem z zamówieniem {order}. Zwróciliśmy kwotę {amount} {currency} na metodę płatności użytą przy zakupie.",
    },
    "refunded_items": {
        "en": "We're sorry about the {items} of order {order}. We have refunded it to your original payment method.",
        "es": "Sentimos lo ocurrido con {items} del pedido {order}. Te lo hemos reembolsado en tu método de pago original.",
        "de": "es tut uns leid, was mit {items} aus der Bestellung {order} passiert ist. Wir haben Ihnen den Betrag dafür auf Ihr ursprüngliches Zahlungsmittel erstattet.",
        "fr": "Nous sommes désolés pour {items} de la commande {order}. Nous vous l'avons remboursé sur votre moyen de paiement d'origine.",
        "ja": "ご注文 {order} の「{items}」の件、誠に申し訳ございません。ご購入時のお支払い方法へ返金いたしました。",
        "pt": "Lamentamos o problema com o pedido {order} ({items}). O valor correspondente foi reembolsado para o meio de pagamento original.",
        "it": "Ci dispiace per il problema con l'ordine {order} ({items}). Le abbiamo rimborsato l'importo corrispondente sul metodo di pagamento originale.",
        "nl": "Het spijt ons dat er iets mis is met bestelling {order} ({items}). We hebben het bedrag daarvoor terugbetaald via de betaalmethode die je bij de bestelling hebt gebruikt.",
        "pl": "przepraszamy za problem z zamówieniem {order} ({items}). Zwróciliśmy odpowiednią kwotę na metodę płatności użytą przy zakupie.",
    },
    "cancelled": {
        "en": "As you asked, we have cancelled order {order}. The payment of {amount} {currency} goes back to your original payment method.",
        "es": "Como nos pediste, hemos cancelado el pedido {order}. El pago de {amount} {currency} se devolverá a tu método de pago original.",
        "de": "wie gewünscht haben wir die Bestellung {order} storniert. Die Zahlung von {amount} {currency} geht an Ihr ursprüngliches Zahlungsmittel zurück.",
        "fr": "Comme demandé, nous avons annulé la commande {order}. Le paiement de {amount} {currency} sera reversé sur votre moyen de paiement d'origine.",
        "ja": "ご依頼のとおり、ご注文 {order} をキャンセルいたしました。お支払い額 {amount} {currency} はご購入時のお支払い方法へ返金されます。",
        "pt": "Conforme solicitado, o pedido {order} foi cancelado. O pagamento de {amount} {currency} será devolvido ao meio de pagamento original.",
        "it": "Come richiesto, abbiamo annullato l'ordine {order}. Il pagamento di {amount} {currency} le verrà restituito sul metodo di pagamento originale.",
        "nl": "Zoals gevraagd hebben we bestelling {order} geannuleerd. De betaling van {amount} {currency} wordt teruggestort via je oorspronkelijke betaalmethode.",
        "pl": "zgodnie z prośbą anulowaliśmy zamówienie {order}. Płatność w wysokości {amount} {currency} zostanie zwrócona na metodę płatności użytą przy zakupie.",
    },
    "cancel_shipped": {
        "en": "Order {order} has already left our warehouse, so it can no longer be cancelled. Once it arrives, reply to this email if you would like to send it back.",
        "es": "El pedido {order} ya ha salido de nuestro almacén, así que ya no se puede cancelar. Cuando llegue, responde a este correo si quieres devolverlo.",
        "de": "die Bestellung {order} hat unser Lager bereits verlassen und kann nicht mehr storniert werden. Wenn sie angekommen ist, antworten Sie einfach auf diese E-Mail, falls Sie sie zurückschicken möchten.",
        "fr": "La commande {order} a déjà quitté notre entrepôt et ne peut donc plus être annulée. Une fois reçue, répondez à cet e-mail si vous souhaitez la retourner.",
        "ja": "ご注文 {order} はすでに発送済みのため、キャンセルを承ることができません。お受け取り後、返品をご希望の場合はこのメールにご返信ください。",
        "pt": "O pedido {order} já saiu do nosso armazém, por isso já não pode ser cancelado. Quando o receber, se quiser devolvê-lo, basta responder a este e-mail.",
        "it": "L'ordine {order} ha già lasciato il nostro magazzino, quindi non è più possibile annullarlo. Quando lo riceverà, se desidera restituirlo, risponda pure a questa e-mail.",
        "nl": "Bestelling {order} heeft ons magazijn al verlaten en kan daarom niet meer worden geannuleerd. Wil je de bestelling na ontvangst terugsturen? Beantwoord dan deze e-mail.",
        "pl": "zamówienie {order} opuściło już nasz magazyn, więc nie można go anulować. Jeśli po otrzymaniu przesyłki zechcą ją Państwo odesłać, wystarczy odpowiedzieć na tę wiadomość.",
    },
    "already_cancelled": {
        "en": "Order {order} is already cancelled; there is nothing more you need to do.",
        "es": "El pedido {order} ya está cancelado; no tienes que hacer nada más.",
        "de": "die Bestellung {order} ist bereits storniert; Sie müssen nichts weiter tun.",
        "fr": "La commande {order} est déjà annulée ; vous n'avez rien d'autre à faire.",
        "ja": "ご注文 {order} はすでにキャンセル済みです。お客様にお手続きいただくことはございません。",
        "pt": "O pedido {order} já está cancelado; não é necessário fazer mais nada.",
        "it": "L'ordine {order} è già stato annullato; non deve fare nient'altro.",
        "nl": "Bestelling {order} is al geannuleerd; je hoeft verder niets te doen.",
        "pl": "zamówienie {order} zostało już anulowane; nie trzeba robić nic więcej.",
    },
    "replacing": {
        "en": "We're sorry about the {items} of order {order}. We will send you a replacement as soon as possible.",
        "es": "Sentimos lo ocurrido con {items} del pedido {order}. Te enviaremos uno nuevo lo antes posible.",
        "de": "es tut uns leid, was mit {items} aus der Bestellung {order} passiert ist. Wir schicken Ihnen so bald wie möglich Ersatz.",
        "fr": "Nous sommes désolés pour {items} de la commande {order}. Nous vous en envoyons un nouveau dès que possible.",
        "ja": "ご注文 {order} の「{items}」の件、誠に申し訳ございません。代わりの商品をできるだけ早くお送りいたします。",
        "pt": "Lamentamos o problema com o pedido {order} ({items}). Vamos enviar a substituição assim que possível.",
        "it": "Ci dispiace per il problema con l'ordine {order} ({items}). Le invieremo la sostituzione il prima possibile.",
        "nl": "Het spijt ons dat er iets mis is met bestelling {order} ({items}). We sturen je zo snel mogelijk vervanging toe.",
        "pl": "przepraszamy za problem z zamówieniem {order} ({items}). Jak najszybciej wyślemy nowy egzemplarz.",
    },
    "address_changed": {
        "en": "We have updated the delivery address of order {order} to: {address}.",
        "es": "Hemos actualizado la dirección de entrega del pedido {order}: {address}.",
        "de": "wir haben die Lieferadresse der Bestellung {order} geändert: {address}.",
        "fr": "Nous avons mis à jour l'adresse de livraison de la commande {order} : {address}.",
        "ja": "ご注文 {order} のお届け先を次のご住所に変更いたしました：{address}",
        "pt": "O endereço de entrega do pedido {order} foi atualizado para: {address}.",
        "it": "Abbiamo aggiornato l'indirizzo di consegna dell'ordine {order}. Il nuovo indirizzo è: {address}.",
        "nl": "We hebben het bezorgadres van bestelling {order} gewijzigd in: {address}.",
        "pl": "zaktualizowaliśmy adres dostawy zamówienia {order}. Nowy adres: {address}.",
    },
    "address_shipped": {
        "en": "Order {order} has already left our warehouse, so its delivery address can no longer be changed. If the parcel cannot be delivered, the carrier will get in touch with you.",
        "es": "El pedido {order} ya ha salido de nuestro almacén, así que ya no podemos cambiar la dirección de entrega. Si el paquete no se puede entregar, la empresa de transporte se pondrá en contacto contigo.",
        "de": "die Bestellung {order} hat unser Lager bereits verlassen, daher lässt sich die Lieferadresse nicht mehr ändern. Kann das Paket nicht zugestellt werden, meldet sich der Zusteller bei Ihnen.",
        "fr": "La commande {order} a déjà quitté notre entrepôt, son adresse de livraison ne peut donc plus être modifiée. Si le colis ne peut pas être livré, le transporteur vous contactera.",
        "ja": "ご注文 {order} はすでに発送済みのため、お届け先を変更することができません。お届けできない場合は配送業者からご連絡がございます。",
        "pt": "O pedido {order} já saiu do nosso armazém, por isso já não é possível alterar o endereço de entrega. Se não for possível fazer a entrega, a transportadora enviará um aviso com os próximos passos.",
        "it": "L'ordine {order} ha già lasciato il nostro magazzino, quindi non è più possibile modificare l'indirizzo di consegna. Se il pacco non potrà essere consegnato, sarà il corriere a contattarla.",
        "nl": "Bestelling {order} heeft ons magazijn al verlaten, dus het bezorgadres kan niet meer worden gewijzigd. Als het pakket niet kan worden bezorgd, neemt de vervoerder contact met je op.",
        "pl": "zamówienie {order} opuściło już nasz magazyn, więc nie można już zmienić adresu dostawy. Jeśli paczki nie uda się doręczyć, firma kurierska skontaktuje się z Państwem.",
    },
    "status_UNFULFILLED": {
        "en": "Order {order} is being prepared and has not shipped yet. We will email you as soon as it is on its way.",
        "es": "El pedido {order} se está preparando y todavía no ha salido. Te escribiremos en cuanto esté en camino.",
        "de": "die Bestellung {order} wird gerade vorbereitet und ist noch nicht verschickt. Wir schreiben Ihnen, sobald sie unterwegs ist.",
        "fr": "La commande {order} est en préparation et n'a pas encore été expédiée. Nous vous écrirons dès qu'elle sera en route.",
        "ja": "ご注文 {order} は現在発送準備中です。発送が完了しましたらメールでお知らせいたします。",
        "pt": "O pedido {order} está em preparação e ainda não foi enviado. Enviaremos um e-mail assim que estiver a caminho.",
        "it": "L'ordine {order} è in preparazione e non è ancora stato spedito. Le invieremo un'e-mail non appena sarà in viaggio.",
        "nl": "Bestelling {order} wordt klaargemaakt en is nog niet verzonden. We mailen je zodra je bestelling onderweg is.",
        "pl": "zamówienie {order} jest w trakcie realizacji i nie zostało jeszcze wysłane. Poinformujemy e-mailem, gdy tylko przesyłka będzie w drodze.",
    },
    "status_PARTIALLY_FULFILLED": {
        "en": "Part of order {order} has already shipped; the rest follows as soon as it is ready. We will email you when it is on its way.",
        "es": "Parte del pedido {order} ya ha salido; el resto saldrá en cuanto esté listo. Te escribiremos cuando esté en camino.",
        "de": "ein Teil der Bestellung {order} ist bereits verschickt; der Rest folgt, sobald er bereit ist. Wir schreiben Ihnen, wenn er unterwegs ist.",
        "fr": "Une partie de la commande {order} a déjà été expédiée ; le reste suivra dès qu'il sera prêt. Nous vous écrirons quand il sera en route.",
        "ja": "ご注文 {order} の一部はすでに発送済みです。残りの商品も準備が整い次第発送し、メールでお知らせいたします。",
        "pt": "Parte do pedido {order} já foi enviada; o resto segue assim que estiver pronto. Enviaremos um e-mail quando estiver a caminho.",
        "it": "Una parte dell'ordine {order} è già stata spedita; il resto partirà non appena sarà pronto. Le scriveremo quando sarà in viaggio.",
        "nl": "Een deel van bestelling {order} is al verzonden; de rest volgt zodra die klaarstaat. We mailen je zodra ook dat deel onderweg is.",
        "pl": "część zamówienia {order} została już wysłana; pozostałe produkty wyślemy, gdy tylko będą gotowe. Poinformujemy e-mailem, gdy będą w drodze.",
    },
    "status_FULFILLED": {
        "en": "Order {order} has shipped. If it has not reached you within the next few days, reply to this email and we will look into it with the carrier.",
        "es": "El pedido {order} ya se ha enviado. Si no te llega en los próximos días, responde a este correo y lo revisaremos con la empresa de transporte.",
        "de": "die Bestellung {order} ist verschickt. Falls sie in den nächsten Tagen nicht ankommt, antworten Sie auf diese E-Mail, und wir klären es mit dem Zusteller.",
        "fr": "La commande {order} a été expédiée. Si elle ne vous parvient pas dans les prochains jours, répondez à cet e-mail et nous verrons avec le transporteur.",
        "ja": "ご注文 {order} は発送済みです。数日以内にお届けがない場合は、このメールにご返信ください。配送業者に確認いたします。",
        "pt": "O pedido {order} já foi enviado. Se não chegar nos próximos dias, responda a este e-mail e vamos verificar com a transportadora.",
        "it": "L'ordine {order} è stato spedito. Se non dovesse arrivare nei prossimi giorni, risponda a questa e-mail e verificheremo con il corriere.",
        "nl": "Bestelling {order} is verzonden. Is het pakket over een paar dagen nog niet bij je bezorgd? Beantwoord dan deze e-mail, dan zoeken we het uit met de vervoerder.",
        "pl": "zamówienie {order} zostało wysłane. Jeśli nie dotrze w ciągu kilku najbliższych dni, prosimy odpowiedzieć na tę wiadomość, a sprawdzimy to z firmą kurierską.",
    },
    "status_CANCELLED": {
        "en": "Order {order} was cancelled, so no parcel is coming for it.",
        "es": "El pedido {order} fue cancelado, así que no se enviará nada más.",
        "de": "die Bestellung {order} wurde storniert; dafür wird nichts mehr verschickt.",
        "fr": "La commande {order} a été annulée ; rien d'autre ne sera expédié pour elle.",
        "ja": "ご注文 {order} はキャンセル済みのため、発送はございません。",
        "pt": "O pedido {order} foi cancelado, por isso não será enviado nada.",
        "it": "L'ordine {order} è stato annullato, quindi non verrà spedito nulla.",
        "nl": "Bestelling {order} is geannuleerd, dus daarvoor wordt niets verzonden.",
        "pl": "zamówienie {order} zostało anulowane, więc nie zostanie wysłana żadna przesyłka.",
    },
    "thanks": {
        "en": "Thank you for your kind message{about}! We're glad to hear it.",
        "es": "¡Muchas gracias por tu mensaje{about}! Nos alegra mucho leerlo.",
        "de": "vielen Dank für Ihre nette Nachricht{about}! Das freut uns sehr.",
        "fr": "Merci beaucoup pour votre message{about} ! Cela nous fait très plaisir.",
        "ja": "温かいメッセージ{about}をありがとうございます。大変うれしく拝見しました。",
        "pt": "Agradecemos muito a sua mensagem{about}! Ficamos muito contentes.",
        "it": "Grazie mille per il suo gentile messaggio{about}! Ci fa molto piacere.",
        "nl": "Hartelijk dank voor je leuke bericht{about}! Dat horen we graag.",
        "pl": "serdecznie dziękujemy za miłą wiadomość{about}! Bardzo nas to cieszy.",
    },
    "hold": {
        "en": "Thanks for your message about order {order}. A member of our team is looking into it and will get back to you personally.",
        "es": "Gracias por tu mensaje sobre el pedido {order}. Una persona de nuestro equipo lo está revisando y te responderá personalmente.",
        "de": "vielen Dank für Ihre Nachricht zur Bestellung {order}. Jemand aus unserem Team sieht sie sich an und meldet sich persönlich bei Ihnen.",
        "fr": "Merci pour votre message concernant la commande {order}. Un membre de notre équipe l'examine et vous répondra personnellement.",
        "ja": "ご注文 {order} についてご連絡いただきありがとうございます。担当者が内容を確認し、改めてご連絡いたします。",
        "pt": "Agradecemos a sua mensagem sobre o pedido {order}. Uma pessoa da nossa loja vai analisar o assunto e responderá pessoalmente.",
        "it": "Grazie per il suo messaggio sull'ordine {order}. Una persona del nostro team lo sta esaminando e le risponderà personalmente.",
        "nl": "Bedankt voor je bericht over bestelling {order}. Iemand van ons team bekijkt het en neemt persoonlijk contact met je op.",
        "pl": "dziękujemy za wiadomość w sprawie zamówienia {order}. Ktoś z naszego zespołu zajmuje się sprawą i odpowie Państwu osobiście.",
    },
}

_ABOUT = {
    "en": " about order {order}",
    "es": " sobre el pedido {order}",
    "de": " zur Bestellung {order}",
    "fr": " concernant la commande {order}",
    "ja": "（ご注文 {order}）",
    "pt": " sobre o pedido {order}",
    "it": " sull'ordine {order}",
    "nl": " over bestelling {order}",
    "pl": " w sprawie zamówienia {order}",
}


def has_template(kind: str) -> bool:
    return kind in _TEMPLATES


def letter(kind: str, language: str, store_name: str, **values: str) -> str:
    """The whole reply: greeting, the template for `kind` filled in, sign-off with the store."""
    lang = language if language in LANGUAGES else "en"
    if kind == "thanks":
        order = values.get("order")
        values = {**values, "about": _ABOUT[lang].format(order=order) if order else ""}
    body = _TEMPLATES[kind][lang].format(**values)
    greeting, sign_off = _LETTER[lang]
    return f"{greeting}\n\n{body}\n\n{sign_off}\n{store_name}"
