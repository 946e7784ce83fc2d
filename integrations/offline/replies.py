# ruff: noqa: RUF001  (Japanese is written with full-width punctuation)
"""Reply templates in the customer's language (English, Spanish, German, French, Japanese).

Each promises only what its action does, and is filled with the order's own data. The
English ones are also what the guardrails read for promises, so a reply-only template
never commits to a refund, a cancellation, a replacement or an address change.
"""

from __future__ import annotations

LANGUAGES = ("en", "es", "de", "fr", "ja")

_LETTER = {
    "en": ("Hi,", "Best regards,"),
    "es": ("Hola:", "Un saludo,"),
    "de": ("Guten Tag,", "Viele Grüße"),
    "fr": ("Bonjour,", "Cordialement,"),
    "ja": ("お問い合わせいただきありがとうございます。", "よろしくお願いいたします。"),
}

_TEMPLATES: dict[str, dict[str, str]] = {
    "ask_order": {
        "en": "Thanks for getting in touch. So that we can help, could you reply with your order number (you will find it in your order confirmation), writing from the email address you used when you ordered?",
        "es": "Gracias por escribirnos. Para poder ayudarte, ¿puedes respondernos con tu número de pedido (aparece en la confirmación del pedido), desde la dirección de correo con la que hiciste la compra?",
        "de": "vielen Dank für Ihre Nachricht. Damit wir helfen können, antworten Sie uns bitte mit Ihrer Bestellnummer (sie steht in der Bestellbestätigung), und zwar von der E-Mail-Adresse, mit der Sie bestellt haben.",
        "fr": "Merci pour votre message. Pour que nous puissions vous aider, pourriez-vous nous répondre avec votre numéro de commande (il figure dans la confirmation de commande), depuis l'adresse e-mail utilisée lors de la commande ?",
        "ja": "お手数ですが、ご注文時のメールアドレスから、ご注文番号（ご注文確認メールに記載されています）をお知らせいただけますでしょうか。",
    },
    "ask_problem": {
        "en": "Thanks for your message about order {order}. Could you tell us a little more about what you need, so that we can help?",
        "es": "Gracias por tu mensaje sobre el pedido {order}. ¿Puedes contarnos un poco más sobre lo que necesitas para que podamos ayudarte?",
        "de": "vielen Dank für Ihre Nachricht zur Bestellung {order}. Können Sie uns etwas genauer schreiben, worum es geht, damit wir helfen können?",
        "fr": "Merci pour votre message concernant la commande {order}. Pourriez-vous nous en dire un peu plus sur ce dont vous avez besoin, afin que nous puissions vous aider ?",
        "ja": "ご注文 {order} についてご連絡いただきありがとうございます。お手数ですが、ご用件をもう少し詳しくお知らせいただけますでしょうか。",
    },
    "ask_item": {
        "en": "We're sorry about the trouble with order {order}. Which item is concerned? Just reply with its name.",
        "es": "Sentimos el problema con el pedido {order}. ¿De qué artículo se trata? Respóndenos con su nombre.",
        "de": "es tut uns leid, dass es mit der Bestellung {order} ein Problem gibt. Um welchen Artikel geht es? Antworten Sie uns einfach mit seinem Namen.",
        "fr": "Nous sommes désolés pour ce souci avec la commande {order}. De quel article s'agit-il ? Répondez-nous simplement avec son nom.",
        "ja": "ご注文 {order} の件、ご迷惑をおかけして申し訳ございません。どの商品についてのお問い合わせか、商品名をお知らせいただけますでしょうか。",
    },
    "ask_address": {
        "en": "Happy to help with the delivery address of order {order}. Could you reply with the complete new address: street and number, postcode, city and country?",
        "es": "Con gusto te ayudamos con la dirección de entrega del pedido {order}. ¿Puedes respondernos con la nueva dirección completa: calle y número, código postal, ciudad y país?",
        "de": "gern helfen wir bei der Lieferadresse der Bestellung {order}. Antworten Sie uns bitte mit der vollständigen neuen Adresse: Straße und Hausnummer, Postleitzahl, Ort und Land.",
        "fr": "Nous vous aidons volontiers pour l'adresse de livraison de la commande {order}. Pourriez-vous nous répondre avec la nouvelle adresse complète : rue et numéro, code postal, ville et pays ?",
        "ja": "ご注文 {order} のお届け先について承知いたしました。新しいご住所（郵便番号、都道府県・市区町村、番地、建物名）をすべてお知らせいただけますでしょうか。",
    },
    "refunded": {
        "en": "We're sorry about order {order}. We have refunded {amount} {currency} to your original payment method.",
        "es": "Sentimos lo ocurrido con el pedido {order}. Te hemos reembolsado {amount} {currency} en tu método de pago original.",
        "de": "es tut uns leid, was mit der Bestellung {order} passiert ist. Wir haben Ihnen {amount} {currency} auf Ihr ursprüngliches Zahlungsmittel erstattet.",
        "fr": "Nous sommes désolés pour la commande {order}. Nous vous avons remboursé {amount} {currency} sur votre moyen de paiement d'origine.",
        "ja": "ご注文 {order} の件、誠に申し訳ございません。{amount} {currency} をご購入時のお支払い方法へ返金いたしました。",
    },
    "refunded_items": {
        "en": "We're sorry about the {items} of order {order}. We have refunded it to your original payment method.",
        "es": "Sentimos lo ocurrido con {items} del pedido {order}. Te lo hemos reembolsado en tu método de pago original.",
        "de": "es tut uns leid, was mit {items} aus der Bestellung {order} passiert ist. Wir haben Ihnen den Betrag dafür auf Ihr ursprüngliches Zahlungsmittel erstattet.",
        "fr": "Nous sommes désolés pour {items} de la commande {order}. Nous vous l'avons remboursé sur votre moyen de paiement d'origine.",
        "ja": "ご注文 {order} の「{items}」の件、誠に申し訳ございません。ご購入時のお支払い方法へ返金いたしました。",
    },
    "cancelled": {
        "en": "As you asked, we have cancelled order {order}. The payment of {amount} {currency} goes back to your original payment method.",
        "es": "Como nos pediste, hemos cancelado el pedido {order}. El pago de {amount} {currency} se devolverá a tu método de pago original.",
        "de": "wie gewünscht haben wir die Bestellung {order} storniert. Die Zahlung von {amount} {currency} geht an Ihr ursprüngliches Zahlungsmittel zurück.",
        "fr": "Comme demandé, nous avons annulé la commande {order}. Le paiement de {amount} {currency} sera reversé sur votre moyen de paiement d'origine.",
        "ja": "ご依頼のとおり、ご注文 {order} をキャンセルいたしました。お支払い額 {amount} {currency} はご購入時のお支払い方法へ返金されます。",
    },
    "cancel_shipped": {
        "en": "Order {order} has already left our warehouse, so it can no longer be cancelled. Once it arrives, reply to this email if you would like to send it back.",
        "es": "El pedido {order} ya ha salido de nuestro almacén, así que ya no se puede cancelar. Cuando llegue, responde a este correo si quieres devolverlo.",
        "de": "die Bestellung {order} hat unser Lager bereits verlassen und kann nicht mehr storniert werden. Wenn sie angekommen ist, antworten Sie einfach auf diese E-Mail, falls Sie sie zurückschicken möchten.",
        "fr": "La commande {order} a déjà quitté notre entrepôt et ne peut donc plus être annulée. Une fois reçue, répondez à cet e-mail si vous souhaitez la retourner.",
        "ja": "ご注文 {order} はすでに発送済みのため、キャンセルを承ることができません。お受け取り後、返品をご希望の場合はこのメールにご返信ください。",
    },
    "already_cancelled": {
        "en": "Order {order} is already cancelled; there is nothing more you need to do.",
        "es": "El pedido {order} ya está cancelado; no tienes que hacer nada más.",
        "de": "die Bestellung {order} ist bereits storniert; Sie müssen nichts weiter tun.",
        "fr": "La commande {order} est déjà annulée ; vous n'avez rien d'autre à faire.",
        "ja": "ご注文 {order} はすでにキャンセル済みです。お客様にお手続きいただくことはございません。",
    },
    "replacing": {
        "en": "We're sorry about the {items} of order {order}. We will send you a replacement as soon as possible.",
        "es": "Sentimos lo ocurrido con {items} del pedido {order}. Te enviaremos uno nuevo lo antes posible.",
        "de": "es tut uns leid, was mit {items} aus der Bestellung {order} passiert ist. Wir schicken Ihnen so bald wie möglich Ersatz.",
        "fr": "Nous sommes désolés pour {items} de la commande {order}. Nous vous en envoyons un nouveau dès que possible.",
        "ja": "ご注文 {order} の「{items}」の件、誠に申し訳ございません。代わりの商品をできるだけ早くお送りいたします。",
    },
    "address_changed": {
        "en": "We have updated the delivery address of order {order} to: {address}.",
        "es": "Hemos actualizado la dirección de entrega del pedido {order}: {address}.",
        "de": "wir haben die Lieferadresse der Bestellung {order} geändert: {address}.",
        "fr": "Nous avons mis à jour l'adresse de livraison de la commande {order} : {address}.",
        "ja": "ご注文 {order} のお届け先を次のご住所に変更いたしました：{address}",
    },
    "address_shipped": {
        "en": "Order {order} has already left our warehouse, so its delivery address can no longer be changed. If the parcel cannot be delivered, the carrier will get in touch with you.",
        "es": "El pedido {order} ya ha salido de nuestro almacén, así que ya no podemos cambiar la dirección de entrega. Si el paquete no se puede entregar, la empresa de transporte se pondrá en contacto contigo.",
        "de": "die Bestellung {order} hat unser Lager bereits verlassen, daher lässt sich die Lieferadresse nicht mehr ändern. Kann das Paket nicht zugestellt werden, meldet sich der Zusteller bei Ihnen.",
        "fr": "La commande {order} a déjà quitté notre entrepôt, son adresse de livraison ne peut donc plus être modifiée. Si le colis ne peut pas être livré, le transporteur vous contactera.",
        "ja": "ご注文 {order} はすでに発送済みのため、お届け先を変更することができません。お届けできない場合は配送業者からご連絡がございます。",
    },
    "status_UNFULFILLED": {
        "en": "Order {order} is being prepared and has not shipped yet. We will email you as soon as it is on its way.",
        "es": "El pedido {order} se está preparando y todavía no ha salido. Te escribiremos en cuanto esté en camino.",
        "de": "die Bestellung {order} wird gerade vorbereitet und ist noch nicht verschickt. Wir schreiben Ihnen, sobald sie unterwegs ist.",
        "fr": "La commande {order} est en préparation et n'a pas encore été expédiée. Nous vous écrirons dès qu'elle sera en route.",
        "ja": "ご注文 {order} は現在発送準備中です。発送が完了しましたらメールでお知らせいたします。",
    },
    "status_PARTIALLY_FULFILLED": {
        "en": "Part of order {order} has already shipped; the rest follows as soon as it is ready. We will email you when it is on its way.",
        "es": "Parte del pedido {order} ya ha salido; el resto saldrá en cuanto esté listo. Te escribiremos cuando esté en camino.",
        "de": "ein Teil der Bestellung {order} ist bereits verschickt; der Rest folgt, sobald er bereit ist. Wir schreiben Ihnen, wenn er unterwegs ist.",
        "fr": "Une partie de la commande {order} a déjà été expédiée ; le reste suivra dès qu'il sera prêt. Nous vous écrirons quand il sera en route.",
        "ja": "ご注文 {order} の一部はすでに発送済みです。残りの商品も準備が整い次第発送し、メールでお知らせいたします。",
    },
    "status_FULFILLED": {
        "en": "Order {order} has shipped. If it has not reached you within the next few days, reply to this email and we will look into it with the carrier.",
        "es": "El pedido {order} ya se ha enviado. Si no te llega en los próximos días, responde a este correo y lo revisaremos con la empresa de transporte.",
        "de": "die Bestellung {order} ist verschickt. Falls sie in den nächsten Tagen nicht ankommt, antworten Sie auf diese E-Mail, und wir klären es mit dem Zusteller.",
        "fr": "La commande {order} a été expédiée. Si elle ne vous parvient pas dans les prochains jours, répondez à cet e-mail et nous verrons avec le transporteur.",
        "ja": "ご注文 {order} は発送済みです。数日以内にお届けがない場合は、このメールにご返信ください。配送業者に確認いたします。",
    },
    "status_CANCELLED": {
        "en": "Order {order} was cancelled, so no parcel is coming for it.",
        "es": "El pedido {order} fue cancelado, así que no se enviará nada más.",
        "de": "die Bestellung {order} wurde storniert; dafür wird nichts mehr verschickt.",
        "fr": "La commande {order} a été annulée ; rien d'autre ne sera expédié pour elle.",
        "ja": "ご注文 {order} はキャンセル済みのため、発送はございません。",
    },
    "thanks": {
        "en": "Thank you for your kind message{about}! We're glad to hear it.",
        "es": "¡Muchas gracias por tu mensaje{about}! Nos alegra mucho leerlo.",
        "de": "vielen Dank für Ihre nette Nachricht{about}! Das freut uns sehr.",
        "fr": "Merci beaucoup pour votre message{about} ! Cela nous fait très plaisir.",
        "ja": "温かいメッセージ{about}をありがとうございます。大変うれしく拝見しました。",
    },
    "hold": {
        "en": "Thanks for your message about order {order}. A member of our team is looking into it and will get back to you personally.",
        "es": "Gracias por tu mensaje sobre el pedido {order}. Una persona de nuestro equipo lo está revisando y te responderá personalmente.",
        "de": "vielen Dank für Ihre Nachricht zur Bestellung {order}. Jemand aus unserem Team sieht sie sich an und meldet sich persönlich bei Ihnen.",
        "fr": "Merci pour votre message concernant la commande {order}. Un membre de notre équipe l'examine et vous répondra personnellement.",
        "ja": "ご注文 {order} についてご連絡いただきありがとうございます。担当者が内容を確認し、改めてご連絡いたします。",
    },
}

_ABOUT = {
    "en": " about order {order}",
    "es": " sobre el pedido {order}",
    "de": " zur Bestellung {order}",
    "fr": " concernant la commande {order}",
    "ja": "（ご注文 {order}）",
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
