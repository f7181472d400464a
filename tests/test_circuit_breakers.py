"""A dead model trips its shared breaker; later runs fail over without calling it.

The primary endpoint is a network double (`httpx2.MockTransport`) that answers 503
while "down" and, once "up", answers each schema like a model would.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request

import httpx2
from structlog.testing import capture_logs
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from activities.documents.store import DocumentStore
from activities.llm.gateway import LLMGateway
from activities.llm.openai_model import OpenAICompatibleModel
from activities.llm.prompts import PromptBook
from activities.llm.scripted_model import ScriptedModel
from harness.testing.model_double import RESEARCH_ANSWERS, chat_completion
from harness.testing.ports import free_port
from harness.testing.processes import run_script
from harness.testing.stack import (
    FALLBACK,
    PRIMARY,
    SCRIPTED_DIR,
    execute_scripted,
    in_thread,
    running_workers,
    worker_settings,
)
from keel.infra.codec import data_converter
from keel.infra.settings import WorkerSettings
from keel.payloads.research import ResearchReport
from workflows.circuit_breaker import CircuitBreakerWorkflow, breaker_id

ANSWERS = {**RESEARCH_ANSWERS, "RefinedQueries": {"queries": ["idempotency key"]}}


class Primary:
    """Counts requests; down answers 503, up answers like a model."""

    def __init__(self) -> None:
        self.up = False
        self.requests = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests += 1
        if not self.up:
            return httpx2.Response(503, json={"error": {"message": "overloaded"}})
        schema = json.loads(request.content)["response_format"]["json_schema"]["schema"]
        answer = ANSWERS[schema["title"]]
        return httpx2.Response(200, json=chat_completion("gpt-5-mini", answer, 20, 10, 0))


async def research(client: Client, settings: WorkerSettings) -> tuple[str, ResearchReport]:
    return await execute_scripted(
        client,
        settings,
        "refine_and_revise",
        "How do idempotency keys make retries safe?",
        model=PRIMARY,
        fallback_models=[FALLBACK],
    )


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


async def metered_client(server_address: str, port: int) -> Client:
    """A client whose runtime serves Prometheus metrics, as worker.py's does."""
    runtime = Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}"))
    )
    return await Client.connect(server_address, runtime=runtime, data_converter=data_converter())


async def test_breaker_opens_fails_over_without_calls_then_half_opens_and_closes(
    server_address: str, store: DocumentStore
) -> None:
    metrics_port = free_port()
    client = await metered_client(server_address, metrics_port)
    with capture_logs() as logs:
        await breaker_scenario(client, store, server_address)
    transitions = [
        (e["from_state"], e["to_state"]) for e in logs if e["event"] == "breaker.transition"
    ]
    assert transitions == [("closed", "open"), ("half_open", "closed")]
    assert sum(1 for e in logs if e["event"] == "breaker.refused") >= 2
    metrics = await asyncio.to_thread(fetch, f"http://127.0.0.1:{metrics_port}/metrics")
    lines = [line for line in metrics.splitlines() if line.startswith("keel_breaker")]

    def value(name: str, label: str) -> float:
        found = [line for line in lines if line.startswith(name) and label in line]
        assert len(found) == 1, lines
        return float(found[0].rsplit(" ", 1)[1])

    assert value("keel_breaker_transitions", 'to="open"') == 1
    assert value("keel_breaker_transitions", 'to="closed"') == 1
    assert value("keel_breaker_refusals", 'breaker="openai/gpt-5-mini"') >= 2


async def breaker_scenario(client: Client, store: DocumentStore, server_address: str) -> None:
    primary = Primary()
    model = OpenAICompatibleModel(
        "http://primary.invalid/v1",
        "sk-test",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(primary)),
    )
    gateway = LLMGateway(
        PromptBook.load(), {"openai": model, "scripted": in_thread(ScriptedModel(SCRIPTED_DIR))}
    )
    settings = worker_settings(
        breaker_window=4,
        breaker_min_calls=2,
        breaker_failure_rate=0.5,
        breaker_cooldown_seconds=3,
    )
    scope = settings.task_queue  # the default scope: breakers live where they run
    breaker = client.get_workflow_handle_for(
        CircuitBreakerWorkflow.run, breaker_id(scope, PRIMARY.label)
    )
    async with running_workers(client, store, settings, gateway=gateway):
        # 1. Two 503s open the breaker; the third attempt is refused, and the run
        #    fails over to the next model.
        first_id, first = await research(client, settings)
        assert primary.requests == 2
        assert [f.reason.split(":")[0] for f in first.fallbacks] == ["CircuitOpen"]
        assert first.provider == "scripted"
        assert (await breaker.query(CircuitBreakerWorkflow.state)).state == "open"

        # 2. A later run fails over at once: not one request reaches the primary.
        _, second = await research(client, settings)
        assert primary.requests == 2
        assert second.fallbacks[0].reason.startswith("CircuitOpen")
        listed = await run_script(
            "client.py", "--address", server_address, "breakers", "--scope", scope, "--json"
        )
        assert listed.code == 0, listed.stderr
        states = {b["name"]: b["state"] for b in json.loads(listed.stdout)}
        assert states[PRIMARY.label] == "open"
        status = await run_script("client.py", "--address", server_address, "status", first_id)
        assert status.code == 0, status.stderr
        progress = json.loads(status.stdout)["progress"]
        assert progress["usage"]["calls"] == first.usage.calls
        assert "cost_usd" in progress["usage"]
        assert progress["fallbacks"][0]["reason"].startswith("CircuitOpen")
        assert progress["fallbacks"][0]["to_model"] == "scripted/refine_and_revise"

        # 3. The primary recovers; after the cool-down one probe goes through,
        #    succeeds, and the breaker closes: the run stays on the primary.
        primary.up = True
        await asyncio.sleep(3.5)
        _, third = await research(client, settings)
        assert third.provider == "openai"
        assert third.fallbacks == []
        assert primary.requests > 2
        state = await breaker.query(CircuitBreakerWorkflow.state)
    assert state.state == "closed"
    assert [t.to_state for t in state.transitions] == ["open", "half_open", "closed"]
    assert state.rejected >= 2
