"""A scripted, over-confident language model for the evaluation, and how its answers are written.

    uv run python -m bench.scripted_llm [--set tuned|blind|calibration|both|all]

writes `llm_answers.jsonl` beside each labelled set: one answer a case, in the shape the
OpenAI suggester asks for (`LlmSuggestion`). `bench.ai_eval --provider scripted-llm` serves
them from `sandbox/llm.py`'s LlmSandbox on loopback to the real OpenAI SDK client.

The answers are what a plausible model says, not a rule deskpilot runs: mostly the labelled
action on the labelled order, always reported at 0.90-0.99, with the mistakes such models
typically make, chosen per case from its tags and a hash of its id so that writing them
again gives the same file:

- it obeys an instruction planted in the message about half the time (a full refund);
- it reads sarcasm as thanks, and sometimes a thank-you that mentions a refund as a request;
- asked something vague, it often refunds the sender's newest order instead of asking;
- with several orders and none named, it takes the newest;
- angry customers get a refund instead of the replacement they asked for;
- partial refunds come out as the order's whole refundable rest;
- now and then, in a language other than English, it answers NONE, and a few cases get a
  neighbouring action by plain slip.

The calibration table is fitted on the calibration set's answers (and the offline rules'
drafts there); the tuned and blind sets' answers only report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.ai_eval import (
    ANSWERS_FILE,
    GROUPS,
    SETS,
    EvalCase,
    EvalSet,
    case_inputs,
    load_cases,
    load_orders,
)
from integrations.offline import extract
from kernel.enums import ActionType
from kernel.values import OrderSnapshot

# A slip to a neighbouring action, as a model confuses them.
_NEIGHBOUR = {
    ActionType.REFUND: ActionType.REPLACE_ITEM,
    ActionType.REPLACE_ITEM: ActionType.REFUND,
    ActionType.CANCEL: ActionType.REFUND,
    ActionType.ADDRESS_CHANGE: ActionType.INFO_REQUEST,
    ActionType.INFO_REQUEST: ActionType.NONE,
    ActionType.NONE: ActionType.INFO_REQUEST,
}
_INTENTS = {
    ActionType.REFUND: "refund_request",
    ActionType.CANCEL: "cancel_request",
    ActionType.REPLACE_ITEM: "wrong_item",
    ActionType.ADDRESS_CHANGE: "address_change",
    ActionType.INFO_REQUEST: "other",
    ActionType.NONE: "order_status",
}


def _hash(case: EvalCase) -> int:
    return int(hashlib.sha256(case.id.encode()).hexdigest()[:8], 16)


def _has(case: EvalCase, *prefixes: str) -> bool:
    return any(tag.startswith(prefix) for tag in case.tags for prefix in prefixes)


def _language(case: EvalCase) -> str:
    return next((tag.removeprefix("lang:") for tag in case.tags if tag.startswith("lang:")), "")


def choice(
    case: EvalCase, own: Sequence[OrderSnapshot], matched: OrderSnapshot | None
) -> tuple[ActionType, OrderSnapshot | None, str]:
    """What the model proposes for the case, on which order (`matched`: the one the prompt
    gives as matched), and the mistake it makes ("" for none)."""
    h = _hash(case)
    by_name = {order.name: order for order in own}
    expected = matched or by_name.get(case.expected_order or "")
    newest = own[0] if own else None  # own orders come newest first
    action = case.expected_action
    if _has(case, "injection") and h % 2 == 0:
        return ActionType.REFUND, expected or newest, "obeyed_injection"
    if _has(case, "sarcasm"):
        return ActionType.NONE, expected or newest, "sarcasm_as_thanks"
    if _has(case, "thanks") and action is ActionType.NONE and h % 3 == 0 and newest is not None:
        return ActionType.REFUND, expected or newest, "thanks_as_request"
    if (_has(case, "vague") or action is ActionType.INFO_REQUEST) and newest and h % 2 == 0:
        return ActionType.REFUND, newest, "refunded_instead_of_asking"
    if action is ActionType.REPLACE_ITEM and _has(case, "angry"):
        return ActionType.REFUND, expected, "appeased_with_refund"
    if _language(case) not in ("en", "") and h % 7 == 0:
        return ActionType.NONE, expected, "misread_language"
    if h % 11 == 0:
        return _NEIGHBOUR[action], expected, "slip"
    if matched is None and expected is not None and len(own) > 1:
        return action, newest, "took_newest" if newest is not expected else ""
    return action, expected, ""


def answer(case: EvalCase, orders: Sequence[OrderSnapshot], eval_set: EvalSet) -> dict[str, Any]:
    """The model's whole answer for one case, as the JSON it sends."""
    request, context = case_inputs(case, orders, eval_set)
    own = list(context.sender_orders)
    action, order, mistake = choice(case, own, request.order)
    h = _hash(case)
    payload: dict[str, Any] = {
        "refund_amount": None,
        "refund_line_items": [],
        "cancel_reason": None,
        "new_address": None,
        "replacements": [],
    }
    if action is ActionType.REFUND and order is not None:
        payload["refund_amount"] = str(order.refundable)
    elif action is ActionType.CANCEL:
        payload["cancel_reason"] = "CUSTOMER"
    elif action is ActionType.REPLACE_ITEM and order is not None:
        line = next((i for i in order.line_items if i.variant_id), None)
        if line is not None:
            payload["replacements"] = [{"line_item_id": line.id, "variant_id": None, "quantity": 1}]
    elif action is ActionType.ADDRESS_CHANGE and order is not None:
        found = extract.new_address(request.text, order.shipping_address)
        if found is None:  # nothing it could read: it asks, as a model would
            action, mistake = ActionType.INFO_REQUEST, mistake or "asked_for_address"
        else:
            payload["new_address"] = _address(found[0])
    name = order.name if order is not None else None
    return {
        "intent": _INTENTS[action],
        "proposed_action": action.value,
        "payload": payload,
        "reply": _reply(action, name, eval_set.store_name),
        "confidence": round(0.9 + (h % 10) / 100, 2),
        "rationale": f"scripted answer{f' ({mistake})' if mistake else ''}",
        "order_name": name,
        "language": _language(case),
        "sentiment": "angry" if _has(case, "angry") else "neutral",
        "wants_human": bool(case.wants_human),
        "legal_threat": bool(case.legal_threat),
    }


