"""The LLM sandbox on the wire: OpenAI's response and error shapes, bearer auth, the
structured-output checks, the script and the default responder, over loopback HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sandbox.llm import (
    FAULT_KINDS,
    Answer,
    ChatRequest,
    ContentFiltered,
    Delay,
    Faults,
    HttpError,
    LengthCutOff,
    LlmSandbox,
    RawContent,
    Refusal,
    estimate_tokens,
    strict_schema_problems,
)
from sandbox.server import serve_app

KEY = "sk-sandbox"

STRICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "kind": {"anyOf": [{"$ref": "#/$defs/Kind"}, {"type": "null"}]},
        "lines": {"type": "array", "items": {"$ref": "#/$defs/Line"}},
        "score": {"type": "number"},
    },
    "required": ["answer", "kind", "lines", "score"],
    "additionalProperties": False,
    "$defs": {
        "Kind": {"type": "string", "enum": ["A", "B"]},
        "Line": {
            "type": "object",
            "properties": {"id": {"type": "string"}},
            "required": ["id"],
            "additionalProperties": False,
        },
    },
}


@dataclass
class Served:
    sandbox: LlmSandbox
    client: httpx.AsyncClient


@pytest.fixture
async def llm() -> AsyncIterator[Served]:
    sandbox = LlmSandbox(api_key=KEY)
    async with serve_app(sandbox.app()) as url, httpx.AsyncClient(base_url=url) as client:
        yield Served(sandbox, client)


def body(schema: dict[str, Any] | None = STRICT_SCHEMA, strict: bool = True) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hi as JSON, please."},
        ],
    }
    if schema is not None:
        request["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "Hello", "schema": schema, "strict": strict},
        }
    return request


async def post(
    served: Served, request: dict[str, Any], token: str | None = KEY, wait_s: float = 5.0
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await served.client.post(
        "/v1/chat/completions", json=request, headers=headers, timeout=wait_s
    )


async def test_a_scripted_answer_has_openais_completion_shape_and_usage(llm: Served) -> None:
    content = {"answer": "hi", "kind": "A", "lines": [], "score": 0.5}
    llm.sandbox.push(Answer(content))
    before = int(time.time())
    response = await post(llm, body())
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"id", "object", "created", "model", "choices", "usage"}
    assert data["object"] == "chat.completion"
    assert data["id"].startswith("chatcmpl-")
    assert data["model"] == "gpt-test"
    assert data["created"] >= before
    [choice] = data["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["refusal"] is None
    assert json.loads(choice["message"]["content"]) == content
    usage = data["usage"]
    prompt_text = "You are terse.\nSay hi as JSON, please."
    assert usage["prompt_tokens"] == estimate_tokens(prompt_text) > 0
    assert usage["completion_tokens"] == estimate_tokens(json.dumps(content)) > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_every_request_is_recorded_with_its_token(llm: Served) -> None:
    await post(llm, body())
    await post(llm, body(schema=None))
    assert [r.token for r in llm.sandbox.requests] == [KEY, KEY]
    first = llm.sandbox.requests[0]
    assert first.json_schema is not None and first.json_schema["strict"] is True
    assert "Say hi as JSON" in first.text()
    assert llm.sandbox.requests[1].json_schema is None


async def test_a_wrong_or_missing_key_is_refused_like_openai(llm: Served) -> None:
    for token in ("sk-wrong", None):
        response = await post(llm, body(), token=token)
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == "invalid_api_key"
        assert set(error) == {"message", "type", "param", "code"}
    assert llm.sandbox.requests == []


async def test_without_a_key_any_token_is_accepted() -> None:
    sandbox = LlmSandbox(api_key=None)
    async with serve_app(sandbox.app()) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/v1/chat/completions", json=body())
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("request_body", "needle"),
    [
        (body(schema=None), "json_schema"),
        (body(strict=False), "strict must be true"),
        (body(schema={**STRICT_SCHEMA, "additionalProperties": True}), "additionalProperties"),
        (body(schema={**STRICT_SCHEMA, "required": ["answer"]}), "required"),
        (
            body(
                schema={
                    **STRICT_SCHEMA,
                    "properties": {**STRICT_SCHEMA["properties"], "answer": {"default": "x"}},
                }
            ),
            "'default' is not permitted",
        ),
    ],
)
async def test_a_json_answer_needs_strict_structured_output(
    llm: Served, request_body: dict[str, Any], needle: str
) -> None:
    llm.sandbox.push(Answer({"answer": "hi"}))
    response = await post(llm, request_body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert needle in error["message"]


def test_strict_schema_problems_look_inside_defs_and_items() -> None:
    assert strict_schema_problems(STRICT_SCHEMA) == []
    loose = json.loads(json.dumps(STRICT_SCHEMA))
    del loose["$defs"]["Line"]["additionalProperties"]
    [problem] = strict_schema_problems(loose)
    assert "#/$defs/Line" in problem
    assert strict_schema_problems({"type": "array", "items": {"type": "string"}}) == [
        "the root schema must be an object"
    ]


async def test_a_request_without_messages_or_model_is_a_400(llm: Served) -> None:
    response = await post(llm, {"model": "gpt-test", "messages": []})
    assert response.status_code == 400
    response = await post(llm, {"messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 400
    assert "model" in response.json()["error"]["message"]


async def test_refusal_length_filter_and_raw_content(llm: Served) -> None:
    long_answer = {"answer": "x" * 200, "kind": None, "lines": [], "score": 1}
    llm.sandbox.push(
        Refusal("I can't help with that."),
        LengthCutOff(long_answer),
        ContentFiltered(),
        RawContent('{"answer": "hi", '),
    )
    refusal, cut, filtered, raw = [(await post(llm, body())).json()["choices"][0] for _ in range(4)]
    assert refusal["finish_reason"] == "stop"
    assert refusal["message"]["content"] is None
    assert refusal["message"]["refusal"] == "I can't help with that."

    assert cut["finish_reason"] == "length"
    truncated = cut["message"]["content"]
    assert 0 < len(truncated) < len(json.dumps(long_answer))
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated)

    assert filtered["finish_reason"] == "content_filter"
    assert filtered["message"]["content"] is None

    assert raw["message"]["content"] == '{"answer": "hi", '


async def test_http_errors_have_openais_error_shape(llm: Served) -> None:
    llm.sandbox.push(HttpError(429, retry_after=7), HttpError(500), HttpError(404, "no model"))
    limited = await post(llm, body())
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    failed = await post(llm, body())
    assert failed.status_code == 500
    assert failed.json()["error"]["type"] == "server_error"
    missing = await post(llm, body())
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "no model"
    # The script is used up: the default responder answers again.
    assert (await post(llm, body())).status_code == 200


async def test_a_delay_outlasts_a_short_client_timeout(llm: Served) -> None:
    llm.sandbox.push(Delay(0.6, then=HttpError(500)))
    with pytest.raises(httpx.ReadTimeout):
        await post(llm, body(), wait_s=0.1)
    assert len(llm.sandbox.requests) == 1


async def test_the_default_responder_fills_the_schema_and_can_be_replaced(llm: Served) -> None:
    placeholder = (await post(llm, body())).json()["choices"][0]["message"]["content"]
    assert json.loads(placeholder) == {"answer": "", "kind": None, "lines": [], "score": 0.5}

    llm.sandbox.default_responder = lambda request: Answer(
        {"answer": str(len(request.messages)), "kind": "B", "lines": [], "score": 1}
    )
    answered = (await post(llm, body())).json()["choices"][0]["message"]["content"]
    assert json.loads(answered)["answer"] == "2"


def _asked(text: str) -> ChatRequest:
    return ChatRequest(
        body={"model": "m", "messages": [{"role": "user", "content": text}]}, token=KEY
    )


def test_faults_fail_a_seeded_share_of_calls_whatever_their_order() -> None:
    """The same seed fails the same prompts the same way, in whatever order they arrive; a
    prompt asked again draws again."""
    prompts = [f"message {i}" for i in range(300)]

    def outcomes(faults: Faults, order: list[str]) -> dict[str, tuple[Any, Any]]:
        return {
            text: (faults.outcome(_asked(text)), faults.outcome(_asked(text))) for text in order
        }

    seeded = Faults(0.3, seed=5)
    forward = outcomes(seeded, prompts)
    assert forward == outcomes(Faults(0.3, seed=5), prompts[::-1])
    assert forward != outcomes(Faults(0.3, seed=6), prompts)
    assert set(seeded.injected) == set(FAULT_KINDS)
    assert 0.25 < sum(seeded.injected.values()) / 600 < 0.35
    assert any(first != second for first, second in forward.values())
    with pytest.raises(ValueError, match="fault kinds"):
        Faults(0.1, kinds=("503",))


async def test_faults_answer_on_the_wire_after_the_script() -> None:
    sandbox = LlmSandbox(api_key=KEY, faults=Faults(1.0, kinds=("429",)))
    sandbox.push(Answer({"answer": "hi", "kind": None, "lines": [], "score": 1}))
    async with serve_app(sandbox.app()) as url, httpx.AsyncClient(base_url=url) as client:
        served = Served(sandbox, client)
        assert (await post(served, body())).status_code == 200  # the script comes first
        limited = await post(served, body())
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
        sandbox.faults = Faults(1.0, kinds=("malformed",))
        content = (await post(served, body())).json()["choices"][0]["message"]["content"]
        with pytest.raises(json.JSONDecodeError):
            json.loads(content)
