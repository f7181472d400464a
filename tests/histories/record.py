"""Record histories for the replay tests: `python -m tests.histories.record [NAME ...]`.

Runs the scripted flows on a throwaway dev server and writes each history as
JSON beside this file (all of them, or only the names given). Re-record only on
purpose: an old history that no longer replays means running executions would
break on deploy.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.documents.store import DocumentStore
from infra.binaries import temporal_cli
from infra.settings import WorkerSettings
from models.coordinator import CoordinatorInput
from models.llm import ModelChoice
from models.routing import AskInput
from tests.conftest import DEMO_CORPUS, running_workers, scripted_input
from workflows.coordinator import CoordinatorWorkflow
from workflows.intent_router import IntentRouterWorkflow
from workflows.research import ResearchWorkflow
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

HERE = Path(__file__).parent

# Each recorder runs one flow to its end and returns the ids of the executions to keep.
Recorder = Callable[[Client, WorkerSettings, str], Awaitable[list[str]]]


def research(script: str, question: str) -> Recorder:
    async def record(client: Client, settings: WorkerSettings, workflow_id: str) -> list[str]:
        await client.execute_workflow(
            ResearchWorkflow.run,
            scripted_input(script, settings, question),
            id=workflow_id,
            task_queue=settings.task_queue,
        )
        return [workflow_id]

    return record


async def team(client: Client, settings: WorkerSettings, workflow_id: str) -> list[str]:
    await client.execute_workflow(
        CoordinatorWorkflow.run,
        CoordinatorInput(
            request="Write a report on how idempotency keys and circuit breakers keep agents safe",
            models=[ModelChoice(provider="scripted", model="team_report")],
            llm_task_queue=settings.llm_task_queue,
        ),
        id=workflow_id,
        task_queue=settings.task_queue,
    )
    return [workflow_id, f"{workflow_id}-researcher-1", f"{workflow_id}-writer-2"]


async def team_checks(client: Client, settings: WorkerSettings, workflow_id: str) -> list[str]:
    """The team with its check node: a draft sent back to the writer without a reviewer."""
    await client.execute_workflow(
        CoordinatorWorkflow.run,
        CoordinatorInput(
            request="Write a report on how idempotency keys and circuit breakers keep agents safe",
            models=[ModelChoice(provider="scripted", model="team_checks")],
            llm_task_queue=settings.llm_task_queue,
        ),
        id=workflow_id,
        task_queue=settings.task_queue,
    )
    return [workflow_id]


async def ask_refused_by_flow_input(
    client: Client, settings: WorkerSettings, workflow_id: str
) -> list[str]:
    """The router refusing a request its chosen flow cannot take, before any child."""
    await client.execute_workflow(
        IntentRouterWorkflow.run,
        AskInput(
            request="outage",
            model=ModelChoice(provider="scripted", model="ask_everything"),
            llm_task_queue=settings.llm_task_queue,
        ),
        id=workflow_id,
        task_queue=settings.task_queue,
    )
    return [workflow_id]


async def ask_small_talk(client: Client, settings: WorkerSettings, workflow_id: str) -> list[str]:
    await client.execute_workflow(
        IntentRouterWorkflow.run,
        AskInput(
            request="hello there!",
            model=ModelChoice(provider="scripted", model="ask_everything"),
            llm_task_queue=settings.llm_task_queue,
        ),
        id=workflow_id,
        task_queue=settings.task_queue,
    )
    return [workflow_id]


FLOWS: dict[str, Recorder] = {
    "research_refine_and_revise": research(
        "refine_and_revise", "How do idempotency keys make retries safe?"
    ),
    "research_reask_and_fallback": research(
        "plan_always_broken", "Why add jitter to retries with backoff?"
    ),
    "team_report": team,
    "ask_small_talk": ask_small_talk,
    # Shapes of the rubric-verdict and draft-check patches.
    "research_checks_then_pass": research(
        "checks_then_pass", "How do idempotency keys make retries safe?"
    ),
    "research_never_checks": research("never_checks", "How do idempotency keys make retries safe?"),
    "team_checks": team_checks,
    "ask_refused_by_flow_input": ask_refused_by_flow_input,
}


async def main(names: list[str]) -> None:
    unknown = set(names) - set(FLOWS)
    if unknown:
        raise SystemExit(f"unknown flows {sorted(unknown)}; known: {sorted(FLOWS)}")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        search_attributes=list(ALL_SEARCH_ATTRIBUTES),
        # Recorded in plaintext on purpose: committed histories must replay without a
        # key, and the codec passes plaintext payloads through, so they replay with it on.
        data_converter=pydantic_data_converter,
    )
    try:
        store = DocumentStore(HERE / ".record-documents.db")
        store.ingest_folder(DEMO_CORPUS, "demo")
        async with running_workers(env.client, store) as settings:
            for name in names or FLOWS:
                ids = await FLOWS[name](env.client, settings, f"history-{name}")
                for workflow_id in ids:
                    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
                    # The file is named for the workflow id, which child ids derive from.
                    stem = workflow_id.removeprefix("history-")
                    (HERE / f"{stem}.json").write_text(history.to_json())
                    print(f"wrote {stem}.json ({len(history.events)} events)")
    finally:
        (HERE / ".record-documents.db").unlink(missing_ok=True)
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