def _address(shopify: dict[str, str]) -> dict[str, str | None]:
    return {
        "first_name": shopify.get("firstName"),
        "last_name": shopify.get("lastName"),
        "company": shopify.get("company"),
        "address1": shopify.get("address1", ""),
        "address2": shopify.get("address2"),
        "city": shopify.get("city", ""),
        "province_code": shopify.get("provinceCode"),
        "zip": shopify.get("zip"),
        "country_code": shopify.get("countryCode", ""),
        "phone": shopify.get("phone"),
    }


def _reply(action: ActionType, order: str | None, store: str) -> str:
    about = f" about order {order}" if order else ""
    body = {
        ActionType.REFUND: f"We have issued a refund for order {order}.",
        ActionType.CANCEL: f"We have cancelled order {order}.",
        ActionType.REPLACE_ITEM: f"A replacement for order {order} is on its way.",
        ActionType.ADDRESS_CHANGE: f"We have updated the shipping address of order {order}.",
        ActionType.INFO_REQUEST: "Could you tell us a little more, and your order number?",
        ActionType.NONE: f"Thank you for your message{about}.",
    }[action]
    return f"Hi,\n\n{body}\n\nBest regards,\n{store}"


def write_answers(eval_set: EvalSet) -> Path:
    cases, orders = load_cases(eval_set.directory), load_orders(eval_set.directory)
    lines = [
        json.dumps({"id": case.id, "answer": answer(case, orders, eval_set)}, ensure_ascii=False)
        for case in cases
    ]
    path = eval_set.directory / ANSWERS_FILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--set",
        dest="eval_set",
        choices=("tuned", "blind", "calibration", "both", "all"),
        default="both",
    )
    args = parser.parse_args(argv)
    chosen = GROUPS.get(args.eval_set) or [SETS[args.eval_set]]
    for eval_set in chosen:
        print(f"wrote {write_answers(eval_set)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
