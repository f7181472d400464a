"""Run the evaluation set through the flows on a dev server of its own.

Each question runs as a real workflow (research flow or team) on workers built the
way worker.py builds them, against the demo corpus, one at a time: the local model
answers one call at a time anyway, so the wall times are per run, not contended.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import temporalio
from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from activities.contracts.loader import load_all
from activities.documents.store import DocumentStore
from cli.render import root_cause
from eval.dataset import EvalItem, EvalSet
from eval.score import ItemScore, failed, score_research, score_team
from infra.binaries import DEV_SERVER_ARGS, temporal_cli
from infra.codec import encrypting_converter
from infra.keys import KeyRing
from infra.settings import WorkerSettings
from models.contracts import Rubric
from models.coordinator import CoordinatorInput
from models.llm import ModelChoice
from models.research import ResearchInput
from worker import build_gateway, build_workers
from workflows.coordinator import CoordinatorWorkflow
from workflows.research import ResearchWorkflow
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
SCRIPTED_DIR = ROOT / "tests" / "fixtures" / "scripted"


def machine() -> dict[str, object]:
    """What the figures came from."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu,
        "os": platform.platform(),
        "python": platform.python_version(),
        "temporalio": temporalio.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


async def run_eval(
    evalset: EvalSet,
    items: Sequence[EvalItem],
    choices: Sequence[ModelChoice],
    flows: Sequence[str],
    scripted_dir: Path = SCRIPTED_DIR,
    on_score: Callable[[ItemScore], None] | None = None,
) -> list[ItemScore]:
    """Every item through every flow with every model; one score per run."""
    loaded = load_all()
    contracts = loaded.snapshot
    rubrics = {
        flow: contracts.rubrics[contracts.quality.flow(flow).rubric]
        for flow in ("research", "report")
    }
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
        store.ingest_folder(CORPUS / evalset.namespace, evalset.namespace)
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
                for choice in choices:
                    for flow in flows:
                        for item in items:
                            started = time.monotonic()
                            try:
                                score = await _run_one(
                                    client, settings, evalset, item, choice, flow, rubrics[flow]
                                )
                            except WorkflowFailureError as failure:
                                score = failed(
                                    item,
                                    choice.provider,
                                    flow,
                                    root_cause(failure),
                                    time.monotonic() - started,
                                )
                            scores.append(score)
                            if on_score is not None:
                                on_score(score)
        finally:
            await env.shutdown()
    return scores


async def _run_one(
    client: Client,
    settings: WorkerSettings,
    evalset: EvalSet,
    item: EvalItem,
    choice: ModelChoice,
    flow: str,
    rubric: Rubric,
) -> ItemScore:
    started = time.monotonic()
    run_id = f"eval-{flow}-{item.id}-{uuid.uuid4().hex[:6]}"
    if flow == "research":
        report = await client.execute_workflow(
            ResearchWorkflow.run,
            ResearchInput(
                question=item.question,
                namespace=evalset.namespace,
                model=choice,
                llm_task_queue=settings.llm_task_queue,
            ),
            id=run_id,
            task_queue=settings.task_queue,
        )
        return score_research(item, report, rubric, time.monotonic() - started)
    team = await client.execute_workflow(
        CoordinatorWorkflow.run,
        CoordinatorInput(
            request=item.question, models=[choice], llm_task_queue=settings.llm_task_queue
        ),
        id=run_id,
        task_queue=settings.task_queue,
    )
    return score_team(item, team, rubric, choice.provider, time.monotonic() - started)
