"""Run the evaluation set through the real flows: on the running stack, or self-contained.

On the stack (`--stack`, what `make eval` does), each question is a workflow started
on the server and task queues the CLI uses (TEMPORAL_ADDRESS, KEEL_TASK_QUEUE, ...),
run by whatever workers serve them (`python worker.py`, `devserver.py --with-worker`),
after the four corpora are ingested through the ingest flow (unchanged files are
skipped). Self-contained, the harness starts a dev server and workers of its own,
built the way worker.py builds them. Either way the questions run one at a time:
the local model answers one call at a time anyway, so the wall times are per run.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.contracts.loader import load_all
from activities.contracts.loader import load_contracts as read_contracts
from activities.documents.store import DocumentStore
from activities.llm.assembly import build_gateway
from harness.eval.dataset import EvalItem, EvalSet
from harness.eval.score import ItemScore, failed, score_research, score_team
from harness.testing.stack import SCRIPTED_DIR
from keel.cli.priority import WorkClass, run_priority
from keel.cli.render import root_cause
from keel.infra.binaries import DEV_SERVER_ARGS, temporal_cli
from keel.infra.codec import encrypting_converter
from keel.infra.keys import KeyRing
from keel.infra.settings import KeelSettings, TemporalSettings, WorkerSettings
from keel.infra.temporal import connect
from keel.payloads.clearance import SecurityLevel
from keel.payloads.contracts import ContractSnapshot, Rubric
from keel.payloads.coordinator import CoordinatorInput
from keel.payloads.documents import IngestRequest, IngestResult
from keel.payloads.llm import ModelChoice
from keel.payloads.research import ResearchInput
from keel.routing.data import route_data
from worker import build_workers
from workflows.coordinator import CoordinatorWorkflow
from workflows.ingest import IngestWorkflow
from workflows.research import ResearchWorkflow
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "corpus"
CORPORA = ("demo", "demo-v1", "demo-ko", "postmortems")
OnScore = Callable[[ItemScore], None]


def _rubrics(contracts: ContractSnapshot) -> dict[str, Rubric]:
    return {
        flow: contracts.rubrics[contracts.quality.flow(flow).rubric]
        for flow in ("research", "report")
    }


def team_version(
    item: EvalItem, contracts: ContractSnapshot, clearance: SecurityLevel
) -> str | None:
    """The corpus version a team must be asked for to read the question's corpus.

    A team routes by language and clearance to the newest edition of each corpus; a
    question about the first edition is asked as a user would: `--corpus-version 1`.
    """
    namespaces = contracts.routes.namespaces
    if item.namespace in route_data(item.question, namespaces, clearance).namespaces:
        return None
    return namespaces[item.namespace].version


def _clearances(contracts: ContractSnapshot) -> dict[str, SecurityLevel]:
    """Each namespace's own security level: the eval reads every corpus it asks about."""
    return {name: ns.security for name, ns in contracts.routes.namespaces.items()}


async def run_on_stack(
    evalset: EvalSet,
    items: Sequence[EvalItem],
    choices: Sequence[ModelChoice],
    flows: Sequence[str],
    on_score: OnScore | None = None,
) -> list[ItemScore]:
    """Every item through every flow with every model, on the running server and workers."""
    temporal = TemporalSettings()
    keel = KeelSettings()
    client = await connect(temporal)
    contracts = read_contracts()
    for corpus in CORPORA:
        result: IngestResult = await client.execute_workflow(
            IngestWorkflow.run,
            IngestRequest(path=str(CORPUS / corpus), namespace=corpus),
            id=f"eval-ingest-{corpus}-{uuid.uuid4().hex[:8]}",
            task_queue=keel.task_queue,
        )
        if result.skipped:
            raise RuntimeError(f"ingest of {corpus} skipped {result.skipped}")
    queues = _Queues(keel.task_queue, keel.llm_task_queue)
    return await _run_all(client, queues, contracts, evalset, items, choices, flows, on_score)


