"""The model failing 30% of its calls — rate limits, server errors, answers later than the
worker waits, malformed JSON, refusals — over 100 messages: none is lost, each ends with a
suggestion, or with a person and a note saying why there is none.

The LLM sandbox chooses the faults from a seed and each prompt, so a run fails the same
calls whatever order the worker makes them in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kernel.enums import ActionType
from sandbox.llm import Answer, ChatRequest, Faults, LlmSandbox, Outcome
from sandbox.server import serve_app
from tests.chaos.conftest import Report
from tests.chaos.desk import eventually, open_desk
from workflows.contracts import STATE_QUERY, MessageState, Stage

MESSAGES = 100
KEY, MODEL = "sk-chaos", "chaos-model"
TIMEOUT_S = 2  # the worker's wait for one model call; a timeout fault answers later


def _answer(request: ChatRequest) -> Outcome:
    """A model that answers every message plainly: no store action, a courteous reply."""
    del request
    return Answer(
        {
            "intent": "where_is_order",
            "proposed_action": "NONE",
            "payload": {
                "refund_amount": None,
                "refund_line_items": [],
                "cancel_reason": None,
                "new_address": None,
                "replacements": [],
            },
            "reply": "Hi,\n\nYour order is on its way and should arrive soon.\n\nTest Store",
            "confidence": 0.8,
            "rationale": "The customer asks where the order is.",
            "order_name": None,
        }
    )


async def test_a_failing_model_loses_no_message(
    chaos_report: Report,
    own_database: str,
    own_sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    bytecode: dict[str, str],
) -> None:
    faults = Faults(0.3, seed=4, timeout_seconds=TIMEOUT_S + 1)
    llm = LlmSandbox(api_key=KEY, default_responder=_answer, faults=faults)
    async with (
        serve_app(llm.app()) as llm_url,
        open_desk(
            tmp_path,
            own_database,
            own_sessions,
            OPENAI_BASE_URL=f"{llm_url}/v1",
            OPENAI_API_KEY=KEY,
            OPENAI_MODEL=MODEL,
            OPENAI_TIMEOUT_SECONDS=str(TIMEOUT_S),
            **bytecode,
        ) as desk,
    ):
        await desk.start_worker()
        numbers = list(desk.merchant.orders)
        handles = []
        for i in range(MESSAGES):
            number = numbers[i % len(numbers)]
            _, handle = await desk.start_message(
                desk.merchant.orders[number]["email"],
                f"Order #{number}",
                f"Hi, where is my order #{number}? I am still waiting (message {i}).",
            )
            handles.append(handle)
        await eventually(lambda: desk.pending(MESSAGES), 180, "every message to wait for a person")
        states = [await h.query(STATE_QUERY, result_type=MessageState) for h in handles]
        actions = await desk.actions()

    suggested = [a for a in actions if a.suggestion_id is not None]
    noted = [
        a
        for a in actions
        if a.suggestion_id is None
        and a.type is ActionType.NONE
        and str(a.payload.get("note", "")).startswith("no AI suggestion")
    ]
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(faults.injected.items()))
    chaos_report(
        f"chaos llm-faults: {MESSAGES} messages, {len(llm.requests)} model calls, "
        f"{sum(faults.injected.values())} faults ({kinds}); {len(suggested)} with a "
        f"suggestion, {len(noted)} with a person and a note, "
        f"lost {MESSAGES - len(suggested) - len(noted)}"
    )
    assert [s.stage for s in states] == [Stage.AWAITING_DECISION] * MESSAGES
    assert len(actions) == MESSAGES and len({a.message_id for a in actions}) == MESSAGES
    assert len(suggested) + len(noted) == MESSAGES, [_summary(a.payload) for a in actions]
    assert suggested and noted, "the faults should leave some messages to a person"
    assert set(faults.injected) == {"429", "500", "timeout", "malformed", "refusal"}


def _summary(payload: dict[str, Any]) -> str:
    return str(payload.get("note") or payload.get("provider"))
