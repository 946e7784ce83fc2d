"""What the chaos cases ask of the desk, and how they count what came of it.

Customers write about their own orders in the seeded sandbox store, in words the offline
rules read as each of the four store actions; the store's ledger and the mail sink say
what happened.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from kernel.enums import ActionType
from sandbox.server import Sandbox
from tests.pipeline import Merchant

STORE_ACTIONS = (
    ActionType.REFUND,
    ActionType.CANCEL,
    ActionType.REPLACE_ITEM,
    ActionType.ADDRESS_CHANGE,
)
SHORT = {
    ActionType.REFUND: "refund",
    ActionType.CANCEL: "cancel",
    ActionType.REPLACE_ITEM: "replace",
    ActionType.ADDRESS_CHANGE: "address",
}
# The ledger entries each action leaves in the sandbox store.
EFFECTS = {
    ActionType.REFUND: {"refund"},
    ActionType.CANCEL: {"cancel"},
    ActionType.REPLACE_ITEM: {"order_edit", "return"},
    ActionType.ADDRESS_CHANGE: {"order_update"},
}

Facts = dict[str, Any]
# Which seeded orders each action can be asked for; the scarce kinds are chosen first.
ELIGIBLE: dict[ActionType, Callable[[Facts], bool]] = {
    ActionType.CANCEL: lambda o: o["fulfillment_status"] == "UNFULFILLED" and not o["cancelled"],
    ActionType.ADDRESS_CHANGE: lambda o: (
        o["fulfillment_status"] == "UNFULFILLED" and not o["cancelled"]
    ),
    ActionType.REFUND: lambda o: (
        o["fulfillment_status"] != "UNFULFILLED" and not o["cancelled"] and o["refundable"] > 0
    ),
    ActionType.REPLACE_ITEM: lambda o: not o["cancelled"],
}


@dataclass(frozen=True)
class Request:
    """One customer's email asking for one store action on their order."""

    action: ActionType
    number: str  # "1003"
    sender: str
    subject: str
    text: str

    @property
    def order(self) -> str:
        return f"#{self.number}"


def _text(action: ActionType, number: str, item: str, index: int) -> str:
    if action is ActionType.REFUND:
        return f"My order #{number} arrived broken. I would like a refund please."
    if action is ActionType.CANCEL:
        return f"Please cancel my order #{number}, I ordered it twice by mistake."
    if action is ActionType.REPLACE_ITEM:
        return f"You sent the {item} from order #{number} in the wrong size, please exchange it."
    return (
        f"Hi, for order #{number}, please ship it to {100 + index} Amphitheatre Pkwy, "
        "Mountain View, CA 94043 instead please"
    )


def requests_for(merchant: Merchant, per_action: dict[ActionType, int]) -> list[Request]:
    """Requests on distinct orders, `per_action[t]` of each type, interleaved by type so
    that a fault in the middle of the run meets every type."""
    used: set[str] = set()
    by_action: dict[ActionType, list[Request]] = {}
    for action in ELIGIBLE:  # the scarcest first
        chosen = []
        for number, facts in merchant.orders.items():
            if len(chosen) == per_action.get(action, 0):
                break
            order = merchant.shop.by_name(f"#{number}")
            assert order is not None
            # An item none of which was refunded, either all shipped (an exchange) or all
            # still waiting (an order edit).
            items = [
                i.title
                for i in order.line_items
                if i.refunded == 0 and i.unfulfilled_quantity in (0, i.refundable_quantity)
            ]
            if number in used or not ELIGIBLE[action](facts):
                continue
            if action is ActionType.REPLACE_ITEM and not items:
                continue
            used.add(number)
            text = _text(action, number, items[0] if items else "", len(used))
            chosen.append(Request(action, number, facts["email"], f"About order #{number}", text))
        assert len(chosen) == per_action.get(action, 0), f"not enough orders for {action}"
        by_action[action] = chosen
    lanes = [by_action[action] for action in STORE_ACTIONS if action in by_action]
    return [r for row in zip_longest(*lanes) for r in row if r is not None]


