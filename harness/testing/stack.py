"""The test stack: workers built as worker.py builds them, scripted inputs, and reading results.

Tests, the chaos suite and the benches import it; tests/conftest.py holds only fixtures.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Interceptor, Worker

from activities.contracts.loader import load_contracts
from activities.documents.store import DocumentStore
from activities.llm.assembly import build_gateway
from activities.llm.chat_model import BlockingChatModel, InThread
from activities.llm.gateway import LLMGateway
from activities.llm.prompts import PromptBook
from keel.infra.settings import WorkerSettings
from keel.payloads.agents import AgentInput
from keel.payloads.contracts import ContractSnapshot
from keel.payloads.coordinator import CoordinatorInput
from keel.payloads.llm import ModelChoice
from keel.payloads.research import ResearchInput, ResearchReport
from keel.payloads.routing import AskInput
from worker import build_workers
from workflows.research import ResearchWorkflow

ROOT = Path(__file__).resolve().parents[2]
DEMO_CORPUS = ROOT / "corpus" / "demo"
# Namespace -> folder, as `make demo` ingests them (contracts/routes.toml names them).
CORPORA = {
    "demo": DEMO_CORPUS,
    "demo-v1": ROOT / "corpus" / "demo-v1",
    "demo-ko": ROOT / "corpus" / "demo-ko",
    "postmortems": ROOT / "corpus" / "postmortems",
}
SCRIPTED_DIR = ROOT / "tests" / "fixtures" / "scripted"
QUESTION = "How do idempotency keys make retries safe?"
# A question only one passage is about: its own search finds too little evidence,
# so the flow refines its queries (the refine loop's case).
NARROW = "What is jitter?"
TEAM_REQUEST = "Write a report on how idempotency keys and circuit breakers keep agents safe"


# A remote primary that tests make fail, and the scripted model runs fall back to.
PRIMARY = ModelChoice.model_validate({"provider": "openai", "model": "gpt-5-mini"})
FALLBACK = ModelChoice.model_validate({"provider": "scripted", "model": "refine_and_revise"})

TeamInput = TypeVar("TeamInput", AgentInput, CoordinatorInput)


def in_thread(model: BlockingChatModel) -> InThread:
    """A blocking model as the worker runs it: on a thread of its own."""
    return InThread(model, ThreadPoolExecutor(1, thread_name_prefix="llm-test"))


def worker_settings(**overrides: object) -> WorkerSettings:
    """Settings on queues of their own, so tests never pick up each other's tasks."""
    return WorkerSettings.on_own_queues(
        "research", "llm", **({"scripted_dir": SCRIPTED_DIR} | overrides)
    )


@asynccontextmanager
async def running_workers(
    client: Client,
    store: DocumentStore,
    settings: WorkerSettings | None = None,
    *,
    max_cached_workflows: int = 1000,
    gateway: LLMGateway | None = None,
    contracts: ContractSnapshot | None = None,
    extra_workflows: Sequence[type] = (),
    extra_interceptors: Sequence[Interceptor] = (),
    heartbeats: bool = True,
    extra: Sequence[Worker] = (),
) -> AsyncIterator[WorkerSettings]:
    """Workers built the way worker.py builds them, on queues of their own.

    `extra` are workers of the caller's own (a bench's), run beside the project's.
    """
    settings = settings or worker_settings()
    gateway = gateway or build_gateway(
        settings,
        PromptBook.load(),
        passages=store,
        decoding=load_contracts().quality.decoding.get("local"),
    )
    workers = build_workers(
        client,
        settings,
        gateway,
        store,
        max_cached_workflows=max_cached_workflows,
        contracts=contracts,
        extra_workflows=extra_workflows,
        extra_interceptors=extra_interceptors,
        heartbeats=heartbeats,
    )
    async with AsyncExitStack() as stack:
        for w in [*workers, *extra]:
            await stack.enter_async_context(w)
        yield settings


def scripted_team_input(
    model: type[TeamInput], script: str, llm_task_queue: str, **fields: object
) -> TeamInput:
    """An agent's or a team's input, every agent on one scripted model."""
    values: dict[str, object] = {
        "models": [ModelChoice(provider="scripted", model=script)],
        "llm_task_queue": llm_task_queue,
    }
    values.update(fields)
    return model.model_validate(values)


