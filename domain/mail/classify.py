"""Recognising mail that must never be answered automatically (REFERENCE.md, "Email").

Pure: takes the headers as parsed, returns why a message is automated, or None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_LIST_HEADERS = ("list-id", "list-unsubscribe", "feedback-id")
_AUTO_RESPONSE_SUPPRESS = {"dr", "autoreply", "all"}
# Out-of-office and bounce subjects from clients that set none of the headers above.
# Anchored at the start: a customer writing "Re: out of office" about a delay is not one.
_AUTOMATED_SUBJECT = re.compile(
    r"^\s*("
    r"out of (the )?office\b"
    r"|automatic reply\b"
    r"|auto(matic)?[- ]?(reply|response)\b"
    r"|auto:"
    r"|autoreply\b"
    r"|abwesenheitsnotiz\b"
    r"|automatische antwort\b"
    r"|réponse automatique\b"
    r"|absence du bureau\b"
    r"|respuesta automática\b"
    r"|fuori sede\b"
    r"|risposta automatica\b"
    r"|undeliverable:"
    r"|undelivered mail returned to sender\b"
    r"|delivery status notification \(failure\)"
    r"|mail delivery (failed|failure|subsystem)\b"
    r"|returned mail:"
    r"|failure notice\b"
    r")",
    re.IGNORECASE,
)


def _value(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            if isinstance(value, list):
                return ", ".join(str(v) for v in value)
            return str(value)
    return None


def automated_reason(headers: Mapping[str, Any]) -> str | None:
    auto_submitted = _value(headers, "auto-submitted")
    if auto_submitted is not None and auto_submitted.strip().lower() != "no":
        return f"Auto-Submitted: {auto_submitted.strip()}"
    return_path = _value(headers, "return-path")
    if return_path is not None and return_path.strip() == "<>":
        return "Return-Path: <> (a bounce)"
    suppress = _value(headers, "x-auto-response-suppress")
    if suppress and {p.strip().lower() for p in suppress.split(",")} & _AUTO_RESPONSE_SUPPRESS:
        return f"X-Auto-Response-Suppress: {suppress.strip()}"
    for name in _LIST_HEADERS:
        if _value(headers, name) is not None:
            return f"{name} present (list or bulk mail)"
    precedence = _value(headers, "precedence")
    if precedence and precedence.strip().lower() in {"bulk", "list", "junk"}:
        return f"Precedence: {precedence.strip()}"
    for name in ("x-autoreply", "x-autorespond"):
        if _value(headers, name) is not None:
            return f"{name} present"
    content_type = _value(headers, "content-type")
    if content_type and content_type.strip().lower().startswith("multipart/report"):
        return "multipart/report (a delivery report)"
    subject = _value(headers, "subject")
    if subject and _AUTOMATED_SUBJECT.match(subject):
        return f"automated subject: {subject.strip()[:80]}"
    return None
