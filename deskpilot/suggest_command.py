"""`deskpilot suggest EMAIL.eml [--order ORDER.json] [--json]`: one suggestion from the
configured provider, through the guardrails, with no database and no Temporal.

The pure parts (reading the order document, matching the sender's order, building the
request and the guardrail context, shaping the output) are shared with
`bench/ai_eval.py`, so the evaluation measures what this command and the pipeline do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from domain.guardrails import (
    GuardedSuggestion,
    GuardrailContext,
    context_for,
    guard_suggestion,
    placed_by,
)
from domain.mail.mime import MalformedEmailError, ParsedEmail, parse_email
from domain.order_names import order_names_in
from integrations.llm import suggester_from_settings
from integrations.ports import SuggesterPort
from integrations.shopify.orders import order_snapshot
from kernel.errors import IntegrationError
from kernel.settings import ConfigurationError, Settings, get_settings
from kernel.values import OrderSnapshot, SuggestionRequest

DEFAULT_STORE_NAME = "our store"
# Usage errors (a file we cannot use) exit like click's own usage errors; a provider
# failure is a runtime error.
EXIT_BAD_INPUT = 2
EXIT_PROVIDER_FAILED = 1


class InputError(Exception):
    """A file the command cannot use; the message says which and why."""


# --- reading the files ----------------------------------------------------------------------


def read_email(path: Path) -> ParsedEmail:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the email {path}: {exc.strerror or exc}") from exc
    try:
        return parse_email(raw)
    except MalformedEmailError as exc:
        raise InputError(f"{path} is not an email we can read: {exc}") from exc


def unwrap_order(document: Any) -> dict[str, Any]:
    """The `order` object from what an operator is likely to save: the object itself, the
    GraphQL response (`{"data": {"order": ...}}`) or its `data` (`{"order": ...}`)."""
    if isinstance(document, dict) and "data" in document and "id" not in document:
        document = document["data"]
    if isinstance(document, dict) and "order" in document and "id" not in document:
        document = document["order"]
    if not isinstance(document, dict):
        raise ValueError("expected a Shopify order object (or a GraphQL response holding one)")
    for field in ("id", "name"):
        if not isinstance(document.get(field), str) or not document[field].strip():
            raise ValueError(f"the order has no {field!r}")
    return document


def read_order(path: Path) -> OrderSnapshot:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise InputError(f"cannot read the order {path}: {reason}") from exc
    try:
        return order_snapshot(unwrap_order(json.loads(text)))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not JSON: {exc}") from exc
    except (ValueError, TypeError, KeyError, ArithmeticError, ValidationError) as exc:
        # order_snapshot trusts Shopify's shapes; a hand-edited file may break them anywhere.
        raise InputError(f"{path} is not a Shopify order: {_brief_error(exc)}") from exc


def _brief_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or type(exc).__name__


# --- building the suggestion's inputs (pure) ------------------------------------------------


def match_sender_order(text: str, sender_orders: Sequence[OrderSnapshot]) -> OrderSnapshot | None:
    """The sender's order the email is about: an order number of theirs that it quotes,
    else their only order. With several and none quoted nobody can be sure which one is
    meant, so the suggester gets them as candidates instead."""
    by_name = {order.name: order for order in sender_orders}
    for name in order_names_in(text):
        if name in by_name:
            return by_name[name]
    return sender_orders[0] if len(sender_orders) == 1 else None


def suggestion_inputs(
    parsed: ParsedEmail,
    *,
    store_name: str,
    policy: str = "",
    order: OrderSnapshot | None,
    sender_orders: Sequence[OrderSnapshot],
    candidates: Sequence[OrderSnapshot] = (),
    store_domains: Iterable[str] = (),
) -> tuple[SuggestionRequest, GuardrailContext]:
    """The request for the suggester and what the guardrails may trust about it.

    `sender_orders` must hold only orders placed with the sender's address: the
    guardrails let a draft act on those and on nothing else. `store_domains` are the
    store's own domains (shop, support mail), whose addresses a customer may quote.
    """
    request = SuggestionRequest(
        store_name=store_name,
        customer_email=parsed.from_address,
        subject=parsed.subject,
        text=parsed.text,
        quoted=parsed.quoted,
        policy=policy,
        order=order,
        candidate_orders=list(candidates) if order is None else [],
    )
    return request, context_for(
        request, sender_orders=sender_orders, store_domains=store_domains, hidden_text=parsed.hidden
    )


def store_identity(settings: Settings) -> tuple[str, str]:
    """The store's name and policy text, where the settings carry them."""
    name = getattr(settings, "store_name", None)
    policy = getattr(settings, "store_policy", None)
    name = name.strip() if isinstance(name, str) and name.strip() else DEFAULT_STORE_NAME
    return name, policy.strip() if isinstance(policy, str) else ""