async def run_eval(
    evalset: EvalSet,
    items: Sequence[EvalItem],
    choices: Sequence[ModelChoice],
    flows: Sequence[str],
    scripted_dir: Path = SCRIPTED_DIR,
    on_score: OnScore | None = None,
) -> list[ItemScore]:
    """Every item through every flow with every model on a dev server of its own."""
    loaded = load_all()
    contracts = loaded.snapshot
    suffix = uuid.uuid4().hex[:8]
    settings = WorkerSettings.model_validate(
        {
            "task_queue": f"eval-{suffix}",
            "llm_task_queue": f"eval-llm-{suffix}",
            "scripted_dir": scripted_dir,
            "metrics_port": 0,
            "log_level": "WARNING",
            "graceful_shutdown_seconds": 1,
        }
    )
    scores: list[ItemScore] = []
    with tempfile.TemporaryDirectory(prefix="keel-eval-") as workdir:
        store = DocumentStore(Path(workdir) / "documents.db")
        for corpus in CORPORA:
            store.ingest_folder(CORPUS / corpus, corpus)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(temporal_cli()),
            search_attributes=list(ALL_SEARCH_ATTRIBUTES),
            data_converter=encrypting_converter(KeyRing((("eval", os.urandom(32)),))),
            dev_server_log_level="error",
            dev_server_extra_args=list(DEV_SERVER_ARGS),
        )
        try:
            client = env.client
            gateway = build_gateway(
                settings,
                loaded.prompts,
                loaded.prices,
                passages=store,
                decoding=contracts.quality.decoding.get("local"),
            )
            async with AsyncExitStack() as stack:
                for worker in build_workers(client, settings, gateway, store, contracts=contracts):
                    await stack.enter_async_context(worker)
                queues = _Queues(settings.task_queue, settings.llm_task_queue)
                scores = await _run_all(
                    client, queues, contracts, evalset, items, choices, flows, on_score
                )
        finally:
            await env.shutdown()
    return scores


class _Queues:
    """Where the evaluation's runs go, and at which priority: batch work, behind any run a
    person waits for on the same workers (keel/cli/priority.py)."""

    def __init__(self, task_queue: str, llm_task_queue: str) -> None:
        self.task_queue = task_queue
        self.llm_task_queue = llm_task_queue
        self.priority = run_priority(WorkClass.BATCH, KeelSettings().tenant)


async def _run_all(
    client: Client,
    queues: _Queues,
    contracts: ContractSnapshot,
    evalset: EvalSet,
    items: Sequence[EvalItem],
    choices: Sequence[ModelChoice],
    flows: Sequence[str],
    on_score: OnScore | None,
) -> list[ItemScore]:
    rubrics = _rubrics(contracts)
    clearances = _clearances(contracts)
    scores: list[ItemScore] = []
    for choice in choices:
        for flow in flows:
            for item in items:
                started = time.monotonic()
                try:
                    score = await _run_one(
                        client,
                        queues,
                        item,
                        choice,
                        flow,
                        rubrics[flow],
                        clearances.get(item.namespace, "public"),
                        contracts,
                    )
                except WorkflowFailureError as failure:
                    score = failed(
                        item, choice.provider, flow, root_cause(failure), time.monotonic() - started
                    )
                scores.append(score)
                if on_score is not None:
                    on_score(score)
    return scores


async def _run_one(
    client: Client,
    queues: _Queues,
    item: EvalItem,
    choice: ModelChoice,
    flow: str,
    rubric: Rubric,
    clearance: SecurityLevel,
    contracts: ContractSnapshot,
) -> ItemScore:
    started = time.monotonic()
    run_id = f"eval-{flow}-{item.id}-{uuid.uuid4().hex[:6]}"
    if flow == "research":
        report = await client.execute_workflow(
            ResearchWorkflow.run,
            ResearchInput(
                question=item.question,
                namespace=item.namespace,
                clearance=clearance,
                model=choice,
                llm_task_queue=queues.llm_task_queue,
            ),
            id=run_id,
            task_queue=queues.task_queue,
            priority=queues.priority,
        )
        return score_research(item, report, rubric, time.monotonic() - started)
    team = await client.execute_workflow(
        CoordinatorWorkflow.run,
        CoordinatorInput(
            request=item.question,
            clearance=clearance,
            version=team_version(item, contracts, clearance),
            models=[choice],
            llm_task_queue=queues.llm_task_queue,
        ),
        id=run_id,
        task_queue=queues.task_queue,
        priority=queues.priority,
    )
    return score_team(item, team, rubric, choice.provider, time.monotonic() - started)
