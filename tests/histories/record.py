"""Record histories for the replay tests: `python -m tests.histories.record`.

Runs the scripted flows on a throwaway dev server and writes each history as
JSON beside this file. Re-record only on purpose: an old history that no longer
replays means running executions would break on deploy.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.documents.store import DocumentStore
from infra.binaries import temporal_cli
from tests.conftest import DEMO_CORPUS, running_workers, scripted_input
from workflows.research import ResearchWorkflow
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

HERE = Path(__file__).parent
FLOWS = {
    "research_refine_and_revise": (
        "refine_and_revise",
        "How do idempotency keys make retries safe?",
    ),
    "research_reask_and_fallback": (
        "plan_always_broken",
        "Why add jitter to retries with backoff?",
    ),
}


async def main() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli()),
        search_attributes=list(ALL_SEARCH_ATTRIBUTES),
        data_converter=pydantic_data_converter,
    )
    try:
        store = DocumentStore(HERE / ".record-documents.db")
        store.ingest_folder(DEMO_CORPUS, "demo")
        async with running_workers(env.client, store) as settings:
            for name, (script, question) in FLOWS.items():
                handle = await env.client.start_workflow(
                    ResearchWorkflow.run,
                    scripted_input(script, settings, question),
                    id=f"history-{name}",
                    task_queue=settings.task_queue,
                )
                await handle.result()
                history = await handle.fetch_history()
                (HERE / f"{name}.json").write_text(history.to_json())
                print(f"wrote {name}.json ({len(history.events)} events)")
    finally:
        (HERE / ".record-documents.db").unlink(missing_ok=True)
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