def refund_requests(
    merchant: Merchant, wanted: Callable[[Facts], bool], at_most: int
) -> list[Request]:
    """A broken-item refund request (the words `requests_for` uses) on each of the first
    `at_most` seeded orders whose facts satisfy `wanted`: for a case that needs its
    refunds on orders a playbook accepts, rather than one of each kind."""
    return [
        Request(
            ActionType.REFUND,
            number,
            facts["email"],
            f"About order #{number}",
            _text(ActionType.REFUND, number, "", 0),
        )
        for number, facts in merchant.orders.items()
        if wanted(facts)
    ][:at_most]


def mix(requests: Iterable[Request]) -> str:
    """`10 refund, 10 cancel, 10 replace, 10 address`"""
    counts = Counter(r.action for r in requests)
    return ", ".join(f"{counts[a]} {SHORT[a]}" for a in STORE_ACTIONS if counts[a])


def store_effects(merchant: Merchant) -> Counter[tuple[str, str]]:
    """(order, effect) → how many times the store carried it out. Setting an order's
    address again to the same address changes nothing in the store and is not counted
    twice; every other entry (a refund, a cancellation, an edit, a return) is an effect."""
    effects: Counter[tuple[str, str]] = Counter()
    addresses: set[tuple[str, str]] = set()
    for entry in merchant.shop.ledger:
        kind, order = entry["type"], entry["order"]
        if kind == "fulfillment":
            continue
        if kind == "order_update":
            address = repr(sorted((entry.get("shipping_address") or {}).items()))
            if (order, address) in addresses:
                continue
            addresses.add((order, address))
        effects[(order, kind)] += 1
    return effects


def replies(sandbox: Sandbox) -> Counter[str]:
    """Reply Message-ID → deliveries the mail sink received."""
    return Counter(d.message_id for d in sandbox.sink.deliveries)


def replied_actions(sent: Counter[str]) -> set[str]:
    """The action ids the delivered replies answer for (`<reply-{action id}@domain>`)."""
    return {message_id.removeprefix("<reply-").split("@", 1)[0] for message_id in sent}


def duplicates(counts: Counter[Any]) -> int:
    return sum(n - 1 for n in counts.values() if n > 1)


def effects_by_order(
    requests: Iterable[Request], effects: Counter[tuple[str, str]]
) -> dict[str, int]:
    """order → how many effects of the requested kind the store carried out on it."""
    return {
        r.order: sum(
            n
            for (order, kind), n in effects.items()
            if order == r.order and kind in EFFECTS[r.action]
        )
        for r in requests
    }


@dataclass(frozen=True)
class Tally:
    """What the store and the mail sink hold after a case, against what was asked."""

    requests: list[Request]
    effects: Counter[tuple[str, str]]
    sent: Counter[str]

    @classmethod
    def of(cls, merchant: Merchant, requests: list[Request]) -> Tally:
        return cls(requests, store_effects(merchant), replies(merchant.sandbox))

    @property
    def counts(self) -> str:
        """`store effects 40, replies 40, duplicates 0`"""
        return (
            f"store effects {sum(self.effects.values())}, replies {sum(self.sent.values())}, "
            f"duplicates {duplicates(self.effects) + duplicates(self.sent)}"
        )

    def assert_once(
        self,
        acted: Iterable[Request] | None = None,
        resent: Collection[str] = (),
    ) -> None:
        """Each of `acted` (by default every request) happened exactly once in the store and
        was answered by exactly one reply, and nothing else happened or was sent. Only a
        reply in `resent` (delivered, unrecorded when its worker died) may arrive twice."""
        done = list(self.requests if acted is None else acted)
        wanted = {r.order: int(r in done) for r in self.requests}
        per_order = effects_by_order(self.requests, self.effects)
        wrong = {order: n for order, n in per_order.items() if n != wanted[order]}
        assert wrong == {}, f"orders whose effect is not there as often as asked: {wrong}"
        assert sum(self.effects.values()) == len(done), f"other effects: {self.effects}"
        again = {reply: n for reply, n in self.sent.items() if n > 1 + int(reply in resent)}
        assert again == {}, f"replies delivered more than once: {again}"
        assert len(self.sent) == len(done), f"{len(self.sent)} replies for {len(done)} actions"
