"""The remote providers: a real OpenAI-compatible server on loopback, and typed failures.

Where a failure cannot be produced by a real server here (401, 429, an over-long
prompt, Anthropic's API), `httpx2.MockTransport` stands in for the network: the
SDKs and our translation of their errors run for real.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx2
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.documents.store import DocumentStore
from activities.llm.anthropic_model import AnthropicModel
from activities.llm.chat_model import ChatCall
from activities.llm.gateway import LLMGateway
from activities.llm.openai_model import OpenAICompatibleModel
from activities.llm.prompts import PromptBook
from harness.testing.llama_server import MODEL_ALIAS, LlamaServer
from harness.testing.stack import new_id, running_workers
from keel.payloads.llm import LLMRequest, ModelChoice
from keel.payloads.research import ResearchInput, ResearchPlan
from workflows.research import ResearchWorkflow

SECRET = "sk-test-0123456789abcdef"


@pytest.fixture(scope="module")
def llama_server() -> Iterator[LlamaServer]:
    server = LlamaServer()
    server.start()
    yield server
    server.stop()


def plan_request(provider: str = "openai") -> LLMRequest:
    return LLMRequest.model_validate(
        {
            "node": "plan",
            "choice": ModelChoice.model_validate({"provider": provider, "model": MODEL_ALIAS}),
            "prompt_id": "plan",
            "variables": {"question": "How do circuit breakers fail fast?", "feedback": ""},
            "output_schema": "ResearchPlan",
            "max_tokens": 160,
        }
    )


def call() -> ChatCall:
    schema = ResearchPlan.model_json_schema()
    return ChatCall("some-model", "system", "user", schema, 100, 0.0, "plan", 0)


def mocked(handler: Callable[[httpx2.Request], httpx2.Response]) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.MockTransport(handler))


@pytest.mark.model
async def test_openai_provider_gets_schema_valid_output_from_a_real_server(
    llama_server: LlamaServer,
) -> None:
    model = OpenAICompatibleModel(llama_server.base_url, None, "json_object")
    result = await LLMGateway(PromptBook.load(), {"openai": model}).complete(plan_request())
    assert ResearchPlan.model_validate(result.output).queries
    assert result.provider == "openai"
    assert result.usage.tokens_in > 0
    assert result.usage.tokens_out > 0


@pytest.mark.model
async def test_research_flow_runs_on_the_openai_provider_and_recovers_a_flaky_one(
    client: Client, store: DocumentStore, llama_server: LlamaServer
) -> None:
    """The endpoint fails twice with 503; Temporal's backoff carries the run through."""
    failures = {"left": 2}
    upstream = httpx2.Client(base_url=llama_server.base_url.removesuffix("/v1"), timeout=120)

    def flaky(request: httpx2.Request) -> httpx2.Response:
        if failures["left"]:
            failures["left"] -= 1
            return httpx2.Response(503, json={"error": {"message": "overloaded"}})
        forwarded = upstream.request(
            request.method,
            request.url.path,
            content=request.content,
            headers={"content-type": "application/json"},
        )
        return httpx2.Response(forwarded.status_code, content=forwarded.content)

    model = OpenAICompatibleModel(
        "http://flaky.invalid/v1", None, "json_object", http_client=mocked(flaky)
    )
    gateway = LLMGateway(PromptBook.load(), {"openai": model})
    async with running_workers(client, store, gateway=gateway) as settings:
        workflow_id = new_id("openai")
        report = await client.execute_workflow(
            ResearchWorkflow.run,
            ResearchInput(
                question="How do idempotency keys make retries safe?",
                model=ModelChoice.model_validate({"provider": "openai", "model": MODEL_ALIAS}),
                llm_task_queue=settings.llm_task_queue,
                max_revisions=0,
            ),
            id=workflow_id,
            task_queue=settings.task_queue,
        )
    assert report.provider == "openai"
    assert report.citations
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    llm_calls = {
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "complete_llm"
    }
    first_llm_attempt = next(
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id in llm_calls
    )
    # Two 503s, then the answer (a loaded machine may time one more attempt out).
    assert failures["left"] == 0
    assert first_llm_attempt >= 3


async def test_an_unreachable_endpoint_is_a_retryable_error() -> None:
    model = OpenAICompatibleModel("http://127.0.0.1:1/v1", SECRET, timeout_seconds=2)
    with pytest.raises(ApplicationError) as raised:
        await model.complete(call())
    assert raised.value.type == "ProviderUnavailable"
    assert not raised.value.non_retryable


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "retryable", "delay"),
    [
        (401, {"error": {"message": f"bad key {SECRET}"}}, {}, "ProviderAuth", False, None),
        (429, {"error": {"message": "slow down"}}, {"retry-after": "7"}, "ProviderRateLimited",
         True, timedelta(seconds=7)),
        (503, {"error": {"message": "overloaded"}}, {}, "ProviderUnavailable", True, None),
        (400, {"error": {"message": "This model's maximum context length is 8192 tokens",
                         "code": "context_length_exceeded"}}, {}, "ContextTooLong", False, None),
        (400, {"error": {"message": "unknown parameter"}}, {}, "ProviderBadRequest", False, None),
    ],
)  # fmt: skip
async def test_openai_errors_are_typed_and_never_carry_the_key(
    status: int,
    body: dict[str, object],
    headers: dict[str, str],
    kind: str,
    retryable: bool,
    delay: timedelta | None,
) -> None:
    def answer(_: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, json=body, headers=headers)

    model = OpenAICompatibleModel("http://api.invalid/v1", SECRET, http_client=mocked(answer))
    with pytest.raises(ApplicationError) as raised:
        await model.complete(call())
    assert raised.value.type == kind
    assert raised.value.non_retryable is not retryable
    assert raised.value.next_retry_delay == delay
    assert SECRET not in str(raised.value)


async def test_openai_requests_carry_the_schema_and_no_client_retries() -> None:
    seen: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(503, json={"error": {"message": "down"}})

    model = OpenAICompatibleModel("http://api.invalid/v1", SECRET, http_client=mocked(answer))
    with pytest.raises(ApplicationError):
        await model.complete(call())
    assert len(seen) == 1  # the SDK did not retry on its own
    body = json.loads(seen[0].content)
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["title"] == "ResearchPlan"


async def test_anthropic_structured_output_comes_from_a_forced_tool() -> None:
    seen: list[dict[str, object]] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(json.loads(request.content))
        return httpx2.Response(
            200,
            json={
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-test",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "answer",
                     "input": {"queries": ["circuit breaker half-open"]}}
                ],
                "stop_reason": "tool_use",
                "usage": {"input_tokens": 31, "output_tokens": 12},
            },
        )  # fmt: skip

    model = AnthropicModel(SECRET, "http://anthropic.invalid", http_client=mocked(answer))
    completion = await model.complete(call())
    assert json.loads(completion.text) == {"queries": ["circuit breaker half-open"]}
    assert (completion.tokens_in, completion.tokens_out) == (31, 12)
    assert seen[0]["tool_choice"] == {"type": "tool", "name": "answer"}
    tools = seen[0]["tools"]
    assert isinstance(tools, list)
    assert tools[0]["input_schema"]["title"] == "ResearchPlan"


async def test_anthropic_errors_are_typed_too() -> None:
    def answer(_: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            401, json={"type": "error", "error": {"type": "authentication_error", "message": "no"}}
        )

    model = AnthropicModel(SECRET, "http://anthropic.invalid", http_client=mocked(answer))
    with pytest.raises(ApplicationError) as raised:
        await model.complete(call())
    assert raised.value.type == "ProviderAuth"
    assert raised.value.non_retryable
