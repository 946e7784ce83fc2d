"""What the model must fill in, and how its answer becomes a SuggestionDraft. Pure.

The JSON schema stays inside the subset every strict structured-output server accepts
(OpenAI, Ollama, vLLM): every field required, nullable instead of optional, no
defaults, no numeric or length constraints. Ranges and number formats are checked
here by pydantic after parsing instead; a violation is an invalid answer, except in
the message's signals for the playbooks, which fall back to "nothing signalled".
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from kernel.enums import ActionType
from kernel.values import Sentiment, SuggestionDraft

# Shopify's OrderCancelReason values.
CancelReason = Literal["CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "OTHER", "STAFF"]


def _at_least_one(value: int) -> int:
    if value < 1:
        raise ValueError("quantity must be at least 1")
    return value


def _unit_interval(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValueError("confidence must be between 0 and 1")
    return value


def _decimal_amount(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        amount = Decimal(value.strip())
    except InvalidOperation as exc:
        raise ValueError(f"refund_amount {value!r} is not a decimal number") from exc
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"refund_amount {value!r} is not a non-negative amount")
    return str(amount)


# The signals the playbooks read. A missing or unusable one is read as nothing signalled
# ("", neutral, false) instead of refusing the whole answer: the action and the reply are
# still good, and a compatible server may leave out what it did not understand.
SIGNALS = ("language", "sentiment", "wants_human", "legal_threat")


def _language(value: object) -> str:
    """An ISO 639-1 code in lower case ("EN", "en-US" and "pt_BR" give "en", "pt")."""
    if not isinstance(value, str):
        return ""
    code = value.strip().lower().replace("_", "-").split("-", 1)[0]
    return code if len(code) == 2 and code.isascii() and code.isalpha() else ""


def _sentiment(value: object) -> str:
    mood = value.strip().lower() if isinstance(value, str) else ""
    return mood if mood in get_args(Sentiment) else "neutral"


def _flag(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes"))


# AfterValidator checks leave the JSON schema plain (see the module docstring); so do the
# BeforeValidators, which only map what the model said onto the field's type.
Quantity = Annotated[int, AfterValidator(_at_least_one)]
Confidence = Annotated[float, AfterValidator(_unit_interval)]
Amount = Annotated[str | None, AfterValidator(_decimal_amount)]
Language = Annotated[str, BeforeValidator(_language)]
Mood = Annotated[Sentiment, BeforeValidator(_sentiment)]
Flag = Annotated[bool, BeforeValidator(_flag)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RefundLine(_Strict):
    line_item_id: str = Field(description="The id of a line item of the order, as given.")
    quantity: Quantity = Field(description="How many units to refund, at least 1.")


class ReplacementLine(_Strict):
    line_item_id: str = Field(description="The id of the line item to replace, as given.")
    variant_id: str | None = Field(
        description="The variant to send instead; null to resend the same variant."
    )
    quantity: Quantity = Field(description="How many units to replace, at least 1.")


class NewAddress(_Strict):
    first_name: str | None
    last_name: str | None
    company: str | None
    address1: str
    address2: str | None
    city: str
    province_code: str | None = Field(description="State or province code, e.g. CA; or null.")
    zip: str | None
    country_code: str = Field(description="ISO 3166-1 alpha-2 country code, e.g. US.")
    phone: str | None


class ActionPayload(_Strict):
    refund_amount: Amount = Field(
        description=(
            "REFUND only: the amount in the order's currency as a plain decimal string "
            'such as "12.50"; null to refund the listed line items, or everything refundable.'
        )
    )
    refund_line_items: list[RefundLine] = Field(
        description="REFUND only: the line items being refunded; empty when not by item."
    )
    cancel_reason: CancelReason | None = Field(description="CANCEL only; otherwise null.")
    new_address: NewAddress | None = Field(
        description="ADDRESS_CHANGE only: the complete new shipping address; otherwise null."
    )
    replacements: list[ReplacementLine] = Field(
        description="REPLACE_ITEM only: the items to send again; otherwise empty."
    )


class LlmSuggestion(_Strict):
    """The model's whole answer for one customer message."""

    intent: str = Field(
        description=(
            "One of: refund_request, damaged_item, wrong_item, cancel_request, "
            "address_change, order_status, other."
        )
    )
    proposed_action: ActionType = Field(description="The one action to propose.")
    payload: ActionPayload
    reply: str = Field(description="The email reply to the customer, ready to send.")
    confidence: Confidence = Field(description="0 to 1: how sure you are that the action is right.")
    rationale: str = Field(description="One or two sentences for the merchant: why.")
    order_name: str | None = Field(
        description='The order acted on, exactly as listed (e.g. "#1001"); null if none.'
    )
    language: Language = Field(
        description='ISO 639-1 code of the language the customer wrote in, e.g. "en", "es"; '
        '"" if you cannot tell.'
    )
    sentiment: Mood = Field(
        description="The customer's mood in this message: positive (pleased, thankful), "
        "neutral, negative (disappointed, unhappy) or angry (hostile, insulting, shouting)."
    )
    wants_human: Flag = Field(
        description="True if the customer asks to deal with a person rather than an automated "
        "reply: a human, a manager, a phone call."
    )
    legal_threat: Flag = Field(
        description="True if the customer threatens legal action (a lawyer, a lawsuit, a "
        "court, a consumer authority) or a payment dispute (a chargeback, a bank or PayPal "
        "dispute)."
    )

    @model_validator(mode="before")
    @classmethod
    def _signals_left_out(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {**dict.fromkeys(SIGNALS), **data}  # None: read as nothing signalled
        return data


def action_payload(action: ActionType, payload: ActionPayload) -> dict[str, Any]:
    """The payload the rest of deskpilot reads for `action`, keeping only its own fields.

    Keys follow what the guardrails and the Shopify client read: REFUND `amount` and
    `line_items`; CANCEL `reason`; ADDRESS_CHANGE `address` with Shopify's field names;
    REPLACE_ITEM the first line as `line_item_id`, `variant_id`, `quantity`, and all
    of them under `replacements`.
    """
    if action is ActionType.REFUND:
        refund: dict[str, Any] = {}
        if payload.refund_amount is not None:
            refund["amount"] = payload.refund_amount
        if payload.refund_line_items:
            refund["line_items"] = [line.model_dump() for line in payload.refund_line_items]
        return refund
    if action is ActionType.CANCEL:
        return {"reason": payload.cancel_reason or "CUSTOMER"}
    if action is ActionType.ADDRESS_CHANGE and payload.new_address is not None:
        return {"address": _shopify_address(payload.new_address)}
    if action is ActionType.REPLACE_ITEM and payload.replacements:
        first = payload.replacements[0]
        return {
            "line_item_id": first.line_item_id,
            "variant_id": first.variant_id,
            "quantity": first.quantity,
            "replacements": [line.model_dump() for line in payload.replacements],
        }
    return {}


def _shopify_address(address: NewAddress) -> dict[str, str]:
    camel = {
        "first_name": "firstName",
        "last_name": "lastName",
        "province_code": "provinceCode",
        "country_code": "countryCode",
    }
    return {
        camel.get(key, key): value.strip()
        for key, value in address.model_dump().items()
        if value is not None and value.strip()
    }


def to_draft(
    answer: LlmSuggestion, *, provider: str, prompt_tokens: int = 0, completion_tokens: int = 0
) -> SuggestionDraft:
    order_name = (answer.order_name or "").strip() or None
    return SuggestionDraft(
        intent=answer.intent.strip() or "other",
        action=answer.proposed_action,
        payload=action_payload(answer.proposed_action, answer.payload),
        reply=answer.reply.strip(),
        confidence=answer.confidence,
        rationale=answer.rationale.strip(),
        provider=provider,
        order_name=order_name,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        language=answer.language,
        sentiment=answer.sentiment,
        wants_human=answer.wants_human,
        legal_threat=answer.legal_threat,
    )