def scripted_ask_input(request: str, script: str, llm_task_queue: str) -> AskInput:
    """The router's input, deciding and answering on one scripted model."""
    return AskInput(
        request=request,
        model=ModelChoice(provider="scripted", model=script),
        llm_task_queue=llm_task_queue,
    )


def research_input(
    model: ModelChoice, settings: WorkerSettings, question: str, **overrides: object
) -> ResearchInput:
    values: dict[str, object] = {
        "question": question,
        "model": model,
        "llm_task_queue": settings.llm_task_queue,
    }
    values.update(overrides)
    return ResearchInput.model_validate(values)


def scripted_input(
    script: str, settings: WorkerSettings, question: str, **overrides: object
) -> ResearchInput:
    chosen = overrides.pop("model", None)  # a test may put another model first
    model = (
        chosen
        if isinstance(chosen, ModelChoice)
        else ModelChoice(provider="scripted", model=script)
    )
    return research_input(model, settings, question, **overrides)


async def plaintext(client: Client, payload: Payload) -> Payload:
    """A payload read from a history, decrypted with the client's codec."""
    codec = client.data_converter.payload_codec
    assert codec is not None, "the suite runs with the payload codec"
    return (await codec.decode([payload]))[0]


def new_id(prefix: str = "research-test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def execute_scripted(
    client: Client, settings: WorkerSettings, script: str, question: str, **overrides: object
) -> tuple[str, ResearchReport]:
    """Run a research flow on a scripted model to its report; returns its workflow id too."""
    workflow_id = new_id()
    report = await client.execute_workflow(
        ResearchWorkflow.run,
        scripted_input(script, settings, question, **overrides),
        id=workflow_id,
        task_queue=settings.task_queue,
    )
    return workflow_id, report


async def research_on_workers(
    client: Client,
    store: DocumentStore,
    script: str = "refine_and_revise",
    question: str = QUESTION,
    *,
    gateway: LLMGateway | None = None,
    max_cached_workflows: int = 1000,
    **overrides: object,
) -> tuple[str, ResearchReport]:
    """Workers of its own for one scripted research flow, run to its report."""
    async with running_workers(
        client, store, gateway=gateway, max_cached_workflows=max_cached_workflows
    ) as settings:
        return await execute_scripted(client, settings, script, question, **overrides)


async def failed_research(
    client: Client, store: DocumentStore, script: str, question: str, **overrides: object
) -> tuple[str, WorkflowFailureError]:
    """Workers of its own for one scripted research flow that must fail; its id and failure."""
    workflow_id = new_id()
    async with running_workers(client, store) as settings:
        with pytest.raises(WorkflowFailureError) as failure:
            await client.execute_workflow(
                ResearchWorkflow.run,
                scripted_input(script, settings, question, **overrides),
                id=workflow_id,
                task_queue=settings.task_queue,
            )
    return workflow_id, failure.value


def typed_cause(failure: WorkflowFailureError, error_type: str) -> ApplicationError:
    """The typed error that failed a run (under its ActivityError, if an activity raised it)."""
    cause: BaseException | None = failure.cause
    while isinstance(cause, ActivityError):
        cause = cause.cause
    assert isinstance(cause, ApplicationError), repr(cause)
    assert cause.type == error_type, (cause.type, cause.message)
    return cause


async def current_details(client: Client, workflow_id: str) -> str:
    """What the Web UI shows as the run's current details (the SDK's metadata query)."""
    metadata = await client.get_workflow_handle(workflow_id).query(
        "__temporal_workflow_metadata", result_type=WorkflowMetadata
    )
    details: str = metadata.current_details
    return details


async def waiting_in_progress(
    client: Client, workflow_id: str, entry: str, call: int, *, tries: int = 300
) -> dict[str, object]:
    """The run's progress `entry` (a call waiting for a person) once it names call `call`."""
    handle = client.get_workflow_handle(workflow_id)
    progress: object = {}
    for _ in range(tries):
        try:
            progress = await handle.query("progress")
        except Exception:  # the run is not started yet, or no worker answers yet
            progress = {}
        waiting = progress.get(entry) if isinstance(progress, dict) else None
        if waiting and waiting["call"] == call:
            return dict(waiting)
        await asyncio.sleep(0.1)
    raise AssertionError(f"call {call} never waited in {entry}: {progress}")


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, *, seconds: float = 60, every: float = 0.2
) -> None:
    """Until `check` holds, checked every `every` s; fails naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(every)
