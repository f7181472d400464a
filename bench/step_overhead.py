"""Per-step orchestration overhead of the research flow.

    python -m bench.step_overhead [--runs 10]

Runs the scripted research flow (zero model latency) on a dev server persisted to
SQLite, as users run it, then makes the very same activity calls, read back from
each run's history, as plain function calls: the floor without durability. The
difference per activity is what Temporal's scheduling and recording cost.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.documents.store import DocumentStore
from activities.llm.prompts import PromptBook
from infra.binaries import temporal_cli
from infra.logging import configure_logging
from infra.settings import WorkerSettings
from models.documents import SearchRequest
from models.llm import LLMRequest
from tests.conftest import DEMO_CORPUS, SCRIPTED_DIR, running_workers, scripted_input
from worker import build_gateway
from workflows.research import ResearchWorkflow
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

QUESTION = "How do idempotency keys make retries safe?"


def scheduled_calls(history: WorkflowHistory) -> list[LLMRequest | SearchRequest]:
    converter = pydantic_data_converter.payload_converter
    calls: list[LLMRequest | SearchRequest] = []
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        attributes = event.activity_task_scheduled_event_attributes
        kind = LLMRequest if attributes.activity_type.name == "complete_llm" else SearchRequest
        calls.append(converter.from_payloads(attributes.input.payloads, [kind])[0])
    return calls


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(temporal_cli()),
            dev_server_database_filename=str(Path(tmp) / "temporal.db"),
            search_attributes=list(ALL_SEARCH_ATTRIBUTES),
            data_converter=pydantic_data_converter,
        )
        store = DocumentStore(Path(tmp) / "documents.db")
        store.ingest_folder(DEMO_CORPUS, "demo")
        suffix = uuid.uuid4().hex[:6]
        settings = WorkerSettings(
            task_queue=f"bench-{suffix}",
            llm_task_queue=f"bench-llm-{suffix}",
            scripted_dir=SCRIPTED_DIR,
            metrics_port=0,
            log_level="WARNING",
        )
        gateway = build_gateway(settings, PromptBook.load())
        durable: list[float] = []
        floor: list[float] = []
        steps = 0
        try:
            async with running_workers(env.client, store, settings):
                for i in range(runs + 1):  # the first run warms caches and is dropped
                    started = time.perf_counter()
                    handle = await env.client.start_workflow(
                        ResearchWorkflow.run,
                        scripted_input("refine_and_revise", settings, QUESTION),
                        id=f"bench-{suffix}-{i}",
                        task_queue=settings.task_queue,
                    )
                    await handle.result()
                    elapsed = time.perf_counter() - started
                    calls = scheduled_calls(await handle.fetch_history())
                    started = time.perf_counter()
                    for call in calls:
                        if isinstance(call, LLMRequest):
                            gateway.complete(call)
                        else:
                            store.search(call.namespace, call.queries, call.limit)
                    if i:
                        durable.append(elapsed)
                        floor.append(time.perf_counter() - started)
                        steps = len(calls)
        finally:
            await env.shutdown()
    wall = statistics.median(durable) * 1000
    base = statistics.median(floor) * 1000
    print(f"research flow, scripted model at 0 ms, {runs} runs, {steps} activities per run")
    print(f"{'':<28}{'median ms':>12}")
    print(f"{'durable (Temporal, SQLite)':<28}{wall:>12.1f}")
    print(f"{'floor (same calls, direct)':<28}{base:>12.1f}")
    print(f"{'overhead per activity':<28}{(wall - base) / steps:>12.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    configure_logging("console", "WARNING")
    asyncio.run(main(parser.parse_args().runs))