async def guarded_suggestion(
    suggester: SuggesterPort, request: SuggestionRequest, context: GuardrailContext
) -> GuardedSuggestion:
    """The provider's draft through the guardrails and the calibration, as the pipeline
    stores it."""
    return guard_suggestion(await suggester.suggest(request), context)


# --- output ---------------------------------------------------------------------------------


def suggestion_json(guarded: GuardedSuggestion) -> dict[str, Any]:
    draft = guarded.draft
    return {
        "provider": draft.provider,
        "intent": draft.intent,
        "proposed_action": draft.action.value,
        "confidence": draft.confidence,  # calibrated
        "uncalibrated_confidence": guarded.uncalibrated_confidence,  # the provider's
        "reply": draft.reply,
        "payload": draft.payload,
        "rationale": draft.rationale,
        "order": guarded.order.name if guarded.order is not None else None,
        "guardrails": [{"code": note.code, "detail": note.detail} for note in guarded.notes],
        # What the provider proposed before the guardrails, so a change is visible.
        "original_action": guarded.original.action.value,
        "tokens": {"prompt": draft.prompt_tokens, "completion": draft.completion_tokens},
    }


def summary_text(guarded: GuardedSuggestion) -> str:
    draft, original = guarded.draft, guarded.original
    about = f"order {guarded.order.name}" if guarded.order is not None else "no order"
    action = draft.action.value
    if original.action != draft.action:
        action += f" (proposed {original.action.value}, changed by the guardrails)"
    lines = [
        f"Suggestion from {draft.provider}, on {about}",
        f"  action      {action}",
        f"  confidence  {draft.confidence:.2f}{_provider_said(guarded)}",
        f"  intent      {draft.intent}",
        f"  payload     {json.dumps(draft.payload, default=str) if draft.payload else '-'}",
        f"  rationale   {draft.rationale}",
        f"  tokens      {draft.prompt_tokens} prompt, {draft.completion_tokens} completion",
    ]
    if guarded.notes:
        lines.append("  guardrails")
        lines += [f"    - {note.code}: {note.detail}" for note in guarded.notes]
    else:
        lines.append("  guardrails  none fired")
    lines += ["", "Reply:", *(f"  {line}" if line else "" for line in draft.reply.splitlines())]
    return "\n".join(lines)


def _provider_said(guarded: GuardedSuggestion) -> str:
    raw = guarded.uncalibrated_confidence
    return f" (calibrated; the provider said {raw:.2f})" if raw is not None else ""


# --- the command ----------------------------------------------------------------------------


async def _run(
    settings: Settings, request: SuggestionRequest, context: GuardrailContext
) -> GuardedSuggestion:
    suggester = suggester_from_settings(settings)
    try:
        return await guarded_suggestion(suggester, request, context)
    finally:
        close = getattr(suggester, "aclose", None)
        if close is not None:
            await close()


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def suggest(
    email: Annotated[
        Path,
        typer.Argument(metavar="EMAIL.eml", help="the customer's email, raw RFC 5322"),
    ],
    order: Annotated[
        Path | None,
        typer.Option(
            "--order",
            metavar="ORDER.json",
            help="the order as Shopify's Admin GraphQL API returns it",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Draft a suggestion for one email with the configured provider, guardrails applied."""
    try:
        parsed = read_email(email)
        snapshot = read_order(order) if order is not None else None
    except InputError as exc:
        raise _fail(str(exc), EXIT_BAD_INPUT) from exc
    try:
        settings = get_settings()
    except (ValidationError, ConfigurationError) as exc:
        raise _fail(f"the configuration is not valid: {exc}", EXIT_BAD_INPUT) from exc
    store_name, policy = store_identity(settings)
    # The order goes to the suggester as given; only if it was placed with the sender's
    # address may the draft act on it, which the guardrails enforce.
    owned = [snapshot] if snapshot is not None and placed_by(snapshot, parsed.from_address) else []
    request, context = suggestion_inputs(
        parsed, store_name=store_name, policy=policy, order=snapshot, sender_orders=owned
    )
    try:
        guarded = asyncio.run(_run(settings, request, context))
    except IntegrationError as exc:
        raise _fail(f"the suggestion failed: {exc}", EXIT_PROVIDER_FAILED) from exc
    if as_json:
        typer.echo(json.dumps(suggestion_json(guarded), ensure_ascii=False, default=str))
    else:
        typer.echo(summary_text(guarded))
