"""The fault suite's own parts: seeded plans and the scripted endpoint's faults over real HTTP.

The endpoint is exercised through the project's `openai` provider, so each fault
is seen the way a worker sees it: as the typed error the retry policy acts on.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
from temporalio.exceptions import ApplicationError

from activities.llm.chat_model import ChatCall
from activities.llm.openai_model import OpenAICompatibleModel
from harness.chaos import harness
from harness.chaos.model_endpoint import ModelFault, ScriptedEndpoint
from harness.chaos.plan import plan_seed
from harness.chaos.processes import free_port
from harness.chaos.script import Script
from keel.infra.codec import data_converter
from keel.infra.keys import KeyRingError, append_new_key
from keel.payloads.errors import PROVIDER_RATE_LIMITED, PROVIDER_UNAVAILABLE


def test_a_seed_always_gives_the_same_schedule() -> None:
    assert plan_seed(7) == plan_seed(7)
    assert [plan_seed(s).lines() for s in range(1, 40)] == [
        plan_seed(s).lines() for s in range(1, 40)
    ]
    assert len({tuple(plan_seed(s).lines()[1:]) for s in range(1, 40)}) > 30


def test_schedules_cover_every_fault_and_workload() -> None:
    plans = [plan_seed(s) for s in range(1, 201)]
    kinds = {f.kind for p in plans for f in p.faults}
    model = {f.model_fault for p in plans for f in p.faults if f.kind == "model"}
    triggers = {f.trigger.kind for p in plans for f in p.faults}
    workloads = {(w.kind, w.via, w.decision) for p in plans for w in p.workloads}
    assert kinds == {"kill_worker", "restart_server", "cancel", "model", "slow_tickets"}
    assert model == {"rate_limit", "error", "hang", "close", "slow"}
    assert triggers == {"start", "delay", "model_call", "ticket_commit"}
    assert {w[0] for w in workloads} == {"saga", "research", "team"}
    assert ("saga", "cli", "reject") in workloads


def test_the_script_answers_by_prompt_and_request_alone() -> None:
    script = Script()
    system = "You are an incident triager. You turn an incident report into one ticket with a short title, a severity (low, medium, high or critical) and 1 to 4 concrete subtasks. Reply only with JSON."  # noqa: E501
    first = script.answer(system, "Incident report:\nCheckout is down", None)
    again = script.answer(system, "Incident report:\nCheckout is down", None)
    reask = script.answer(system, "... Your previous reply was rejected: title too short", None)
    assert first == again
    assert (first.node, first.text) == ("triage", '{"title": "Checkout"}')
    assert '"severity": "high"' in reask.text
    cut = script.answer(system, "... Your previous reply was rejected: x", 5)
    assert cut.truncated
    assert cut.completion_tokens == 5


@pytest.fixture
async def endpoint() -> AsyncIterator[ScriptedEndpoint]:
    server = ScriptedEndpoint()
    await server.start(free_port())
    yield server
    await server.stop()


def _call(endpoint: ScriptedEndpoint, timeout: float = 5.0) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(endpoint.base_url, None, timeout_seconds=timeout)


PLAN_CALL = ChatCall(
    model="smollm2",
    system="You are a research planner. You turn a question into short keyword search queries for a document index. Reply only with JSON.",  # noqa: E501
    user="Question: How do idempotency keys make retries safe?",
    schema={"type": "object"},
    max_tokens=160,
    temperature=0.2,
    node="plan",
    call_index=0,
)


async def _complete(model: OpenAICompatibleModel) -> str:
    return (await model.complete(PLAN_CALL)).text


async def test_endpoint_answers_and_faults_as_typed_provider_errors(
    endpoint: ScriptedEndpoint,
) -> None:
    model = _call(endpoint)
    assert await _complete(model) == '{"queries": ["idempotency key retries"]}'

    endpoint.arm(ModelFault("rate_limit"))
    with pytest.raises(ApplicationError) as limited:
        await _complete(model)
    assert limited.value.type == PROVIDER_RATE_LIMITED
    assert limited.value.next_retry_delay is not None
    assert limited.value.next_retry_delay.total_seconds() == 1

    endpoint.arm(ModelFault("error"))
    with pytest.raises(ApplicationError) as failed:
        await _complete(model)
    assert (failed.value.type, failed.value.non_retryable) == (PROVIDER_UNAVAILABLE, False)

    endpoint.arm(ModelFault("close"))
    with pytest.raises(ApplicationError) as cut:
        await _complete(model)
    assert cut.value.type == PROVIDER_UNAVAILABLE

    started = time.monotonic()
    endpoint.arm(ModelFault("slow", 1.0))
    assert await _complete(model)
    assert time.monotonic() - started >= 1.0
    assert [c.outcome for c in endpoint.calls] == ["answered", "429", "500", "closed", "answered"]


async def test_a_hung_call_times_out_and_the_endpoint_sees_it_dropped(
    endpoint: ScriptedEndpoint,
) -> None:
    endpoint.arm(ModelFault("hang"))
    with pytest.raises(ApplicationError) as hung:
        await _complete(_call(endpoint, timeout=1.0))
    assert hung.value.type == PROVIDER_UNAVAILABLE
    call = endpoint.calls[-1]
    assert await endpoint.wait_abandoned(call, 5) is not None
    assert call.outcome == "hung"


async def test_the_endpoint_streams_server_sent_events(endpoint: ScriptedEndpoint) -> None:
    client = openai.AsyncOpenAI(base_url=endpoint.base_url, api_key="no-key", max_retries=0)
    stream = await client.chat.completions.create(
        model="smollm2",
        messages=[
            {"role": "system", "content": PLAN_CALL.system},
            {"role": "user", "content": PLAN_CALL.user},
        ],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    await client.close()
    assert text == '{"queries": ["idempotency key retries"]}'
    assert usage is not None
    assert usage.completion_tokens == len(text.split())
    assert endpoint.calls[-1].stream


def test_the_suite_encrypts_with_a_key_of_its_own_when_the_user_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KEEL_CODEC", "KEEL_CODEC_KEYS", "KEEL_CODEC_KEY_FILE"):
        monkeypatch.setenv(name, "")  # recorded, so the suite's own setting is undone
        monkeypatch.delenv(name)
    monkeypatch.setattr(harness, "DEFAULT_KEY_FILE", tmp_path / "absent.keys")
    with pytest.raises(KeyRingError):
        data_converter()  # a fresh clone: no key anywhere

    harness._own_payload_key(tmp_path / "run" / "codec.keys")

    assert os.environ["KEEL_CODEC_KEY_FILE"] == str(tmp_path / "run" / "codec.keys")
    assert data_converter().payload_codec is not None


def test_the_suite_keeps_the_users_own_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "mine.keys"
    append_new_key(mine)
    monkeypatch.delenv("KEEL_CODEC_KEYS", raising=False)
    monkeypatch.setenv("KEEL_CODEC_KEY_FILE", str(mine))

    harness._own_payload_key(tmp_path / "run" / "codec.keys")

    assert os.environ["KEEL_CODEC_KEY_FILE"] == str(mine)
    assert not (tmp_path / "run" / "codec.keys").exists()
